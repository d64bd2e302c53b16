"""Liveness, readiness (including the database) and version."""

from __future__ import annotations

import math
import time

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.api.deps import GraphDep
from app.schemas.health import DatabaseHealth, Health, Release, Version
from kg import __version__
from kg.errors import GraphUnavailableError
from kg.ingest.build import build_meta, current_release
from kg.store.availability import DatabaseState
from kg.store.graph import Graph

router = APIRouter(tags=["health"])


@router.get("/health/live", response_model=Health, summary="Liveness: the process answers and its database can be "
                                                           "brought back",
            responses={503: {"model": Health, "description": "The embedded database died and could not be restarted"}})
def live(graph: GraphDep) -> Health | JSONResponse:
    state = graph.availability.state()
    if state.state == "failed":  # the supervisor gave up: only a restart of the service can help
        return JSONResponse(Health(status="failed", database=_database(graph, state)).model_dump(), status_code=503)
    return Health(status="ok")


@router.get("/health", response_model=Health, summary="Readiness, including the graph database",
            responses={503: {"model": Health, "description": "The graph database is not reachable"}})
def health(graph: GraphDep) -> Health | JSONResponse:
    started = time.perf_counter()
    ok = graph.ping()
    latency = round((time.perf_counter() - started) * 1000, 2) if ok else None
    state = graph.availability.state()
    body = Health(status="ok" if ok else "unavailable", database=_database(graph, state, ok, latency))
    if not ok:
        headers = {"Retry-After": str(max(1, math.ceil(state.retry_after)))} if state.retry_after is not None else None
        return JSONResponse(body.model_dump(), status_code=503, headers=headers)
    return body


def _database(graph: Graph, state: DatabaseState, ok: bool = False, latency_ms: float | None = None) -> DatabaseHealth:
    """The database part of a health answer: what the ping saw, and the restart state when it failed."""
    if ok:
        return DatabaseHealth(ok=True, server=graph.server_agent, dialect=graph.dialect.name, latency_ms=latency_ms,
                              restarts=state.restarts)
    return DatabaseHealth(ok=False, server="", dialect=graph.dialect.name, state="down" if state.state == "up"
                          else state.state, restarts=state.restarts, detail=state.detail,
                          retry_after_s=None if state.retry_after is None else round(state.retry_after, 1))


@router.get("/version", response_model=Version, summary="Service version and the loaded HPO release")
def version(graph: GraphDep) -> Version:
    try:
        release = current_release(graph)
        meta = build_meta(graph)
    except GraphUnavailableError:
        release, meta = None, None
    hpo = None
    if release:
        hpo = Release(name=release.get("name", "HPO"), version=release.get("version", ""),
                      license=release.get("license"), annotations_version=release.get("annotations_version"),
                      loaded_at=release.get("loaded_at"), source_sha256=release.get("source_sha256"))
    return Version(service=f"phenokg {__version__}", version=__version__, hpo=hpo,
                   build=meta.get("stamp") if meta else None)
