"""CheXpert-style label CSVs and image + report sets imported into the real embedded graph: SHOWS / RULES_OUT /
uncertain links, bad-row reports, resuming an interrupted import, the two CLI commands.

The images are real chest X-rays (PneumoniaMNIST, ``../shared/data/pneumoniamnist.npz``) written as PNGs at test
time; the graph is the mini fixture ontology plus the HPO terms the chest X-ray pack maps CheXpert findings to.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from app.cli.main import app as cli_app
from app.cli.support import settings
from kg.config import GraphSettings
from kg.ingest.build import build
from kg.ingest.chexpert import import_chexpert
from kg.ingest.evidence import BlobStore, linker_from_graph
from kg.ingest.reports import import_reports
from kg.store.graph import Graph
from tests.helpers import FIXTURES, SHARED

pytestmark = pytest.mark.integration
NPZ = SHARED / "data" / "pneumoniamnist.npz"
CARDIOMEGALY, EFFUSION, PNEUMONIA, PNEUMOTHORAX, EDEMA = (
    "HP:0001640", "HP:0002202", "HP:0002090", "HP:0002107", "HP:0100598")
#: Pack ids the mini fixture lacks (names as in HPO), under Abnormality of the respiratory system.
PACK_TERMS = {
    "HP:0100750": "Atelectasis", "HP:0032177": "Parenchymal consolidation", "HP:0100598": "Pulmonary edema",
    "HP:0034501": "Widened mediastinum", "HP:0033608": "Pulmonary nodule", "HP:0033821": "Pulmonary mass",
    "HP:0031457": "Pulmonary opacity", "HP:0031944": "Pleural thickening", "HP:0020110": "Bone fracture",
    "HP:0041159": "Fractured rib",
}
HEADER = ("Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,Enlarged Cardiomediastinum,Cardiomegaly,Lung Opacity,"
          "Lung Lesion,Edema,Consolidation,Pneumonia,Atelectasis,Pneumothorax,Pleural Effusion,Pleural Other,"
          "Fracture,Support Devices")
FINDINGS = HEADER.split(",")[5:]


def chexpert_line(path: str, **labels: str) -> str:
    return ",".join([path, "Female", "61", "Frontal", "PA",
                     *(labels.get(n.lower().replace(" ", "_"), "") for n in FINDINGS)])


@pytest.fixture()
def xray_graph(empty_graph: Graph, tmp_path: Path) -> Graph:
    text = (FIXTURES / "mini.obo").read_text(encoding="utf-8").rstrip("\n") + "\n"
    for hpo, name in PACK_TERMS.items():
        text += f"\n[Term]\nid: {hpo}\nname: {name}\nis_a: HP:0002086 ! Abnormality of the respiratory system\n"
    obo = tmp_path / "mini_cxr.obo"
    obo.write_text(text, encoding="utf-8")
    build(empty_graph, obo=obo, hpoa=FIXTURES / "mini.hpoa", include_pack=False, progress=False)
    return empty_graph


@pytest.fixture()
def xrays(tmp_path: Path) -> Path:
    """``data/img/0.png`` … ``3.png``: real chest X-rays; ``data/img/bad.png``: not an image."""
    if not NPZ.is_file():
        pytest.skip(f"{NPZ} is not on this machine")
    with np.load(NPZ) as npz:
        images = npz["train_images"][:4]
    root = tmp_path / "data"
    (root / "img").mkdir(parents=True)
    for i, pixels in enumerate(images):
        Image.fromarray(pixels).save(root / "img" / f"{i}.png")
    (root / "img" / "bad.png").write_text("not an image\n", encoding="utf-8")
    return root


def links(graph: Graph) -> set[tuple[str, str, str, bool]]:
    """(image file, relation, phenotype, uncertain) of every evidence link."""
    rows = graph.read("MATCH (e:Evidence)-[s]->(p:Phenotype) "
                      "RETURN e.image_uri AS uri, type(s) AS rel, p.id AS hpo, s.uncertain AS uncertain")
    return {(r["uri"].rsplit("/", 1)[-1], r["rel"], r["hpo"], bool(r["uncertain"])) for r in rows}


def nodes(graph: Graph) -> dict[str, dict[str, Any]]:
    rows = graph.read("MATCH (e:Evidence) RETURN e {.*} AS props")
    return {r["props"]["image_uri"].rsplit("/", 1)[-1]: r["props"] for r in rows}


def counts(report: Any) -> tuple[int, ...]:
    return (report.rows, report.created, report.skipped, report.links_shows, report.links_rules_out)


def test_chexpert_links_bad_rows_and_resume(xray_graph: Graph, xrays: Path, tmp_path: Path) -> None:
    lines = [
        HEADER,  # 1
        chexpert_line("img/0.png", cardiomegaly="1.0", pleural_effusion="1.0", edema="-1.0", pneumothorax="0.0",
                      support_devices="1.0"),  # 2
        chexpert_line("img/1.png", no_finding="1.0", pneumonia="0.0"),  # 3
        chexpert_line("img/2.png", pneumonia="1"),  # 4
        chexpert_line("img/missing.png", edema="1"),  # 5
        chexpert_line("img/bad.png", cardiomegaly="1"),  # 6
        chexpert_line("img/3.png", cardiomegaly="2"),  # 7
    ]
    csv_path = xrays / "train.csv"
    store = BlobStore(tmp_path / "blobs")

    # An interrupted first run: only its first two rows made it.
    csv_path.write_text("\n".join(lines[:3]) + "\n", encoding="utf-8")
    first = import_chexpert(xray_graph, csv_path, store, license="CC BY 4.0", split="train", progress=False)
    assert counts(first) == (2, 2, 0, 2 + 1, 1 + 1) and not first.errors

    csv_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = import_chexpert(xray_graph, csv_path, store, license="CC BY 4.0", split="train", progress=False)
    assert counts(report) == (6, 1, 2, 1, 0)
    assert [str(e) for e in report.errors] == [
        f"{csv_path}:5: image file not found: img/missing.png",
        f"{csv_path}:6: not an image file (Pillow cannot identify it)",
        f"{csv_path}:7: label(s) not 1, 0, -1 or blank: Cardiomegaly='2'",
    ]
    assert links(xray_graph) == {
        ("0.png", "SHOWS", CARDIOMEGALY, False), ("0.png", "SHOWS", EFFUSION, False),
        ("0.png", "SHOWS", EDEMA, True), ("0.png", "RULES_OUT", PNEUMOTHORAX, False),
        ("1.png", "RULES_OUT", PNEUMONIA, False),
        ("2.png", "SHOWS", PNEUMONIA, False),
    }
    found = nodes(xray_graph)
    assert set(found) == {"0.png", "1.png", "2.png"}
    zero = found["0.png"]
    assert zero["caption"] == ("Chest radiograph showing cardiomegaly and pleural effusion; possible edema. "
                               "No evidence of pneumothorax.")
    assert (zero["source"], zero["license"], zero["width"], zero["image_format"]) == ("chexpert", "CC BY 4.0", 28,
                                                                                      "PNG")
    extra = json.loads(zero["extra"])
    assert extra["support_devices"] == "1.0" and extra["split"] == "train" and "finding" not in extra
    assert {k: json.loads(found[k]["extra"]).get("finding") for k in ("1.png", "2.png")} == {
        "1.png": "CXR:no_finding", "2.png": "CXR:pneumonia"}
    edge = xray_graph.read("MATCH (:Evidence)-[s:SHOWS]->(:Phenotype {id: $id}) RETURN s {.*} AS s", id=EDEMA)
    assert edge[0]["s"]["field"] == "chexpert" and edge[0]["s"]["matched"] == "Edema"
    assert zero["caption"][edge[0]["s"]["start"]:edge[0]["s"]["end"]] == "edema"

    # Re-run: everything already there is skipped without reading an image; the same bad rows are reported.
    (xrays / "img" / "0.png").unlink()  # would be an error if it were read again
    again = import_chexpert(xray_graph, csv_path, store, license="CC BY 4.0", split="train", progress=False)
    assert counts(again) == (6, 0, 3, 0, 0) and [e.line for e in again.errors] == [5, 6, 7]

    # A run stopped between its nodes and its links is completed by the next one.
    xray_graph.write("MATCH (:Evidence)-[s:SHOWS]->() DELETE s")
    redo = import_chexpert(xray_graph, csv_path, store, license="CC BY 4.0", split="train", progress=False)
    assert (redo.created, redo.skipped, redo.links_shows, redo.links_rules_out) == (0, 3, 4, 0)
    assert len(links(xray_graph)) == 6


def test_reports_linked_with_negation_and_resumable(xray_graph: Graph, xrays: Path, tmp_path: Path) -> None:
    path = xrays / "reports.csv"
    path.write_text(
        "dicom_id,path,findings,impression,split\n"  # 1
        'd0,img/0.png,"Cardiomegaly.\nNo pleural effusion.",Possible pneumonia.,train\n'  # 2-3
        "d1,img/1.png,,No pneumothorax.,test\n"  # 4
        "d2,img/missing.png,Edema.,,train\n"  # 5
        "d3,img/2.png,,,train\n",  # 6
        encoding="utf-8")
    store = BlobStore(tmp_path / "blobs")
    linker = linker_from_graph(xray_graph)
    report = import_reports(xray_graph, path, linker, store, license="CC0", source="mimic", progress=False)
    assert counts(report) == (4, 2, 0, 2, 2)
    assert [(e.line, e.message) for e in report.errors] == [
        (5, "image file not found: img/missing.png"),
        (6, "no report text (findings, impression or report are empty)")]
    assert links(xray_graph) == {
        ("0.png", "SHOWS", CARDIOMEGALY, False), ("0.png", "RULES_OUT", EFFUSION, False),
        ("0.png", "SHOWS", PNEUMONIA, True), ("1.png", "RULES_OUT", PNEUMOTHORAX, False)}
    zero = nodes(xray_graph)["0.png"]
    assert zero["caption"] == "Cardiomegaly.\nNo pleural effusion.\n\nPossible pneumonia."
    assert json.loads(zero["extra"]) == {"dicom_id": "d0", "dataset": "mimic", "index": 0, "split": "train"}

    again = import_reports(xray_graph, path, linker, store, license="CC0", source="mimic", progress=False)
    assert counts(again) == (4, 0, 2, 0, 0) and len(again.errors) == 2


@pytest.fixture()
def cli_env(graph_settings: GraphSettings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The CLI in this process, on the session's graph server."""
    monkeypatch.setenv("PHENOKG_HOME", str(graph_settings.home))
    settings.cache_clear()
    yield
    settings.cache_clear()


