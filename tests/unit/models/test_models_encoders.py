"""Text / image encoders and the CLIP dual encoder on the packaged weights (models.encoders)."""

from __future__ import annotations

import math
from collections import OrderedDict
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

from models.encoders import (
    CLIPModel,
    ImageEncoder,
    ProjectionHead,
    TextEncoder,
    load_state_dict_by_position,
    packaged_lite0_checkpoint,
    packaged_text_model_path,
)

TEXTS = [
    "Pleural effusion",
    "Accumulation of fluid in the pleural space.",
    "Cardiomegaly is a child phenotype of Abnormal heart morphology",
    "no evidence of pneumothorax",
]
CROSSWORD = 918  # ImageNet class "crossword puzzle, crossword"


@pytest.fixture(scope="module")
def packaged_state() -> OrderedDict[str, torch.Tensor]:
    sd = torch.load(str(packaged_lite0_checkpoint()), map_location="cpu", weights_only=True)
    assert isinstance(sd, OrderedDict)
    return sd


@pytest.fixture(scope="module")
def minilm() -> TextEncoder:
    return TextEncoder.from_pretrained(None)


def _checkerboard(square: int = 28, size: int = 224) -> torch.Tensor:
    y = torch.arange(size)
    return (((y[:, None] // square) + (y[None, :] // square)) % 2).float()[None, None]


# ------------------------------------------------------------------------------------------- image


def test_packaged_lite0_loads_strictly_by_position(packaged_state: OrderedDict[str, torch.Tensor]) -> None:
    assert len(packaged_state) == 296
    enc = ImageEncoder.from_pretrained().eval()
    assert enc.num_classes == 0 and enc.dim == 1280
    net: Any = enc.model
    assert torch.equal(net.conv_stem.weight, packaged_state["_conv_stem.weight"])
    assert torch.equal(net.bn2.running_var, packaged_state["_bn1.running_var"])
    grey = torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        feats = enc(grey)
        rgb = enc(grey.repeat(1, 3, 1, 1))
    assert feats.shape == (1, 1280) and torch.isfinite(feats).all()
    assert torch.allclose(feats, rgb)  # grey input is replicated to RGB inside the encoder
    with pytest.raises(ValueError):
        enc(torch.rand(1, 2, 64, 64))


def test_packaged_lite0_imagenet_head_is_confident_and_stable(
    packaged_state: OrderedDict[str, torch.Tensor],
) -> None:
    """A checkerboard is a 'crossword puzzle' for an ImageNet model; random weights have no opinion."""
    enc = ImageEncoder.from_pretrained(num_classes=1000).eval()
    net: Any = enc.model
    assert torch.equal(net.classifier.weight, packaged_state["_fc.weight"])
    board = _checkerboard()
    for seed in range(3):
        noisy = (
            board + 0.05 * torch.randn(board.shape, generator=torch.Generator().manual_seed(seed))
        ).clamp(0, 1)
        with torch.no_grad():
            probs = enc(noisy).softmax(dim=-1)[0]
        assert int(probs.argmax()) == CROSSWORD
        assert float(probs[CROSSWORD]) > 0.3
    torch.manual_seed(0)
    random_enc = ImageEncoder.from_pretrained(num_classes=1000, pretrained=False).eval()
    with torch.no_grad():
        assert float(random_enc(board).softmax(dim=-1)[0, CROSSWORD]) < 0.05


def test_position_mapping_reports_mismatches(packaged_state: OrderedDict[str, torch.Tensor]) -> None:
    import timm

    net = timm.create_model("efficientnet_lite0", pretrained=False)
    items = list(packaged_state.items())
    swapped = OrderedDict([items[1], items[0], *items[2:]])
    with pytest.raises(ValueError, match=r"position 0: _bn0.weight has shape \(32,\)"):
        load_state_dict_by_position(net, swapped)
    with pytest.raises(ValueError, match="295 tensors"):
        load_state_dict_by_position(net, OrderedDict(items[:-1]))
    with pytest.raises(ValueError, match="no packaged weights"):
        ImageEncoder.from_pretrained(model_name="resnet18")


def test_user_checkpoints_by_name_and_round_trip(tmp_path: Path) -> None:
    import timm

    torch.manual_seed(1)
    net = timm.create_model("efficientnet_lite0", pretrained=False, num_classes=0)
    sd = net.state_dict()
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}}, tmp_path / "wrapped.pt")
    save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp_path / "plain.safetensors"))
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        expected = net.eval()((x - 0.5) / 0.5)
    for name in ("wrapped.pt", "plain.safetensors"):
        enc = ImageEncoder.from_pretrained(tmp_path / name, mean=(0.5,) * 3, std=(0.5,) * 3).eval()
        with torch.no_grad():
            assert torch.allclose(enc(x), expected, atol=1e-6)
    enc.save(tmp_path / "saved")
    again = ImageEncoder.from_pretrained(tmp_path / "saved").eval()
    with torch.no_grad():
        assert torch.equal(again(x), enc(x))
    assert again.model_name == "efficientnet_lite0" and again.dim == 1280


