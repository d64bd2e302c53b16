"""The API over a graph database that dies (SIGKILL of the JVM, no mocks): requests that need the graph answer 503
with ``Retry-After`` at once instead of waiting on the driver; the embedded server is reaped and restarted on the
same data, and the same routes answer as before; a server that keeps dying is given up and ``/health/live`` fails.
With ``NEO4J_URI`` (a server the API does not own) the same fast 503, and the API reconnects when it is back."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.core.config import AppSettings
from app.main import create_app
from kg.config import GraphSettings
from kg.ingest.build import build
from kg.store.embedded import EmbeddedServer, free_port, pid_alive
from kg.store.graph import Graph, connect
from tests.helpers import FIXTURES, assert_problem

pytestmark = pytest.mark.integration

TERM = "/terms/HP:0002090"  # Pneumonia in the mini fixture
LEXICAL = "/search?q=pneumonia&mode=lexical"
FAST_S = 1.0  # the bound for a 503 while the database is down


def _build(graph: Graph) -> None:
    build(graph, obo=FIXTURES / "mini.obo", hpoa=FIXTURES / "mini.hpoa", include_pack=False, progress=False)


def _timed_get(client: TestClient, path: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = client.get(path)
    return response, time.monotonic() - started


def _assert_fast_503(client: TestClient, path: str, *, retry_after: bool = True) -> httpx.Response:
    response, seconds = _timed_get(client, path)
    assert seconds < FAST_S, f"{path} took {seconds:.2f} s"
    assert response.status_code == 503, response.text
    if retry_after:
        assert int(response.headers["Retry-After"]) >= 1
    else:
        assert "Retry-After" not in response.headers
    if path != "/health":
        assert_problem(response, 503)
    return response


def _wait_for(what: str, condition: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _kill_jvm(graph: Graph) -> int:
    assert graph.server is not None
    state = graph.server.status()
    assert state is not None
    os.kill(state.pid, signal.SIGKILL)
    return state.pid


def _jvms_of(root: Path) -> list[int]:
    marker = f"-Darcadedb.server.rootPath={root}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The real app on its own embedded server (it gets killed here), restarted at most once in the window."""
    home = tmp_path_factory.mktemp("restart-home")
    settings = AppSettings(**{"PHENOKG_HOME": str(home), "PHENOKG_DB_MAX_RESTARTS": "1",  # type: ignore[arg-type]
                              "PHENOKG_DB_RESTART_BACKOFF": "2"})
    with TestClient(create_app(settings)) as test_client:
        app_state: Any = test_client.app.state  # type: ignore[attr-defined]
        _build(app_state.graph)
        app_state.cache.check_every = 0.0  # every request reads the build stamp, i.e. needs the graph
        yield test_client
    root = settings.db_dir.resolve()
    assert _jvms_of(root) == []  # the app stopped what it started, and nothing is left <defunct>


def test_killed_database_answers_503_at_once_then_comes_back_with_its_data(client: TestClient) -> None:
    graph: Graph = client.app.state.graph  # type: ignore[attr-defined]
    before = client.get(TERM)
    assert before.status_code == 200
    hits = client.get(LEXICAL).json()["hits"]
    assert hits[0]["id"] == "HP:0002090"

    old_pid = _kill_jvm(graph)
    _wait_for("the JVM to be reaped", lambda: not Path(f"/proc/{old_pid}").exists(), timeout=10)
    health = _assert_fast_503(client, "/health").json()
    assert health["database"]["state"] == "restarting"
    assert "SIGKILL" in health["database"]["detail"]
    for path in (TERM, LEXICAL, TERM):
        body = _assert_fast_503(client, path).json()
        assert "retry in" in body["detail"]
    assert client.get("/health/live").status_code == 200  # it is coming back: no reason to restart the service

    _wait_for("the database to come back", lambda: client.get("/health").status_code == 200)
    health = client.get("/health").json()
    assert health["database"] | {"latency_ms": None} == {
        "ok": True, "server": graph.server_agent, "dialect": "arcadedb", "latency_ms": None, "state": "up",
        "restarts": 1, "detail": None, "retry_after_s": None}
    assert graph.server is not None
    state = graph.server.status()
    assert state is not None and state.pid != old_pid
    after = client.get(TERM)  # the same Graph object the routes hold, reconnected
    assert after.status_code == 200
    assert after.json() == before.json()  # the data survived the kill (the server's recovery ran)
    assert client.get(LEXICAL).json()["hits"] == hits


