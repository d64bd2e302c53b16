"""Building and updating the graph from small fixture releases, on the real embedded server."""

from __future__ import annotations

from pathlib import Path

import pytest

from kg.ingest.build import build, build_meta, counts, current_release
from kg.repo.snapshots import load_snapshot
from kg.store.graph import Graph
from tests.helpers import FIXTURES as FIXTURES_DIR

pytestmark = pytest.mark.integration
FIXTURES = FIXTURES_DIR


def _build(graph: Graph, obo: Path = FIXTURES / "mini.obo", hpoa: Path = FIXTURES / "mini.hpoa"):  # type: ignore[no-untyped-def]
    return build(graph, obo=obo, hpoa=hpoa, include_pack=False, progress=False)


def test_build_mini_counts_and_properties(empty_graph: Graph) -> None:
    report = _build(empty_graph)
    assert report.counts == {
        "phenotypes": 13, "obsolete_phenotypes": 2, "diseases": 3, "evidence": 0, "is_a": 12,
        "replaced_by": 1, "has_phenotype": 5, "excludes": 3, "shows": 0, "rules_out": 0,
    }
    term = empty_graph.read("MATCH (p:Phenotype {id: 'HP:0001640'}) RETURN p {.*} AS p")[0]["p"]
    assert term["name"] == "Cardiomegaly"
    assert term["synonyms"] == ["Enlarged heart", "Increased heart size"]
    assert term["depth"] == 3 and term["is_leaf"] is True and term["branches"] == ["HP:0000118"]
    assert term["ic"] > 0
    # alternative ids resolve to the current term; obsolete ones redirect through REPLACED_BY
    alt = empty_graph.read("MATCH (p:Phenotype) WHERE $id IN p.alt_ids RETURN p.id AS id", id="HP:0002203")
    assert alt == [{"id": "HP:0002202"}]
    redirect = empty_graph.read(
        "MATCH (:Phenotype {id: 'HP:0000057'})-[:REPLACED_BY]->(p) RETURN p.id AS id")
    assert redirect == [{"id": "HP:0001640"}]
    # repeated disease–phenotype rows are one edge, and the edge counts reconcile with the source
    rows = empty_graph.read("MATCH ()-[e:HAS_PHENOTYPE|EXCLUDES]->() RETURN sum(e.source_rows) AS n")
    assert rows == [{"n": 10}]
    edge = empty_graph.read("MATCH (:Disease {id: 'OMIM:100001'})-[e:HAS_PHENOTYPE]->(:Phenotype {id: 'HP:0002090'}) "
                            "RETURN e {.*} AS e")[0]["e"]
    assert edge["source_rows"] == 2 and edge["frequency"] == 0.75 and edge["references"] == ["PMID:1", "PMID:2"]
    excluded = empty_graph.read("MATCH (d:Disease)-[:EXCLUDES]->(p) RETURN d.id AS d, p.id AS p ORDER BY d, p")
    assert excluded == [{"d": "OMIM:100001", "p": "HP:0001640"}, {"d": "ORPHA:200002", "p": "HP:0002107"},
                        {"d": "ORPHA:200002", "p": "HP:0002202"}]
    inheritance = empty_graph.read("MATCH (:Disease)-[e:HAS_PHENOTYPE]->() WHERE e.aspect = 'I' RETURN count(e) AS n")
    assert inheritance == [{"n": 1}]
    release = current_release(empty_graph)
    assert release is not None and release["version"] == "2099-01-01"
    assert release["license"] == "https://hpo.jax.org/app/license"