def test_image_tower_of_a_whole_clip_checkpoint_loads_by_name_under_its_prefix(tmp_path: Path) -> None:
    """An open_clip-style checkpoint (BiomedCLIP keeps its timm trunk under ``visual.trunk.``, next to the text
    tower): the image tower is found by name under that prefix; a tensor of the wrong shape is one clear error."""
    import timm

    torch.manual_seed(2)
    net = timm.create_model("efficientnet_lite0", pretrained=False, num_classes=0).eval()
    sd = net.state_dict()
    clip_sd = {**{f"visual.trunk.{k}": v for k, v in sd.items()}, "visual.head.proj.weight": torch.zeros(8, 1280),
               "text.transformer.embeddings.word_embeddings.weight": torch.zeros(10, 4), "logit_scale": torch.ones(())}
    torch.save({"state_dict": clip_sd}, tmp_path / "open_clip_model.bin")
    enc = ImageEncoder.from_pretrained(tmp_path / "open_clip_model.bin", mean=(0.5,) * 3, std=(0.5,) * 3).eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(enc(x), net((x - 0.5) / 0.5), atol=1e-6)

    first = next(iter(sd))
    clip_sd[f"visual.trunk.{first}"] = torch.zeros(3, 3)
    torch.save(clip_sd, tmp_path / "bad.bin")
    with pytest.raises(ValueError, match=rf"visual\.trunk\.{first} has shape \(3, 3\)"):
        ImageEncoder.from_pretrained(tmp_path / "bad.bin")


# -------------------------------------------------------------------------------------------- text


def test_minilm_matches_sentence_transformers(minilm: TextEncoder) -> None:
    from sentence_transformers import SentenceTransformer

    emb = minilm.encode(TEXTS, batch_size=3)
    assert emb.shape == (4, 384) and minilm.dim == 384
    assert torch.allclose(emb.norm(dim=1), torch.ones(4), atol=1e-5)
    st = SentenceTransformer(str(packaged_text_model_path()), device="cpu")
    ref = torch.from_numpy(st.encode(TEXTS, convert_to_numpy=True))
    cos = torch.nn.functional.cosine_similarity(emb, ref)
    assert float(cos.min()) > 0.999


def test_text_encoder_save_and_reload_round_trip(minilm: TextEncoder, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    before = minilm.encode(TEXTS)
    minilm.save(tmp_path / "enc")
    assert (tmp_path / "enc" / "model.safetensors").exists()
    again = TextEncoder.from_pretrained(tmp_path / "enc")
    assert torch.allclose(again.encode(TEXTS), before, atol=1e-6)
    assert (again.pooling, again.max_length, again.normalize) == ("mean", 256, True)
    st = SentenceTransformer(str(tmp_path / "enc"), device="cpu")  # the saved dir is a valid ST model too
    assert torch.allclose(torch.from_numpy(st.encode(TEXTS, convert_to_numpy=True)), before, atol=1e-4)


def test_text_model_paths_that_are_not_model_directories(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        TextEncoder.from_pretrained(tmp_path / "missing")
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ValueError, match="is a file: a text model is a directory"):
        TextEncoder.from_pretrained(tmp_path / "weights.bin")
    with pytest.raises(ValueError, match=r"no config\.json"):
        TextEncoder.from_pretrained(tmp_path)


def test_plain_hf_checkpoint_and_training_forward(tiny_bert_dir: Path) -> None:
    enc = TextEncoder.from_pretrained(tiny_bert_dir, max_length=16)
    assert enc.dim == 32 and enc.pooling == "mean" and enc.max_length == 16
    enc.train()
    tokens = enc.tokenize(TEXTS)
    assert tokens["input_ids"].shape[1] <= 16
    out = enc(tokens["input_ids"], tokens["attention_mask"])
    assert out.shape == (4, 32) and torch.allclose(out.norm(dim=1), torch.ones(4), atol=1e-5)
    out.sum().backward()
    bert: Any = enc.model
    assert bert.embeddings.word_embeddings.weight.grad is not None
    assert enc.training  # encode() restores the mode it found
    enc.encode(TEXTS[:1])
    assert enc.training
    with pytest.raises(TypeError):
        enc.encode("one string")
    with pytest.raises(FileNotFoundError):
        TextEncoder.from_pretrained(tiny_bert_dir / "missing")


# -------------------------------------------------------------------------------------------- CLIP


def test_clip_model_features_scale_and_round_trip(tiny_bert_dir: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = CLIPModel(
        ImageEncoder.from_pretrained(), TextEncoder.from_pretrained(tiny_bert_dir), 64, teacher_dim=384
    ).eval()
    assert float(model.scale().detach()) == pytest.approx(1 / 0.07, rel=1e-5)
    images = torch.rand(2, 1, 64, 64)
    tokens = model.tokenize(TEXTS[:2])
    with torch.no_grad():
        out = model(images, tokens["input_ids"], tokens["attention_mask"])
    assert out["image_features"].shape == (2, 64) and out["text_features"].shape == (2, 64)
    assert out["distill_features"].shape == (2, 384)  # mapped to the teacher's width
    for key in ("image_features", "text_features", "distill_features"):
        assert torch.allclose(out[key].norm(dim=1), torch.ones(2), atol=1e-5)
    with torch.no_grad():
        model.logit_scale.fill_(10.0)
    assert float(model.scale().detach()) == pytest.approx(100.0)
    model.clamp_logit_scale_()
    assert float(model.logit_scale.detach()) == pytest.approx(math.log(100.0))
    with torch.no_grad():
        out = model(images, tokens["input_ids"], tokens["attention_mask"])
    model.save(tmp_path / "clip")
    again = CLIPModel.load(tmp_path / "clip").eval()
    with torch.no_grad():
        out2 = again(images, tokens["input_ids"], tokens["attention_mask"])
    for key in out:
        assert torch.allclose(out[key], out2[key], atol=1e-6), key
    assert ProjectionHead(8, 4, kind="mlp")(torch.rand(3, 8)).shape == (3, 4)
    with pytest.raises(ValueError):
        ProjectionHead(8, 4, kind="none")
