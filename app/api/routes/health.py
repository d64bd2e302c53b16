"""Liveness, readiness (including the database) and version."""

from __future__ import annotations

import time

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.api.deps import GraphDep
from app.schemas.health import DatabaseHealth, Health, Release, Version
from kg import __version__
from kg.errors import GraphUnavailableError
from kg.ingest.build import build_meta, current_release

router = APIRouter(tags=["health"])


@router.get("/health/live", response_model=Health, summary="Liveness: the process answers")
def live() -> Health:
    return Health(status="ok")


@router.get("/health", response_model=Health, summary="Readiness, including the graph database",
            responses={503: {"model": Health, "description": "The graph database is not reachable"}})
def health(graph: GraphDep) -> Health | JSONResponse:
    started = time.perf_counter()
    ok = graph.ping()
    db = DatabaseHealth(ok=ok, server=graph.driver.get_server_info().agent if ok else "", dialect=graph.dialect.name,
                        latency_ms=round((time.perf_counter() - started) * 1000, 2) if ok else None)
    body = Health(status="ok" if ok else "unavailable", database=db)
    if not ok:
        return JSONResponse(body.model_dump(), status_code=503)
    return body


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
