"""The in-memory evidence list of one phenotype: order, one entry per (relation, image), filters, keyset
positions and facet counts (no graph)."""

from __future__ import annotations

from kg.repo.evidence import parse_cursor
from kg.repo.evidence_lists import TermEvidence


def links() -> TermEvidence:
    shows = [["ev-3", "a"], ["ev-1", "b"], ["ev-3", "a"], ["ev-2", "a"]]  # ev-3 twice: two mentions, one image
    rules_out = [["ev-5", "b"], ["ev-4", None]]
    return TermEvidence(shows, rules_out)


def test_order_and_dedup() -> None:
    t = links()
    assert t.ids == ["ev-1", "ev-2", "ev-3", "ev-4", "ev-5"] and len(t) == 5 and t.n_shows == 3
    assert [t.relation(i) for i in range(5)] == ["shows"] * 3 + ["rules_out"] * 2


def test_select_by_relation_and_source() -> None:
    t = links()
    assert list(t.select()) == [0, 1, 2, 3, 4]
    assert list(t.select("rules_out")) == [3, 4]
    assert list(t.select(source="b")) == [0, 4]
    assert list(t.select("shows", "a")) == [1, 2]
    assert list(t.select(source="nope")) == []


def test_keyset_position() -> None:
    t = links()
    everything = t.select()
    assert t.after(everything, "shows", "ev-2") == 2
    assert t.after(everything, "shows", "zzz") == 3  # not an item: still placed, before the rules_out ones
    assert t.after(everything, "rules_out", "ev-5") == 5
    only_b = t.select(source="b")
    assert t.after(only_b, "shows", "ev-1") == 1


def test_facets_count_under_the_other_filter() -> None:
    t = links()
    full = t.facets()
    assert full.relations == {"shows": 3, "rules_out": 2} and full.sources == [("a", 2), ("b", 2)]
    by_source = t.facets(source="b")
    assert by_source.relations == {"shows": 1, "rules_out": 1}
    assert t.facets("rules_out").sources == [("b", 1)]  # an image without a source is counted, not listed


def test_parse_cursor() -> None:
    assert parse_cursor("shows:ev:1") == ("shows", "ev:1")
    assert parse_cursor("rules_out:x") == ("rules_out", "x")
    assert parse_cursor("shows:") is None and parse_cursor("other:x") is None and parse_cursor("x") is None


class FakeGraph:
    """Answers the index's three queries from a dict: term → (shows rows, rules_out rows)."""

    def __init__(self, links: dict[str, tuple[list[list[str]], list[list[str]]]]) -> None:
        self.links, self.evidence, self.reads = links, 1, 0

    def read(self, query: str, **params: str) -> list[dict[str, object]]:
        if "count(e)" in query:
            return [{"n": self.evidence}]
        self.reads += 1
        shows, rules_out = self.links[params["id"]]
        return [{"rows": shows if ":SHOWS]" in query else rules_out}]


def test_cache_reads_again_when_evidence_changes_and_drops_the_oldest() -> None:
    import time

    from kg.repo.evidence_lists import EvidenceIndex

    graph = FakeGraph({"HP:1": ([["a", "s"]], []), "HP:2": ([["b", "s"], ["c", "s"]], [])})
    index = EvidenceIndex(graph, max_links=2)  # type: ignore[arg-type]
    assert index.term("HP:1").ids == ["a"] and graph.reads == 2
    index.term("HP:1")
    assert graph.reads == 2  # cached
    graph.links["HP:1"] = ([["a", "s"], ["d", "s"]], [])
    graph.evidence += 1  # an import added evidence: read again before answering
    assert index.term("HP:1").ids == ["a", "d"] and graph.reads == 4
    index.term("HP:2")  # 2 + 2 entries > 2: HP:1, least recently used, is dropped
    index.term("HP:1")
    assert graph.reads == 8
    index.max_age_s = 0.0  # old: answered from the cache, read again in the background
    graph.links["HP:1"] = ([["e", "s"]], [])
    assert index.term("HP:1").ids == ["a", "d"]
    deadline = time.monotonic() + 5
    while index.term("HP:1").ids != ["e"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert index.term("HP:1").ids == ["e"]
