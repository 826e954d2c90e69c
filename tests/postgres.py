"""A throwaway PostgreSQL server for the test session.

The distribution's binaries (``/usr/lib/postgresql/*/bin``; ``.ci/run`` installs
the ``postgresql`` package when missing) run a new cluster in a temporary
directory on a free loopback port, trusting local connections. ``initdb``
refuses to run as root: as root, the cluster belongs to the ``postgres`` user the
package creates (or ``nobody``) and its commands run through ``runuser``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["find_binaries", "throwaway_cluster"]


def find_binaries() -> Path | None:
    """The newest installed PostgreSQL's bin directory, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _owner() -> str | None:
    """Who runs the server: None for ourselves, else an unprivileged user (as root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root with neither a 'postgres' nor a 'nobody' user to run PostgreSQL as")


@contextmanager
def throwaway_cluster(bin_dir: Path) -> Iterator[str]:
    """Start a cluster; yield its URL (user ``postgres``, database ``postgres``)."""
    owner = _owner()
    root = Path(tempfile.mkdtemp(prefix="telephony-pg-"))
    data, log = root / "data", root / "server.log"

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(bin_dir / argv[0]), *argv[1:]]
        if owner is not None:
            cmd = ["runuser", "-u", owner, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)

    port = _free_port()
    started = False
    try:
        if owner is not None:
            user = pwd.getpwnam(owner)
            os.chown(root, user.pw_uid, user.pw_gid)
        os.chmod(root, 0o700)
        done = run("initdb", "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr.strip()}")
        options = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={root} -c fsync=off"
        done = run("pg_ctl", "-D", str(data), "-o", options, "-l", str(log), "-w", "-t", "60", "start")
        if done.returncode != 0:
            server_log = log.read_text() if log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {done.stderr.strip()}\n{server_log}")
        started = True
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        if started:
            run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)
