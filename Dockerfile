FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN useradd --create-home --uid 10001 telephony
WORKDIR /app

# Dependencies in their own layer, before the sources: a code change does not
# reinstall them. They are read from pyproject.toml (with the postgres extra).
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print('\n'.join(p['dependencies'] + p['optional-dependencies']['postgres']))" > /tmp/requirements.txt \
 && pip install --requirement /tmp/requirements.txt \
 && rm /tmp/requirements.txt

COPY README.md ./
COPY telephony ./telephony
COPY examples ./examples
RUN pip install --no-deps .

# Call records (SQLite) live outside the image, writable by the service user
# (uid 10001: `chown 10001` a bind-mounted directory); `telephony serve` checks at
# start that it can write there and exits naming the fix if not. With
# TELEPHONY_WORKERS > 1 the workers share this file.
RUN mkdir -p /data && chown telephony /data
ENV TELEPHONY_RECORDS_PATH=/data/telephony-calls.db
VOLUME /data

USER 10001
# `telephony serve` and the health check both listen/ask on these (-e to change them).
ENV TELEPHONY_HOST=0.0.0.0 TELEPHONY_PORT=8000
EXPOSE 8000
# SIGTERM (docker stop) drains: /healthz turns 503, calls in progress finish within
# TELEPHONY_DRAIN_SECONDS (default 30), then up to 5 s to close: give `docker stop -t`
# (compose: stop_grace_period) at least the drain + 10 s, or calls are cut by SIGKILL.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-m", "telephony.healthcheck"]
# One worker per core: docker run -e TELEPHONY_WORKERS=4 ...; your tools: mount a
# file and name it: -v "$PWD/tools.py:/app/tools.py:ro" -e TELEPHONY_TOOLS=/app/tools.py
CMD ["telephony", "serve"]
