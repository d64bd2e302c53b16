"""Loading the in-memory snapshot (:class:`kg.analysis.snapshot.GraphSnapshot`) from the graph, and a cache that
reloads it when the graph's build stamp changes.

The graph stays the source of truth. Lookups, hierarchy walks, similarity and ranking read this snapshot
(networkx DAG + plain dicts; numeric matrices are built from it by the modules that need them), which is
loaded with a handful of collected queries (~seconds for the full HPO) and swapped atomically.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from sys import intern
from typing import Any, TypeVar

from kg.analysis.ontology import OntologyView
from kg.analysis.snapshot import Annotation, DiseaseInfo, GraphSnapshot, TermInfo
from kg.store import queries as Q
from kg.store.graph import Graph
from kg.terms import TermRow

__all__ = ["Annotation", "DiseaseInfo", "GraphSnapshot", "SnapshotCache", "TermInfo", "load_snapshot"]

T = TypeVar("T")


def _tuple(value: Any) -> tuple[str, ...]:
    return tuple(value or ())


def load_snapshot(graph: Graph) -> GraphSnapshot:
    started = time.perf_counter()
    stamp_rows = graph.read(Q.BUILD_STAMP)
    stamp = stamp_rows[0]["stamp"] if stamp_rows else None
    parents: dict[str, list[str]] = {}
    for child, parent in graph.read(Q.SNAPSHOT_IS_A)[0]["rows"]:
        parents.setdefault(intern(child), []).append(intern(parent))
    terms: dict[str, TermInfo] = {}
    rows: list[TermRow] = []
    for (tid, name, definition, synonyms, scopes, xrefs, comment, obsolete, alt_ids, replaced_by, consider, ic,
         depth, count) in graph.read(Q.SNAPSHOT_PHENOTYPES)[0]["rows"]:
        tid = intern(tid)
        info = TermInfo(tid, name, definition, _tuple(synonyms), _tuple(scopes), _tuple(xrefs), comment,
                        bool(obsolete), _tuple(alt_ids), replaced_by, _tuple(consider), ic, depth, count)
        terms[tid] = info
        rows.append(TermRow(id=tid, name=name, obsolete=info.obsolete, alt_ids=info.alt_ids,
                            replaced_by=replaced_by, consider=info.consider,
                            parents=tuple(sorted(parents.get(tid, ())))))
    view = OntologyView.from_rows(rows)
    view.ic = {t: float(terms[t].ic or 0.0) for t in view.names}
    view.annotation_count = {t: int(terms[t].annotation_count or 0) for t in view.names}
    diseases = {intern(d): DiseaseInfo(intern(d), name, intern(source), tuple(intern(g) for g in genes or ()))
                for d, name, source, genes in graph.read(Q.SNAPSHOT_DISEASES)[0]["rows"]}
    # ids interned: each of the ~270k annotation rows refers to one shared id string, not a copy of its own
    typical: dict[str, list[Annotation]] = {}
    for disease, phenotype, frequency, aspect in graph.read(Q.SNAPSHOT_TYPICAL)[0]["rows"]:
        typical.setdefault(intern(disease), []).append(Annotation(intern(phenotype), frequency,
                                                                  intern(aspect) if aspect else aspect))
    excluded: dict[str, list[str]] = {}
    for disease, phenotype in graph.read(Q.SNAPSHOT_EXCLUDED)[0]["rows"]:
        excluded.setdefault(intern(disease), []).append(intern(phenotype))
    return GraphSnapshot(stamp=stamp, view=view, terms=terms, diseases=diseases, typical=typical,
                         excluded=excluded, load_seconds=round(time.perf_counter() - started, 3))


class SnapshotCache:
    """Holds the current snapshot; checks the build stamp at most every ``check_every`` seconds.

    ``derived`` callbacks (e.g. a search index, sparse matrices) are rebuilt from each new snapshot and
    cached next to it, so readers always see a consistent pair.
    """

    def __init__(self, graph: Graph, check_every: float = 2.0) -> None:
        self.graph = graph
        self.check_every = check_every
        self._lock = threading.RLock()
        self._snapshot: GraphSnapshot | None = None
        self._derived: dict[str, tuple[GraphSnapshot, Any]] = {}
        self._checked = 0.0

    def get(self) -> GraphSnapshot:
        now = time.monotonic()
        current = self._snapshot
        if current is not None and now - self._checked < self.check_every:
            return current
        with self._lock:
            if self._snapshot is not None and time.monotonic() - self._checked < self.check_every:
                return self._snapshot
            rows = self.graph.read(Q.BUILD_STAMP)
            stamp = rows[0]["stamp"] if rows else None
            if self._snapshot is None or stamp != self._snapshot.stamp:
                self._snapshot = load_snapshot(self.graph)
                self._derived = {}
            self._checked = time.monotonic()
            return self._snapshot

    def derived(self, name: str, factory: Callable[[GraphSnapshot], T], snapshot: GraphSnapshot | None = None) -> T:
        """The object ``factory(snapshot)`` for the current snapshot (or the given one: a factory building on
        another derived object passes its own), built once per snapshot and name."""
        snapshot = snapshot or self.get()
        with self._lock:
            cached = self._derived.get(name)
            if cached is None or cached[0] is not snapshot:
                cached = (snapshot, factory(snapshot))
                if snapshot is self._snapshot:  # an older snapshot's object is handed out, not kept
                    self._derived[name] = cached
            value: T = cached[1]
            return value

    def invalidate(self) -> None:
        """Force a stamp check on the next ``get`` (after a build in this process, say)."""
        self._checked = 0.0
