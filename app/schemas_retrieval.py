"""Response models of ``POST /retrieval/image``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class ModelRef(BaseModel):
    id: str = Field(description="Model version id (or the directory name of PHENOKG_CLIP_MODEL)")
    kind: Literal["clip"] = "clip"
    active: bool = Field(description="Whether it is the registry's active clip version")


class PhenotypeHit(BaseModel):
    id: str = Field(examples=["HP:0002090"])
    name: str
    score: float = Field(description="Cosine similarity of the image and the phenotype's prompt")


class DiseaseHitOut(BaseModel):
    id: str
    name: str
    source: str
    score: float = Field(description="Weights of supporting top phenotypes minus those of contradicting ones")
    supported_by: list[str] = Field(description="Top phenotypes in (or below a term of) the typical set")
    contradicted_by: list[str] = Field(description="Top phenotypes in (or below a term of) the excluded set")


class EvidenceHit(BaseModel):
    id: str
    caption: str
    score: float = Field(description="Cosine similarity of the two images' embeddings")
    image_url: str
    phenotypes: list[str] = Field(description="Phenotypes its caption shows")


class RetrievalResponse(BaseModel):
    model: ModelRef | None
    device: str = Field(examples=["cpu", "cuda:0"])
    elapsed_ms: float
    phenotypes: list[PhenotypeHit]
    diseases: list[DiseaseHitOut]
    evidence: list[EvidenceHit]
