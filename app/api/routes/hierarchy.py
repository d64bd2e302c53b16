"""Hierarchy walks over the in-memory DAG: parents, children, ancestors, descendants (paged), is-a path, LCA.

Every id may be an alternative or obsolete id (resolved as in ``GET /terms/{id}``; the resolution is echoed
in ``term`` / ``a`` / ``b``).
"""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import APIRouter, Query

from app.api.deps import CacheDep
from app.api.term_refs import TERM_ERRORS, TermIdPath, resolve_or_raise, resolved_ref, term_ref, term_ref_ic
from app.schemas.terms import (
    HPO_ID_PATTERN,
    MAX_OFFSET,
    MAX_PAGE,
    CommonAncestors,
    HierarchyPath,
    HierarchyRelation,
    Problem,
    TermList,
)
from kg.analysis.hierarchy import common_ancestors, descendants, is_a_path, sorted_by_depth
from kg.analysis.snapshot import GraphSnapshot
from kg.errors import NotFoundError

router = APIRouter(tags=["hierarchy"])

Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"Page size (at most {MAX_PAGE})")]
TermIdQuery = Annotated[str, Query(pattern=HPO_ID_PATTERN, description="HPO id (alternative/obsolete ids resolve)",
                                   examples=["HP:0002090"])]


class Walks:
    """Per-snapshot memo of sorted related-term lists (descendants of a high term are ~10⁴ ids)."""

    MAX_ENTRIES = 512

    def __init__(self, snapshot: GraphSnapshot) -> None:
        self.snapshot = snapshot
        self._memo: dict[tuple[str, str], list[str]] = {}
        self._lock = threading.Lock()

    def related(self, term_id: str, relation: str) -> list[str]:
        key = (term_id, relation)
        found = self._memo.get(key)
        if found is not None:
            return found
        view = self.snapshot.view
        if relation == "parents":
            found = view.parents(term_id)
        elif relation == "children":
            found = view.children(term_id)
        elif relation == "ancestors":
            found = sorted_by_depth(view, view.ancestors(term_id, include_self=False))
        else:
            found = sorted_by_depth(view, descendants(view, term_id))
        with self._lock:
            if len(self._memo) >= self.MAX_ENTRIES:
                self._memo.clear()
            self._memo[key] = found
        return found


def _walks(cache: CacheDep) -> Walks:
    return cache.derived("api.hierarchy.walks", Walks)


def _page(cache: CacheDep, term_id: str, relation: HierarchyRelation, offset: int, limit: int) -> TermList:
    walks = _walks(cache)
    snapshot = walks.snapshot
    found = resolve_or_raise(snapshot, term_id)
    assert found.current is not None
    items = walks.related(found.current, relation)
    return TermList(term=resolved_ref(snapshot, found), relation=relation, total=len(items), offset=offset,
                    limit=limit, items=[term_ref(snapshot, t) for t in items[offset:offset + limit]])


_PAGED: dict[str, Any] = {"response_model": TermList, "responses": TERM_ERRORS}


@router.get("/terms/{term_id}/parents", summary="Direct parents (IS_A), by id", **_PAGED)
def parents(term_id: TermIdPath, cache: CacheDep, offset: Offset = 0, limit: Limit = 100) -> TermList:
    return _page(cache, term_id, "parents", offset, limit)


@router.get("/terms/{term_id}/children", summary="Direct children, by id", **_PAGED)
def children(term_id: TermIdPath, cache: CacheDep, offset: Offset = 0, limit: Limit = 100) -> TermList:
    return _page(cache, term_id, "children", offset, limit)


@router.get("/terms/{term_id}/ancestors", summary="All ancestors up to HP:0000001, shallow first", **_PAGED)
def ancestors(term_id: TermIdPath, cache: CacheDep, offset: Offset = 0, limit: Limit = 100) -> TermList:
    return _page(cache, term_id, "ancestors", offset, limit)


@router.get("/terms/{term_id}/descendants", summary="All descendants, shallow first", **_PAGED)
def descendants_(term_id: TermIdPath, cache: CacheDep, offset: Offset = 0, limit: Limit = 100) -> TermList:
    return _page(cache, term_id, "descendants", offset, limit)


@router.get("/hierarchy/path", response_model=HierarchyPath, summary="Shortest is-a path between two terms",
            description="Climbs from `a` to the common ancestor that makes the path shortest, then descends to "
                        "`b` (ties: higher IC, deeper, lower id). `a == b` gives a path of length 0.",
            responses={**TERM_ERRORS, 404: {"model": Problem,
                                            "description": "Unknown term, or the terms share no ancestor"}})
def path(a: TermIdQuery, b: TermIdQuery, cache: CacheDep) -> HierarchyPath:
    snapshot = _walks(cache).snapshot
    fa, fb = resolve_or_raise(snapshot, a), resolve_or_raise(snapshot, b)
    assert fa.current is not None and fb.current is not None
    found = is_a_path(snapshot.view, fa.current, fb.current)
    if found is None:
        raise NotFoundError(f"{fa.current} and {fb.current} share no ancestor")
    return HierarchyPath(a=resolved_ref(snapshot, fa), b=resolved_ref(snapshot, fb),
                         via=term_ref_ic(snapshot, found.via), length=found.length, up=found.up, down=found.down,
                         path=[term_ref(snapshot, t) for t in found.terms])


@router.get("/hierarchy/lca", response_model=CommonAncestors, summary="Lowest common ancestor(s) of two terms",
            description="`lowest`: every common ancestor with no common ancestor below it; `most_informative`: "
                        "the common ancestor with the highest IC (Resnik's MICA); `deepest`: the one farthest "
                        "from the root. A term is its own ancestor, so lca(a, a) = a.",
            responses=TERM_ERRORS)
def lca(a: TermIdQuery, b: TermIdQuery, cache: CacheDep) -> CommonAncestors:
    snapshot = _walks(cache).snapshot
    fa, fb = resolve_or_raise(snapshot, a), resolve_or_raise(snapshot, b)
    assert fa.current is not None and fb.current is not None
    found = common_ancestors(snapshot.view, fa.current, fb.current)
    return CommonAncestors(
        a=resolved_ref(snapshot, fa), b=resolved_ref(snapshot, fb),
        lowest=[term_ref_ic(snapshot, t) for t in found.lowest],
        most_informative=term_ref_ic(snapshot, found.most_informative) if found.most_informative else None,
        deepest=term_ref_ic(snapshot, found.deepest) if found.deepest else None,
        common_count=len(found.all),
    )
