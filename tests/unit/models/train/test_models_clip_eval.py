"""Image–text evaluation, evidence re-captioning, npz manifests, frozen text towers and CLIP determinism."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from models.encoders import CLIPModel, ImageEncoder, TextEncoder, freeze_text_layers
from models.npz_evidence import MANIFEST, parse_label_map, write_npz_manifest
from models.prompts import phenotype_prompt
from models.train.clip_data import EvidenceDataset, SetTheoryCaptionDataset
from models.train.clip_eval import evaluate_clip, linear_probe, recall_at_k
from models.train.clip_run import ClipData
from models.train.clip_train import build_clip_model, train_clip
from tests.unit.models.train.test_models_clip_train import DISEASES, _images, tiny_config

BY_ID = {d.id: d for d in DISEASES.values()}


def test_recall_at_k_one_and_many_positives() -> None:
    sims = torch.tensor([[0.9, 0.1, 0.5], [0.2, 0.3, 0.8], [0.0, 0.0, 0.0]])
    eye = torch.eye(3, dtype=torch.bool)
    r = recall_at_k(sims, eye, (1, 2))
    # query 0: right at rank 1; query 1: right item (0.3) at rank 2; query 2: all tied, stable order → rank 3
    assert r[1] == pytest.approx(1 / 3) and r[2] == pytest.approx(2 / 3)
    many = torch.tensor([[True, False, True], [False, False, False], [False, True, True]])
    r = recall_at_k(sims, many, (1, 2, 5))
    # query 1 has no positive and is skipped; query 0 top-2 = {0, 2} both right; query 2 ties → {0, 1}: one
    assert r[1] == pytest.approx((1 + 0) / 2) and r[2] == pytest.approx((1 + 0.5) / 2)
    assert r[5] == pytest.approx(1.0)  # K beyond the gallery: everything found
    assert all(math.isnan(v) for v in recall_at_k(sims, torch.zeros(3, 3, dtype=torch.bool), (1,)).values())
    with pytest.raises(ValueError, match="shape"):
        recall_at_k(sims, eye[:2], (1,))
    assert phenotype_prompt("Pleural effusion") == "Chest radiograph showing pleural effusion."


def _views(tmp_path: Path, n: int = 8) -> list[dict[str, object]]:
    images, labels = _images(n)
    views = []
    for i in range(n):
        path = tmp_path / f"{i}.png"
        Image.fromarray(images[i]).save(path)
        finding = DISEASES[int(labels[i])].id
        views.append({"id": f"ev:{i}", "blob_path": str(path), "caption": f"stored {i}",
                      "shows": ["HP:0032177"] if labels[i] else [], "rules_out": ["HP:0100598"],
                      "sha256": str(i), "extra": {"label": int(labels[i]), "finding": finding, "split": "test"}})
    return views


def test_evidence_dataset_recaptions_from_the_finding(tmp_path: Path) -> None:
    views = _views(tmp_path)
    stored = EvidenceDataset(views, image_size=16)
    assert [stored.caption_for(i) for i in range(3)] == ["stored 0", "stored 1", "stored 2"]
    assert stored.labels == [0, 1, 0, 1, 0, 1, 0, 1]
    fine = EvidenceDataset(views, image_size=16, captions="fine", diseases=BY_ID, seed=3)
    text = fine.caption_for(1)
    assert "parenchymal consolidation" in text.lower() and "pulmonary edema" in text.lower()
    assert [fine.caption_for(i) for i in range(8)] == [fine.caption_for(i) for i in range(8)]  # seeded
    fine.set_epoch(1)
    again = EvidenceDataset(views, image_size=16, captions="fine", diseases=BY_ID, seed=3)
    again.set_epoch(1)
    assert [fine.caption_for(i) for i in range(8)] == [again.caption_for(i) for i in range(8)]
    coarse = EvidenceDataset(views, image_size=16, captions="coarse", diseases=BY_ID)
    assert all("consolidation" not in coarse.caption_for(i).lower() for i in range(8))
    assert fine.images().shape == (8, 1, 16, 16) and fine[1].label == 1
    with pytest.raises(ValueError, match="no typical/excluded sets"):
        EvidenceDataset(views, captions="fine", diseases={})
    with pytest.raises(ValueError, match="captions must be"):
        EvidenceDataset(views, captions="huge")  # type: ignore[arg-type]

    data = ClipData(views, BY_ID, {"HP:0032177": "Parenchymal consolidation", "HP:0100598": "Pulmonary edema"},
                    {"source": "t", "split": "test"})
    assert data.classes() == DISEASES
    assert data.hash() == ClipData(list(reversed(views)), BY_ID).hash()  # order-free
    clash = [*views, {**views[0], "id": "ev:x", "extra": {"label": 0, "finding": "CXR:pneumonia"}}]
    with pytest.raises(ValueError, match="two findings"):
        ClipData(clash, BY_ID).classes()


def test_evaluate_clip_and_linear_probe(tiny_bert_dir: Path, tmp_path: Path) -> None:
    views = _views(tmp_path, 12)
    torch.manual_seed(0)
    model, teacher = build_clip_model(tiny_config(tiny_bert_dir, w_kd=0.0))
    assert teacher is None  # nothing to distil
    data = ClipData(views, BY_ID, {"HP:0032177": "Parenchymal consolidation", "HP:0100598": "Pulmonary edema"})
    ds = data.dataset(32)
    out = evaluate_clip(model, ds, data.classes(), data.phenotype_names, ks=(1, 2))
    assert set(out["zero_shot"]) == {"coarse", "medium", "fine"}
    assert all(0 <= z["accuracy"] <= 1 and z["n"] == 12 for z in out["zero_shot"].values())
    assert out["retrieval"]["distinct_captions"] == 12 and set(out["retrieval"]) >= {"I2T@1", "T2I@2"}
    pr = out["phenotype_retrieval"]
    assert pr["phenotypes"] == 2 and pr["images_with_phenotypes"] == 6
    assert pr["I2P@2"] == pytest.approx(1.0)  # two candidates: the one right answer is always in the top 2
    assert model.training  # mode restored

    images, labels = ds.images(), ds.labels
    probe = linear_probe(model.image_encoder, images, labels, images, labels)
    assert probe["accuracy"] == pytest.approx(1.0)  # separable by construction, fitted on the same images
    with pytest.raises(ValueError, match="two classes"):
        linear_probe(model.image_encoder, images[:1], labels[:1], images, labels)


def test_npz_manifest(tmp_path: Path) -> None:
    assert parse_label_map("0=CXR:no_finding, 1=CXR:pneumonia") == {0: "CXR:no_finding", 1: "CXR:pneumonia"}
    for bad, msg in (("0", "LABEL=DISEASE_ID"), ("a=CXR:x", "integer"), ("0=a,0=b", "twice"), ("", "empty")):
        with pytest.raises(ValueError, match=msg):
            parse_label_map(bad)
    images, labels = _images(6)
    npz = tmp_path / "tiny.npz"
    np.savez(npz, train_images=images, train_labels=labels.reshape(-1, 1).astype(np.uint8),
             test_images=images[:2], test_labels=labels[:2].reshape(-1, 1).astype(np.uint8))
    a = write_npz_manifest(npz, tmp_path / "a", DISEASES, dataset="tiny", license="CC0", splits=("train", "test"),
                           progress=False)
    assert a.records == 8 and a.per_split == {"train": 6, "test": 2}
    rows = [json.loads(x) for x in (tmp_path / "a" / MANIFEST).read_text().splitlines()]
    assert rows[1]["finding"] == "CXR:pneumonia" and rows[1]["label"] == 1 and rows[1]["split"] == "train"
    assert "pulmonary edema" in rows[1]["caption"].lower() and "consolidation" in rows[1]["caption"].lower()
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a" / rows[1]["image"])), images[1])
    b = write_npz_manifest(npz, tmp_path / "b", DISEASES, dataset="tiny", license="CC0", splits=("train", "test"),
                           limit=1, progress=False)
    assert b.per_split == {"train": 1, "test": 1}
    first = json.loads((tmp_path / "b" / MANIFEST).read_text().splitlines()[0])
    assert first == rows[first["index"]]  # a random subset, but the same caption for the same image and seed
    with pytest.raises(ValueError, match="no disease in the label map"):
        write_npz_manifest(npz, tmp_path / "c", {0: DISEASES[0]}, dataset="t", license="x", splits=("train",),
                           progress=False)
    for name, content in (("text.npz", b"hello"), ("zip.npz", b"PK\x03\x04garbage")):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError, match=r"not a NumPy \.npz archive"):
            write_npz_manifest(tmp_path / name, tmp_path / "d", DISEASES, dataset="t", license="x", progress=False)
    np.save(tmp_path / "one.npy", images)
    with pytest.raises(ValueError, match=r"single \.npy array"):
        write_npz_manifest(tmp_path / "one.npy", tmp_path / "d", DISEASES, dataset="t", license="x", progress=False)
    with pytest.raises(ValueError, match="no val_images"):
        write_npz_manifest(npz, tmp_path / "c", DISEASES, dataset="t", license="x", splits=("val",), progress=False)


def test_freeze_text_layers(tiny_bert_dir: Path) -> None:
    text = TextEncoder.from_pretrained(tiny_bert_dir)
    assert freeze_text_layers(text, None) == 2
    assert not any(p.requires_grad for n, p in text.model.named_parameters() if n.startswith("pooler."))
    assert freeze_text_layers(text, 1) == 1
    trainable = {n.split(".")[2] for n, p in text.model.named_parameters() if p.requires_grad}
    assert trainable == {"1"}  # encoder.layer.1.* only
    assert freeze_text_layers(text, 0) == 0 and not any(p.requires_grad for p in text.parameters())


def test_frozen_text_tower_trains_heads_only_and_is_deterministic(tiny_bert_dir: Path,
                                                                  tmp_path: Path) -> None:
    images, labels = _images(32)
    ds = SetTheoryCaptionDataset(images, labels, DISEASES, image_size=32, seed=0)
    cfg = tiny_config(tiny_bert_dir, text_trainable_layers=0, max_steps=30, lr=3e-3, w_soft=0.0,
                      warmup_steps=0)
    a = train_clip(ds, cfg, tmp_path / "a", device="cpu", progress=False)
    assert a["final"]["distill"] == 0.0  # skipped: nothing to distil into a frozen tower
    rows = [json.loads(x) for x in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["total"] for r in rows]
    assert len(losses) == 30 and sum(losses[-5:]) / 5 < 0.85 * sum(losses[:5]) / 5  # the loss falls
    trained = CLIPModel.load(tmp_path / "a" / "model")
    base = TextEncoder.from_pretrained(tiny_bert_dir)
    for (name, p), q in zip(trained.text_encoder.named_parameters(), base.parameters(), strict=True):
        assert torch.equal(p, q), name  # the text tower did not move
    fresh = ImageEncoder.from_pretrained(model_name="test_efficientnet", pretrained=False)
    assert sum(p.numel() for p in fresh.parameters()) == sum(p.numel() for p in trained.image_encoder.parameters())

    b = train_clip(ds, cfg, tmp_path / "b", device="cpu", progress=False)  # same seed, same data, CPU
    assert b["final"] == a["final"] and b["parameter_checksum"] == a["parameter_checksum"]
    other = train_clip(ds, tiny_config(tiny_bert_dir, text_trainable_layers=0, max_steps=3, seed=1), tmp_path / "c",
                       device="cpu", progress=False)
    assert other["first_loss"] != a["first_loss"]
