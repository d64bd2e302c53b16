"""Every request dependency of the API, in one place: ``Annotated`` aliases for what routes read from the app
(settings, graph, snapshot, services, the job manager, image retrieval) and the write-token check."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from app.api.auth import require_write_token
from app.core.config import AppSettings
from app.core.errors import ProblemError
from app.services import Services
from app.services.jobs.manager import JobManager
from app.services.retrieval import RetrievalService
from kg.analysis.snapshot import GraphSnapshot
from kg.repo.snapshots import SnapshotCache
from kg.store.graph import Graph


def get_settings(request: Request) -> AppSettings:
    settings: AppSettings = request.app.state.settings
    return settings


def get_graph(request: Request) -> Graph:
    graph: Graph = request.app.state.graph
    return graph


def get_cache(request: Request) -> SnapshotCache:
    cache: SnapshotCache = request.app.state.cache
    return cache


def get_snapshot(request: Request) -> GraphSnapshot:
    """The in-memory view of the graph, reloaded when the build stamp changes."""
    return get_cache(request).get()


def get_services(request: Request) -> Services:
    """The per-snapshot indexes (search, ranking, similarity, linker, diseases) built in the lifespan."""
    services: Services = request.app.state.services
    return services


def get_jobs(request: Request) -> JobManager:
    """The training-job manager (submits to the local Ray head, syncs job records into the graph)."""
    manager: JobManager = request.app.state.jobs
    return manager


def get_retrieval(request: Request) -> RetrievalService:
    """Image → phenotype retrieval with the active clip model; 503 when it is not running."""
    service: RetrievalService | None = getattr(request.app.state, "retrieval", None)
    if service is None:
        raise ProblemError(503, "Service Unavailable", "image retrieval is not running")
    return service


#: ``dependencies=[WriteAccess]`` on every write endpoint: ``Authorization: Bearer <API token>``.
WriteAccess: Any = Depends(require_write_token)

SettingsDep = Annotated[AppSettings, Depends(get_settings)]
GraphDep = Annotated[Graph, Depends(get_graph)]
CacheDep = Annotated[SnapshotCache, Depends(get_cache)]
SnapshotDep = Annotated[GraphSnapshot, Depends(get_snapshot)]
ServicesDep = Annotated[Services, Depends(get_services)]
JobsDep = Annotated[JobManager, Depends(get_jobs)]
RetrievalDep = Annotated[RetrievalService, Depends(get_retrieval)]
