"""API settings, read once per app from the environment (tests pass their own)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from kg.config import GraphSettings


class AppSettings(GraphSettings):
    """Everything the service needs: the graph settings plus API options."""

    title: str = Field(default="phenokg", alias="PHENOKG_TITLE")
    cors_origins: list[str] = Field(default_factory=list, alias="PHENOKG_CORS_ORIGINS")
    migrate_on_start: bool = Field(default=True, alias="PHENOKG_MIGRATE_ON_START")
    warm_snapshot: bool = Field(default=True, alias="PHENOKG_WARM_SNAPSHOT",
                                description="Load the in-memory graph view at start-up")
    # Image retrieval (POST /retrieval/image; app.services.retrieval)
    clip_model: Path | None = Field(default=None, alias="PHENOKG_CLIP_MODEL",
                                    description="CLIP model directory served when no clip version is active")
    retrieval_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1, alias="PHENOKG_RETRIEVAL_MAX_BYTES")
    retrieval_max_pixels: int = Field(default=40_000_000, ge=1, alias="PHENOKG_RETRIEVAL_MAX_PIXELS")
    retrieval_max_batch: int = Field(default=32, ge=1, le=1024, alias="PHENOKG_RETRIEVAL_MAX_BATCH")
    retrieval_batch_wait_ms: float = Field(default=5.0, ge=0, le=1000, alias="PHENOKG_RETRIEVAL_BATCH_WAIT_MS")
    retrieval_study: str = Field(default="chest radiograph", alias="PHENOKG_RETRIEVAL_STUDY",
                                 description="Study words of the phenotype prompts (as in training captions)")
    # Write-endpoint auth (app.api.auth) and training jobs on Ray (app.services.jobs)
    api_token: SecretStr | None = Field(default=None, alias="PHENOKG_API_TOKEN",
                                        description="Bearer token of write endpoints (unset: generated, "
                                                    "kept in PHENOKG_HOME/api-token)")
    ray_address: str | None = Field(default=None, alias="RAY_ADDRESS",
                                    description="Ray cluster for training jobs (unset: a local head)")
    ray_num_cpus: int = Field(default=2, ge=1, alias="PHENOKG_RAY_NUM_CPUS")
    ray_num_gpus: int | None = Field(default=None, ge=0, alias="PHENOKG_RAY_NUM_GPUS")
    ray_client_server: bool = Field(default=False, alias="PHENOKG_RAY_CLIENT_SERVER",
                                    description="Also start the Ray client server of the local head (loopback)")
    jobs_poll_s: float = Field(default=2.0, gt=0, le=60, alias="PHENOKG_JOBS_POLL_S")
    jobs_max_failures: int = Field(default=5, ge=1, alias="PHENOKG_JOBS_MAX_FAILURES",
                                   description="Consecutive failed submissions or status reads that fail a job")
    jobs_max_failure_s: float = Field(default=60.0, gt=0, alias="PHENOKG_JOBS_MAX_FAILURE_S",
                                      description="How long submissions or status reads may keep failing")
    job_python: str | None = Field(default=None, alias="PHENOKG_JOB_PYTHON",
                                   description="Interpreter of job entrypoints (default: the API's own)")
