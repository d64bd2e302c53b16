"""Training jobs, graph side: ``(:TrainingJob)`` nodes (no torch, no Ray).

A job is submitted by the API and runs on Ray (:mod:`app.services.jobs`); the graph keeps its whole record, so a restart
of the API or of Ray loses no history::

    (:TrainingJob {id, kind, status, progress, step, total_steps, metrics, history, log_tail, config,
                   ray_job_id, error, created_at, started_at, finished_at, job_dir, model_id,
                   data_hash, hpo_release, graph_stamp})
    (:TrainingJob)-[:PRODUCED]->(:ModelVersion)
    (:TrainingJob)-[:USED_RELEASE]->(:OntologyRelease)

``metrics`` / ``history`` / ``log_tail`` / ``config`` are JSON strings (as in :mod:`kg.repo.registry`). A terminal
record (succeeded, failed, cancelled) is never changed again: :func:`update_job` only writes live jobs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final, LiteralString

from kg.errors import NotFoundError, ValidationError
from kg.store.graph import Graph

__all__ = [
    "LIVE",
    "STATUSES",
    "TERMINAL",
    "TrainingJob",
    "create_job",
    "get_job",
    "link_model",
    "list_jobs",
    "now",
    "update_job",
]

STATUSES: Final = ("queued", "running", "succeeded", "failed", "cancelled")
LIVE: Final = ("queued", "running")
TERMINAL: Final = ("succeeded", "failed", "cancelled")
_ID_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")

_FIELDS: Final = ("status", "progress", "step", "total_steps", "metrics", "history", "log_tail", "ray_job_id",
                  "error", "started_at", "finished_at", "data_hash")

JOB_CREATE: Final[LiteralString] = """
CREATE (j:TrainingJob {id: $id, kind: $kind, status: $status, progress: 0.0, step: 0, total_steps: $total_steps,
                       metrics: '{}', history: '[]', log_tail: '[]', config: $config, ray_job_id: null,
                       error: null, created_at: $created_at, started_at: null, finished_at: null,
                       job_dir: $job_dir, model_id: $model_id, data_hash: $data_hash,
                       hpo_release: $hpo_release, graph_stamp: $graph_stamp})
RETURN j {.*} AS job
"""
JOB_LINK_RELEASE: Final[LiteralString] = """
MATCH (j:TrainingJob {id: $id})
MATCH (m:GraphMeta {key: 'build'})
MATCH (r:OntologyRelease {key: m.release_key})
MERGE (j)-[:USED_RELEASE]->(r)
RETURN r.key AS release
"""
JOB_GET: Final[LiteralString] = """
MATCH (j:TrainingJob {id: $id})
OPTIONAL MATCH (j)-[:PRODUCED]->(m:ModelVersion)
RETURN j {.*} AS job, m.id AS model_version
"""
JOB_LIST: Final[LiteralString] = """
MATCH (j:TrainingJob)
WHERE ($status IS NULL OR j.status = $status) AND ($kind IS NULL OR j.kind = $kind)
OPTIONAL MATCH (j)-[:PRODUCED]->(m:ModelVersion)
RETURN j {.*} AS job, m.id AS model_version
"""
JOB_UPDATE: Final[LiteralString] = """
MATCH (j:TrainingJob {id: $id})
WHERE NOT j.status IN $terminal
SET j.status = $status, j.progress = $progress, j.step = $step, j.total_steps = $total_steps,
    j.metrics = $metrics, j.history = $history, j.log_tail = $log_tail, j.ray_job_id = $ray_job_id,
    j.error = $error, j.started_at = $started_at, j.finished_at = $finished_at, j.data_hash = $data_hash
RETURN j {.*} AS job
"""
JOB_LINK_MODEL: Final[LiteralString] = """
MATCH (j:TrainingJob {id: $id})
MATCH (m:ModelVersion {id: $model_id})
MERGE (j)-[:PRODUCED]->(m)
RETURN m.id AS model_version
"""


def now() -> str:
    """The current UTC time as ISO 8601 (seconds)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def _loads(value: Any, default: Any) -> Any:
    if value is None or value == "":
        return default
    try:
        return json.loads(str(value))
    except json.JSONDecodeError:
        return default


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


