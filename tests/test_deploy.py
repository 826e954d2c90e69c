"""The deployment files: the Kubernetes manifests validate against the Kubernetes
API schemas (bundled by the kubernetes-validate package, no cluster needed), compose.yaml
against the Compose specification's schema (vendored by check-jsonschema), and the
figures that must agree across files do (grace period vs drain, probes, selectors,
routes, the autoscaler's metric)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from telephony.config import Settings
from telephony.io.app import create_app
from telephony.metrics import Metrics

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
K8S = DEPLOY / "kubernetes"
NOT_OBJECTS = {"kustomization.yaml", "prometheus-adapter-rules.yaml"}  # kustomize's and the adapter's own formats
#: The oldest Kubernetes still commonly run, and the newest the package knows.
VERSIONS = ("1.29.0", kubernetes_validate.latest_version())


def _objects() -> dict[str, dict[str, Any]]:
    """Every object of the manifests, by kind."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name not in NOT_OBJECTS:
            for doc in yaml.safe_load_all(path.read_text()):
                assert doc["kind"] not in out, f"two {doc['kind']} objects"
                out[doc["kind"]] = doc
    return out


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_validates_against_the_kubernetes_schemas(version: str) -> None:
    objects = _objects()
    assert set(objects) == {
        "ConfigMap",
        "Deployment",
        "Service",
        "Ingress",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "Secret",
    }
    for obj in objects.values():
        kubernetes_validate.validate(obj, version, strict=True)  # raises on any unknown or wrong field


def test_kustomization_lists_every_manifest_but_the_secret_example() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - NOT_OBJECTS - {"secret.example.yaml"}
    assert listed == on_disk


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed: kustomize not run")
def test_kustomize_renders_objects_that_validate() -> None:
    out = subprocess.run(["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    docs = list(yaml.safe_load_all(out.stdout))
    assert len(docs) == 6
    for doc in docs:
        kubernetes_validate.validate(doc, VERSIONS[-1], strict=True)
        assert doc["metadata"]["labels"]["app.kubernetes.io/name"] == "telephony"


def test_the_pieces_agree() -> None:
    o = _objects()
    config = o["ConfigMap"]["data"]
    pod = o["Deployment"]["spec"]["template"]
    spec, [container] = pod["spec"], pod["spec"]["containers"]
    # The grace period covers the preStop pause, the drain and uvicorn's own shutdown (5 s).
    pause = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    drain = float(config["TELEPHONY_DRAIN_SECONDS"])
    assert spec["terminationGracePeriodSeconds"] > pause + drain + 5
    # Liveness is patient enough never to restart a draining pod (503) within its grace.
    live = container["livenessProbe"]
    assert live["periodSeconds"] * live["failureThreshold"] > spec["terminationGracePeriodSeconds"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    # Settings, secrets: every variable is one the app reads.
    settings_names = {f"TELEPHONY_{n.upper()}" for n in Settings.model_fields} | {"PUBLIC_URL", "OPENAI_API_KEY"}
    settings_names |= {"TWILIO_AUTH_TOKEN"}
    secret = o["Secret"]["stringData"]
    assert set(config) | set(secret) <= settings_names
    assert "TELEPHONY_DATABASE_URL" in secret and "OPENAI_API_KEY" in secret
    assert {e.get("secretRef", e.get("configMapRef"))["name"] for e in container["envFrom"]} == {"telephony"}
    # Selectors pick the pods.
    labels = pod["metadata"]["labels"]
    for kind in ("Service", "PodDisruptionBudget"):
        selector = o[kind]["spec"]["selector"]
        assert selector.get("matchLabels", selector).items() <= labels.items()
    assert o["Deployment"]["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    # The Ingress routes to the Service's port, and only to routes the app has.
    port_name = o["Service"]["spec"]["ports"][0]["name"]
    paths = set()
    for rule in o["Ingress"]["spec"]["rules"]:
        for p in rule["http"]["paths"]:
            assert p["backend"]["service"] == {"name": o["Service"]["metadata"]["name"], "port": {"name": port_name}}
            paths.add(p["path"])
    app_paths = {getattr(r, "path", "") for r in create_app(Settings(_env_file=None, records_path="")).routes}
    assert paths <= app_paths and "/metrics" not in paths and "/media-stream" in paths
    # The autoscaler's metric is one the app exports, and it scales this Deployment.
    hpa = o["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == o["Deployment"]["metadata"]["name"]
    metric = next(m["pods"]["metric"]["name"] for m in hpa["metrics"] if m["type"] == "Pods")
    assert re.search(rf"^{metric} ", Metrics().render().decode(), re.M)
    assert float(next(m["pods"]["target"]["averageValue"] for m in hpa["metrics"] if m["type"] == "Pods")) < float(
        config["TELEPHONY_MAX_CALLS"]
    )
    adapter = yaml.safe_load((K8S / "prometheus-adapter-rules.yaml").read_text())
    assert adapter["rules"]["custom"][0]["name"]["as"] == metric


def test_compose_file_validates_against_the_compose_schema() -> None:
    checker = Path(sys.executable).parent / "check-jsonschema"
    out = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(DEPLOY / "compose.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_compose_runs_two_replicas_on_postgres_behind_the_proxy() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    replicas = [name for name, s in services.items() if "TELEPHONY_DATABASE_URL" in s.get("environment", {})]
    assert replicas == ["telephony-1", "telephony-2"]
    for name in replicas:
        s = services[name]
        assert (
            s["environment"]["TELEPHONY_DATABASE_URL"].startswith("postgresql://")
            and "@postgres:" in (s["environment"]["TELEPHONY_DATABASE_URL"])
        )
        assert int(s["stop_grace_period"].rstrip("s")) > float(s["environment"]["TELEPHONY_DRAIN_SECONDS"])
        assert s["depends_on"]["postgres"]["condition"] == "service_healthy"
    caddyfile = (DEPLOY / "Caddyfile").read_text()
    assert "reverse_proxy telephony-1:8000 telephony-2:8000" in caddyfile and "health_uri /healthz" in caddyfile
    ingress_paths = {p["path"] for r in _objects()["Ingress"]["spec"]["rules"] for p in r["http"]["paths"]}
    caddy_paths = set(re.search(r"@public path (.*)", caddyfile).group(1).split())  # type: ignore[union-attr]
    assert caddy_paths - {"/calls/*"} == ingress_paths


def _docker_compose() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    return subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30).returncode == 0


@pytest.mark.skipif(not _docker_compose(), reason="no docker compose CLI here: the schema check above stands in")
def test_docker_compose_accepts_the_file(tmp_path: Path) -> None:
    copy = tmp_path / "deploy"
    shutil.copytree(DEPLOY, copy)
    shutil.copy(copy / ".env.example", copy / ".env")
    out = subprocess.run(
        ["docker", "compose", "-f", str(copy / "compose.yaml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
