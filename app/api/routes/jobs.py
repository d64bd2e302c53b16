"""Training jobs over HTTP: submit (token), list, get, cancel (token). They run on Ray (:mod:`app.services.jobs`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError as PydanticValidationError

from app.api.auth import AUTH_ERRORS
from app.api.deps import GraphDep, JobsDep, WriteAccess
from app.core.errors import ProblemError
from app.schemas.jobs import ID_PATTERN, JobKind, JobList, JobOut, JobRequest, JobStatus
from app.schemas.terms import Problem, ValidationProblem
from app.services.jobs.configs import validate_config
from app.services.jobs.manager import JobConflictError
from kg.repo import jobs as J

router = APIRouter(tags=["jobs"])

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
             description="Validates the config against the training config of the kind, exports the training "
                         "data from the graph and queues the job; it then runs on Ray, never in the API. Poll "
                         "`GET /jobs/{id}` for status, progress and metrics.")
def submit_job(body: JobRequest, manager: JobsDep, response: Response) -> JobOut:
    try:
        config = validate_config(body.kind, body.config)
    except PydanticValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", "config", *e["loc"])} for e in exc.errors()]) from exc
    job = manager.submit(config)
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
