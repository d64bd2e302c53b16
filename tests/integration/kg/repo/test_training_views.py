"""Graph → training views (kg.repo.training_views) on the real embedded server, built from the mini fixtures."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from kg.ingest.build import build
from kg.ingest.evidence import BlobStore, import_evidence, linker_from_graph
from kg.repo.training_views import (
    _id_ranges,
    disease_sets,
    evidence_items,
    id_redirects,
    iter_evidence_items,
    phenotype_attributes,
)
from kg.store.graph import Graph
from models.types import DiseaseSets, PhenotypeAttributes
from models.views import split_held_out, to_attributes, to_disease_sets
from tests.helpers import FIXTURES

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def mini(graph: Graph, tmp_path_factory: pytest.TempPathFactory) -> Graph:
    """The mini graph plus two evidence items, built once for the module."""
    graph.write("MATCH (n) DETACH DELETE n")
    build(graph, obo=FIXTURES / "mini.obo", hpoa=FIXTURES / "mini.hpoa", include_pack=False, progress=False)
    root = tmp_path_factory.mktemp("evidence")
    for name, color in (("a.png", 40), ("b.png", 220)):
        buf = io.BytesIO()
        Image.new("L", (12, 10), color).save(buf, "PNG")
        (root / name).write_bytes(buf.getvalue())
    (root / "ev.csv").write_text(
        "image,caption,source,license\n"
        'a.png,"Pneumonia. No pleural effusion or pneumothorax.",test,CC0\n'
        "b.png,Possible cardiomegaly and seizures.,test,CC0\n",
        encoding="utf-8",
    )
    import_evidence(graph, root / "ev.csv", linker_from_graph(graph), BlobStore(root / "blobs"), progress=False)
    return graph


def test_phenotype_attributes_of_the_branch(mini: Graph) -> None:
    views = phenotype_attributes(mini)
    ids = [v["id"] for v in views]
    assert ids == sorted(ids)
    # Phenotypic abnormality and its descendants; no inheritance terms, no obsolete terms, no root
    assert "HP:0000118" in ids and "HP:0001640" in ids
    assert not {"HP:0000001", "HP:0000005", "HP:0000006", "HP:0000057", "HP:0003295"} & set(ids)
    cardio = next(v for v in views if v["id"] == "HP:0001640")
    assert cardio == {
        "id": "HP:0001640", "name": "Cardiomegaly", "definition": "Increased size of the heart.",
        "synonyms": ["Enlarged heart", "Increased heart size"],
        "parents": ["Abnormality of the cardiovascular system"], "parent_ids": ["HP:0001626"],
    }
    top = next(v for v in views if v["id"] == "HP:0000118")
    assert top["parent_ids"] == ["HP:0000001"] and top["parents"] == ["All"]  # a parent outside the branch
    assert len(phenotype_attributes(mini, branch=None)) == 13  # every live term

    attrs = to_attributes(views)
    assert all(isinstance(a, PhenotypeAttributes) for a in attrs)
    a = next(x for x in attrs if x.id == "HP:0001640")
    assert a.synonyms == ("Enlarged heart", "Increased heart size") and a.parent_ids == ("HP:0001626",)


def test_split_held_out_is_seeded_and_disjoint(mini: Graph) -> None:
    attrs = to_attributes(phenotype_attributes(mini))
    train, held = split_held_out(attrs, 0.5, seed=3)
    assert {a.id for a in train}.isdisjoint({a.id for a in held})
    assert len(train) + len(held) == len(attrs)
    # only phenotypes with a definition or synonym can be queried, so only those are held out
    assert held and all(a.definition or a.synonyms for a in held)
    assert split_held_out(attrs, 0.5, seed=3) == (train, held)
    assert split_held_out(attrs, 0.0, seed=3) == (attrs, [])


def test_id_redirects(mini: Graph) -> None:
    redirects = id_redirects(mini)
    assert redirects["HP:0001640"] == "HP:0001640"
    assert redirects["HP:0002203"] == "HP:0002202"  # alternative id
    assert redirects["HP:0002279"] == "HP:0001250"
    assert redirects["HP:0000057"] == "HP:0001640"  # obsolete, replaced_by
    assert "HP:0003295" not in redirects  # obsolete with only `consider`


def test_disease_sets(mini: Graph) -> None:
    views = {v["id"]: v for v in disease_sets(mini)}
    assert sorted(views) == ["DECIPHER:3", "OMIM:100001", "ORPHA:200002"]
    lung = views["OMIM:100001"]
    assert lung["name"] == "Lung disease A" and lung["source"] == "OMIM"
    # the inheritance row (aspect I) is not a typical phenotype; 0/5 makes Cardiomegaly excluded
    # most frequent first: Pneumonia 3/4 before Pleural effusion "Frequent" (HP:0040282, 30-79%)
    assert lung["typical"] == [("HP:0002090", "Pneumonia"), ("HP:0002202", "Pleural effusion")]
    assert lung["excluded"] == [("HP:0001640", "Cardiomegaly")]
    heart = views["ORPHA:200002"]
    assert heart["typical"] == [("HP:0001640", "Cardiomegaly")]
    assert set(heart["excluded"]) == {("HP:0002107", "Pneumothorax"), ("HP:0002202", "Pleural effusion")}

    with_inheritance = {v["id"]: v for v in disease_sets(mini, aspects=None)}
    assert ("HP:0000006", "Autosomal dominant inheritance") in with_inheritance["OMIM:100001"]["typical"]
    assert [v["id"] for v in disease_sets(mini, "ORPHA")] == ["ORPHA:200002"]
    assert [v["id"] for v in disease_sets(mini, ids=["DECIPHER:3", "NOPE:1"])] == ["DECIPHER:3"]
    assert disease_sets(mini, "CXR_PACK") == []

    sets = to_disease_sets([lung])
    assert sets == [DiseaseSets("OMIM:100001", "Lung disease A",
                                (("HP:0002090", "Pneumonia"), ("HP:0002202", "Pleural effusion")),
                                (("HP:0001640", "Cardiomegaly"),))]


def test_evidence_items(mini: Graph, tmp_path: Path) -> None:
    items = evidence_items(mini, blob_root=tmp_path)
    assert len(items) == 2
    by_caption = {i["caption"]: i for i in items}
    first = by_caption["Pneumonia. No pleural effusion or pneumothorax."]
    assert first["shows"] == ["HP:0002090"]
    assert first["rules_out"] == ["HP:0002107", "HP:0002202"]
    assert first["uncertain"] == [] and first["source"] == "test" and first["license"] == "CC0"
    assert len(first["sha256"]) == 64
    assert first["blob_path"] == str(tmp_path / first["sha256"][:2] / first["sha256"][2:4] / first["sha256"])
    second = by_caption["Possible cardiomegaly and seizures."]
    assert "HP:0001640" in second["uncertain"] and "HP:0001640" not in second["shows"]
    assert evidence_items(mini)[0]["blob_path"] is None


def test_evidence_items_read_range_by_range_give_the_same_items(mini: Graph, tmp_path: Path) -> None:
    """Reading by id ranges yields every item once, in id order, with its links; ids made elsewhere too."""
    mini.write("CREATE (:Evidence {id: 'zz-custom', caption: 'Pneumonia.', source: 'test', license: 'CC0'})")
    mini.write("CREATE (:Evidence {id: 'a-custom', caption: 'Seizures.', source: 'other', license: 'CC0'})")
    items = list(iter_evidence_items(mini, blob_root=tmp_path))
    ids = [i["id"] for i in items]
    assert ids == sorted(ids) and len(ids) == 4 and {"zz-custom", "a-custom"} <= set(ids)
    assert items == evidence_items(mini, blob_root=tmp_path)
    assert [i["id"] for i in iter_evidence_items(mini, source="other")] == ["a-custom"]
    assert list(iter_evidence_items(mini, source="nowhere")) == []


def test_id_ranges_cover_every_id_in_order() -> None:
    ranges = _id_ranges(1_000)
    assert len(ranges) == 18 and ranges[0] == (None, "ev:0") and ranges[-1] == ("ev:g", None)
    assert ranges[1] == ("ev:0", "ev:1") and ranges[16] == ("ev:f", "ev:g")
    assert len(_id_ranges(5_000_000)) == 258  # 256 two-digit prefixes past 1.6M items
