"""Term lookup by HPO id, also by an alternative or obsolete id (read from the in-memory snapshot).

Decision: an alternative id, or an obsolete id with a replacement, answers **200 with the current term**,
``requested_id`` and ``resolved_from`` ("alt_id" / "replaced_by"), plus a ``Content-Location`` header with
the canonical URL; no redirect, so one round trip and the reason is in the body. An obsolete id with no
replacement answers **410 Gone** (problem+json with ``consider``: the terms HPO suggests instead); an unknown
id 404, a malformed id 422. Ids are accepted as ``HP:0002202``, ``hp:0002202`` or ``HP_0002202``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from app.deps import SnapshotDep
from app.problems import ProblemError
from app.schemas_terms import (
    HPO_ID_PATTERN,
    ObsoleteTermProblem,
    Problem,
    ResolvedRef,
    Synonym,
    Term,
    TermRef,
    TermRefIC,
)
from kg.errors import NotFoundError
from kg.hierarchy import TermResolution, resolve_term
from kg.snapshot import GraphSnapshot

router = APIRouter(tags=["terms"])

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


@router.get("/terms/{term_id}", response_model=Term, summary="Look up an HPO term by id",
            responses={200: {"headers": {"Content-Location": {
                "description": "The canonical URL (/terms/<current id>) when the id asked for is not it",
                "schema": {"type": "string"}}}}, **TERM_ERRORS},
            description="Alternative ids and obsolete ids with a replacement answer 200 with the current term, "
                        "`requested_id` and `resolved_from`, and a `Content-Location` header naming the "
                        "canonical URL. An obsolete id without replacement answers 410 with `consider`.")
def get_term(term_id: TermIdPath, snapshot: SnapshotDep, response: Response) -> Term:
    found = resolve_or_raise(snapshot, term_id)
    current = found.current
    assert current is not None
    info = snapshot.terms[current]
    view = snapshot.view
    scopes = list(info.synonym_scopes) + [None] * max(0, len(info.synonyms) - len(info.synonym_scopes))
    if current != term_id:
        response.headers["Content-Location"] = f"/terms/{current}"
    return Term(
        id=current, name=info.name, definition=info.definition, comment=info.comment,
        synonyms=[Synonym(text=s, scope=scope) for s, scope in zip(info.synonyms, scopes, strict=False)],
        xrefs=list(info.xrefs), alt_ids=list(info.alt_ids),
        parents=[term_ref(snapshot, p) for p in view.parents(current)],
        child_count=len(view.children(current)), is_leaf=view.is_leaf(current),
        depth=info.depth if info.depth is not None else view.depth.get(current),
        ic=info.ic, annotation_count=info.annotation_count,
        requested_id=term_id, resolved_from=found.resolved_from,
    )