def test_rebuild_changes_nothing(empty_graph: Graph) -> None:
    first = _build(empty_graph)
    snapshot = empty_graph.read("MATCH (n) RETURN collect(n {.*}) AS nodes")[0]["nodes"]
    second = _build(empty_graph)
    assert second.counts == first.counts
    assert all(v == {"created": 0, "updated": 0, "deleted": 0} for v in second.changes.values())
    again = empty_graph.read("MATCH (n) RETURN collect(n {.*}) AS nodes")[0]["nodes"]
    key = lambda n: (n.get("id") or n.get("key") or str(n.get("version")))  # noqa: E731
    strip = lambda n: {k: v for k, v in n.items() if k not in ("stamp", "built_at", "loaded_at")}  # noqa: E731
    assert sorted(map(strip, again), key=key) == sorted(map(strip, snapshot), key=key)
    meta = build_meta(empty_graph)
    assert meta is not None and meta["stamp"] == second.stamp != first.stamp


def test_newer_release_updates_in_place(empty_graph: Graph, tmp_path: Path) -> None:
    _build(empty_graph)
    text = (FIXTURES / "mini.obo").read_text(encoding="utf-8")
    text = text.replace("2099-01-01", "2099-06-01")
    text = text.replace("name: Pneumothorax", "name: Pneumothorax (renamed)")
    # Seizure becomes obsolete, replaced by a new term
    text = text.replace("id: HP:0001250\nname: Seizure\n", "id: HP:0001250\nname: obsolete Seizure\n"
                        "is_obsolete: true\nreplaced_by: HP:0033000\n")
    text = text.replace("alt_id: HP:0002279\nis_a: HP:0000707 ! Abnormality of the nervous system\n", "")
    text += ("\n[Term]\nid: HP:0033000\nname: Epileptic event\nalt_id: HP:0002279\n"
             "is_a: HP:0000707 ! Abnormality of the nervous system\n")
    newer = tmp_path / "newer.obo"
    newer.write_text(text, encoding="utf-8")
    report = _build(empty_graph, obo=newer)
    assert report.changes["phenotypes"]["created"] == 1
    assert report.changes["phenotypes"]["updated"] >= 2
    assert report.counts["phenotypes"] == 13 and report.counts["obsolete_phenotypes"] == 3
    names = empty_graph.read("MATCH (p:Phenotype) WHERE p.id IN ['HP:0002107', 'HP:0001250'] "
                             "RETURN p.id AS id, p.name AS name, p.obsolete AS obsolete ORDER BY id")
    assert names == [{"id": "HP:0001250", "name": "obsolete Seizure", "obsolete": True},
                     {"id": "HP:0002107", "name": "Pneumothorax (renamed)", "obsolete": False}]
    # the disease annotation moved to the replacement term, with no duplicate nodes or edges
    moved = empty_graph.read("MATCH (:Disease {id: 'DECIPHER:3'})-[e:HAS_PHENOTYPE]->(p) RETURN p.id AS id, "
                             "e.source_rows AS n")
    assert moved == [{"id": "HP:0033000", "n": 2}]
    assert empty_graph.read("MATCH (p:Phenotype) RETURN count(p) AS n") == [{"n": 16}]
    assert counts(empty_graph)["is_a"] == 12


def test_build_with_genes_stores_each_diseases_genes(empty_graph: Graph) -> None:
    build(empty_graph, obo=FIXTURES / "mini.obo", hpoa=FIXTURES / "mini.hpoa", genes=FIXTURES / "mini_genes.txt",
          include_pack=False, progress=False)
    rows = empty_graph.read("MATCH (d:Disease) RETURN d.id AS id, d.genes AS genes ORDER BY id")
    # a disease of the genes file that the annotations do not have (OMIM:999999) is not created
    assert rows == [{"id": "DECIPHER:3", "genes": None}, {"id": "OMIM:100001", "genes": ["LUNGA"]},
                    {"id": "ORPHA:200002", "genes": ["HRTB"]}]
    assert load_snapshot(empty_graph).diseases["OMIM:100001"].genes == ("LUNGA",)
    release = current_release(empty_graph)
    assert release is not None and release["genes_path"].endswith("mini_genes.txt")
    # a rebuild without the genes file takes them away again (the annotations alone carry none)
    _build(empty_graph)
    assert empty_graph.read("MATCH (d:Disease) WHERE d.genes IS NOT NULL RETURN count(d) AS n") == [{"n": 0}]
