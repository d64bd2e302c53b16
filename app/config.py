"""API settings, read once per app from the environment (tests pass their own)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from kg.config import GraphSettings


class AppSettings(GraphSettings):
    """Everything the service needs: the graph settings plus API options."""

    title: str = Field(default="phenokg", alias="PHENOKG_TITLE")
    cors_origins: list[str] = Field(default_factory=list, alias="PHENOKG_CORS_ORIGINS")
    migrate_on_start: bool = Field(default=True, alias="PHENOKG_MIGRATE_ON_START")
    warm_snapshot: bool = Field(default=True, alias="PHENOKG_WARM_SNAPSHOT",
                                description="Load the in-memory graph view at start-up")
    # Image retrieval (POST /retrieval/image; app.retrieval)
    clip_model: Path | None = Field(default=None, alias="PHENOKG_CLIP_MODEL",
                                    description="CLIP model directory served when no clip version is active")
    retrieval_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1, alias="PHENOKG_RETRIEVAL_MAX_BYTES")
    retrieval_max_pixels: int = Field(default=40_000_000, ge=1, alias="PHENOKG_RETRIEVAL_MAX_PIXELS")
    retrieval_max_batch: int = Field(default=32, ge=1, le=1024, alias="PHENOKG_RETRIEVAL_MAX_BATCH")
    retrieval_batch_wait_ms: float = Field(default=5.0, ge=0, le=1000, alias="PHENOKG_RETRIEVAL_BATCH_WAIT_MS")
    retrieval_study: str = Field(default="chest radiograph", alias="PHENOKG_RETRIEVAL_STUDY",
                                 description="Study words of the phenotype prompts (as in training captions)")
