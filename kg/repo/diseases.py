"""Disease reads for the API: the full typical / excluded sets with every edge property, from the graph.

Hot list-and-search paths (``/diseases?q=``, ``/terms/{id}/diseases``) read the in-memory snapshot; a
single disease's detail (onsets, evidence codes, references) reads the graph, which is the source of truth.
The Cypher text lives here as named constants (every value a parameter), beside the one function using it.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, LiteralString

from kg.analysis.snapshot import GraphSnapshot
from kg.store.graph import Graph
from kg.tokens import normalise_token

ASPECTS: Final = ("P", "I", "C", "M", "H")

DISEASE_BY_ID: Final[LiteralString] = "MATCH (d:Disease {id: $id}) RETURN d {.*} AS disease"
# One collected row: per-record driver overhead dominates for a few hundred small rows.
DISEASE_ANNOTATIONS: Final[LiteralString] = """
MATCH (d:Disease {id: $id})-[e:HAS_PHENOTYPE|EXCLUDES]->(p:Phenotype)
WHERE $all_aspects OR e.aspect IN $aspects
RETURN collect([type(e), p.id, p.name, e.aspect, e.frequency, e.frequencies, e.onsets, e.sexes, e.modifiers,
                e.evidence, e.references, e.source_rows, e.rationale]) AS rows
