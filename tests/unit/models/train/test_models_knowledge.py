"""Knowledge-encoder training smoke tests on synthetic phenotypes (models.train.knowledge)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from models.encoders import TextEncoder
from models.train.knowledge import (
    KnowledgeTrainConfig,
    evaluate_attribute_retrieval,
    lr_lambda,
    train_knowledge_encoder,
)
from models.types import PhenotypeAttributes

ORGANS = ["heart", "lung", "kidney", "liver", "spleen", "brain"]
CHANGES = [
    ("Enlarged", "increased size of the"),
    ("Small", "reduced size of the"),
    ("Absent", "congenital absence of the"),
    ("Cystic", "presence of cysts in the"),
    ("Calcified", "calcium deposits in the"),
]


def synthetic_phenotypes() -> list[PhenotypeAttributes]:
    """36 phenotypes: one root per organ and five children, each with definition, synonym and parent."""
    out: list[PhenotypeAttributes] = []
    for oi, organ in enumerate(ORGANS):
        root = PhenotypeAttributes(
            f"HP:{oi:03d}0000", f"Abnormal {organ} morphology", f"Any structural anomaly of the {organ}."
        )
        out.append(root)
        for ci, (adj, desc) in enumerate(CHANGES, start=1):
            out.append(
                PhenotypeAttributes(
                    f"HP:{oi:03d}{ci:04d}",
                    f"{adj} {organ}",
                    f"A {desc} {organ}.",
                    synonyms=(f"{organ} {adj.lower()}ness",),
                    parents=(root.name,),
                    parent_ids=(root.id,),
                )
            )
    return out


def _config(model_dir: Path, **overrides: Any) -> KnowledgeTrainConfig:
    base = KnowledgeTrainConfig(
        model_path=str(model_dir),
        seed=1,
        batch_size=8,
        lr=1e-3,
        max_steps=8,
        max_length=32,
        warmup_steps=2,
        checkpoint_every=3,
    )
    return replace(base, **overrides)


def _losses(out_dir: Path) -> list[float]:
    lines = (out_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["loss"] for line in lines]


def test_smoke_loss_falls_and_artefacts_are_written(tiny_bert_dir: Path, tmp_path: Path) -> None:
    cfg = _config(tiny_bert_dir, max_steps=24, schedule="constant", warmup_steps=0)
    rng_before = torch.get_rng_state()
    deterministic_before = torch.are_deterministic_algorithms_enabled()
    summary = train_knowledge_encoder(synthetic_phenotypes(), cfg, tmp_path, progress=False)
    losses = _losses(tmp_path)
    assert len(losses) == 24 and summary["steps"] == 24 and summary["finished"] == 1.0
    assert sum(losses[-6:]) / 6 < 0.6 * (sum(losses[:6]) / 6)
    assert summary["final_loss"] == losses[-1]
    for name in ("checkpoint.pt", "config.json", "summary.json", "encoder/model.safetensors"):
        assert (tmp_path / name).exists(), name
    assert KnowledgeTrainConfig.from_dict(json.loads((tmp_path / "config.json").read_text())) == cfg
    trained = TextEncoder.from_pretrained(tmp_path / "encoder")
    assert trained.encode(["Enlarged heart"]).shape == (1, 32)
    # the caller's RNG and determinism settings are left as they were
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert torch.are_deterministic_algorithms_enabled() == deterministic_before
    row = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    assert {"step", "epoch", "loss", "lr", "temperature", "batch_size", "masked_pairs"} <= set(row)


def test_same_seed_same_metrics(tiny_bert_dir: Path, tmp_path: Path) -> None:
    cfg = _config(tiny_bert_dir, max_steps=5)
    a = train_knowledge_encoder(synthetic_phenotypes(), cfg, tmp_path / "a", progress=False)
    b = train_knowledge_encoder(synthetic_phenotypes(), cfg, tmp_path / "b", progress=False)
    assert _losses(tmp_path / "a") == _losses(tmp_path / "b")
    assert a["final_loss"] == b["final_loss"]
    c = train_knowledge_encoder(
        synthetic_phenotypes(), _config(tiny_bert_dir, max_steps=5, seed=2), tmp_path / "c"
    )
    assert _losses(tmp_path / "c") != _losses(tmp_path / "a")
    assert c["steps"] == 5


def test_resume_reproduces_the_uninterrupted_run(tiny_bert_dir: Path, tmp_path: Path) -> None:
    cfg = _config(tiny_bert_dir)
    full = train_knowledge_encoder(synthetic_phenotypes(), cfg, tmp_path / "full", progress=False)

    part = train_knowledge_encoder(
        synthetic_phenotypes(), cfg, tmp_path / "part", progress=False, stop_at_step=5
    )
    assert part["finished"] == 0.0 and part["steps"] == 5
    assert not (tmp_path / "part" / "encoder").exists()
    # a run killed after its last checkpoint may have logged steps beyond it; resume must drop them
    with (tmp_path / "part" / "metrics.jsonl").open("a") as fh:
        fh.write(json.dumps({"step": 6, "loss": -1.0}) + "\n")
    resumed = train_knowledge_encoder(
        synthetic_phenotypes(), cfg, tmp_path / "part", progress=False, resume=True
    )

    assert resumed["finished"] == 1.0 and resumed["steps"] == full["steps"] == 8
    assert resumed["final_loss"] == pytest.approx(full["final_loss"], abs=1e-6)
    assert _losses(tmp_path / "part") == pytest.approx(_losses(tmp_path / "full"), abs=1e-6)
    a = TextEncoder.from_pretrained(tmp_path / "full" / "encoder").encode(["Cystic kidney"])
    b = TextEncoder.from_pretrained(tmp_path / "part" / "encoder").encode(["Cystic kidney"])
    assert torch.allclose(a, b, atol=1e-6)

    with pytest.raises(ValueError, match="config changed"):
        train_knowledge_encoder(
            synthetic_phenotypes(),
            _config(tiny_bert_dir, lr=5e-4),
            tmp_path / "part",
            progress=False,
            resume=True,
        )


def test_a_checkpoint_from_before_a_new_field_resumes_with_its_default(tiny_bert_dir: Path) -> None:
    from models.train.knowledge import _check_resumable

    cfg = _config(tiny_bert_dir)
    older = {k: v for k, v in cfg.to_dict().items() if k not in ("paraphrases", "trainable_layers")}
    _check_resumable(older, cfg)  # the missing fields ran with their defaults: nothing changed
    with pytest.raises(ValueError, match="paraphrases: False -> True"):
        _check_resumable(older, replace(cfg, paraphrases=True))


def test_top_layers_only_kind_weights_and_paraphrases(tiny_bert_dir: Path, tmp_path: Path) -> None:
    cfg = _config(tiny_bert_dir, max_steps=4, trainable_layers=1, name_anchor_prob=0.8, paraphrases=True,
                  kind_weights={"synonym": 3.0, "relation": 0.5, "paraphrase": 2.0})
    train_knowledge_encoder(synthetic_phenotypes(), cfg, tmp_path, progress=False)
    before = TextEncoder.from_pretrained(tiny_bert_dir).model.state_dict()
    after = TextEncoder.from_pretrained(tmp_path / "encoder").model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("encoder.layer.1.") for k in changed)  # only the top layer moved
    assert KnowledgeTrainConfig.from_dict(json.loads((tmp_path / "config.json").read_text())) == cfg
    with pytest.raises(ValueError, match="trainable_layers"):
        _config(tiny_bert_dir, trainable_layers=0)
    with pytest.raises(ValueError, match="unknown attribute kind"):
        _config(tiny_bert_dir, kind_weights={"parent": 1.0})


def test_nothing_to_train_raises(tiny_bert_dir: Path, tmp_path: Path) -> None:
    lonely = [PhenotypeAttributes("HP:1", "Only a name")]
    with pytest.raises(ValueError, match="nothing to train"):
        train_knowledge_encoder(lonely, _config(tiny_bert_dir), tmp_path, progress=False)


def test_lr_schedule() -> None:
    kw = {"warmup_steps": 4, "total_steps": 14}
    assert lr_lambda(0, schedule="cosine", **kw) == pytest.approx(0.25)
    assert lr_lambda(3, schedule="cosine", **kw) == pytest.approx(1.0)
    assert lr_lambda(4, schedule="cosine", **kw) == pytest.approx(1.0)
    assert lr_lambda(9, schedule="cosine", **kw) == pytest.approx(0.5)
    assert lr_lambda(14, schedule="cosine", **kw) == pytest.approx(0.0, abs=1e-12)
    assert lr_lambda(9, schedule="linear", **kw) == pytest.approx(0.5)
    assert lr_lambda(13, schedule="constant", **kw) == 1.0


class _LookupEncoder:
    """Maps each text to a fixed vector so that retrieval results are known in advance."""

    def __init__(self, table: dict[str, int], dim: int) -> None:
        self.table, self.dim = table, dim

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        out = torch.zeros(len(texts), self.dim)
        for i, t in enumerate(texts):
            out[i, self.table.get(t, self.dim - 1)] = 1.0
        return out


def test_attribute_retrieval_recall() -> None:
    held_out = [
        PhenotypeAttributes("HP:1", "Cardiomegaly", "Enlarged heart.", synonyms=("Large heart",)),
        PhenotypeAttributes(
            "HP:2", "Pneumothorax", "Air in the pleural space.", parents=("Pleural anomaly",)
        ),
    ]
    table = {
        "Cardiomegaly": 0,
        "Enlarged heart.": 0,
        "Large heart": 1,  # wrong: lands on pneumothorax
        "Pneumothorax": 1,
        "Air in the pleural space.": 1,
        "Distractor": 2,
    }
    result = evaluate_attribute_retrieval(
        _LookupEncoder(table, 4), held_out, k=(1, 2), distractors=["Distractor"]
    )
    assert result["n_queries"] == 3 and result["gallery_size"] == 3
    assert result["R@1"] == pytest.approx(2 / 3)
    assert result["R@2"] == pytest.approx(1.0)
    assert result["R@1/definition"] == 1.0 and result["R@1/synonym"] == 0.0
    with pytest.raises(ValueError):
        evaluate_attribute_retrieval(_LookupEncoder(table, 4), [PhenotypeAttributes("HP:3", "Bare")])


@pytest.mark.slow
def test_packaged_minilm_few_steps_and_retrieval(tmp_path: Path) -> None:
    """The real packaged MiniLM trains a few steps and retrieves names from definitions (slow on CPU)."""
    phenotypes = synthetic_phenotypes()
    cfg = KnowledgeTrainConfig(seed=0, batch_size=8, lr=2e-5, max_steps=3, max_length=32, checkpoint_every=10)
    summary = train_knowledge_encoder(phenotypes, cfg, tmp_path, progress=False)
    assert summary["steps"] == 3
    encoder = TextEncoder.from_pretrained(tmp_path / "encoder")
    assert encoder.dim == 384
    result = evaluate_attribute_retrieval(encoder, phenotypes, k=(1, 10))
    assert result["R@10"] > 0.8
