"""``POST /rank``: diseases ranked for observed and explicitly absent phenotypes (ids, a clinical note, or
both), one row per disease, each with an explanation.

Served from an in-memory :class:`kg.analysis.ranking.RankingIndex` of the current snapshot (sparse disease × term
matrices, rebuilt when the graph's build stamp changes). The score is documented in :mod:`kg.analysis.ranking`;
the request → response steps (the note's mentions, grouping, spans) in :mod:`app.services.differential`.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from app.api.deps import ServicesDep
from app.schemas.ranking import MAX_RANK_TEXT_CHARS, RankRequest, RankResponse
from app.services.differential import differential_response, rank_differential
from kg.analysis.hierarchy import resolve_term

router = APIRouter(tags=["ranking"])


@router.post("/rank", response_model=RankResponse, response_model_exclude_none=True,
             summary="Rank diseases for observed and absent phenotypes, or for a clinical note",
             responses={422: {"description": "Malformed ids, empty or oversized lists, a text over "
                                             f"{MAX_RANK_TEXT_CHARS:,} characters, neither ids nor text, no known "
                                             "present phenotype, or a phenotype both present and absent",
                              "content": {"application/problem+json": {}}}})
def rank(body: RankRequest, services: ServicesDep) -> Response:
    """Every disease (or those of ``sources``) scored from how well it explains the observed phenotypes —
    directly or through the hierarchy, weighted by annotated frequency and normalised for annotation-set size —
    with observed phenotypes it excludes counting hard against it, and absent phenotypes counting for it
    (it excludes them, or shows them in only some patients) or against it (its patients nearly always show
    them). The default ``method=likelihood`` gives each term's likelihood ratio in the explanation;
    ``method=ic`` is the earlier information-content score. Unknown ids are listed and ignored.

    ``text``: a clinical note whose phenotype mentions are linked (negated ones as absent, uncertain ones left
    out), listed in ``query.mentions``, and pointed to by the explanations (``spans``). ``group`` (default):
    an OMIM entry and its Orphanet twin are one row (the OMIM id, the best score, ``equivalent_ids``)."""
    index = services.ranking()
    differential = rank_differential(index, body, services.linker)
    snapshot = services.cache.get()
    response = differential_response(
        differential, body, index, snapshot.view.names,
        lambda raw: resolve_term(snapshot.view, raw, snapshot.terms).obsolete)
    # serialised once here: FastAPI's re-validation of a 20-explanation response model costs more than the ranking
    return Response(response.model_dump_json(exclude_none=True), media_type="application/json")
