"""Reads of image–caption evidence for the API: the evidence of one phenotype (paged by offset or cursor,
filtered by relation and source, with the counts a filter panel shows) and the stored image of one evidence node.

Order, filters and counts come from :class:`kg.repo.evidence_lists.EvidenceIndex` (why: that module); the graph
is then read for the page's own items only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, LiteralString

from kg.repo.evidence_lists import RELATIONS, EvidenceIndex, Facets, Relation
from kg.store.graph import Graph
from kg.store.queries import EVIDENCE_IMAGE

__all__ = ["RELATIONS", "RELATION_TYPES", "EvidenceIndex", "EvidenceLink", "EvidencePage", "Facets", "Relation",
           "evidence_image", "evidence_of_phenotype", "parse_cursor"]

RELATION_TYPES: Final[dict[Relation, str]] = {"shows": "SHOWS", "rules_out": "RULES_OUT"}

# The items of one page, by evidence id and relationship type (each an index lookup plus the evidence's few
# links), collected into one record.
_PAGE_ITEMS: Final[LiteralString] = """
UNWIND $rows AS r
MATCH (e:Evidence {id: r.id})-[s]->(p:Phenotype {id: $term})
WHERE type(s) = r.type
RETURN collect([e.id, e.caption, e.source, e.license, type(s), s.matched, s.uncertain]) AS rows
"""


@dataclass(frozen=True)
class EvidenceLink:
    """One evidence item linked to a phenotype."""

    id: str
    caption: str
    relation: Relation
    matched: str | None
    uncertain: bool | None
    source: str | None
    license: str | None

    @property
    def cursor(self) -> str:
        """Where the page after this item starts (``after=``)."""
        return f"{self.relation}:{self.id}"


@dataclass(frozen=True)
class EvidencePage:
    total: int  # items that pass the filters
    offset: int  # position of the first item among them
    items: list[EvidenceLink]
    facets: Facets
    next: str | None  # the cursor of the following page; None on the last


def parse_cursor(cursor: str) -> tuple[Relation, str] | None:
    """``"shows:ev-1"`` → ``("shows", "ev-1")``; ``None`` when malformed."""
    relation, sep, evidence_id = cursor.partition(":")
    for known in RELATIONS:
        if sep and evidence_id and relation == known:
            return known, evidence_id
    return None


def evidence_of_phenotype(graph: Graph, term_id: str, *, skip: int = 0, limit: int = 20,
                          relation: Relation | None = None, source: str | None = None,
                          after: tuple[Relation, str] | None = None,
                          index: EvidenceIndex | None = None) -> EvidencePage:
    """A page of the evidence linked to ``term_id``: images that show it first, each relation by evidence id.
    ``relation`` and ``source`` (exact) filter; the page starts ``skip`` items after ``after`` (a cursor, see
    :attr:`EvidenceLink.cursor`) or after the start. ``index`` is the caller's cache (a fresh one otherwise)."""
    links = (index or EvidenceIndex(graph)).term(term_id)
    positions = links.select(relation, source)
    start = skip + (links.after(positions, *after) if after else 0)
    chosen = list(positions[start:start + limit]) if limit else []
    wanted = [(links.ids[i], links.relation(i)) for i in chosen]
    items = _read_items(graph, term_id, wanted)
    end = start + len(chosen)
    return EvidencePage(total=len(positions), offset=start, items=items, facets=links.facets(relation, source),
                        next=items[-1].cursor if items and end < len(positions) else None)


def _read_items(graph: Graph, term_id: str, wanted: list[tuple[str, Relation]]) -> list[EvidenceLink]:
    if not wanted:
        return []
    rows = graph.read(_PAGE_ITEMS, term=term_id,
                      rows=[{"id": i, "type": RELATION_TYPES[r]} for i, r in wanted])[0]["rows"]
    found: dict[tuple[str, Relation], EvidenceLink] = {}
    for evidence_id, caption, source, license_, kind, matched, uncertain in rows:
        rel: Relation = "shows" if kind == "SHOWS" else "rules_out"
        found.setdefault((evidence_id, rel), EvidenceLink(
            id=evidence_id, caption=caption or "", matched=matched, uncertain=uncertain, source=source,
            license=license_, relation=rel))
    # in the page's order; an item unlinked since the list was read is left out
    return [found[key] for key in wanted if key in found]


def evidence_image(graph: Graph, evidence_id: str) -> tuple[str, str] | None:
    """``(sha256, image format)`` of an evidence node's stored image; ``None`` when it has none or is unknown."""
    rows = graph.read(EVIDENCE_IMAGE, id=evidence_id)
    if not rows or not rows[0]["sha256"]:
        return None
    return str(rows[0]["sha256"]), str(rows[0]["format"] or "")
