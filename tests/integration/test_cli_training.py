"""`phenokg captions`, `phenokg train knowledge-encoder` and `phenokg models` as real subprocesses.

The graph is the mini fixture (no chest X-ray pack); the knowledge encoder is a tiny random BERT with the
packaged MiniLM tokenizer (``--base-model``), trained for 2 steps, so the whole module runs in well under a
minute on 2 CPU cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
FIXTURES = Path(__file__).parents[1] / "fixtures"
PHENOKG = [sys.executable, "-m", "app.cli"]


def run(home: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "NEO4J_URI"}
    env.update({"PHENOKG_HOME": str(home), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
    return subprocess.run([*PHENOKG, *args], capture_output=True, text=True, env=env, timeout=timeout,
                          cwd=Path(__file__).parents[2])


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Mini graph, served by one background server for the whole module."""
    h = tmp_path_factory.mktemp("train-home")
    started = run(h, "db", "start")
    assert started.returncode == 0, started.stderr
    try:
        out = run(h, "kg", "build", "--obo", str(FIXTURES / "mini.obo"), "--hpoa", str(FIXTURES / "mini.hpoa"),
                  "--no-pack", "--quiet")
        assert out.returncode == 0, out.stderr
        yield h
    finally:
        run(h, "db", "stop")


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from models.encoders import packaged_text_model_path

    out = tmp_path_factory.mktemp("tiny_bert")
    torch.manual_seed(0)
    cfg = BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                     max_position_embeddings=64)
    BertModel(cfg).save_pretrained(str(out))
    AutoTokenizer.from_pretrained(str(packaged_text_model_path())).save_pretrained(str(out))
    return out


def test_captions(home: Path) -> None:
    out = run(home, "captions", "OMIM:100001", "--n", "2", "--seed", "1")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "OMIM:100001 Lung disease A  (OMIM; typical 2, excluded 1)"
    assert [x for x in lines if not x.startswith("  ")][1:] == ["coarse:", "medium:", "fine:"]
    assert len(lines) == 1 + 3 * 3
    fine = lines[-2:]
    assert all("cardiomegaly" in x and "pneumonia" in x.lower() for x in fine)

    js = run(home, "captions", "OMIM:100001", "--granularity", "fine", "--n", "3", "--json")
    assert js.returncode == 0, js.stderr
    data = json.loads(js.stdout)
    assert data["id"] == "OMIM:100001" and list(data["captions"]) == ["fine"]
    assert len(set(data["captions"]["fine"])) == 3  # distinct captions
    again = json.loads(run(home, "captions", "OMIM:100001", "--granularity", "fine", "--n", "3", "--json").stdout)
    assert again == data  # seeded

    cmp_ = run(home, "captions", "OMIM:100001", "--compare", "ORPHA:200002")
    assert cmp_.returncode == 0, cmp_.stderr
    assert "  [favours_a] Pleural effusion favours lung disease A over heart disease B." in cmp_.stdout
    assert "  [favours_b] Cardiomegaly favours heart disease B over lung disease A." in cmp_.stdout

    bad = run(home, "captions", "omim:100001")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip() == "phenokg: error: unknown disease id 'omim:100001'; did you mean OMIM:100001?"
    bad = run(home, "captions", "OMIM:100001", "--granularity", "huge")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_train_knowledge_encoder_and_models(home: Path, tiny_bert: Path, tmp_path: Path) -> None:
    gold = tmp_path / "gold.tsv"
    gold.write_text("1\nText.\n0\t14\tenlarged heart\tHP:0001640\n0\t5\tfits\tHP:0002279\n"
                    "0\t4\tgout\tHP:0001997\n", encoding="utf-8")
    model_dir = tmp_path / "ke"
    out = run(home, "train", "knowledge-encoder", "--base-model", str(tiny_bert), "--max-steps", "2",
              "--batch-size", "4", "--held-out-fraction", "0.3", "--seed", "3", "--gold", str(gold),
              "--out", str(model_dir), "--activate", "--quiet")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["active"] is True and summary["kind"] == "knowledge-encoder"
    assert summary["train"]["steps"] == 2 and summary["seed"] == 3
    assert set(summary["headline"]) == {"trained", "base"}
    assert {"R@1", "R@10", "acc@1", "acc@5"} <= set(summary["headline"]["trained"])

    assert (model_dir / "encoder" / "model.safetensors").is_file()
    config = json.loads((model_dir / "config.json").read_text())
    metrics = json.loads((model_dir / "metrics.json").read_text())
    for doc in (config, metrics):
        assert doc["data_hash"] == summary["data_hash"] and doc["seed"] == 3 and doc["code_version"]
    assert config["train"]["model_path"] == str(tiny_bert.resolve()) and config["train"]["max_steps"] == 2
    assert len(config["held_out_ids"]) == summary["held_out_phenotypes"] >= 1
    norm = metrics["eval"]["trained"]["normalisation"]
    assert norm["n_mentions"] == 3 and norm["n_evaluated"] == 2  # HP:0002279 is an alt id; gout is unknown
    assert metrics["eval"]["base"]["attribute_retrieval"]["n_queries"] >= 1

    listed = [json.loads(x) for x in run(home, "models", "list", "--json").stdout.splitlines()]
    assert [(m["id"], m["active"], m["path"]) for m in listed] == [(summary["id"], True, str(model_dir))]
    assert listed[0]["metrics"]["data_hash"] == summary["data_hash"]

    again = run(home, "train", "knowledge-encoder", "--base-model", str(tiny_bert), "--out", str(model_dir))
    assert again.returncode == 2 and "already holds a training run" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1

    act = run(home, "models", "activate", summary["id"])
    assert act.returncode == 0 and act.stdout.startswith(f"activated {summary['id']}")
    missing = run(home, "models", "activate", "knowledge-encoder-nope")
    assert missing.returncode == 2 and missing.stderr.strip() == \
        "phenokg: error: no model version 'knowledge-encoder-nope'"
    text = run(home, "models", "list").stdout
    assert text.startswith(f"* {summary['id']}  knowledge-encoder")
