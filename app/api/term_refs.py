"""Term ids in routes: the path parameter, its error responses, resolution (alternative and obsolete ids) and the
small term references answers embed. Shared by every route that takes or returns a term."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path

from app.core.errors import ProblemError
from app.schemas.terms import HPO_ID_PATTERN, ObsoleteTermProblem, Problem, ResolvedRef, TermRef, TermRefIC
from kg.analysis.hierarchy import TermResolution, resolve_term
from kg.analysis.snapshot import GraphSnapshot
from kg.errors import NotFoundError

TermIdPath = Annotated[str, Path(
    pattern=HPO_ID_PATTERN, description="HPO id (HP:nnnnnnn); an alternative or obsolete id resolves",
    examples=["HP:0002202"])]

#: Error responses of every route that resolves a term id.
TERM_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No term has this id"},
    410: {"model": ObsoleteTermProblem, "description": "Obsolete id without replacement; see `consider`"},
}


def term_ref(snapshot: GraphSnapshot, term_id: str) -> TermRef:
    info = snapshot.terms.get(term_id)
    return TermRef(id=term_id, name=info.name if info else snapshot.view.names.get(term_id, ""),
                   depth=snapshot.view.depth.get(term_id))


def term_ref_ic(snapshot: GraphSnapshot, term_id: str) -> TermRefIC:
    ref = term_ref(snapshot, term_id)
    return TermRefIC(**ref.model_dump(), ic=snapshot.view.ic.get(term_id))


def resolve_or_raise(snapshot: GraphSnapshot, raw: str) -> TermResolution:
    """The live term for ``raw``; NotFoundError (404) when unknown, ProblemError 410 when obsolete for good."""
    found = resolve_term(snapshot.view, raw, snapshot.terms)
    if found.current is not None:
        return found
    if found.obsolete:
        info = snapshot.terms.get(found.id)
        consider = [term_ref(snapshot, c) for c in (info.consider if info else ())
                    if snapshot.view.resolve(c) is not None]
        name = info.name if info else None
        raise ProblemError(410, "Gone", f"{found.id} is obsolete" + (f" ({name})" if name else "")
                           + " and has no replacement", obsolete_id=found.id, name=name,
                           consider=[c.model_dump() for c in consider])
    raise NotFoundError(f"no term {found.id}")


def resolved_ref(snapshot: GraphSnapshot, found: TermResolution) -> ResolvedRef:
    assert found.current is not None
    ref = term_ref(snapshot, found.current)
    return ResolvedRef(**ref.model_dump(), requested_id=found.requested, resolved_from=found.resolved_from)
