"""Helpers the test modules share (fixtures live in the conftest files, which import from here, never the
other way round)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from kg.config import GraphSettings
from kg.store.embedded import free_port
from kg.store.graph import Graph, connect

FIXTURES = Path(__file__).parent / "fixtures"
REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
PROBLEM = "application/problem+json"


@contextmanager
def serve_in_thread(app: FastAPI, name: str = "test-uvicorn", start_timeout_s: float = 60) -> Iterator[str]:
    """Serve ``app`` with a real uvicorn (lifespan on) on a free loopback port; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@contextmanager
def running_graph(settings: GraphSettings) -> Iterator[Graph]:
    """A connected graph; an embedded server it had to start is stopped afterwards."""
    g = connect(settings)
    try:
        yield g
    finally:
        g.close()
        if g.server is not None:
            g.server.stop()


def clear_graph(graph: Graph) -> None:
    graph.write("MATCH (n) DETACH DELETE n")


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status
    assert body["title"]
    return dict(body)
