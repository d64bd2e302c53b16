"""Pure hierarchy helpers over an :class:`~kg.analysis.ontology.OntologyView`: descendants, paths, common ancestors.

The view's DAG points child → parent (``IS_A``), so "up" is ``successors`` and "down" is ``predecessors``.
Nothing here touches the database; the API calls these on the in-memory snapshot.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import networkx as nx

from kg.analysis.ontology import OntologyView
from kg.analysis.snapshot import TermInfo
from kg.ids import canonical_hpo_id

__all__ = [
    "CommonAncestors",
    "IsAPath",
    "TermResolution",
    "common_ancestors",
    "descendants",
    "is_a_path",
    "resolve_term",
    "sorted_by_depth",
    "upward_distances",
]


def descendants(view: OntologyView, term_id: str) -> set[str]:
    """Every term below ``term_id`` (not itself); empty for an unknown id."""
    if term_id not in view.dag:
        return set()
    found: set[str] = nx.ancestors(view.dag, term_id)  # edges point up, so "ancestors" in networkx are below
    return found


def sorted_by_depth(view: OntologyView, ids: set[str] | frozenset[str]) -> list[str]:
    """``ids`` ordered shallow → deep, then by id: a stable order for paging."""
    return sorted(ids, key=lambda t: (view.depth.get(t, 0), t))


def upward_distances(view: OntologyView, term_id: str) -> tuple[dict[str, int], dict[str, str]]:
    """Breadth-first walk up from ``term_id``: IS_A steps to each ancestor (itself at 0), and the child
    through which each ancestor was first reached (for rebuilding one shortest chain)."""
    dist = {term_id: 0}
    via: dict[str, str] = {}
    queue = deque([term_id])
    while queue:
        node = queue.popleft()
        for parent in sorted(view.dag.successors(node)):
            if parent not in dist:
                dist[parent] = dist[node] + 1
                via[parent] = node
                queue.append(parent)
    return dist, via


@dataclass(frozen=True)
class CommonAncestors:
    """Common ancestors of two terms (each term counts as its own ancestor)."""

    all: frozenset[str]
    lowest: list[str]  # common ancestors none of whose descendants is also a common ancestor
    most_informative: str | None  # highest IC (Resnik's MICA); ties → deeper, then lower id
    deepest: str | None  # greatest depth; ties → higher IC, then lower id


def _ic(view: OntologyView, t: str) -> float:
    return view.ic.get(t, 0.0)


def common_ancestors(view: OntologyView, a: str, b: str) -> CommonAncestors:
    shared = view.ancestors(a) & view.ancestors(b)
    # c is "lowest" unless some other shared term lies strictly below it
    covered: set[str] = set()
    for t in shared:
        covered |= view.ancestors(t, include_self=False)
    lowest = sorted_by_depth(view, shared - covered)
    mica = max(shared, key=lambda t: (_ic(view, t), view.depth.get(t, 0), _neg(t)), default=None)
    deepest = max(shared, key=lambda t: (view.depth.get(t, 0), _ic(view, t), _neg(t)), default=None)
    return CommonAncestors(all=frozenset(shared), lowest=lowest, most_informative=mica, deepest=deepest)


def _neg(term_id: str) -> tuple[int, ...]:
    """Sort key that makes ``max`` prefer the lexicographically lowest id on ties."""
    return tuple(-ord(c) for c in term_id)


@dataclass(frozen=True)
class IsAPath:
    """``a`` up to ``via`` and down to ``b``: ``terms[0] == a``, ``terms[-1] == b``, ``via`` in ``terms``."""

    terms: list[str]
    via: str
    up: int  # IS_A steps from a to via
    down: int  # IS_A steps from via down to b

    @property
    def length(self) -> int:
        return self.up + self.down


def is_a_path(view: OntologyView, a: str, b: str) -> IsAPath | None:
    """A shortest path between ``a`` and ``b`` that climbs from ``a`` to a common ancestor and descends to
    ``b`` (the usual "is-a path" of ontology distance measures); None when they share no ancestor.

    Among common ancestors with the same total length, the one with the highest IC wins, then the deeper,
    then the lower id, so the answer is deterministic.
    """
    if a not in view.dag or b not in view.dag:
        return None
    dist_a, via_a = upward_distances(view, a)
    dist_b, via_b = upward_distances(view, b)
    shared = dist_a.keys() & dist_b.keys()
    if not shared:
        return None
    top = min(shared, key=lambda t: (dist_a[t] + dist_b[t], -_ic(view, t), -view.depth.get(t, 0), t))
    up = _chain(top, a, via_a)  # a … top
    down = _chain(top, b, via_b)  # b … top
    terms = up + list(reversed(down[:-1]))
    return IsAPath(terms=terms, via=top, up=dist_a[top], down=dist_b[top])


def _chain(top: str, start: str, via: dict[str, str]) -> list[str]:
    """start, …, top following the BFS back-pointers."""
    chain = [top]
    node = top
    while node != start:
        node = via[node]
        chain.append(node)
    chain.reverse()
    return chain


# ---- id resolution ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TermResolution:
    """What an id in a request stands for.

    ``current`` is the live term (None when unknown or obsolete without a usable replacement);
    ``resolved_from`` is "alt_id" or "replaced_by" when ``current`` differs from the id asked for;
    ``obsolete`` is True for a known obsolete id with no replacement (HPO's ``consider`` ids apply).
    """

    requested: str
    id: str  # the requested id in canonical form (HP:nnnnnnn)
    current: str | None
    resolved_from: Literal["alt_id", "replaced_by"] | None
    obsolete: bool


def resolve_term(view: OntologyView, raw: str, terms: Mapping[str, TermInfo]) -> TermResolution:
    """Resolve ``raw`` against the live DAG, alternative ids and replacement chains; ``terms`` holds every
    term the graph has, obsolete ones included (``GraphSnapshot.terms``)."""
    tid = canonical_hpo_id(raw)
    if tid in view.names:
        return TermResolution(raw, tid, tid, None, False)
    info = terms.get(tid)
    is_obsolete = (info is not None and info.obsolete) or tid in view.obsolete_without_replacement
    target = view.redirects.get(tid)
    if target is not None and target in view.names:
        return TermResolution(raw, tid, target, "replaced_by" if is_obsolete else "alt_id", False)
    # obsolete without a (live) replacement, a dangling redirect, or a non-live node the graph still holds
    if is_obsolete or target is not None or info is not None:
        return TermResolution(raw, tid, None, None, True)
    return TermResolution(raw, tid, None, None, False)
