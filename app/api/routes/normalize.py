"""Batch normalisation: ``POST /normalize`` maps up to 1,000 free-text mentions to ranked HPO ids.

Each mention gets its top-k live terms with a calibrated score (the estimated probability that the term is
the one meant), the field and text that matched and whether the match was exact, lexical or semantic; see
:mod:`kg.analysis.normalize`. Shares the search state (lexical index, phenotype vectors, query encoder) with
``GET /search`` (:mod:`app.api.routes.search`).
"""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import ServicesDep
from app.schemas.normalize import NormalizedCandidate, NormalizedMention, NormalizeRequest, NormalizeResponse
from app.schemas.terms import Problem
from app.services.search import SemanticState
from kg.analysis.normalize import MAX_MENTIONS, Normalizer, prepare_mention
from kg.errors import NotFoundError

router = APIRouter(tags=["normalize"])

#: Largest request body accepted (1,000 mentions of 1,000 characters, with room for JSON escapes).
MAX_BODY_BYTES = 8 * 1024 * 1024  # enforced while reading by app.api.body_limit



@router.post(
    "/normalize", response_model=NormalizeResponse,
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
