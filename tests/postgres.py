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

__all__ = ["Cluster", "find_binaries", "throwaway_cluster"]


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


class Cluster:
    """A new cluster in a temporary directory, on a free loopback port; ``start()``
    and ``stop()`` may be repeated (same data, same port), ``remove()`` ends it."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.owner = _owner()
        self.root = Path(tempfile.mkdtemp(prefix="telephony-pg-"))
        self.data, self.log = self.root / "data", self.root / "server.log"
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.running = False
        if self.owner is not None:
            user = pwd.getpwnam(self.owner)
            os.chown(self.root, user.pw_uid, user.pw_gid)
        os.chmod(self.root, 0o700)
        done = self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
        if done.returncode != 0:
            self.remove()
            raise RuntimeError(f"initdb failed: {done.stderr.strip()}")

    def _run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin_dir / argv[0]), *argv[1:]]
        if self.owner is not None:
            cmd = ["runuser", "-u", self.owner, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root} -c fsync=off"
        done = self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "-t", "60", "start")
        if done.returncode != 0:
            server_log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {done.stderr.strip()}\n{server_log}")
        self.running = True

    def stop(self) -> None:
        if self.running:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
            self.running = False

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def throwaway_cluster(bin_dir: Path) -> Iterator[Cluster]:
    """A started cluster (user ``postgres``, database ``postgres`` at ``.url``),
    removed on exit."""
    cluster = Cluster(bin_dir)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()
