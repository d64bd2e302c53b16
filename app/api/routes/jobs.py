"""Training jobs over HTTP: submit (token), list, get, cancel (token). They run on Ray (:mod:`app.services.jobs`)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from app.api.auth import AUTH_ERRORS
from app.api.deps import GraphDep, JobsDep, WriteAccess
from app.core.errors import ProblemError
from app.schemas.job_configs import unknown_key_message
from app.schemas.jobs import ID_PATTERN, JobKind, JobList, JobOut, JobRequest, JobStatus
from app.schemas.terms import Problem, ValidationProblem
from app.services.jobs.configs import KINDS, job_config
from app.services.jobs.manager import JobConflictError
from kg.repo import jobs as J


def config_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """A job body's validation errors as a user reads them: the kind's tag dropped from the locations
    (``body.config.epochz``, not ``body.knowledge-encoder.config.epochz``), and an unknown key named with the
    valid keys of its kind (pydantic only says "Extra inputs are not permitted")."""
    out = []
    for error in errors:
        loc = list(error.get("loc", ()))
        kind = loc.pop(1) if len(loc) > 1 and loc[0] == "body" and loc[1] in KINDS else None
        if error.get("type") == "extra_forbidden" and len(loc) == 2 and loc[0] == "body":
            error = {**error, "msg": f"unknown key {loc[1]!r}; valid keys: config, kind"}
        elif error.get("type") == "extra_forbidden" and kind is not None and len(loc) == 3 and loc[1] == "config":
            error = {**error, "msg": unknown_key_message(kind, str(loc[2]))}
        out.append({**error, "loc": tuple(loc)})
    return out


class JobRoute(APIRoute):
    """Routes whose request validation errors go through :func:`config_errors` (FastAPI's documented way to
    handle a route's ``RequestValidationError`` itself: a custom ``APIRoute``)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                raise RequestValidationError(config_errors(exc.errors()), body=exc.body) from exc

        return handle


router = APIRouter(tags=["jobs"], route_class=JobRoute)

JobIdPath = Annotated[str, Path(pattern=ID_PATTERN, description="Training job id", examples=["job-20261204-a1b2c3"])]


def job_out(job: J.TrainingJob) -> JobOut:
    return JobOut.model_validate(job.to_dict())


@router.post("/jobs", status_code=202, response_model=JobOut, summary="Submit a training job (runs on Ray)",
             dependencies=[WriteAccess],
             responses={202: {"headers": {"Location": {"schema": {"type": "string"},
                                                       "description": "/jobs/{id}"}}},
                        **AUTH_ERRORS,
                        422: {"model": ValidationProblem,
                              "description": "Unknown config keys, bad values, or no training data in the graph"}},
             description="Validates the config against the training config of the kind (the schema of "
                         "`config` follows `kind`: every key with its default and range; the keys are the "
                         "options of `phenokg train knowledge-encoder` / `phenokg train clip`), exports the "
                         "training data from the graph and queues the job; it then runs on Ray, never in the "
                         "API. Poll `GET /jobs/{id}` for status, progress and metrics.")
def submit_job(body: Annotated[JobRequest, Body()], manager: JobsDep, response: Response) -> JobOut:
    job = manager.submit(job_config(body.kind, body.config))
    response.headers["Location"] = f"/jobs/{job.id}"
    return job_out(job)


@router.get("/jobs", response_model=JobList, summary="Training jobs, newest first")
def list_jobs(graph: GraphDep, status: Annotated[JobStatus | None, Query()] = None,
              kind: Annotated[JobKind | None, Query()] = None) -> JobList:
    return JobList(items=[job_out(j) for j in J.list_jobs(graph, status=status, kind=kind)])


@router.get("/jobs/{job_id}", response_model=JobOut, summary="One training job",
            responses={404: {"model": Problem, "description": "No job has this id"}})
def get_job(job_id: JobIdPath, graph: GraphDep) -> JobOut:
    return job_out(J.get_job(graph, job_id))


@router.post("/jobs/{job_id}/cancel", status_code=202, response_model=JobOut, summary="Cancel a training job",
             dependencies=[WriteAccess],
             responses={**AUTH_ERRORS, 404: {"model": Problem, "description": "No job has this id"},
                        409: {"model": Problem, "description": "The job has already finished"}},
             description="Asks Ray to stop the job (SIGTERM, then SIGKILL) and waits a few seconds for it; "
                         "the answer is the job record, `cancelled` once Ray has stopped it.")
def cancel_job(job_id: JobIdPath, manager: JobsDep) -> JobOut:
    try:
        return job_out(manager.cancel(job_id))
    except JobConflictError as exc:
        raise ProblemError(409, "Conflict", str(exc)) from exc