def test_cli_commands(xray_graph: Graph, xrays: Path, cli_env: None) -> None:
    (xrays / "labels.csv").write_text(
        f"{HEADER}\n{chexpert_line('img/3.png', cardiomegaly='1')}\n{chexpert_line('img/nope.png', edema='1')}\n",
        encoding="utf-8")
    runner = CliRunner()
    out = runner.invoke(cli_app, ["evidence", "import-chexpert", str(xrays / "labels.csv"), "--license", "CC0",
                                  "--split", "val", "--quiet"])
    assert out.exit_code == 0, out.output
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert (summary["created"], summary["links_shows"], summary["errors"], summary["skipped"]) == (1, 1, 1, 0)
    assert "labels.csv:3: image file not found: img/nope.png" in out.stderr

    (xrays / "r.jsonl").write_text(json.dumps({"image": "img/3.png", "report": "No cardiomegaly."}) + "\n",
                                   encoding="utf-8")
    args = ["evidence", "import-reports", str(xrays / "r.jsonl"), "--license", "CC0", "--quiet"]
    out = runner.invoke(cli_app, args)
    assert out.exit_code == 0, out.output
    summary = json.loads(out.stdout)
    assert (summary["created"], summary["links_rules_out"]) == (1, 1)
    assert xray_graph.read("MATCH (e:Evidence {source: 'r'}) RETURN count(e) AS n")[0]["n"] == 1
    again = runner.invoke(cli_app, args)
    assert json.loads(again.stdout)["skipped"] == 1 and "already imported" in again.stderr
