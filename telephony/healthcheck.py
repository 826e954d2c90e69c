"""``python -m telephony.healthcheck``: the container's health check. Exit 0 when the
server of this container answers ``/healthz`` with 200 (not draining, records
writable), else 1 with the reason on stderr. It asks the address ``telephony serve``
listens on, from ``TELEPHONY_HOST`` and ``TELEPHONY_PORT`` (a wildcard host is asked
on loopback). Standard library only: it runs every few seconds."""

from __future__ import annotations

import logging
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping

__all__ = ["healthz_url", "main"]

log = logging.getLogger("telephony.healthcheck")


def healthz_url(environ: Mapping[str, str]) -> str:
    host = environ.get("TELEPHONY_HOST", "").strip() or "127.0.0.1"
    if host in ("0.0.0.0", "::", "[::]"):
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    port = environ.get("TELEPHONY_PORT", "").strip() or "8000"
    return f"http://{host}:{port}/healthz"


def main(environ: Mapping[str, str] | None = None, timeout: float = 2.0) -> int:
    url = healthz_url(os.environ if environ is None else environ)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            status = reply.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:
        log.error("unhealthy: %s: %s", url, exc)
        return 1
    if status != 200:
        log.error("unhealthy: %s answered %s", url, status)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    logging.basicConfig(stream=sys.stderr, format="%(message)s")  # what Docker shows of a failed check
    raise SystemExit(main())
