"""API settings, read once per app from the environment (tests pass their own)."""

from __future__ import annotations

from pydantic import Field

from kg.config import GraphSettings


class AppSettings(GraphSettings):
    """Everything the service needs: the graph settings plus API options."""

    title: str = Field(default="phenokg", alias="PHENOKG_TITLE")
    cors_origins: list[str] = Field(default_factory=list, alias="PHENOKG_CORS_ORIGINS")
    migrate_on_start: bool = Field(default=True, alias="PHENOKG_MIGRATE_ON_START")
    warm_snapshot: bool = Field(default=True, alias="PHENOKG_WARM_SNAPSHOT",
                                description="Load the in-memory graph view at start-up")
