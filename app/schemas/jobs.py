"""Request and response models of the training-job and model-registry routes (with OpenAPI examples)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.job_configs import ClipJobConfig, KnowledgeEncoderJobConfig
from models.train.job_spec import JobKind as JobKind  # re-exported for the routes

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"


class KnowledgeEncoderJob(BaseModel):
    """A knowledge-encoder training job (``phenokg train knowledge-encoder``)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"kind": "knowledge-encoder", "config": {"max_steps": 200, "batch_size": 64, "lr": 2e-5}}]})

    kind: Literal["knowledge-encoder"]
    config: KnowledgeEncoderJobConfig = Field(default_factory=lambda: KnowledgeEncoderJobConfig())


class ClipJob(BaseModel):
    """An image–text training job (``phenokg train clip``); ``config.source`` is required."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"kind": "clip", "config": {"source": "pneumoniamnist", "max_steps": 300, "text_trainable_layers": 0,
                                    "captions": "mixed", "image_size": 64}}]})

    kind: Literal["clip"]
    config: ClipJobConfig


JobRequest = Annotated[KnowledgeEncoderJob | ClipJob, Field(discriminator="kind")]
"""A training job: its kind and a flat config (training fields and run options), one schema per kind."""


class ProvenanceOut(BaseModel):
    data_hash: str | None
    hpo_release: str | None
    graph_stamp: str | None
    model_id: str = Field(description="The id the resulting model version gets")


class HistoryRow(BaseModel):
    """One logged row of a run: its step (an integer) and its metrics (numbers: loss, lr, …)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": {"type": "number"}})
    __pydantic_extra__: dict[str, float]

    step: int


class JobOut(BaseModel):
    """One training job: its state, progress, latest metrics and their history, and the model it produced."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "job-20261204-211500-a1b2c3", "kind": "knowledge-encoder", "status": "running", "progress": 0.42,
        "step": 84, "total_steps": 200, "metrics": {"loss": 1.93, "lr": 1.8e-5},
        "history": [{"step": 1, "loss": 3.1}, {"step": 84, "loss": 1.93}], "log_tail": ["phenokg-job: training"],
        "model_version": None, "error": None, "created_at": "2026-12-04T21:15:00+00:00",
        "started_at": "2026-12-04T21:15:03+00:00", "finished_at": None, "config": {"max_steps": 200},
        "ray_job_id": "job-20261204-211500-a1b2c3",
        "provenance": {"data_hash": None, "hpo_release": "2025-05-06", "graph_stamp": "…",
                       "model_id": "knowledge-encoder-20261204-211500-d4e5f6"}}]})

    id: str
    kind: str
    status: JobStatus
    progress: float = Field(ge=0, le=1)
    step: int
    total_steps: int = Field(description="0 until the trainer reports it (then its step count)")
    metrics: dict[str, float] = Field(description="Latest logged metrics (after success: plus the evaluation)")
    history: list[HistoryRow] = Field(description="Logged rows {step, loss, lr, …}, at most 500 (thinned)")
    log_tail: list[str]
    model_version: str | None = Field(description="The registered ModelVersion the job produced")
    error: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    config: dict[str, Any]
    ray_job_id: str | None
    provenance: ProvenanceOut


class JobList(BaseModel):
    items: list[JobOut]


class ModelOut(BaseModel):
    """A registered model version (one active per kind)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "knowledge-encoder-20261204-211500-d4e5f6", "kind": "knowledge-encoder",
        "path": "/data/phenokg/models/knowledge-encoder/knowledge-encoder-20261204-211500-d4e5f6",
        "created_at": "2026-12-04T21:16:00+00:00", "active": False, "activated_at": None,
        "data_hash": "sha256:…", "seed": 0, "code_version": "phenokg 0.1.0", "config": {}, "metrics": {}}]})

    id: str
    kind: str
    path: str
    created_at: str
    active: bool
    activated_at: str | None
    data_hash: str
    seed: int | None
    code_version: str
    config: dict[str, Any]
    metrics: dict[str, Any]


class ModelList(BaseModel):
    items: list[ModelOut]