@dataclass(frozen=True)
class TrainingJob:
    """One training job. ``metrics`` is the latest logged row, ``history`` every logged row (thinned)."""

    id: str
    kind: str
    status: str = "queued"
    progress: float = 0.0
    step: int = 0
    total_steps: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    log_tail: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    ray_job_id: str | None = None
    error: str | None = None
    created_at: str = ""
    started_at: str | None = None
    finished_at: str | None = None
    job_dir: str = ""
    model_id: str = ""
    """The id the resulting model version gets (chosen at submission)."""
    model_version: str | None = None
    """The registered model version it produced (``PRODUCED``), once it succeeded."""
    data_hash: str | None = None
    hpo_release: str | None = None
    graph_stamp: str | None = None

    @property
    def live(self) -> bool:
        return self.status in LIVE

    def evolve(self, **changes: Any) -> TrainingJob:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The API's Job JSON (plus provenance)."""
        return {"id": self.id, "kind": self.kind, "status": self.status, "progress": self.progress,
                "step": self.step, "total_steps": self.total_steps, "metrics": self.metrics,
                "history": self.history, "log_tail": self.log_tail, "model_version": self.model_version,
                "error": self.error, "created_at": self.created_at, "started_at": self.started_at,
                "finished_at": self.finished_at, "config": self.config, "ray_job_id": self.ray_job_id,
                "provenance": {"data_hash": self.data_hash, "hpo_release": self.hpo_release,
                               "graph_stamp": self.graph_stamp, "model_id": self.model_id}}

    @classmethod
    def from_row(cls, props: dict[str, Any], model_version: str | None = None) -> TrainingJob:
        def opt(key: str) -> str | None:
            value = props.get(key)
            return None if value is None else str(value)

        return cls(
            id=str(props["id"]), kind=str(props.get("kind") or ""), status=str(props.get("status") or "queued"),
            progress=float(props.get("progress") or 0.0), step=int(props.get("step") or 0),
            total_steps=int(props.get("total_steps") or 0), metrics=_loads(props.get("metrics"), {}),
            history=_loads(props.get("history"), []), log_tail=_loads(props.get("log_tail"), []),
            config=_loads(props.get("config"), {}), ray_job_id=opt("ray_job_id"), error=opt("error"),
            created_at=str(props.get("created_at") or ""), started_at=opt("started_at"),
            finished_at=opt("finished_at"), job_dir=str(props.get("job_dir") or ""),
            model_id=str(props.get("model_id") or ""), model_version=model_version,
            data_hash=opt("data_hash"), hpo_release=opt("hpo_release"), graph_stamp=opt("graph_stamp"),
        )


def create_job(graph: Graph, job: TrainingJob) -> TrainingJob:
    """Record a new job (linked to the graph's current ontology release, if any)."""
    if not _ID_RE.match(job.id):
        raise ValidationError(f"invalid job id {job.id!r}")
    if get_job_or_none(graph, job.id) is not None:
        raise ValidationError(f"training job {job.id!r} already exists")
    rows = graph.write(JOB_CREATE, id=job.id, kind=job.kind, status=job.status, total_steps=job.total_steps,
                       config=_dumps(job.config), created_at=job.created_at or now(), job_dir=job.job_dir,
                       model_id=job.model_id, data_hash=job.data_hash, hpo_release=job.hpo_release,
                       graph_stamp=job.graph_stamp)
    graph.write(JOB_LINK_RELEASE, id=job.id)
    return TrainingJob.from_row(rows[0]["job"])


def get_job_or_none(graph: Graph, job_id: str) -> TrainingJob | None:
    rows = graph.read(JOB_GET, id=job_id)
    return TrainingJob.from_row(rows[0]["job"], rows[0]["model_version"]) if rows else None


def get_job(graph: Graph, job_id: str) -> TrainingJob:
    """The job ``job_id``; :class:`kg.errors.NotFoundError` if there is none."""
    job = get_job_or_none(graph, job_id)
    if job is None:
        raise NotFoundError(f"no training job {job_id!r}")
    return job


def list_jobs(graph: Graph, *, status: str | None = None, kind: str | None = None) -> list[TrainingJob]:
    """Jobs (with ``status`` / of ``kind``), newest first."""
    rows = graph.read(JOB_LIST, status=status, kind=kind)
    jobs = [TrainingJob.from_row(r["job"], r["model_version"]) for r in rows]
    return sorted(jobs, key=lambda j: (j.created_at, j.id), reverse=True)


def update_job(graph: Graph, job: TrainingJob) -> TrainingJob | None:
    """Write the mutable fields of a live job; ``None`` when the recorded job is already terminal (or gone)."""
    params: dict[str, Any] = {k: getattr(job, k) for k in _FIELDS}
    for key in ("metrics", "history", "log_tail"):
        params[key] = _dumps(params[key])
    rows = graph.write(JOB_UPDATE, id=job.id, terminal=list(TERMINAL), **params)
    return TrainingJob.from_row(rows[0]["job"], job.model_version) if rows else None


def link_model(graph: Graph, job_id: str, model_id: str) -> None:
    """``(job)-[:PRODUCED]->(model version)``."""
    if not graph.write(JOB_LINK_MODEL, id=job_id, model_id=model_id):
        raise NotFoundError(f"no training job {job_id!r} or model version {model_id!r}")
