"""Term lookup by HPO id, also by an alternative or obsolete id (read from the in-memory snapshot).

Decision: an alternative id, or an obsolete id with a replacement, answers **200 with the current term**,
``requested_id`` and ``resolved_from`` ("alt_id" / "replaced_by"), plus a ``Content-Location`` header with
the canonical URL; no redirect, so one round trip and the reason is in the body. An obsolete id with no
replacement answers **410 Gone** (problem+json with ``consider``: the terms HPO suggests instead); an unknown
id 404, a malformed id 422. Ids are accepted as ``HP:0002202``, ``hp:0002202`` or ``HP_0002202``.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from app.api.deps import SnapshotDep
from app.api.term_refs import TERM_ERRORS, TermIdPath, resolve_or_raise, term_ref
from app.schemas.terms import (
    Synonym,
    Term,
)

router = APIRouter(tags=["terms"])

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
