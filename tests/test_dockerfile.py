"""The Dockerfile, checked without a Docker engine: parsed by BuildKit's own parser
(the ``dockerfile`` package wraps it), linted by hadolint, and its pieces checked
(dependency layer first, host and port from the environment, the health check
asks the same address, every file it copies exists and is not ignored). The
health check module itself runs against a real server."""

from __future__ import annotations

import asyncio
import fnmatch
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import dockerfile
import pytest

from telephony.healthcheck import healthz_url
from telephony.healthcheck import main as healthcheck
from telephony.testing import bridge

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[dockerfile.Command]:
    return list(dockerfile.parse_file(str(DOCKERFILE)))


def test_hadolint_finds_nothing():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    out = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_dependencies_are_installed_in_their_own_layer_before_the_sources(tmp_path):
    cmds = instructions()
    copies = [c for c in cmds if c.cmd == "COPY"]
    assert copies[0].value == ("pyproject.toml", "./")  # the only input of the dependency layer
    deps = next(i for i, c in enumerate(cmds) if c.cmd == "RUN" and "--requirement" in c.value[0])
    sources = next(i for i, c in enumerate(cmds) if c.cmd == "COPY" and c.value[0] == "telephony")
    assert cmds.index(copies[0]) < deps < sources
    # The layer's requirement list is what pyproject.toml asks, postgres extra included:
    # run its command here on the real pyproject.toml.
    words = shlex.split(cmds[deps].value[0].split(">", 1)[0])
    assert words[:2] == ["python", "-c"]
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    out = subprocess.run([sys.executable, "-c", words[2]], cwd=tmp_path, capture_output=True, text=True, check=True)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert out.stdout.split("\n")[:-1] == project["dependencies"] + project["optional-dependencies"]["postgres"]
    # The package itself is installed after its sources, without touching the dependencies.
    install = next(i for i, c in enumerate(cmds) if c.cmd == "RUN" and c.value[0].startswith("pip install --no-deps"))
    assert install > sources


def test_host_and_port_come_from_the_environment_for_serve_and_the_health_check():
    cmds = {c.cmd: c for c in instructions()}
    assert cmds["CMD"].json and list(cmds["CMD"].value) == ["telephony", "serve"]  # no --host/--port
    env = dict(zip(cmds["ENV"].value[::2], cmds["ENV"].value[1::2], strict=True))  # the last ENV
    assert env == {"TELEPHONY_HOST": "0.0.0.0", "TELEPHONY_PORT": "8000"}
    health = cmds["HEALTHCHECK"]
    assert health.value == ("CMD", "python", "-m", "telephony.healthcheck")
    assert healthz_url(env) == "http://127.0.0.1:8000/healthz"
    assert healthz_url({"TELEPHONY_HOST": "0.0.0.0", "TELEPHONY_PORT": "9000"}) == "http://127.0.0.1:9000/healthz"
    assert healthz_url({"TELEPHONY_HOST": "::", "TELEPHONY_PORT": "80"}) == "http://[::1]:80/healthz"
    assert healthz_url({"TELEPHONY_HOST": "10.0.0.5"}) == "http://10.0.0.5:8000/healthz"
    assert cmds["STOPSIGNAL"].value == ("SIGTERM",)


def test_runs_as_the_unprivileged_user_with_a_data_volume():
    cmds = instructions()
    (user,) = [c for c in cmds if c.cmd == "USER"]
    useradd = next(c for c in cmds if c.cmd == "RUN" and "useradd" in c.value[0])
    assert f"--uid {user.value[0]} " in useradd.value[0] and user.value[0] != "0"
    envs = {k: v for c in cmds if c.cmd == "ENV" for k, v in zip(c.value[::2], c.value[1::2], strict=True)}
    assert envs["TELEPHONY_RECORDS_PATH"].startswith("/data/")
    assert any(c.cmd == "VOLUME" and c.value == ("/data",) for c in cmds)


def test_every_copied_path_exists_and_is_not_ignored():
    ignored = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines() if p.strip()]
    for c in instructions():
        if c.cmd != "COPY":
            continue
        for src in c.value[:-1]:
            assert (ROOT / src).exists(), src
            assert not any(fnmatch.fnmatch(src, pat) for pat in ignored), src


pytestmark = pytest.mark.anyio


async def test_the_health_check_asks_the_running_server():
    async with bridge() as b:
        env = {"TELEPHONY_HOST": "0.0.0.0", "TELEPHONY_PORT": str(b.port)}
        assert await asyncio.to_thread(healthcheck, env) == 0
        b.app.state.telephony.admission.draining = True  # what SIGTERM does first: /healthz turns 503
        assert await asyncio.to_thread(healthcheck, env) == 1
    assert await asyncio.to_thread(healthcheck, env) == 1  # nothing listens any more
