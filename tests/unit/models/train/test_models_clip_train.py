"""CLIP glue (models.train.clip_data, models.train.clip_train): datasets, a 2-step CPU run, and DDP over gloo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from models.encoders import CLIPModel
from models.images import resize_images, to_image_tensor
from models.train.clip_data import EvidenceDataset, SetTheoryCaptionDataset, collate_clip
from models.train.clip_eval import retrieval_recall, zero_shot_accuracy
from models.train.clip_train import ClipTrainConfig, default_loader_workers, train_clip
from models.types import DiseaseSets
from tests.helpers import REPO_ROOT

ROOT = REPO_ROOT
DISEASES = {
    0: DiseaseSets("CXR:no_finding", "No finding", (), (("HP:0002090", "Pneumonia"),)),
    1: DiseaseSets("CXR:pneumonia", "Pneumonia", (("HP:0032177", "Parenchymal consolidation"),),
                   (("HP:0100598", "Pulmonary edema"),)),
}


def _images(n: int = 16, size: int = 28) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = np.arange(n) % 2
    images = (rng.random((n, size, size)) * 255).astype(np.uint8)
    images[labels == 1, : size // 2] //= 4
    return images, labels


def tiny_config(model_dir: Path, **overrides: object) -> ClipTrainConfig:
    base: dict[str, object] = dict(image_model="test_efficientnet", image_pretrained=False,
                                   text_model=str(model_dir), embed_dim=16, image_size=32, batch_size=8,
                                   lr=1e-3, text_lr=1e-3, max_steps=2, max_length=32, w_kd=0.3, w_soft=0.5,
                                   log_every=1)
    base.update(overrides)
    return ClipTrainConfig.from_dict(base)


def test_image_tensor_and_datasets(tmp_path: Path) -> None:
    grey = to_image_tensor(np.full((28, 28), 255, dtype=np.uint8), 32)
    assert grey.shape == (1, 32, 32) and float(grey.max()) == pytest.approx(1.0)
    rgb = to_image_tensor(Image.new("RGBA", (10, 20), (255, 0, 0, 255)), 16)
    assert rgb.shape == (3, 16, 16) and float(rgb[0].mean()) == pytest.approx(1.0)

    images, labels = _images()
    ds = SetTheoryCaptionDataset(images, labels, DISEASES, image_size=32, seed=1)
    item = ds[1]
    assert item.label == 1 and item.phenotypes == frozenset({"CXR:pneumonia", "HP:0032177"})
    assert "pneumonia" in item.text.lower()
    epoch0 = [ds.caption_for(i) for i in range(len(ds))]
    assert [ds.caption_for(i) for i in range(len(ds))] == epoch0  # seeded
    ds.set_epoch(1)
    assert [ds.caption_for(i) for i in range(len(ds))] != epoch0  # re-drawn each epoch
    batch = collate_clip([ds[i] for i in range(4)])
    assert batch.images.shape == (4, 1, 32, 32) and batch.labels.tolist() == [0, 1, 0, 1]
    with pytest.raises(ValueError, match="labels without a disease"):
        SetTheoryCaptionDataset(images, labels + 1, DISEASES)

    Image.new("L", (8, 8), 128).save(tmp_path / "a.png")
    ev = EvidenceDataset([{"id": "ev:1", "blob_path": str(tmp_path / "a.png"), "caption": "Pneumonia.",
                           "shows": ["HP:0002090"]},
                          {"id": "ev:2", "blob_path": str(tmp_path / "gone"), "caption": "x", "shows": []}],
                         image_size=16)
    assert len(ev) == 1 and ev.missing == ["ev:2"]
    assert ev[0].image.shape == (1, 16, 16) and ev[0].phenotypes == frozenset({"HP:0002090"})
    assert ev.common_size() == (8, 8)  # one native size: on a GPU the trainer may resize the batches itself
    Image.new("L", (8, 12), 128).save(tmp_path / "b.png")
    mixed = EvidenceDataset([{"id": f"ev:{n}", "blob_path": str(tmp_path / n), "caption": "x", "shows": []}
                             for n in ("a.png", "b.png")], image_size=None)
    assert mixed.common_size() is None and mixed[1].image.shape == (1, 12, 8)


def test_train_clip_two_steps_and_evaluate(tiny_bert_dir: Path, tmp_path: Path) -> None:
    images, labels = _images()
    ds = SetTheoryCaptionDataset(images, labels, DISEASES, image_size=32, seed=0)
    summary = train_clip(ds, tiny_config(tiny_bert_dir), tmp_path / "clip", device="cpu", progress=False)
    assert summary["steps"] == 2 and summary["precision"] == "fp32"
    assert set(summary["final"]) == {"contrastive", "distill", "soft", "total"}
    assert all(np.isfinite(v) for v in summary["final"].values()) and summary["final"]["distill"] > 0
    rows = [json.loads(x) for x in (tmp_path / "clip" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    model = CLIPModel.load(tmp_path / "clip" / "model")
    stacked = torch.stack([ds[i].image for i in range(len(ds))])
    zs = zero_shot_accuracy(model, stacked, labels.tolist(), DISEASES)
    assert 0.0 <= zs["accuracy"] <= 1.0 and zs["n"] == 16
    rr = retrieval_recall(model, stacked, [ds.caption_for(i) for i in range(len(ds))], (1, 5))
    assert set(rr) == {"I2T@1", "I2T@5", "T2I@1", "T2I@5"}


def test_native_size_batches_resized_by_the_trainer_train_identically(tiny_bert_dir: Path, tmp_path: Path) -> None:
    """image_size=None (the GPU path: the trainer resizes whole batches) gives the same images, so the same
    run, as resizing each item in the loader; losses are read back only on logged steps."""
    images, labels = _images()
    native = SetTheoryCaptionDataset(images, labels, DISEASES, image_size=None, seed=0)
    sized = SetTheoryCaptionDataset(images, labels, DISEASES, image_size=32, seed=0)
    assert native[3].image.shape == (1, 28, 28)
    batch = torch.stack([native[i].image for i in range(4)])
    assert torch.equal(resize_images(batch, 32), torch.stack([sized[i].image for i in range(4)]))
    config = tiny_config(tiny_bert_dir, max_steps=4, log_every=3)
    a = train_clip(native, config, tmp_path / "native", device="cpu", progress=False)
    b = train_clip(sized, config, tmp_path / "sized", device="cpu", progress=False)
    assert a["final"] == b["final"] and a["parameter_checksum"] == b["parameter_checksum"]
    rows = [json.loads(x) for x in (tmp_path / "native" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 3, 4]


def test_default_loader_workers() -> None:
    assert default_loader_workers("cpu", cpus=64) == 0
    assert default_loader_workers("cuda", cpus=16) == 8 and default_loader_workers("cuda:1", cpus=4) == 3
    assert default_loader_workers("cuda", world_size=8, cpus=16) == 1
    assert default_loader_workers("cuda", world_size=2, cpus=2) == 0


@pytest.mark.slow  # two fresh interpreters importing torch + transformers: ~45 s on 2 busy cores
def test_ddp_gloo_two_processes(tiny_bert_dir: Path, tmp_path: Path) -> None:
    """torchrun --standalone --nproc_per_node 2: both ranks end with identical weights; rank 0 saves."""
    out = tmp_path / "ddp"
    config = tiny_config(tiny_bert_dir, batch_size=4).to_dict()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "models.train.clip_train", "--synthetic", "16", "--out", str(out), "--config", json.dumps(config),
         "--device", "cpu"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world_size"] == 2 and r["steps"] == 2 for r in ranks)
    assert ranks[0]["parameter_checksum"] == pytest.approx(ranks[1]["parameter_checksum"], rel=1e-6)
    assert (out / "model" / "heads.safetensors").is_file()
