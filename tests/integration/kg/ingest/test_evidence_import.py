"""Evidence import against the real embedded graph server: nodes, SHOWS / RULES_OUT links, idempotence."""

from __future__ import annotations

import base64
import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from kg.errors import SourceFormatError
from kg.ingest.build import build
from kg.ingest.evidence import BlobStore, evidence_id, import_evidence, linker_from_graph
from kg.store import queries as Q
from kg.store.graph import Graph
from tests.helpers import FIXTURES

pytestmark = pytest.mark.integration

CAPTION_1 = "Chest radiograph shows pneumonia. No pleural effusion or pneumothorax."
CAPTION_2 = "Possible cardiomegaly."
CAPTION_3 = "Enlarged heart."
PNEUMONIA, EFFUSION, PNEUMOTHORAX, CARDIOMEGALY = "HP:0002090", "HP:0002202", "HP:0002107", "HP:0001640"


def save_png(path: Path, color: int, size: tuple[int, int] = (16, 12)) -> bytes:
    buf = io.BytesIO()
    Image.new("L", size, color).save(buf, "PNG")
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


def mini_obo(tmp_path: Path) -> Path:
    """tests/fixtures/mini.obo, with the ``synonymtypedef`` header line that real hp.obo files carry.

    The fixture uses the synonym type ``layperson`` without declaring it, which pronto refuses; once the
    fixture declares it this is a plain copy.
    """
    text = (FIXTURES / "mini.obo").read_text(encoding="utf-8")
    if "synonymtypedef: layperson" not in text:
        head, sep, rest = text.partition("\nontology: hp\n")
        text = head + sep + 'synonymtypedef: layperson "layperson term"\n' + rest
    path = tmp_path / "mini.obo"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture()
def kg(empty_graph: Graph, tmp_path: Path) -> Graph:
    build(empty_graph, obo=mini_obo(tmp_path), hpoa=FIXTURES / "mini.hpoa", include_pack=False,
          progress=False)
    return empty_graph


@pytest.fixture()
def dataset(tmp_path: Path) -> dict[str, Any]:
    root = tmp_path / "data"
    (root / "img").mkdir(parents=True)
    a = save_png(root / "img" / "a.png", 60)
    b = save_png(root / "img" / "b.png", 200, (20, 10))
    shutil.copyfile(root / "img" / "a.png", root / "img" / "a_copy.png")
    (root / "img" / "notes.png").write_text("this is not an image\n", encoding="utf-8")
    b_uri = (root / "img" / "b.png").resolve().as_uri()
    csv_text = (
        "image,caption,source,licence,view\n"  # 1
        f'img/a.png,"{CAPTION_1}",test,CC BY 4.0,PA\n'  # 2
        f"{b_uri},{CAPTION_2},test,CC BY 4.0,AP\n"  # 3
        f'img/a_copy.png,"{CAPTION_3}",test,CC0,PA\n'  # 4: same bytes as a.png, another caption
        "img/b.png,,test,CC0,AP\n"  # 5: missing caption
        "img/missing.png,Seizure.,test,CC0,PA\n"  # 6: missing file
        "img/notes.png,Pneumonia.,test,CC0,PA\n"  # 7: text file named .png
        f'img/a.png,"{CAPTION_1}",test,CC BY 4.0,PA\n'  # 8: duplicate of line 2
        '"img/b.png","Seizure\n'  # 9: multi-line caption, two lines
        'and an enlarged heart.",test,CC0,AP\n'
        "img/b.png,Possible cardiomegaly.,test,CC0\n"  # 11: same as line 3 but another licence
    )
    csv_path = root / "evidence.csv"
    csv_path.write_text(csv_text, encoding="utf-8")
    return {"root": root, "csv": csv_path, "a": a, "b": b}


