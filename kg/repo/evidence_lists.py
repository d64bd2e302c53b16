"""The evidence of one phenotype as an ordered list held in memory, so that pages at any depth, relation and
source filters, totals and per-source counts cost no sort and no count in the graph.

Why (docs/benchmarks/evidence-scale.md, "Evidence queries"): at 520,000 Evidence nodes with 80,000 links on one
phenotype, ArcadeDB took ~2 s for ``ORDER BY … SKIP … LIMIT`` over those links and ~1.7 s for their
``count()`` (a deep page ran its 512 MB heap out of memory), and even an anchored degree count took ~15–20 ms.
Reading the phenotype's ``(evidence id, source)`` pairs once (two anchored, collected queries, a fraction of a
second for 80,000 links) and keeping them per phenotype makes every later page a slice plus one read of its
own 20 items by id.

Freshness: each use first reads the number of Evidence nodes (a count the servers keep: ~2 ms); a list built
under another count is read again before answering, so an import's links show at once (it adds Evidence
nodes). A list older than ``max_age_s`` is read again in the background, so links added to evidence already in
the graph show within about that time.
"""

from __future__ import annotations

import logging
import threading
import time
from array import array
from bisect import bisect_left, bisect_right
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal, LiteralString

from kg.repo.training_views import count_evidence
from kg.store.graph import Graph

log = logging.getLogger(__name__)

Relation = Literal["shows", "rules_out"]
RELATIONS: Final[tuple[Relation, Relation]] = ("shows", "rules_out")  # display order: images that show it first

# Anchored on the phenotype (ArcadeDB plans `(e:Evidence)-[s:SHOWS]->(p {id})` from the Evidence side: seconds).
_LINKS: Final[dict[Relation, LiteralString]] = {
    "shows": "MATCH (p:Phenotype {id: $id})<-[:SHOWS]-(e:Evidence) RETURN collect([e.id, e.source]) AS rows",
    "rules_out": "MATCH (p:Phenotype {id: $id})<-[:RULES_OUT]-(e:Evidence) RETURN collect([e.id, e.source]) AS rows",
}


@dataclass(frozen=True)
class Facets:
    """Counts a filter panel shows: per relation under the source filter, per source under the relation filter."""

    relations: dict[Relation, int]
    sources: list[tuple[str, int]]  # most items first, then by name


class TermEvidence:
    """The images linked to one phenotype, one entry per (relation, evidence id), images that show it first and
    each relation by evidence id. Positions index that order; a filter is a sequence of positions."""

    def __init__(self, shows: Sequence[Sequence[str | None]], rules_out: Sequence[Sequence[str | None]]) -> None:
        names: dict[str | None, int] = {}
        self.ids: list[str] = []
        self.relations = bytearray()
        self.sources = array("I")
        for code, rows in enumerate((shows, rules_out)):
            seen: dict[str, str | None] = {}
            for evidence_id, source in rows:
                if evidence_id is not None:
                    seen.setdefault(str(evidence_id), source)
            for evidence_id in sorted(seen):
                self.ids.append(evidence_id)
                self.relations.append(code)
                self.sources.append(names.setdefault(seen[evidence_id], len(names)))
        self.n_shows = self.relations.count(0)
        self.source_names: list[str | None] = list(names)
        self._index = names
        self._matrix = Counter(zip(self.relations, self.sources, strict=True))
        self._by_source: list[array[int]] = [array("I") for _ in names]  # positions per source, ascending
        for position, code in enumerate(self.sources):
            self._by_source[code].append(position)

    def __len__(self) -> int:
        return len(self.ids)

    def select(self, relation: Relation | None = None, source: str | None = None) -> Sequence[int]:
        """Positions of the entries that pass the filters, in display order (a view: no copy)."""
        if source is None:
            if relation is None:
                return range(len(self.ids))
            return range(0, self.n_shows) if relation == "shows" else range(self.n_shows, len(self.ids))
        code = self._index.get(source)
        if code is None:
            return range(0)
        positions = self._by_source[code]
        if relation is None:
            return positions
        cut = bisect_left(positions, self.n_shows)  # shows come first
        return memoryview(positions)[:cut] if relation == "shows" else memoryview(positions)[cut:]

    def after(self, positions: Sequence[int], relation: Relation, evidence_id: str) -> int:
        """Index into ``positions`` of the first entry after ``(relation, evidence_id)`` in display order (keyset
        paging: the cursor need not be an entry still linked)."""
        code = RELATIONS.index(relation)
        relations, ids = self.relations, self.ids
        return bisect_right(positions, (code, evidence_id), key=lambda i: (relations[i], ids[i]))

    def relation(self, position: int) -> Relation:
        return RELATIONS[self.relations[position]]

    def facets(self, relation: Relation | None = None, source: str | None = None) -> Facets:
        code = self._index.get(source) if source is not None else None
        per_relation: dict[Relation, int] = {r: 0 for r in RELATIONS}
        per_source: Counter[str] = Counter()
        for (rel, src), n in self._matrix.items():
            if source is None or src == code:
                per_relation[RELATIONS[rel]] += n
            name = self.source_names[src]
            if name is not None and (relation is None or RELATIONS[rel] == relation):
                per_source[name] += n
        return Facets(per_relation, sorted(per_source.items(), key=lambda kv: (-kv[1], kv[0])))


