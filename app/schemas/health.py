"""Response models shared by the routers."""

from __future__ import annotations

from pydantic import BaseModel, Field


class DatabaseHealth(BaseModel):
    ok: bool
    server: str = Field(description="Bolt agent string of the graph server")
    dialect: str = Field(description="arcadedb (embedded default) or neo4j")
    latency_ms: float | None = None
    state: str = Field(default="up", description="up; down (a connection failed, requests answer 503 at once for a "
                                                  "moment, then one probes); restarting (the embedded server died and "
                                                  "is being restarted); failed (it could not be brought back); stopped")
    restarts: int = Field(default=0, description="restarts of the embedded server that brought it back")
    detail: str | None = Field(default=None, description="why the database is not up")
    retry_after_s: float | None = Field(default=None, description="seconds until it is expected back")


class Health(BaseModel):
    status: str = Field(examples=["ok"], description="ok, or unavailable when the database is not reachable")
    database: DatabaseHealth | None = None


class Release(BaseModel):
    name: str = Field(examples=["HPO"])
    version: str = Field(examples=["2025-01-16"])
    license: str | None = Field(default=None, examples=["https://hpo.jax.org/app/license"])
    annotations_version: str | None = None
    loaded_at: str | None = None
    source_sha256: str | None = None


class Version(BaseModel):
    service: str = Field(examples=["phenokg 0.1.0"])
    version: str = Field(examples=["0.1.0"])
    hpo: Release | None = Field(default=None, description="The HPO release loaded in the graph (None until built)")
    build: str | None = Field(default=None, description="Build stamp of the graph; changes on every build")
    attribution: str = Field(
        default="This service uses the Human Phenotype Ontology (https://hpo.jax.org). "
                "Find out more at http://www.human-phenotype-ontology.org",
    )
