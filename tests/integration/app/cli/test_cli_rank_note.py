"""`phenokg rank` with notes (``{"text": ...}`` lines and ``--text FILE``) and one row per disease (``--no-group``
for every entry), run as a real subprocess against the session's embedded server: the mini fixtures plus
ORPHA:200009 "Lung disease A", the Orphanet twin of OMIM:100001."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from kg.config import GraphSettings
from kg.ingest.build import build
from kg.store.graph import Graph
from tests.helpers import FIXTURES, clear_graph
from tests.integration.app.api.test_api_ranking_note import (
    CARDIOMEGALY,
    EFFUSION,
    PNEUMONIA,
    PNEUMOTHORAX,
    TWIN,
    TWIN_LINES,
)
from tests.integration.app.cli.test_cli_rank import run

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def home(graph: Graph, graph_settings: GraphSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    hpoa = Path(tmp_path_factory.mktemp("twin")) / "twin.hpoa"
    hpoa.write_text((FIXTURES / "mini.hpoa").read_text(encoding="utf-8").rstrip("\n") + "\n"
                    + "\n".join(TWIN_LINES) + "\n", encoding="utf-8")
    clear_graph(graph)
    build(graph, obo=FIXTURES / "mini.obo", hpoa=hpoa, include_pack=False, progress=False)
    try:
        yield Path(graph_settings.home)
    finally:
        clear_graph(graph)


def test_grouped_by_default_and_raw_with_no_group(home: Path, graph_settings: GraphSettings) -> None:
    stdin = json.dumps({"present": [PNEUMOTHORAX]}) + "\n"
    out = run(home, "-", stdin=stdin, graph_settings=graph_settings)
    assert out.returncode == 0, out.stderr
    [grouped] = [json.loads(x) for x in out.stdout.splitlines()]
    ids = [r["id"] for r in grouped["results"]]
    assert ids.count("OMIM:100001") == 1 and TWIN not in ids
    lung = grouped["results"][ids.index("OMIM:100001")]
    assert [e["id"] for e in lung["equivalent_ids"]] == [TWIN]
    raw_out = run(home, "-", "--no-group", stdin=stdin, graph_settings=graph_settings)
    assert raw_out.returncode == 0, raw_out.stderr
    [raw] = [json.loads(x) for x in raw_out.stdout.splitlines()]
    assert {"OMIM:100001", TWIN} <= {r["id"] for r in raw["results"]}
    assert all("equivalent_ids" not in r for r in raw["results"])
    assert lung["score"] == max(r["score"] for r in raw["results"] if r["id"] in ("OMIM:100001", TWIN))
    # a case line may ask for the raw list itself
    per_case = run(home, "-", stdin=json.dumps({"present": [PNEUMOTHORAX], "group": False}) + "\n",
                   graph_settings=graph_settings)
    assert [json.loads(x) for x in per_case.stdout.splitlines()] == [raw]


def test_text_lines_and_a_text_file(home: Path, tmp_path: Path, graph_settings: GraphSettings) -> None:
    note = "Pneumonia with a pleural effusion. No enlarged heart."
    stdin = json.dumps({"id": "n1", "text": note}) + "\n" + json.dumps({"text": "No pneumonia."}) + "\n"
    out = run(home, "-", "--explain", stdin=stdin, graph_settings=graph_settings)
    assert out.returncode == 2                                     # the second note names nothing present
    first, second = (json.loads(x) for x in out.stdout.splitlines())
    assert (first["id"], first["present"], first["absent"]) == ("n1", [PNEUMONIA, EFFUSION], [CARDIOMEGALY])
    assert [(m["text"], m["used_as"]) for m in first["mentions"]] == [
        ("Pneumonia", "present"), ("pleural effusion", "present"), ("enlarged heart", "absent")]
    matched = first["results"][0]["explanation"]["matched"]
    assert {m["observed"]: m["spans"][0]["text"] for m in matched}[PNEUMONIA] == "Pneumonia"
    assert set(second) == {"line", "error"} and "no present phenotype" in second["error"]
    assert "<stdin>:2:" in out.stderr and "Traceback" not in out.stderr
    path = tmp_path / "note.txt"
    path.write_text(note + "\n", encoding="utf-8")
    from_file = run(home, "--text", str(path), graph_settings=graph_settings)
    assert from_file.returncode == 0, from_file.stderr
    [line] = [json.loads(x) for x in from_file.stdout.splitlines()]
    assert (line["id"], line["present"], line["absent"]) == (str(path), [PNEUMONIA, EFFUSION], [CARDIOMEGALY])
    assert line["results"][0]["id"] == "OMIM:100001"


def test_file_and_text_are_exclusive(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "note.txt"
    path.write_text("Pneumonia.", encoding="utf-8")
    for args in ([], ["-", "--text", str(path)]):
        out = run(home, *args, stdin="")
        assert out.returncode == 2 and "--text" in out.stderr and "Traceback" not in out.stderr
    missing = run(home, "--text", str(tmp_path / "nope.txt"))
    assert missing.returncode == 2 and "nope.txt" in missing.stderr and "Traceback" not in missing.stderr
