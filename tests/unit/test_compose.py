"""docker-compose.yml (+ the GPU override): services, ports, volumes, health checks, start order; and
``docker-compose config -q`` (Debian's docker-compose 1.29 validates without an engine) when installed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import REPO_ROOT

ROOT = REPO_ROOT
COMPOSE = ROOT / "docker-compose.yml"
GPU = ROOT / "docker-compose.gpu.yml"


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load(COMPOSE)


def ports(service: dict[str, Any]) -> set[str]:
    return {str(p).split(":", 1)[0] for p in service.get("ports", [])}


def test_no_keys_docker_compose_1_29_rejects(compose: dict[str, Any]) -> None:
    assert "name" not in compose
    for name, service in compose["services"].items():
        assert "start_interval" not in service.get("healthcheck", {}), name


def test_services_and_ports(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"neo4j", "api", "ray-head"}
    assert services["neo4j"]["image"].startswith("neo4j:5")
    assert ports(services["neo4j"]) == {"7474", "7687"}
    assert ports(services["api"]) == {"8000"}
    assert ports(services["ray-head"]) == {"8265"}
    for name in ("api", "ray-head"):
        assert services[name]["build"]["context"] == "."
        assert services[name]["image"] == "phenokg:local"
    assert (ROOT / "Dockerfile").is_file()


def test_database_password_comes_from_the_environment(compose: dict[str, Any]) -> None:
    neo4j_env = compose["services"]["neo4j"]["environment"]
    assert neo4j_env["NEO4J_AUTH"].startswith("neo4j/${NEO4J_PASSWORD:?")
    for name in ("api", "ray-head"):
        env = compose["services"][name]["environment"]
        assert env["NEO4J_URI"] == "bolt://neo4j:7687"
        assert env["NEO4J_PASSWORD"].startswith("${NEO4J_PASSWORD:?")
        assert env["PHENOKG_HOME"] == "/data/phenokg"
    assert compose["services"]["api"]["environment"]["RAY_ADDRESS"] == "http://ray-head:8265"


def test_volumes(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert "neo4j-data:/data" in services["neo4j"]["volumes"]
    # the API and the Ray head share the model store and the generated token
    assert "phenokg-data:/data/phenokg" in services["api"]["volumes"]
    assert "phenokg-data:/data/phenokg" in services["ray-head"]["volumes"]
    assert {"neo4j-data", "phenokg-data"} <= set(compose["volumes"])


def test_health_checks_and_start_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        check = service["healthcheck"]
        assert check["test"][0] in {"CMD", "CMD-SHELL"}, name
        assert {"interval", "timeout", "retries"} <= set(check), name
    assert "cypher-shell" in services["neo4j"]["healthcheck"]["test"][1]
    assert "/health" in services["api"]["healthcheck"]["test"][-1]
    assert "8265" in services["ray-head"]["healthcheck"]["test"][-1]
    assert services["api"]["depends_on"]["neo4j"]["condition"] == "service_healthy"
    assert services["ray-head"]["depends_on"]["neo4j"]["condition"] == "service_healthy"
    # `phenokg serve` migrates and builds an empty graph before serving
    assert services["api"]["command"][:2] == ["phenokg", "serve"]


def test_gpu_override_reserves_nvidia_devices() -> None:
    override = load(GPU)
    for name in ("api", "ray-head"):
        devices = override["services"][name]["deploy"]["resources"]["reservations"]["devices"]
        assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert "--num-gpus=1" in override["services"]["ray-head"]["command"]


def _compose_config(*files: Path, password: str | None) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (apt-get install docker-compose; .ci/run installs it)")
    env = {k: v for k, v in os.environ.items() if k != "NEO4J_PASSWORD"}
    if password is not None:
        env["NEO4J_PASSWORD"] = password
    args = [binary]
    for f in files:
        args += ["-f", str(f)]
    return subprocess.run([*args, "config", "-q"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.mark.parametrize("files", [(COMPOSE,), (COMPOSE, GPU)], ids=["base", "gpu"])
def test_docker_compose_config_validates(files: tuple[Path, ...]) -> None:
    result = _compose_config(*files, password="a-local-password")
    assert result.returncode == 0, result.stderr


def test_docker_compose_refuses_to_start_without_a_password() -> None:
    result = _compose_config(COMPOSE, password=None)
    assert result.returncode != 0
    assert "set NEO4J_PASSWORD" in result.stderr
