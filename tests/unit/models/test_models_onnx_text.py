"""The ONNX Runtime backend of TextEmbedder: same vectors as PyTorch, cached export, int8 identity, choice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models import embeddings as emb_mod
from models.embeddings import BACKEND_ENV, TextEmbedder, encoder_info
from models.onnx_text import onnx_cache_file

TEXTS = ["Seizures", "Short stature", "Abnormality of the cardiovascular system", "seizures",
         "A very long phenotype description that runs to many more word pieces than the others do", ""]


def test_onnx_fp32_gives_the_torch_vectors_and_caches_its_export(tiny_bert_dir: Path,
                                                                  tmp_path: Path) -> None:
    torch_emb = TextEmbedder.load(tiny_bert_dir, device="cpu", backend="torch")
    onnx_emb = TextEmbedder.load(tiny_bert_dir, device="cpu", backend="onnx", cache_dir=tmp_path)
    assert torch_emb.backend == "torch" and onnx_emb.backend == "onnx-fp32"
    assert onnx_emb.fingerprint == torch_emb.fingerprint  # same vectors, same identity
    a, b = torch_emb.encode(TEXTS, max_tokens=40), onnx_emb.encode(TEXTS, max_tokens=40)
    assert a.shape == b.shape == (len(TEXTS), 32)
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(onnx_emb.encode_query("Seizures"), b[0], atol=1e-6)

    exported = onnx_cache_file(tmp_path, onnx_emb.fingerprint, "fp32")
    assert exported.is_file() and not list(tmp_path.glob(".export-*"))
    stamp = exported.stat().st_mtime_ns
    again = TextEmbedder.load(tiny_bert_dir, device="cpu", backend="onnx", cache_dir=tmp_path)
    assert exported.stat().st_mtime_ns == stamp  # reused, not exported again
    np.testing.assert_allclose(again.encode(TEXTS), b, atol=1e-6)


def test_int8_has_its_own_fingerprint_and_stays_close(tiny_bert_dir: Path, tmp_path: Path) -> None:
    fp32 = TextEmbedder.load(tiny_bert_dir, device="cpu", backend="onnx", cache_dir=tmp_path)
    int8 = TextEmbedder.load(tiny_bert_dir, device="cpu", quantize=True, cache_dir=tmp_path)
    assert int8.backend == "onnx-int8" and int8.info.quantized
    assert int8.fingerprint != fp32.fingerprint
    assert int8.fingerprint == encoder_info(tiny_bert_dir, quantized=True).fingerprint
    cos = (fp32.encode(TEXTS) * int8.encode(TEXTS)).sum(1)
    assert cos.min() > 0.9


def test_backend_choice_and_clear_errors(tiny_bert_dir: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BACKEND_ENV, "torch")
    assert TextEmbedder.load(tiny_bert_dir, device="cpu", cache_dir=tmp_path).backend == "torch"
    monkeypatch.setenv(BACKEND_ENV, "tensorrt")
    with pytest.raises(ValueError, match="unknown embedding backend 'tensorrt'"):
        TextEmbedder.load(tiny_bert_dir, device="cpu", cache_dir=tmp_path)
    monkeypatch.delenv(BACKEND_ENV)
    assert TextEmbedder.load(tiny_bert_dir, device="cpu", cache_dir=tmp_path).backend == "onnx-fp32"  # auto
    with pytest.raises(ValueError, match="int8 vectors are made by ONNX Runtime"):
        TextEmbedder.load(tiny_bert_dir, device="cpu", backend="torch", quantize=True)
    with pytest.raises(ValueError, match="CPU only"):
        TextEmbedder.load(tiny_bert_dir, device="cuda", backend="onnx")


def test_a_failed_fp32_export_falls_back_to_torch(tiny_bert_dir: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("unsupported operator")

    monkeypatch.setattr(emb_mod.OnnxTextModel, "load_or_export", broken)
    with pytest.warns(RuntimeWarning, match="unsupported operator"):
        fallback = TextEmbedder.load(tiny_bert_dir, device="cpu", backend="onnx", cache_dir=tmp_path)
    assert fallback.backend == "torch" and fallback.encode(["Seizures"]).shape == (1, 32)
    with pytest.raises(ValueError, match=r"for int8 \(unsupported operator\)"):
        TextEmbedder.load(tiny_bert_dir, device="cpu", quantize=True, cache_dir=tmp_path)
