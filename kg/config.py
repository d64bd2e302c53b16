"""Graph-side settings, read once from the environment (prefix-free names match Neo4j's conventions)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

EMBED_BACKENDS: Final = ("auto", "onnx", "torch")
"""Phenotype-embedding backends (:mod:`models.embeddings`); here so commands can validate one without torch."""


def _default_home() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "phenokg"


class GraphSettings(BaseSettings):
    """Where the graph lives.

    With ``NEO4J_URI`` unset, phenokg runs its embedded Bolt server under ``PHENOKG_HOME``.
    """

    # Fields are read from their aliases only: with populate_by_name the field ``home`` would also be read from
    # the user's ``HOME`` variable (environment names are case-insensitive) and put the data in ``$HOME`` itself.
    model_config = SettingsConfigDict(env_file=None, extra="ignore", populate_by_name=False)

    neo4j_uri: str | None = Field(default=None, alias="NEO4J_URI")
    neo4j_user: str = Field(default="neo4j", alias="NEO4J_USER")
    neo4j_password: str | None = Field(default=None, alias="NEO4J_PASSWORD")
    neo4j_database: str | None = Field(default=None, alias="NEO4J_DATABASE")
    home: Path = Field(default_factory=_default_home, alias="PHENOKG_HOME")
    embedded_bolt_port: int = Field(default=0, alias="PHENOKG_BOLT_PORT", ge=0, le=65535)
    embedded_http_port: int = Field(default=0, alias="PHENOKG_HTTP_PORT", ge=0, le=65535)
    embedded_heap: str = Field(default="512m", alias="PHENOKG_DB_HEAP")
    embedded_start_timeout_s: float = Field(default=60.0, alias="PHENOKG_DB_START_TIMEOUT")
    # Failing fast when the database is down (kg.store.availability) and restarting the embedded one
    # (kg.store.supervisor): a request waits at most about connect_timeout_s on a server that does not answer.
    connect_timeout_s: float = Field(default=3.0, alias="PHENOKG_DB_CONNECT_TIMEOUT", gt=0)
    retry_time_s: float = Field(default=5.0, alias="PHENOKG_DB_RETRY_TIME", ge=0,
                                description="how long a transaction is retried on transient errors")
    down_memo_s: float = Field(default=2.0, alias="PHENOKG_DB_DOWN_MEMO", ge=0,
                               description="after a connection failure, requests fail at once for this long")
    max_restarts: int = Field(default=5, alias="PHENOKG_DB_MAX_RESTARTS", ge=0)
    restart_window_s: float = Field(default=600.0, alias="PHENOKG_DB_RESTART_WINDOW", gt=0)
    restart_backoff_s: float = Field(default=1.0, alias="PHENOKG_DB_RESTART_BACKOFF", ge=0)

    @property
    def embedded(self) -> bool:
        return not self.neo4j_uri

    @property
    def db_dir(self) -> Path:
        return self.home / "db"

    @property
    def blob_dir(self) -> Path:
        return self.home / "blobs"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def onnx_cache_dir(self) -> Path:
        """ONNX exports of text encoders (made on first use, reused while the encoder is unchanged)."""
        return self.home / "cache" / "onnx"