@dataclass
class _Entry:
    stamp: int
    built: float
    links: TermEvidence


class EvidenceIndex:
    """Per-process cache of :class:`TermEvidence` by phenotype id: least recently used lists are dropped once
    they hold more than ``max_links`` entries together (~60 bytes each)."""

    def __init__(self, graph: Graph, *, max_links: int = 1_000_000, max_age_s: float = 60.0) -> None:
        self.graph = graph
        self.max_links = max_links
        self.max_age_s = max_age_s
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self._building: dict[str, threading.Lock] = {}

    def stamp(self) -> int:
        return count_evidence(self.graph)

    def term(self, term_id: str) -> TermEvidence:
        """The evidence list of ``term_id``: read from the graph when absent or built under another stamp; one
        older than ``max_age_s`` is still answered while a background thread reads it again."""
        stamp = self.stamp()
        entry = self._current(term_id, stamp)
        if entry is not None:
            if time.monotonic() - entry.built > self.max_age_s:
                self._refresh_in_background(term_id, stamp)
            return entry.links
        with self._building_lock(term_id):  # one read per phenotype at a time; the others wait for it
            entry = self._current(term_id, stamp)
            if entry is None:
                entry = self._read(term_id, stamp)
        return entry.links

    def _read(self, term_id: str, stamp: int) -> _Entry:
        links = TermEvidence(*(self.graph.read(_LINKS[r], id=term_id)[0]["rows"] for r in RELATIONS))
        entry = _Entry(stamp, time.monotonic(), links)
        self._store(term_id, entry)
        return entry

    def _building_lock(self, term_id: str) -> threading.Lock:
        with self._lock:
            return self._building.setdefault(term_id, threading.Lock())

    def _refresh_in_background(self, term_id: str, stamp: int) -> None:
        lock = self._building_lock(term_id)
        if not lock.acquire(blocking=False):
            return  # being read already

        def work() -> None:
            try:
                self._read(term_id, stamp)
            except Exception:  # the next request reads it in the foreground and reports what fails
                log.warning("refreshing the evidence list of %s failed", term_id, exc_info=True)
            finally:
                lock.release()

        threading.Thread(target=work, name=f"evidence-refresh-{term_id}", daemon=True).start()

    def _current(self, term_id: str, stamp: int) -> _Entry | None:
        with self._lock:
            entry = self._entries.get(term_id)
            if entry is None or entry.stamp != stamp:
                return None
            self._entries.move_to_end(term_id)
            return entry

    def _store(self, term_id: str, entry: _Entry) -> None:
        with self._lock:
            old = self._entries.pop(term_id, None)
            if old is not None:
                self._size -= len(old.links)
            self._entries[term_id] = entry
            self._size += len(entry.links)
            while self._size > self.max_links and len(self._entries) > 1:
                _, dropped = self._entries.popitem(last=False)
                self._size -= len(dropped.links)
