"""The evidence scale benchmark's retrieval stage end to end on a tiny generated folder (no database): the real
image tower, models.evidence_index, JSON, Markdown and the plot. Checks the pipeline, not the figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks import evidence_scale as es

pytestmark = [pytest.mark.integration]

LABELS = [
    {"id": "HP:0002202", "name": "Pleural effusion", "synonyms": []},
    {"id": "HP:0001640", "name": "Cardiomegaly", "synonyms": ["Enlarged heart"]},
    {"id": "HP:0100750", "name": "Atelectasis", "synonyms": []},
    {"id": "HP:0002107", "name": "Pneumothorax", "synonyms": []},
]


def test_retrieval_stage_on_a_tiny_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gen = es.gen
    pool = np.random.default_rng(0).integers(0, 256, size=(8, 28, 28), dtype=np.uint8)
    monkeypatch.setattr(gen, "load_pool", lambda path=gen.NPZ: pool)
    monkeypatch.setattr(es.retrieval, "EMBED_SEGMENT", 10)  # 24 images: saved after 10, 20 and 24
    data = tmp_path / "data"
    data.mkdir()
    chosen = gen.choose_phenotypes(LABELS, 4, seed=0, zipf=1.0)
    (data / "labels.json").write_text(json.dumps(LABELS))
    (data / "terms.json").write_text(json.dumps({
        "params": {"phenotypes": 4, "seed": 0, "zipf": 1.0},
        "phenotypes": [{"id": p.id, "name": p.name, "surfaces": list(p.surfaces), "weight": p.weight}
                       for p in chosen]}))
    out = tmp_path / "out"
    argv = ["--sizes", "24", "--work", str(out), "--data", str(data), "--phenotypes", "4", "--workers", "1",
            "--skip-import", "--skip-resume", "--skip-export", "--skip-queries", "--queries", "6",
            "--image-size", "32", "--reference-size", "0", "--embed-batch", "16", "--json", str(out / "r.json"),
            "--markdown", str(out / "r.md"), "--plot", str(out / "plot.png")]
    assert es.main(argv) == 0
    result = json.loads((out / "r.json").read_text())
    ret = result["sizes"]["24"]["retrieval"]
    assert ret["images"] == 24 and ret["queries"] == 6 and ret["image_size"] == 32
    assert 0.0 <= ret["recall_at_10_ann_vs_exact"] <= 1.0
    assert ret["ann"]["p50_ms"] > 0 and ret["exact"]["p50_ms"] > 0
    assert set(ret["encoder_single_ms"]) == {"32"}
    assert ret["index_has_ann_after_load"] is True
    assert [r["images"] for r in ret["embedding_runs"]] == [24]
    assert len((data / "embeddings" / "s32.hashes.txt").read_text().split()) == 24
    assert "### 24 pairs" in (out / "r.md").read_text()
    assert (out / "plot.png").stat().st_size > 0

    # a rerun with every stage skipped keeps the figures and rewrites the outputs
    (out / "plot.png").unlink()
    skip_all = [a for a in argv if a != "--skip-queries"] + ["--skip-queries", "--skip-retrieval"]
    assert es.main(skip_all) == 0
    again = json.loads((out / "r.json").read_text())
    assert again["sizes"]["24"]["retrieval"] == ret and len(again["runs"]) == 2
    assert (out / "plot.png").is_file()
