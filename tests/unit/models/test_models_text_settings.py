"""The torch-free query encoder: an encoder's settings and tokenizer read without torch, the same token ids as
transformers' tokenizer, and a TextEmbedder on a cached ONNX export that serves the PyTorch vectors without
importing torch or keeping the PyTorch weights."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from models.embeddings import TextEmbedder
from models.text_settings import FastTokenizer, TextSpec, directory_settings, load_tokenizer
from tests.helpers import REPO_ROOT

TEXTS = ["Seizures", "Short stature", "Abnormality of the cardiovascular system", "seizures", "Café-au-lait spots",
         "ÉLAN naïve 3/4 (left) hand", "x " * 600, ""]


def test_fast_tokenizer_gives_the_transformers_token_ids() -> None:
    model_dir, settings = directory_settings(None)  # the packaged MiniLM (sentence-transformers directory)
    spec = TextSpec.load(None)
    assert isinstance(spec.tokenizer, FastTokenizer)
    assert (spec.max_length, spec.lowercase, spec.normalize, spec.dim) == (settings["max_length"], False, True, 384)
    reference = load_tokenizer(model_dir)
    ours = spec.tokenizer(TEXTS, add_special_tokens=True, truncation=True, max_length=spec.max_length)
    theirs = reference(TEXTS, add_special_tokens=True, truncation=True, max_length=spec.max_length, padding=False)
    assert ours["input_ids"] == theirs["input_ids"]
    assert max(len(ids) for ids in ours["input_ids"]) == spec.max_length  # truncated like transformers
    assert spec.tokenizer.pad_token_id == reference.pad_token_id


def test_a_cached_export_serves_queries_without_torch(tiny_bert_dir: Path, tmp_path: Path) -> None:
    texts = [t for t in TEXTS if len(t) < 100]  # the tiny BERT has 64 positions
    reference = TextEmbedder.load(tiny_bert_dir, device="cpu", backend="torch")
    exported = TextEmbedder.load(tiny_bert_dir, device="cpu", backend="onnx", cache_dir=tmp_path)
    assert exported.encoder is None  # the session does the work: the PyTorch weights are not kept
    expected = reference.encode(texts, max_tokens=40)
    np.testing.assert_allclose(exported.encode(texts, max_tokens=40), expected, atol=1e-5)
    # a fresh process finds the cached export: tokenizer + ONNX Runtime only, torch never imported
    code = ("import json, sys\n"
            "from models.embeddings import TextEmbedder\n"
            f"e = TextEmbedder.load({str(tiny_bert_dir)!r}, backend='onnx', cache_dir={str(tmp_path)!r})\n"
            f"v = e.encode_queries({texts!r})\n"
            "e.close()\n"
            "print(json.dumps({'torch': 'torch' in sys.modules, 'backend': e.backend, 'vectors': v.tolist()}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=str(REPO_ROOT), capture_output=True, text=True,
                         check=True, timeout=300)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["torch"] is False and result["backend"] == "onnx-fp32"
    np.testing.assert_allclose(np.array(result["vectors"], dtype=np.float32), expected, atol=1e-5)
