"""Health and version endpoints, served by the real app against the real embedded server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.core.config import AppSettings
from app.main import create_app
from kg.config import GraphSettings
from kg.ingest.build import build
from kg.store.graph import Graph
from tests.helpers import FIXTURES as FIXTURES_DIR

pytestmark = pytest.mark.integration
FIXTURES = FIXTURES_DIR


@pytest.fixture()
def client(empty_graph: Graph, graph_settings: GraphSettings) -> Iterator[TestClient]:
    build(empty_graph, obo=FIXTURES / "mini.obo", hpoa=FIXTURES / "mini.hpoa", include_pack=False, progress=False)
    settings = AppSettings(**{"PHENOKG_HOME": str(graph_settings.home),  # type: ignore[arg-type]
                              **({"NEO4J_URI": graph_settings.neo4j_uri} if graph_settings.neo4j_uri else {})})
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_health_reports_database_readiness(client: TestClient) -> None:
    assert client.get("/health/live").json() == {"status": "ok", "database": None}
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True
    assert "Neo4j/5" in body["database"]["server"]


def test_version_shows_hpo_release(client: TestClient) -> None:
    body = client.get("/version").json()
    assert body["version"]
    assert body["hpo"]["version"] == "2099-01-01"
    assert body["hpo"]["license"] == "https://hpo.jax.org/app/license"
    assert body["build"]
    assert "Human Phenotype Ontology" in body["attribution"]


def test_unknown_route_is_problem_json(client: TestClient) -> None:
    response = client.get("/no/such/thing")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 404