def snapshot(graph: Graph) -> dict[str, Any]:
    nodes = graph.read("MATCH (e:Evidence) RETURN e {.*} AS props ORDER BY e.id")
    edges = graph.read(
        "MATCH (e:Evidence)-[s]->(p:Phenotype) "
        "RETURN e.id AS evidence, type(s) AS type, p.id AS phenotype, s {.*} AS props "
        "ORDER BY evidence, type, phenotype, props.start"
    )
    totals = {
        "nodes": graph.read("MATCH (n) RETURN count(n) AS n")[0]["n"],
        "edges": graph.read("MATCH ()-[r]->() RETURN count(r) AS n")[0]["n"],
    }
    return {"nodes": nodes, "edges": edges, "totals": totals}


def links(graph: Graph, ident: str, relation: str) -> list[dict[str, Any]]:
    rows = graph.read(
        "MATCH (e:Evidence {id: $id})-[s]->(p:Phenotype) WHERE type(s) = $type "
        "RETURN p.id AS phenotype, s {.*} AS props ORDER BY s.start", id=ident, type=relation)
    return [{"phenotype": r["phenotype"], **r["props"]} for r in rows]


def test_linker_from_graph_reads_phenotypic_abnormalities(kg: Graph) -> None:
    linker = linker_from_graph(kg)
    text = "Seizures and fluid around lungs; autosomal dominant inheritance"
    assert [m.id for m in linker.annotate(text)] == ["HP:0001250", EFFUSION]


