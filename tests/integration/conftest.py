"""Fixtures of the API integration tests: an app over the mini fixture graph.

``client``: the real app over the mini fixture graph, once per test module (a module may define its own)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient

from app.core.config import AppSettings
from app.main import create_app
from kg.config import GraphSettings
from kg.ingest.build import build
from kg.store.graph import Graph
from tests.helpers import FIXTURES, clear_graph


@contextmanager
def mini_app_client(graph: Graph, graph_settings: GraphSettings) -> Iterator[TestClient]:
    """The mini fixture graph (with its genes) built into the session server, and the real app serving it."""
    clear_graph(graph)
    build(graph, obo=FIXTURES / "mini.obo", hpoa=FIXTURES / "mini.hpoa", genes=FIXTURES / "mini_genes.txt",
          include_pack=False, progress=False)
    settings = AppSettings(**{"PHENOKG_HOME": str(graph_settings.home),  # type: ignore[arg-type]
                              **({"NEO4J_URI": graph_settings.neo4j_uri} if graph_settings.neo4j_uri else {})})
    with TestClient(create_app(settings)) as test_client:
        yield test_client
    clear_graph(graph)


@pytest.fixture(scope="module")
def client(graph: Graph, graph_settings: GraphSettings) -> Iterator[TestClient]:
    with mini_app_client(graph, graph_settings) as test_client:
        yield test_client
