"""FastAPI application factory; the lifespan owns the graph driver (and an embedded server it starts)."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute

from app.api import docs, problems
from app.api.auth import ensure_token
from app.api.body_limit import BodyLimitMiddleware
from app.api.head_requests import HeadAsGetMiddleware
from app.api.routes import annotate, diseases, explore, health, hierarchy, normalize, ranking, search, similarity, terms
from app.api.routes import jobs as jobs_routes
from app.api.routes import model_versions as models_routes
from app.api.routes import retrieval as retrieval_routes
from app.core.config import AppSettings
from app.core.threads import limit_blas_threads
from app.services import Services
from app.services.jobs.manager import JobManager
from app.services.retrieval import RetrievalService
from app.services.search import SearchService
from kg import __version__
from kg.repo.snapshots import SnapshotCache
from kg.store.graph import Graph, connect
from kg.store.migrations import migrate

log = logging.getLogger(__name__)


def create_app(settings: AppSettings | None = None, graph: Graph | None = None) -> FastAPI:
    """The API. ``graph``: one the caller opened (``phenokg serve``) and closes; by default the lifespan connects,
    starting the embedded server, which is restarted when it dies (see :mod:`kg.store.supervisor`)."""
    settings = settings or AppSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with ExitStack() as cleanup:  # whatever started is stopped, also when a later step of the start fails
            # concurrent requests each run numpy: one BLAS thread per call (app.core.threads)
            cleanup.callback(limit_blas_threads().restore_original_limits)
            app_graph = graph
            if app_graph is None:  # owns an embedded server it started: close() stops it
                app_graph = connect(settings, restart=True)
                cleanup.callback(app_graph.close)
            if settings.migrate_on_start:
                migrate(app_graph)
            cache = SnapshotCache(app_graph)
            app.state.graph, app.state.cache = app_graph, cache
            app.state.api_token = ensure_token(settings)
            app.state.services = Services(cache, SearchService(cache, settings.onnx_cache_dir))
            app.state.retrieval = RetrievalService(app_graph, cache, settings)
            cleanup.callback(app.state.retrieval.close)
            app.state.jobs = JobManager(app_graph, settings)  # training jobs on Ray, synced into the graph
            app.state.jobs.start()
            cleanup.callback(app.state.jobs.close)
            if settings.warm_snapshot:
                cache.get()  # load the in-memory view now, not on the first request
                threading.Thread(target=app.state.services.warm, args=((app.state.retrieval.warm,),), daemon=True,
                                 name="phenokg-warm").start()
            yield

    app = FastAPI(
        title=settings.title,
        version=__version__,
        description="Phenotype knowledge graph: HPO terms, disease typical and excluded phenotype sets, "
                    "and image–caption evidence. Uses the Human Phenotype Ontology (https://hpo.jax.org).",
        lifespan=lifespan,
        docs_url=None, redoc_url=None,  # served offline by app.api.docs
    )
    app.state.settings = settings
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"],
                           allow_headers=["*"])
    problems.install(app)
    routers = [module.router for module in (health, terms, hierarchy, diseases, search, annotate, normalize,
                                            similarity, ranking, retrieval_routes, jobs_routes, models_routes)]
    for router in routers:
        app.include_router(router)
    app.add_middleware(BodyLimitMiddleware, routes=[r for router in routers for r in router.routes
                                                    if isinstance(r, APIRoute)],
                       limits={"/retrieval/image": settings.retrieval_max_bytes + retrieval_routes.MULTIPART_SLACK,
                               "/annotate": annotate.MAX_BODY_BYTES, "/normalize": normalize.MAX_BODY_BYTES})
    app.add_middleware(HeadAsGetMiddleware)
    explore.install(app)  # /explore page, its static files, its read endpoints
    docs.install(app)  # /docs and /redoc with their assets served here (no CDN)
    return app
