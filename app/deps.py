"""Request dependencies as ``Annotated`` aliases, in one place."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.config import AppSettings
from app.services import Services
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


SettingsDep = Annotated[AppSettings, Depends(get_settings)]
GraphDep = Annotated[Graph, Depends(get_graph)]
CacheDep = Annotated[SnapshotCache, Depends(get_cache)]
SnapshotDep = Annotated[GraphSnapshot, Depends(get_snapshot)]
ServicesDep = Annotated[Services, Depends(get_services)]
