"""The model registry over HTTP: list, get, activate (token). One active version per kind."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from app.api.auth import AUTH_ERRORS
from app.api.deps import GraphDep, WriteAccess
from app.schemas.jobs import ID_PATTERN, JobKind, ModelList, ModelOut
from app.schemas.terms import Problem
from kg.repo.registry import activate_model, get_model, list_models

log = logging.getLogger(__name__)

#: How long POST /models/{id}/activate waits for image retrieval to swap to a newly active clip model.
ACTIVATION_WAIT_S = 4.0

router = APIRouter(tags=["models"])

ModelIdPath = Annotated[str, Path(pattern=ID_PATTERN, description="Model version id")]
KindQuery = Annotated[JobKind | None, Query(description="Only versions of this kind (another kind is a 422, as on "
                                                        "GET /jobs)")]


@router.get("/models", response_model=ModelList, summary="Registered model versions, newest first")
def models(graph: GraphDep, kind: KindQuery = None) -> ModelList:
    return ModelList(items=[ModelOut.model_validate(m.to_dict()) for m in list_models(graph, kind)])


@router.get("/models/{model_id}", response_model=ModelOut, summary="One model version",
            responses={404: {"model": Problem, "description": "No model version has this id"}})
def model(model_id: ModelIdPath, graph: GraphDep) -> ModelOut:
    return ModelOut.model_validate(get_model(graph, model_id).to_dict())


@router.post("/models/{model_id}/activate", response_model=ModelOut, summary="Make a model version the active one",
             dependencies=[WriteAccess],
             responses={**AUTH_ERRORS, 404: {"model": Problem, "description": "No model version has this id"}},
             description="Deactivates the other versions of its kind in the same transaction. A knowledge encoder "
                         "is used for search once the phenotypes are re-embedded with it (`phenokg kg embed`). "
                         "A clip model is swapped into image retrieval without a restart: its job stored its "
                         "prompt and evidence embeddings, so loading takes seconds; the answer waits for the swap "
                         f"at most {ACTIVATION_WAIT_S:g} s (the previous model answers until it is done).")
def activate(model_id: ModelIdPath, graph: GraphDep, request: Request) -> ModelOut:
    version = activate_model(graph, model_id)
    retrieval = getattr(request.app.state, "retrieval", None)
    if retrieval is not None and version.kind == "clip" and not retrieval.swap(ACTIVATION_WAIT_S):
        log.info("activated %s: still loading into image retrieval; the current model answers until then",
                 version.id)
    log.info("activated %s (%s)", version.id, version.kind)
    return ModelOut.model_validate(version.to_dict())