"""


@dataclass(frozen=True)
class DiseaseAnnotation:
    relation: str  # HAS_PHENOTYPE (typical) or EXCLUDES
    phenotype: str
    name: str | None
    aspect: str | None
    frequency: float | None
    frequencies: tuple[str, ...]
    onsets: tuple[str, ...]
    sexes: tuple[str, ...]
    modifiers: tuple[str, ...]
    evidence: tuple[str, ...]
    references: tuple[str, ...]
    source_rows: int | None
    rationale: str | None


@dataclass(frozen=True)
class DiseaseDetail:
    id: str
    name: str
    source: str
    properties: dict[str, Any]
    typical: list[DiseaseAnnotation] = field(default_factory=list)
    excluded: list[DiseaseAnnotation] = field(default_factory=list)


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in (value or ()))


def disease_detail(graph: Graph, disease_id: str, aspects: Sequence[str] | None) -> DiseaseDetail | None:
    """The disease and its annotations; ``aspects=None`` keeps every aspect. None if there is no such disease."""
    rows = graph.read(DISEASE_BY_ID, id=disease_id)
    if not rows:
        return None
    props = dict(rows[0]["disease"] or {})
    props.pop("content_hash", None)
    annotations = graph.read(DISEASE_ANNOTATIONS, id=disease_id, all_aspects=aspects is None,
                             aspects=list(aspects or ()))
    detail = DiseaseDetail(id=str(props.pop("id", disease_id)), name=str(props.pop("name", "") or ""),
                           source=str(props.pop("source", "") or ""), properties=props)
    for (relation, phenotype, name, aspect, frequency, frequencies, onsets, sexes, modifiers, evidence, references,
         source_rows, rationale) in (annotations[0]["rows"] if annotations else []):
        item = DiseaseAnnotation(relation, phenotype, name, aspect, frequency, _strings(frequencies), _strings(onsets),
                                 _strings(sexes), _strings(modifiers), _strings(evidence), _strings(references),
                                 source_rows, rationale)
        (detail.excluded if relation == "EXCLUDES" else detail.typical).append(item)
    detail.typical.sort(key=lambda a: (-(a.frequency if a.frequency is not None else -1.0), a.phenotype))
    detail.excluded.sort(key=lambda a: a.phenotype)
    return detail


# ---- name search over the snapshot (pure) -------------------------------------------------------------------

_WORD = re.compile(r"[^\W_]+")


def name_tokens(text: str) -> list[str]:
    """Word tokens of a name or query, normalised like the linker does (case, accents, plurals, spelling)."""
    return [normalise_token(w) for w in _WORD.findall(text)]


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.casefold())
    return " ".join(_WORD.findall("".join(c for c in text if not unicodedata.combining(c))))


@dataclass(frozen=True)
class _Named:
    id: str
    name: str
    source: str
    folded: str
    tokens: frozenset[str]


class NameIndex:
    """Case-insensitive, token-based search over disease names: every query token must match a name token
    (the last one as a prefix, for search-as-you-type). Ranked: exact name, name starting with the query,
    more whole-token matches, shorter name, id."""

    def __init__(self, entries: Iterable[tuple[str, str, str]]) -> None:
        self._items: list[_Named] = []
        self._postings: dict[str, set[int]] = {}
        self._by_id: dict[str, int] = {}
        for did, name, source in entries:
            tokens = frozenset(name_tokens(name))
            idx = len(self._items)
            self._items.append(_Named(did, name, source, _fold(name), tokens))
            self._by_id[did.casefold()] = idx
            for tok in tokens:
                self._postings.setdefault(tok, set()).add(idx)
        self._vocabulary = sorted(self._postings)

    def __len__(self) -> int:
        return len(self._items)

    def _prefixed(self, prefix: str) -> set[int]:
        found: set[int] = set()
        start = bisect.bisect_left(self._vocabulary, prefix)
        for tok in self._vocabulary[start:]:
            if not tok.startswith(prefix):
                break
            found |= self._postings[tok]
        return found

    def search(self, query: str, *, source: str | None = None) -> list[tuple[str, str, str]]:
        """(id, name, source) of every matching disease, best first."""
        wanted = source.casefold() if source else None
        hits: set[int] = set()
        exact_id = self._by_id.get(query.strip().casefold())
        tokens = name_tokens(query)
        if tokens:
            candidates: set[int] | None = None
            for i, tok in enumerate(tokens):
                posting = self._prefixed(tok) if i == len(tokens) - 1 else self._postings.get(tok, set())
                candidates = set(posting) if candidates is None else candidates & posting
                if not candidates:
                    break
            hits = candidates or set()
        if exact_id is not None:
            hits.add(exact_id)
        folded_query = _fold(query)
        query_tokens = set(tokens)

        def rank(idx: int) -> tuple[int, int, int, int, int, str]:
            item = self._items[idx]
            return (0 if idx == exact_id else 1,
                    0 if item.folded == folded_query else 1,
                    0 if folded_query and item.folded.startswith(folded_query) else 1,
                    -len(query_tokens & item.tokens),
                    len(item.name), item.id)

        ordered = sorted((i for i in hits if wanted is None or self._items[i].source.casefold() == wanted), key=rank)
        return [(self._items[i].id, self._items[i].name, self._items[i].source) for i in ordered]

    def all(self, *, source: str | None = None) -> list[tuple[str, str, str]]:
        wanted = source.casefold() if source else None
        return sorted(((it.id, it.name, it.source) for it in self._items
                       if wanted is None or it.source.casefold() == wanted), key=lambda r: r[0])


# ---- phenotype → diseases over the snapshot (pure) ----------------------------------------------------------


@dataclass(frozen=True)
class PhenotypeDiseases:
    """Inverse of the snapshot's annotation maps: phenotype → [(disease, frequency)] per relation."""

    typical: dict[str, list[tuple[str, float | None]]]
    excluded: dict[str, list[str]]

    @classmethod
    def from_snapshot(cls, snapshot: GraphSnapshot) -> PhenotypeDiseases:
        typical: dict[str, list[tuple[str, float | None]]] = {}
        for disease, rows in snapshot.typical.items():
            for a in rows:
                typical.setdefault(a.phenotype, []).append((disease, a.frequency))
        excluded: dict[str, list[str]] = {}
        for disease, phenotypes in snapshot.excluded.items():
            for p in phenotypes:
                excluded.setdefault(p, []).append(disease)
        return cls(typical=typical, excluded=excluded)

    def diseases(self, phenotypes: Iterable[str], relation: str) -> dict[str, tuple[float | None, list[str]]]:
        """disease → (highest stated frequency or None, the annotated phenotypes among ``phenotypes``)."""
        out: dict[str, tuple[float | None, list[str]]] = {}
        for p in phenotypes:
            rows: Iterable[tuple[str, float | None]] = (
                self.typical.get(p, ()) if relation == "typical" else ((d, None) for d in self.excluded.get(p, ()))
            )
            for disease, frequency in rows:
                best, via = out.get(disease, (None, []))
                if frequency is not None and (best is None or frequency > best):
                    best = frequency
                out[disease] = (best, [*via, p])
        return out
