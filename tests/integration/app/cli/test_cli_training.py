"""`phenokg captions`, `phenokg train knowledge-encoder` and `phenokg models` as real subprocesses.

The graph is the mini fixture (no chest X-ray pack); the knowledge encoder is a tiny random BERT with the
packaged MiniLM tokenizer (``--model-path``), trained for 2 steps, so the whole module runs in well under a
minute on 2 CPU cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import FIXTURES as FIXTURES_DIR
from tests.helpers import REPO_ROOT

pytestmark = pytest.mark.integration
FIXTURES = FIXTURES_DIR
PHENOKG = [sys.executable, "-m", "app.cli.main"]


def run(home: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "NEO4J_URI"}
    env.update({"PHENOKG_HOME": str(home), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
    return subprocess.run([*PHENOKG, *args], capture_output=True, text=True, env=env, timeout=timeout,
                          cwd=REPO_ROOT)


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


def test_train_knowledge_encoder_and_models(home: Path, tiny_bert_dir: Path, tmp_path: Path) -> None:
    gold = tmp_path / "gold.tsv"
    gold.write_text("1\nText.\n0\t14\tenlarged heart\tHP:0001640\n0\t5\tfits\tHP:0002279\n"
                    "0\t4\tgout\tHP:0001997\n", encoding="utf-8")
    model_dir = tmp_path / "ke"
    out = run(home, "train", "knowledge-encoder", "--model-path", str(tiny_bert_dir), "--max-steps", "2",
              "--batch-size", "4", "--held-out-fraction", "0.3", "--seed", "3", "--gold", str(gold),
              "--temperature", "0.05", "--schedule", "linear", "--checkpoint-every", "50",
              "--trainable-layers", "1", "--kind-weights", "synonym=3, relation=0.5, paraphrase=2",
              "--name-anchor-prob", "0.8", "--paraphrases", "--out", str(model_dir), "--activate", "--quiet")
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
    assert config["train"]["model_path"] == str(tiny_bert_dir.resolve()) and config["train"]["max_steps"] == 2
    assert config["train"]["trainable_layers"] == 1 and config["train"]["name_anchor_prob"] == 0.8
    assert config["train"]["kind_weights"] == {"synonym": 3.0, "relation": 0.5, "paraphrase": 2.0}
    assert config["train"]["paraphrases"] is True
    assert (config["train"]["temperature"], config["train"]["schedule"], config["train"]["checkpoint_every"]) == \
        (0.05, "linear", 50)
    assert len(config["held_out_ids"]) == summary["held_out_phenotypes"] >= 1
    norm = metrics["eval"]["trained"]["normalisation"]
    assert norm["n_mentions"] == 3 and norm["n_evaluated"] == 2  # HP:0002279 is an alt id; gout is unknown
    assert metrics["eval"]["base"]["attribute_retrieval"]["n_queries"] >= 1

    listed = [json.loads(x) for x in run(home, "models", "list", "--json").stdout.splitlines()]
    assert [(m["id"], m["active"], m["path"]) for m in listed] == [(summary["id"], True, str(model_dir))]
    assert listed[0]["metrics"]["data_hash"] == summary["data_hash"]

    # --base-model: the old name of --model-path, still accepted
    again = run(home, "train", "knowledge-encoder", "--base-model", str(tiny_bert_dir), "--out", str(model_dir))
    assert again.returncode == 2 and "already holds a training run" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    for bad, message in (("synonym=lots", "'lots' is not a number"), ("synonym", "expected KIND=WEIGHT"),
                         ("parent=2", "unknown attribute kind 'parent'")):
        refused = run(home, "train", "knowledge-encoder", "--kind-weights", bad, "--out", str(tmp_path / "x"))
        assert refused.returncode == 2 and message in refused.stderr, refused.stderr
        assert not (tmp_path / "x").exists()

    # activating re-embedded the phenotypes with it: `kg embed` (default: the active encoder) has nothing to do
    emb = run(home, "kg", "embed", "--quiet")
    assert emb.returncode == 0, emb.stderr
    report = json.loads(emb.stdout)
    assert (report["up_to_date"], report["encoder"]) == (True, "phenokg text encoder ke"), report

    act = run(home, "models", "activate", summary["id"])
    assert act.returncode == 0 and act.stdout.startswith(f"activated {summary['id']}")
    missing = run(home, "models", "activate", "knowledge-encoder-nope")
    assert missing.returncode == 2 and missing.stderr.strip() == \
        "phenokg: error: no model version 'knowledge-encoder-nope'"
    text = run(home, "models", "list").stdout
    assert text.startswith(f"* {summary['id']}  knowledge-encoder")


def _tiny_npz(path: Path) -> Path:
    import numpy as np

    rng = np.random.default_rng(0)
    arrays: dict[str, Any] = {}
    for split, n in (("train", 12), ("val", 4), ("test", 8)):
        labels = np.arange(n) % 2
        images = (rng.random((n, 28, 28)) * 255).astype(np.uint8)
        images[labels == 1, :14] //= 4
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels.reshape(-1, 1).astype(np.uint8)
    np.savez(path, **arrays)
    return path


def test_clip_import_train_evaluate(home: Path, tiny_bert_dir: Path, tmp_path: Path) -> None:
    npz = _tiny_npz(tmp_path / "tiny.npz")
    labels = "0=OMIM:100001,1=ORPHA:200002"
    imp = run(home, "evidence", "import-npz", str(npz), "--labels", labels, "--license", "CC0", "--dataset",
              "tinymnist", "--quiet")
    assert imp.returncode == 0, imp.stderr
    report = json.loads(imp.stdout)
    # the test split stays out of the graph unless named: held-out images are never evidence
    assert (report["rows"], report["created"], report["errors"]) == (16, 16, 0)
    assert report["per_split"] == {"train": 12, "val": 4} and report["links_shows"] > 0
    again = json.loads(run(home, "evidence", "import-npz", str(npz), "--labels", labels, "--license", "CC0",
                           "--dataset", "tinymnist", "--quiet").stdout)
    assert (again["created"], again["unchanged"], again["images_stored"]) == (0, 16, 0)  # idempotent
    held = json.loads(run(home, "evidence", "import-npz", str(npz), "--labels", labels, "--license", "CC0",
                          "--dataset", "tinymnist", "--splits", "test", "--quiet").stdout)
    assert held["per_split"] == {"test": 8} and held["created"] == 8  # this test evaluates on it below
    for bad_labels, message in (("0=OMIM:999999", "OMIM:999999"), ("zero=OMIM:100001", "integer")):
        bad = run(home, "evidence", "import-npz", str(npz), "--labels", bad_labels, "--license", "CC0")
        assert bad.returncode == 2 and message in bad.stderr and len(bad.stderr.strip().splitlines()) == 1

    model_dir = tmp_path / "clip"
    out = run(home, "train", "clip", "--source", "tinymnist", "--captions", "fine", "--image-size", "32",
              "--max-steps", "2", "--batch-size", "4", "--text-model", str(tiny_bert_dir),
              "--text-trainable-layers", "1", "--tau", "0.1", "--grad-clip", "none", "--log-every", "1",
              "--k", "1,3", "--out", str(model_dir), "--quiet", timeout=300)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["kind"] == "clip" and summary["train"]["steps"] == 2 and summary["seed"] == 0
    assert {"zero_shot_coarse", "zero_shot_medium", "zero_shot_fine", "I2T@1"} <= set(summary["headline"])
    assert (model_dir / "model" / "phenokg_clip.json").is_file()
    # evaluated on val, and retrieval's grounding fitted on it
    assert (model_dir / "grounding.json").is_file() and (model_dir / "grounding.npz").is_file()
    card = json.loads((model_dir / "metrics.json").read_text())
    assert card["eval_data"]["split"] == "val" and card["grounding"]["fitted"], card["grounding"]
    assert card["grounding"]["findings"] == ["OMIM:100001", "ORPHA:200002"]
    config = json.loads((model_dir / "config.json").read_text())
    assert config["captions"] == "fine" and config["data_hash"] == summary["data_hash"]
    assert config["data"]["items"] == 12 and config["data"]["split"] == "train"
    assert config["train"]["text_trainable_layers"] == 1 and summary["train"]["final"]["distill"] > 0
    assert config["train"]["temperature"] == 0.1  # --tau: the old name of --temperature, still accepted
    assert config["train"]["grad_clip"] is None and config["train"]["log_every"] == 1

    result_file = tmp_path / "eval.json"
    ev = run(home, "evaluate", summary["id"], "--source", "tinymnist", "--split", "test", "--probe-split", "train",
             "--k", "1,3", "--record", "--out", str(result_file), timeout=300)
    assert ev.returncode == 0, ev.stderr
    result = json.loads(ev.stdout)
    assert result == json.loads(result_file.read_text())
    assert result["seed"] == 0 and result["code_version"] and result["data_hash"].startswith("sha256:")
    assert result["config"]["evaluation"] == {"image_size": 32, "k": [1, 3], "probe_split": "train"}
    metrics = result["metrics"]
    assert {g: metrics["zero_shot"][g]["n"] for g in ("coarse", "medium", "fine")} == \
        {"coarse": 8, "medium": 8, "fine": 8}
    assert {"I2P@1", "I2P@3", "P2I@1", "P2I@3"} <= set(metrics["phenotype_retrieval"])
    assert 0 <= metrics["linear_probe"]["accuracy"] <= 1 and metrics["linear_probe"]["train_n"] == 12
    shown = json.loads(run(home, "models", "show", summary["id"]).stdout)
    assert [e["data_hash"] for e in shown["metrics"]["evaluations"]] == [result["data_hash"]]

    by_dir = json.loads(run(home, "evaluate", str(model_dir), "--source", "tinymnist", "--split", "test", "--k", "1,3",
                            timeout=300).stdout)
    assert by_dir["seed"] == 0 and by_dir["config"]["captions"] == "fine"
    assert by_dir["metrics"]["zero_shot"] == metrics["zero_shot"]  # same model, same data: same figures

    untrained = run(home, "evaluate", "untrained", "--source", "tinymnist", "--text-model", str(tiny_bert_dir),
                    "--image-size", "32", timeout=300)
    assert untrained.returncode == 0, untrained.stderr
    assert json.loads(untrained.stdout)["model"]["id"] == "untrained"

    for args, message in ((("evaluate", "clip-nope", "--source", "tinymnist"), "neither a model directory"),
                          (("evaluate", summary["id"], "--source", "nosuch"), "no evidence for source"),
                          (("evaluate", summary["id"], "--source", "tinymnist", "--k", "0"), "--k"),
                          (("train", "clip", "--source", "tinymnist", "--captions", "huge"), "--captions"),
                          (("train", "clip", "--source", "tinymnist", "--grad-clip", "-1"), "--grad-clip"),
                          (("train", "clip", "--source", "tinymnist", "--kd-mode", "x"), "--kd-mode"),
                          (("evaluate", str(model_dir), "--source", "tinymnist", "--record"), "registered model id"),
                          (("train", "clip", "--source", "tinymnist", "--out", str(model_dir)), "not empty")):
        bad = run(home, *args)
        assert bad.returncode == 2 and message in bad.stderr, (args, bad.stderr)
        assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr


@pytest.mark.slow  # two ranks, each importing torch + transformers: ~40 s on 2 cores
def test_train_clip_under_torchrun(home: Path, tiny_bert_dir: Path, tmp_path: Path) -> None:
    """`torchrun --nproc_per_node 2 -m app.cli.main train clip`: gloo DDP, one registration by rank 0."""
    npz = _tiny_npz(tmp_path / "ddp.npz")
    imp = run(home, "evidence", "import-npz", str(npz), "--labels", "0=OMIM:100001,1=ORPHA:200002", "--license",
              "CC0", "--dataset", "tinyddp", "--splits", "train,test", "--quiet")
    assert imp.returncode == 0, imp.stderr
    env = {k: v for k, v in os.environ.items() if k != "NEO4J_URI"}
    env.update({"PHENOKG_HOME": str(home), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                "OMP_NUM_THREADS": "1"})
    out_dir = tmp_path / "ddp-model"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "app.cli.main",
         "train", "clip", "--source", "tinyddp", "--image-size", "32", "--max-steps", "2", "--batch-size", "4",
         "--text-model", str(tiny_bert_dir), "--out", str(out_dir), "--quiet"],
        capture_output=True, text=True, env=env, timeout=600, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)  # only rank 0 prints
    assert summary["id"] == "clip-ddp-model" and summary["train"]["world_size"] == 2
    listed = [json.loads(x)["id"] for x in run(home, "models", "list", "--kind", "clip", "--json").stdout.splitlines()]
    assert listed.count("clip-ddp-model") == 1


def test_export_views_train_elsewhere_and_register(home: Path, tiny_bert_dir: Path, tmp_path: Path) -> None:
    """The GPU-box workflow: export the training view, train from the file with no graph, register the result."""
    views = tmp_path / "views.json.gz"
    out = run(home, "train", "export-views", str(views))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("wrote ") and "phenotypes" in out.stdout
    empty = run(home, "train", "export-views", str(tmp_path / "none.json"), "--branch", "HP:9999999")
    assert empty.returncode == 2 and "no live phenotype under HP:9999999" in empty.stderr
    assert not (tmp_path / "none.json").exists()

    model_dir = tmp_path / "elsewhere"
    config = json.dumps({"model_path": str(tiny_bert_dir), "batch_size": 4, "max_steps": 2, "seed": 5})
    env = {k: v for k, v in os.environ.items() if k != "NEO4J_URI"}
    env.update({"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
    trained = subprocess.run([sys.executable, "-m", "models.train.knowledge_run", "--views", str(views), "--out",
                              str(model_dir), "--config", config, "--held-out-fraction", "0.3", "--quiet"],
                             capture_output=True, text=True, env=env, timeout=180, cwd=REPO_ROOT)
    assert trained.returncode == 0, trained.stderr
    summary = json.loads(trained.stdout)
    assert set(summary["headline"]) == {"trained", "base"}
    run_config = json.loads((model_dir / "config.json").read_text())
    assert run_config["data"]["views_file"] == str(views) and run_config["seed"] == 5
    assert run_config["data"]["graph_stamp"]  # provenance of the export travels with the run

    bad = subprocess.run([sys.executable, "-m", "models.train.knowledge_run", "--views", str(views), "--out",
                          str(tmp_path / "bad"), "--config", '{"batch_sise": 4}'],
                         capture_output=True, text=True, env=env, timeout=120, cwd=REPO_ROOT)
    assert bad.returncode == 2 and "batch_sise" in bad.stderr and not (tmp_path / "bad").exists()

    reg = run(home, "models", "register", str(model_dir), "--activate", "--quiet")
    assert reg.returncode == 0, reg.stderr
    assert reg.stdout.splitlines()[:2] == [f"registered {summary['id']} (knowledge-encoder): {model_dir}",
                                           f"activated {summary['id']}"]
    shown = json.loads(run(home, "models", "show", summary["id"]).stdout)
    assert shown["active"] is True and shown["data_hash"] == run_config["data_hash"] and shown["seed"] == 5
    assert shown["metrics"]["headline"] == summary["headline"]

    twice = run(home, "models", "register", str(model_dir))
    assert twice.returncode == 2 and summary["id"] in twice.stderr
    (tmp_path / "no-card").mkdir()
    card = run(home, "models", "register", str(tmp_path / "no-card"))
    assert card.returncode == 2 and "no config.json" in card.stderr


# Options of the commands that are not job-config keys (where the model goes, resuming, activating, output) and
# config keys that have no option (a job's GPUs; on the command line torchrun decides).
CLI_ONLY = {"knowledge-encoder": {"out", "resume", "activate", "quiet"}, "clip": {"out", "activate", "quiet"}}
JSON_ONLY = {"knowledge-encoder": set(), "clip": {"gpus"}}


@pytest.mark.parametrize("kind", ["knowledge-encoder", "clip"])
def test_cli_options_are_the_job_config_keys(kind: str) -> None:
    """`phenokg train <kind> --help` and `POST /jobs` config speak one language: every key has an option of
    the same name (dashes for underscores) and every option a key; ranges agree; old spellings stay hidden."""
    import typer
    from typer.core import TyperOption
    from typer.testing import CliRunner

    from app.cli.main import app
    from app.schemas.job_configs import CONFIG_MODELS, RENAMED

    command = typer.main.get_command(app).commands["train"].commands[kind]  # type: ignore[attr-defined]
    options = [p for p in command.params if isinstance(p, TyperOption)]
    shown = {p.name: p for p in options if not p.hidden}
    hidden = {p.name for p in options if p.hidden}
    model = CONFIG_MODELS[kind]
    keys = set(model.model_fields)
    assert set(shown) - CLI_ONLY[kind] == keys - JSON_ONLY[kind]
    properties = model.model_json_schema()["properties"]
    for name in keys - JSON_ONLY[kind]:
        option = shown[name]
        assert f"--{name.replace('_', '-')}" in option.opts, (name, option.opts)
        bounds: dict[str, float] = next((s for s in properties[name].get("anyOf", [properties[name]])
                       if "minimum" in s or "maximum" in s), {})
        if isinstance(option.default, str):
            continue  # parsed by the command: 'all' or N (text_trainable_layers), a number or 'none' (grad_clip)
        if option.min is not None or option.max is not None or bounds:  # the same range on both sides
            assert (option.min, option.max) == (bounds.get("minimum"), bounds.get("maximum")), name
    assert hidden and hidden <= set(RENAMED) and all(RENAMED[h] in keys for h in hidden)
    shown_help = CliRunner().invoke(app, ["train", kind, "--help"], terminal_width=200).output
    assert "--temperature" in shown_help and "--tau" not in shown_help

