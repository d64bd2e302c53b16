"""The streamed evidence import against the real embedded graph: many batches, an interrupted run resumed without
duplicates, a failing writer that stops the import, images stored by parallel threads."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from kg.config import GraphSettings
from kg.ingest.build import build
from kg.ingest.evidence import BlobStore, import_evidence, linker_from_graph, read_evidence_rows
from kg.ingest.evidence_rows import EvidenceRow, RowError
from kg.ingest.evidence_stream import import_stream
from kg.store import queries as Q
from kg.store.graph import Graph
from tests.helpers import FIXTURES, REPO_ROOT
from tests.integration.kg.ingest.test_evidence_import import mini_obo

pytestmark = pytest.mark.integration

ROWS = 240  # 8 batches of 30
CAPTIONS = ("Chest radiograph shows pneumonia.", "No pleural effusion.", "Possible cardiomegaly and pneumonia.")


@pytest.fixture()
def kg(empty_graph: Graph, tmp_path: Path) -> Graph:
    build(empty_graph, obo=mini_obo(tmp_path), hpoa=FIXTURES / "mini.hpoa", include_pack=False, progress=False)
    return empty_graph


@pytest.fixture()
def manifest(tmp_path: Path) -> Path:
    """ROWS rows, each with its own image (grey levels and sizes differ), three sources."""
    root = tmp_path / "data"
    (root / "img").mkdir(parents=True)
    with open(root / "evidence.jsonl", "w", encoding="utf-8") as fh:
        for i in range(ROWS):
            buf = io.BytesIO()
            Image.new("L", (8 + i % 50, 8 + i // 50), i % 256).save(buf, "PNG")
            (root / "img" / f"{i}.png").write_bytes(buf.getvalue())
            fh.write(json.dumps({"image": f"img/{i}.png", "caption": CAPTIONS[i % 3], "source": f"s{i % 3}",
                                 "license": "CC0"}) + "\n")
    return root / "evidence.jsonl"


# SHOWS: pneumonia (rows 0, 3, …) and cardiomegaly + pneumonia (rows 2, 5, …); RULES_OUT: pleural effusion
EXPECTED_LINKS = (ROWS // 3 + 2 * (ROWS // 3), ROWS // 3)


@pytest.fixture()
def graph_env(graph_settings: GraphSettings) -> dict[str, str]:
    """The environment of a ``phenokg`` subprocess that uses the session's graph server."""
    env = {k: v for k, v in os.environ.items() if k != "NEO4J_URI"}
    env["PHENOKG_HOME"] = str(graph_settings.home)
    if graph_settings.neo4j_uri:
        env["NEO4J_URI"] = graph_settings.neo4j_uri
    return env


def counts(graph: Graph) -> tuple[int, int, int]:
    return (graph.read(Q.COUNT_NODES["evidence"])[0]["n"],
            graph.read("MATCH (:Evidence)-[s:SHOWS]->() RETURN count(s) AS n")[0]["n"],
            graph.read("MATCH (:Evidence)-[s:RULES_OUT]->() RETURN count(s) AS n")[0]["n"])


def stop_after(rows: Iterator[EvidenceRow | RowError], n: int) -> Iterator[EvidenceRow | RowError]:
    for i, row in enumerate(rows):
        if i == n:
            raise KeyboardInterrupt  # what Ctrl-C does to the reading thread
        yield row


def test_an_interrupted_import_keeps_its_batches_and_a_rerun_completes_it(kg: Graph, manifest: Path,
                                                                          tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    linker = linker_from_graph(kg)
    with pytest.raises(KeyboardInterrupt):
        import_stream(kg, stop_after(read_evidence_rows(manifest), 100), store, path=manifest,
                      base_dir=manifest.parent, linker=linker, progress=False, batch=30)
    stored, shows, rules_out = counts(kg)
    assert stored == 90  # three whole batches were handed to the writer and written; the fourth was not
    assert shows > 0 and rules_out > 0

    again = import_evidence(kg, manifest, linker, store, progress=False)
    assert (again.rows, again.skipped, again.created, again.duplicates, len(again.errors)) == (ROWS, 90, 150, 0, 0)
    assert again.unchanged == 90 and again.links_shows + again.links_rules_out > 0
    after = counts(kg)
    assert after[0] == ROWS  # nothing duplicated
    assert after[1:] == EXPECTED_LINKS
    assert sum(1 for p in (tmp_path / "blobs").rglob("*") if p.is_file()) == ROWS
    assert not any(p.name.endswith(".tmp") for p in (tmp_path / "blobs").rglob("*"))

    third = import_evidence(kg, manifest, linker, store, progress=False)
    assert (third.skipped, third.created, third.links_shows, third.links_rules_out, third.images_stored) == (
        ROWS, 0, 0, 0, 0)
    assert counts(kg) == after


def test_a_failing_write_stops_the_import_with_its_error(kg: Graph, manifest: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from kg.ingest import evidence_batches

    calls = {"n": 0}
    real = evidence_batches.write_batch

    def flaky(graph: Graph, store: BlobStore | None, batch: evidence_batches.PendingBatch,
              report: evidence_batches.ImportReport) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk full")
        real(graph, store, batch, report)

    monkeypatch.setattr(evidence_batches, "write_batch", flaky)
    with pytest.raises(RuntimeError, match="disk full"):
        import_stream(kg, read_evidence_rows(manifest), BlobStore(tmp_path / "blobs"), path=manifest,
                      base_dir=manifest.parent, linker=linker_from_graph(kg), progress=False, batch=30)
    assert counts(kg)[0] == 60  # the two batches before the failure; none after it


def test_the_cli_import_killed_mid_run_resumes_without_duplicates(kg: Graph, manifest: Path, tmp_path: Path,
                                                                  graph_env: dict[str, str]) -> None:
    """SIGKILL of ``phenokg evidence import`` part-way, then the same command again."""
    command = [sys.executable, "-m", "app.cli.main", "evidence", "import", "-q", str(manifest)]
    proc = subprocess.Popen(command, cwd=REPO_ROOT, env=graph_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and counts(kg)[0] == 0:
        time.sleep(0.05)
    proc.kill()
    proc.wait(timeout=30)
    partial = counts(kg)[0]
    done = subprocess.run(command, cwd=REPO_ROOT, env=graph_env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["created"] + summary["unchanged"] == ROWS and summary["errors"] == 0
    assert summary["skipped"] == partial  # what the killed run stored is not read again
    assert counts(kg) == (ROWS, *EXPECTED_LINKS)  # nothing duplicated, links the killed run left out are there
