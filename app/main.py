"""FastAPI application factory; the lifespan owns the graph driver (and an embedded server it starts)."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from app import problems
from app.auth import ensure_token
from app.config import AppSettings
from app.jobs.manager import JobManager
from app.retrieval import RetrievalService
from app.routes import annotate, diseases, explore, health, hierarchy, normalize, ranking, search, similarity, terms
from app.routes import jobs as jobs_routes
from app.routes import models as models_routes
from app.routes import retrieval as retrieval_routes
from kg import __version__
from kg.annotate import LINKER_KEY, linker_from_snapshot
from kg.graph import connect
from kg.migrations import migrate
from kg.snapshot import SnapshotCache

log = logging.getLogger(__name__)


def _warm_indexes(app: FastAPI) -> None:
    """Build the per-snapshot indexes in the background so first requests do not pay for them."""
    cache: SnapshotCache = app.state.cache
    steps = (
        lambda: cache.derived(LINKER_KEY, linker_from_snapshot),
        lambda: ranking.ranking_index(cache),
        lambda: search.warm(app),
        lambda: app.state.retrieval.warm(),  # loads the image–text model when one is active
    )
    for step in steps:
        try:
            step()
        except Exception:  # warming is an optimisation; the request path reports real errors
            log.exception("warming an index failed")


def create_app(settings: AppSettings | None = None) -> FastAPI:
    settings = settings or AppSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        graph = connect(settings)
        if settings.migrate_on_start:
            migrate(graph)
        app.state.graph = graph
        app.state.cache = SnapshotCache(graph)
        app.state.api_token = ensure_token(settings)
        app.state.jobs = JobManager(graph, settings)  # training jobs on Ray, synced into the graph
        app.state.jobs.start()
        app.state.retrieval = RetrievalService(graph, app.state.cache, settings)
        if settings.warm_snapshot:
            app.state.cache.get()  # load the in-memory view now, not on the first request
            threading.Thread(target=_warm_indexes, args=(app,), daemon=True, name="phenokg-warm").start()
        try:
            yield
        finally:
            app.state.jobs.close()
            app.state.retrieval.close()
            graph.close()

    app = FastAPI(
        title=settings.title,
        version=__version__,
        description="Phenotype knowledge graph: HPO terms, disease typical and excluded phenotype sets, "
                    "and image–caption evidence. Uses the Human Phenotype Ontology (https://hpo.jax.org).",
        lifespan=lifespan,
    )
    app.state.settings = settings
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"],
                           allow_headers=["*"])
    problems.install(app)
    for module in (health, terms, hierarchy, diseases, search, annotate, normalize, similarity, ranking,
                   retrieval_routes, jobs_routes, models_routes):
        app.include_router(module.router)
    explore.install(app)  # /explore page, its static files, its read endpoints
    return app