def test_database_that_keeps_dying_is_given_up_and_liveness_fails(client: TestClient) -> None:
    graph: Graph = client.app.state.graph  # type: ignore[attr-defined]
    _wait_for("the database to be up", lambda: client.get("/health").status_code == 200)
    assert graph.server is not None
    root = graph.server.root
    _kill_jvm(graph)  # the second death within the window: over PHENOKG_DB_MAX_RESTARTS=1
    _wait_for("the supervisor to give up", lambda: client.get("/health/live").status_code == 503, timeout=10)
    live = client.get("/health/live").json()
    assert live["status"] == "failed"
    assert "gave up after 2 failures" in live["database"]["detail"]
    health = _assert_fast_503(client, "/health", retry_after=False).json()
    assert health["database"]["state"] == "failed"
    _assert_fast_503(client, TERM, retry_after=False)
    time.sleep(3)  # longer than the back-off: nothing restarts it
    assert _jvms_of(root) == []
    assert client.get("/health/live").status_code == 503


@pytest.fixture()
def external(tmp_path: Path) -> Iterator[tuple[EmbeddedServer, dict[str, str]]]:
    """A server the API does not own, reached through NEO4J_URI (an embedded server started apart, on fixed
    ports so that it comes back at the same address), with the mini graph built."""
    env = {"PHENOKG_HOME": str(tmp_path / "external"), "PHENOKG_BOLT_PORT": str(free_port()),
           "PHENOKG_HTTP_PORT": str(free_port())}
    server = EmbeddedServer(GraphSettings(**env))  # type: ignore[arg-type]
    state = server.start(detached=True)
    try:
        graph = connect(GraphSettings(**env))  # type: ignore[arg-type]
        _build(graph)
        graph.close()
        yield server, {"NEO4J_URI": state.bolt_uri, "NEO4J_USER": "root", "NEO4J_PASSWORD": server.password(),
                       "PHENOKG_HOME": str(tmp_path / "api"), "PHENOKG_MIGRATE_ON_START": "false"}
    finally:
        server.stop()
    assert _jvms_of(server.root) == []


def test_external_database_down_answers_503_at_once_and_reconnects(
        external: tuple[EmbeddedServer, dict[str, str]]) -> None:
    server, env = external
    with TestClient(create_app(AppSettings(**env))) as client:  # type: ignore[arg-type]
        client.app.state.cache.check_every = 0.0  # type: ignore[attr-defined]
        before = client.get(TERM)
        assert before.status_code == 200
        state = server.status()
        assert state is not None
        os.kill(state.pid, signal.SIGKILL)
        _wait_for("the JVM to exit", lambda: not pid_alive(state.pid), timeout=10)
        first = client.get("/health")  # finds out (connection refused: no wait either)
        assert first.status_code == 503
        health = _assert_fast_503(client, "/health").json()  # from the memo
        assert health["database"]["state"] == "down"
        for path in (TERM, LEXICAL):
            _assert_fast_503(client, path)
        assert client.get("/health/live").status_code == 200  # not ours to restart
        server.start(detached=True)  # someone brings it back, at the same address
        _wait_for("the API to reconnect", lambda: client.get("/health").status_code == 200, timeout=30)
        after = client.get(TERM)
        assert after.status_code == 200
        assert after.json() == before.json()
