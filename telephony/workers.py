"""``telephony serve --workers N``: N copies of ``telephony serve`` on one port.

The workers share the port with SO_REUSEPORT (the kernel spreads connections).
This process supervises them: signals are passed on (the first drains, the
second stops); if a worker dies the others are stopped and the exit code says
so, for the supervisor above (systemd, Docker, Kubernetes) to restart.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import IO

from .io.server import listen_socket
from .logs import log_event

__all__ = ["run_workers"]

log = logging.getLogger("telephony.workers")


def run_workers(
    host: str, port: int, workers: int, tools: str | None = None, listening: Callable[[int], None] | None = None
) -> int:
    """Run ``workers`` copies of ``telephony serve`` on one port (SO_REUSEPORT: the
    kernel spreads connections). Signals are passed on (the first drains, the
    second stops); if a worker dies the others are stopped and the exit code
    says so, for the supervisor (systemd, Docker, Kubernetes) to restart.
    ``listening(port)`` is called once every worker listens (the CLI says so)."""
    # Hold the port (bound, not listening: it takes no connections) so port 0 works too.
    holder = listen_socket(host, port, reuse_port=True, listen=False)  # OSError: the caller says why
    bound = holder.getsockname()[1]
    cmd = [
        sys.executable,
        "-m",
        "telephony",
        "serve",
        "--host",
        host,
        "--port",
        str(bound),
        "--reuse-port",
        "--workers",
        "1",
    ]
    if tools:
        cmd += ["--tools", tools]
    stopping = False
    children: list[subprocess.Popen[bytes]] = []

    def pass_on(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, pass_on)
    signal.signal(signal.SIGINT, pass_on)
    # Own sessions: a Ctrl-C reaches the workers once, through us, not twice.
    children.extend(subprocess.Popen(cmd, stdout=subprocess.PIPE, start_new_session=True) for _ in range(workers))
    for child in children:
        assert child.stdout is not None
        if not child.stdout.readline():  # "listening on": or it died starting
            pass_on(signal.SIGTERM, None)
            for c in children:
                c.wait()
            return child.returncode or 1

    def relay(stream: IO[bytes]) -> None:
        for line in stream:
            sys.stdout.buffer.write(line)
            sys.stdout.flush()

    for child in children:
        threading.Thread(target=relay, args=(child.stdout,), daemon=True).start()
    if listening is not None:
        listening(bound)
    code = 0
    alive = {child.pid: child for child in children}
    while alive:
        pid, status = os.wait()
        if pid not in alive:
            continue
        child = alive.pop(pid)
        child.returncode = os.waitstatus_to_exitcode(status)
        if not stopping:
            log_event(
                log,
                "workers.worker_exited",
                logging.ERROR,
                pid=pid,
                exit_code=child.returncode,
                then="stopping the others",
            )
            code = code or child.returncode or 1
            pass_on(signal.SIGTERM, None)
        elif child.returncode not in (0, -signal.SIGTERM, -signal.SIGINT):
            code = code or child.returncode
    holder.close()
    return code