def test_import_links_reports_and_is_idempotent(kg: Graph, dataset: dict[str, Any], tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    linker = linker_from_graph(kg)
    csv_path: Path = dataset["csv"]
    report = import_evidence(kg, csv_path, linker, store, progress=False)

    assert [(e.line, e.message) for e in report.errors] == [
        (5, "missing caption"),
        (6, "image file not found: img/missing.png"),
        (7, "not an image file (Pillow cannot identify it)"),
        (11, "same image, caption and source as line 3 but another license ('CC0')"),
    ]
    assert str(report.errors[1]) == f"{csv_path}:6: image file not found: img/missing.png"
    assert (report.rows, report.created, report.unchanged, report.duplicates) == (9, 4, 0, 1)
    assert (report.links_shows, report.links_rules_out, report.images_stored) == (5, 2, 2)
    json.dumps({k: v for k, v in vars(report).items() if k != "errors"})  # what the CLI prints

    # Evidence nodes: hash + URI, image metadata, extra columns as JSON; no bytes anywhere.
    sha_a = store.put(dataset["a"])
    sha_b = store.put(dataset["b"])
    id1 = evidence_id(sha_a, CAPTION_1, "test")
    id2 = evidence_id(sha_b, CAPTION_2, "test")
    id3 = evidence_id(sha_a, CAPTION_3, "test")
    id4 = evidence_id(sha_b, "Seizure\nand an enlarged heart.", "test")
    nodes = {r["props"]["id"]: r["props"] for r in kg.read("MATCH (e:Evidence) RETURN e {.*} AS props")}
    assert set(nodes) == {id1, id2, id3, id4}
    one = nodes[id1]
    assert {k: one[k] for k in ("caption", "source", "license", "sha256", "width", "height", "image_format",
                                "image_mode")} == {
        "caption": CAPTION_1, "source": "test", "license": "CC BY 4.0", "sha256": sha_a, "width": 16,
        "height": 12, "image_format": "PNG", "image_mode": "L"}
    assert one["image_uri"] == (dataset["root"] / "img" / "a.png").resolve().as_uri()
    assert json.loads(one["extra"]) == {"view": "PA"}
    assert nodes[id2]["image_uri"] == (dataset["root"] / "img" / "b.png").resolve().as_uri()
    assert nodes[id3]["sha256"] == sha_a and nodes[id3]["license"] == "CC0"
    assert kg.read("MATCH (e:Evidence {sha256: $sha}) RETURN count(e) AS n", sha=sha_a)[0]["n"] == 2

    # The same bytes (a.png, a_copy.png) are stored once; two blobs in all.
    blobs = sorted(p.name for p in (tmp_path / "blobs").rglob("*") if p.is_file())
    assert blobs == sorted([sha_a, sha_b])
    assert store.get(sha_a) == dataset["a"]

    # SHOWS for asserted mentions, RULES_OUT for negated ones; hedged mentions flagged uncertain.
    assert links(kg, id1, "SHOWS") == [{"phenotype": PNEUMONIA, "matched": "Pneumonia", "field": "name",
                                        "start": 23, "end": 32, "uncertain": False}]
    ruled_out = links(kg, id1, "RULES_OUT")
    assert [(x["phenotype"], x["matched"], CAPTION_1[x["start"]:x["end"]], x["uncertain"])
            for x in ruled_out] == [(EFFUSION, "Pleural effusion", "pleural effusion", False),
            (PNEUMOTHORAX, "Pneumothorax", "pneumothorax", False)]
    assert links(kg, id2, "SHOWS") == [{"phenotype": CARDIOMEGALY, "matched": "Cardiomegaly", "field": "name",
                                        "start": 9, "end": 21, "uncertain": True}]
    assert links(kg, id2, "RULES_OUT") == []
    assert [(x["phenotype"], x["field"], x["uncertain"]) for x in links(kg, id3, "SHOWS")] == [
        (CARDIOMEGALY, "synonym", False)]
    assert [x["phenotype"] for x in links(kg, id4, "SHOWS")] == ["HP:0001250", CARDIOMEGALY]

    # Nothing in the graph looks like image bytes.
    encoded = {base64.b64encode(dataset["a"]).decode(), base64.b64encode(dataset["b"]).decode()}
    for row in kg.read("MATCH (n) RETURN n {.*} AS props"):
        for value in row["props"].values():
            assert not isinstance(value, bytes | bytearray)
            if isinstance(value, str):
                assert len(value) < 2000 and value not in encoded
            if isinstance(value, list):
                assert all(not isinstance(v, int) or isinstance(v, bool) for v in value)

    # Re-import: nothing new, nothing changed (counts and every property map).
    before = snapshot(kg)
    again = import_evidence(kg, csv_path, linker, store, progress=False)
    assert (again.created, again.unchanged, again.duplicates, again.links_shows, again.links_rules_out,
            again.images_stored) == (0, 4, 1, 0, 0, 0)
    assert [e.line for e in again.errors] == [5, 6, 7, 11]
    assert snapshot(kg) == before
    assert sorted(p.name for p in (tmp_path / "blobs").rglob("*") if p.is_file()) == blobs


def test_same_image_from_another_file_and_interrupted_import(kg: Graph, dataset: dict[str, Any],
                                                             tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    linker = linker_from_graph(kg)
    import_evidence(kg, dataset["csv"], linker, store, progress=False)
    jsonl = dataset["root"] / "more.jsonl"
    jsonl.write_text(
        json.dumps({"image_path": "img/a.png", "caption": "No pneumonia.", "source": "other",
                    "license": "CC0"}) + "\n[1, 2]\n", encoding="utf-8")
    report = import_evidence(kg, jsonl, linker, store, progress=False)
    assert (report.created, report.images_stored, report.links_rules_out) == (1, 0, 1)
    assert [(e.line, e.message) for e in report.errors] == [(2, "expected a JSON object, got list")]
    assert kg.read(Q.COUNT_NODES["evidence"])[0]["n"] == 5

    # An import that stopped after writing its nodes is completed by running it again.
    before = snapshot(kg)
    kg.write("MATCH (:Evidence)-[s:SHOWS]->() DELETE s")
    redo = import_evidence(kg, dataset["csv"], linker, store, progress=False)
    assert (redo.created, redo.links_shows, redo.links_rules_out) == (0, 5, 0)
    assert snapshot(kg) == before


def test_undecodable_file_writes_nothing(kg: Graph, tmp_path: Path) -> None:
    path = tmp_path / "evidence.csv"
    path.write_bytes("image,caption,source,license\na.png,x,s,l\n".encode("utf-16-le"))
    with pytest.raises(SourceFormatError, match=r"evidence\.csv:1: not UTF-8"):
        import_evidence(kg, path, linker_from_graph(kg), BlobStore(tmp_path / "blobs"), progress=False)
    assert kg.read(Q.COUNT_NODES["evidence"])[0]["n"] == 0
