FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN useradd --create-home --uid 10001 telephony
WORKDIR /app
COPY pyproject.toml README.md ./
COPY telephony ./telephony
COPY examples ./examples
RUN pip install --no-cache-dir '.[postgres]'
# Call records (SQLite) live outside the image, writable by the service user; with
# TELEPHONY_WORKERS > 1 the workers share this file.
RUN mkdir -p /data && chown telephony /data
ENV TELEPHONY_RECORDS_PATH=/data/telephony-calls.db
VOLUME /data

USER telephony
EXPOSE 8000
# SIGTERM (docker stop) drains: /healthz turns 503, calls in progress finish
# (TELEPHONY_DRAIN_SECONDS, default 30): give `docker stop -t` at least that.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD python -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"
# One worker per core: docker run -e TELEPHONY_WORKERS=4 ...
CMD ["telephony", "serve", "--host", "0.0.0.0", "--port", "8000"]
