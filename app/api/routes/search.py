"""Phenotype search by words, ids or meaning: ``GET /search?q=&mode=lexical|semantic|hybrid``.

Served by :class:`app.services.search.SearchService`: the lexical index is built from the snapshot once per
graph build (~1 s for the full HPO); the phenotype vectors (computed at build time by ``phenokg kg embed``) are
loaded from the graph once per build / embedding stamp; the query encoder is loaded once per process, on first
use (or at start-up), on the GPU when there is one. The encoder must be the one that made the stored vectors
(same fingerprint): ``$PHENOKG_TEXT_ENCODER`` if set, else the directory the graph records, else the packaged
all-MiniLM-L6-v2. Without usable vectors, semantic and hybrid requests answer lexically and say so in
``warnings``.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import ServicesDep
from app.schemas.search import SearchHit, SearchMode, SearchResponse
from app.services.search import SemanticState
from kg.analysis.search import Hit

log = logging.getLogger(__name__)
router = APIRouter(tags=["search"])

MAX_QUERY_CHARS = 500
MAX_LIMIT = 100


def to_hit(hit: Hit) -> SearchHit:
    return SearchHit(id=hit.id, name=hit.name, score=min(max(hit.score, 0.0), 1.0), field=hit.field,
                     matched=hit.matched, source=hit.source, obsolete=hit.obsolete, lexical=hit.lexical,
                     semantic=hit.semantic)


# ---------------------------------------------------------------------------------------------- route


@router.get(
    "/search", response_model=SearchResponse, summary="Search phenotypes by words, id or meaning",
    description="Exact id / alternative id / replaced id and exact (normalised) name or synonym matches rank "
                "first; then `lexical` token overlap with type-ahead prefixes (\"pneu\"), `semantic` nearest "
                "names/synonyms by meaning (vectors computed at build time), or `hybrid`, their calibrated "
                "fusion (default). Every hit says which field matched and the matched text. A query of only "
                "spaces gives no hits. Without phenotype vectors, semantic and hybrid answer lexically and "
                "say so in `warnings`.",
)
def search(
    services: ServicesDep,
    q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS, description="Words, an HPO id, or a phrase",
                            examples=["enlarged heart"])],
    mode: Annotated[SearchMode, Query(description="lexical, semantic or hybrid")] = SearchMode.hybrid,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Number of hits")] = 10,
    include_obsolete: Annotated[bool, Query(description="Also return obsolete terms (lexical matches)")] = False,
) -> SearchResponse:
    service = services.search
    query = q.strip()
    if not query:
        return SearchResponse(query=q, mode=mode, semantic=False, hits=[])
    warnings: list[str] = []
    if mode is SearchMode.lexical:
        searcher, state = service.searcher(semantic=False)
        hits = searcher.lexical(q, limit=limit, include_obsolete=include_obsolete)
        return SearchResponse(query=q, mode=mode, semantic=False, hits=[to_hit(h) for h in hits])
    from kg.analysis.normalize import prepare_mention

    searcher, state = service.searcher(semantic=True)
    index = searcher.semantic_index
    vector = None
    if index is not None:
        try:
            vector = service.query_vectors([prepare_mention(query) or query], index)[0]
        except RuntimeError as exc:
            state = SemanticState(available=False, reason=str(exc))
    if state.reason:
        warnings.append(state.reason)
    if vector is None:
        warnings.append(f"{mode.value} search fell back to lexical matching")
        hits = searcher.lexical(q, limit=limit, include_obsolete=include_obsolete)
        return SearchResponse(query=q, mode=mode, semantic=False, warnings=warnings, hits=[to_hit(h) for h in hits])
    if mode is SearchMode.semantic:
        hits = searcher.semantic(query, vector, limit=limit)
    else:
        hits = searcher.hybrid(q, vector, limit=limit, include_obsolete=include_obsolete)
    return SearchResponse(query=q, mode=mode, semantic=True, encoder=state.encoder, warnings=warnings,
                          hits=[to_hit(h) for h in hits])
