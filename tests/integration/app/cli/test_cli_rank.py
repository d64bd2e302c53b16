"""`phenokg rank FILE`, run as a real subprocess against the session's embedded server (mini fixtures)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kg.config import GraphSettings
from kg.ingest.build import build
from kg.store.graph import Graph
from tests.helpers import FIXTURES as FIXTURES_DIR

pytestmark = pytest.mark.integration
FIXTURES = FIXTURES_DIR
PHENOKG = [sys.executable, "-m", "app.cli.main"]


@pytest.fixture(scope="module")
def home(graph: Graph, graph_settings: GraphSettings) -> Iterator[Path]:
    """The session graph with the mini fixtures built in; a subprocess on this home reuses its server."""
    graph.write("MATCH (n) DETACH DELETE n")
    build(graph, obo=FIXTURES / "mini.obo", hpoa=FIXTURES / "mini.hpoa", include_pack=False, progress=False)
    try:
        yield Path(graph_settings.home)
    finally:
        graph.write("MATCH (n) DETACH DELETE n")


def run(home: Path, *args: str, stdin: str | None = None,
        graph_settings: GraphSettings | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "NEO4J_URI"}
    env["PHENOKG_HOME"] = str(home)
    if graph_settings is not None and graph_settings.neo4j_uri:
        env["NEO4J_URI"] = graph_settings.neo4j_uri
    return subprocess.run([*PHENOKG, "rank", *args], input=stdin, capture_output=True, text=True, env=env,
                          timeout=180)


def test_rank_jsonl_in_order_with_bad_lines_reported(home: Path, tmp_path: Path,
                                                     graph_settings: GraphSettings) -> None:
    cases = tmp_path / "cases.jsonl"
    cases.write_text("\n".join([
        json.dumps({"id": "lung", "present": ["HP:0002090", "HP:0002203"], "absent": ["HP:0001640"]}),
        "{not json",
        json.dumps({"present": ["HP:0001640"], "absent": []}),
        "",                                                          # blank: skipped, no output
        json.dumps({"present": ["HP:12"]}),
        json.dumps({"present": ["HP:9999999"]}),
        json.dumps({"id": 7, "present": ["HP:0001250", "HP:9999999"], "sources": ["DECIPHER"]}),
        json.dumps(["HP:0001250"]),
    ]) + "\n", encoding="utf-8")
    out = run(home, str(cases), "--limit", "2", graph_settings=graph_settings)
    assert out.returncode == 2, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [line["line"] for line in lines] == [1, 2, 3, 5, 6, 7, 8]
    first = lines[0]
    assert first["id"] == "lung"
    assert first["redirected"] == {"HP:0002203": "HP:0002202"}
    assert [r["id"] for r in first["results"]] == ["OMIM:100001", "DECIPHER:3"]
    assert set(first["results"][0]) == {"id", "name", "score"}
    assert first["results"][0]["name"] == "Lung disease A"
    assert lines[2]["results"][0]["id"] == "ORPHA:200002"
    assert lines[5] == {**lines[5], "id": 7, "unknown": ["HP:9999999"]}
    assert [r["id"] for r in lines[5]["results"]] == ["DECIPHER:3"]
    for bad in (lines[1], lines[3], lines[4], lines[6]):
        assert set(bad) == {"line", "error"} and bad["error"]
    stderr = out.stderr
    for n in (2, 5, 6, 8):
        assert f"{cases}:{n}:" in stderr
    assert "not valid JSON" in stderr and "unknown: HP:9999999" in stderr
    assert "4 of 7 case(s) failed" in stderr
    assert "Traceback" not in stderr


def test_rank_from_stdin_with_source_filter_and_explanations(home: Path, graph_settings: GraphSettings) -> None:
    stdin = json.dumps({"present": ["HP:0002202"]}) + "\n"
    out = run(home, "-", "--source", "omim", "--source", "DECIPHER", "--explain", stdin=stdin,
              graph_settings=graph_settings)
    assert out.returncode == 0, out.stderr
    [line] = [json.loads(x) for x in out.stdout.splitlines()]
    assert [r["id"] for r in line["results"]] == ["OMIM:100001", "DECIPHER:3"]
    explanation = line["results"][0]["explanation"]
    assert explanation["matched"][0]["how"] == "exact"
    assert explanation["parts"]["match"] > 0


def test_rank_missing_file_is_one_line_exit_2(home: Path, tmp_path: Path) -> None:
    out = run(home, str(tmp_path / "nope.jsonl"))
    assert out.returncode == 2
    assert "nope.jsonl" in out.stderr and "Traceback" not in out.stderr
    assert out.stdout == ""


def test_rank_many_cases_show_a_progress_bar(home: Path, graph_settings: GraphSettings) -> None:
    stdin = "".join(json.dumps({"id": i, "present": ["HP:0001250"]}) + "\n" for i in range(25))
    out = run(home, "-", stdin=stdin, graph_settings=graph_settings)
    assert out.returncode == 0, out.stderr
    assert [json.loads(x)["id"] for x in out.stdout.splitlines()] == list(range(25))
    assert "25/25" in out.stderr
    quiet = run(home, "-", "--quiet", stdin=stdin, graph_settings=graph_settings)
    assert "25/25" not in quiet.stderr


def test_rank_method_option_and_per_case_override(home: Path, graph_settings: GraphSettings) -> None:
    case = {"present": ["HP:0002090", "HP:0002202"], "absent": ["HP:0001640"]}
    stdin = json.dumps(case) + "\n" + json.dumps({**case, "method": "likelihood"}) + "\n"
    ic = run(home, "-", "--method", "ic", stdin=stdin, graph_settings=graph_settings)
    assert ic.returncode == 0, ic.stderr
    first, overridden = (json.loads(x) for x in ic.stdout.splitlines())
    default = run(home, "-", stdin=json.dumps(case) + "\n", graph_settings=graph_settings)
    [likelihood] = [json.loads(x) for x in default.stdout.splitlines()]
    assert overridden["results"] == likelihood["results"]          # the case's own method wins
    assert first["results"] != likelihood["results"]


def test_rank_unknown_method_is_exit_2(home: Path) -> None:
    out = run(home, "-", "--method", "cosine", stdin="")
    assert out.returncode == 2
    assert "--method" in out.stderr and "cosine" in out.stderr and "Traceback" not in out.stderr


def test_rank_help_says_the_limit_is_over_the_mixed_list(home: Path) -> None:
    out = run(home, "--help")
    assert out.returncode == 0
    assert "mixes every" in " ".join(out.stdout.split())
