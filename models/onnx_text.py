"""ONNX Runtime inference for text encoders: the CPU backend of :class:`models.embeddings.TextEmbedder`.

A :class:`models.encoders.TextEncoder` (transformer + pooling + L2 normalisation) is exported once with
``torch.onnx.export`` (dynamic batch and sequence axes) and cached as a file keyed by the encoder's
fingerprint, the precision and the ONNX Runtime version; later loads reuse the file. Two precisions:

* ``fp32``: the same computation as PyTorch (vectors equal to ~1e-7), ~2× faster on this project's CPU;
* ``int8``: dynamic per-channel int8 quantisation of the MatMul weights (``onnxruntime.quantization``),
  ~4× faster; it changes the vectors (min cosine to fp32 ≈ 0.96 on HPO strings), so its vectors carry
  their own fingerprint.

Sessions are thread-safe for ``run`` (ONNX Runtime's guarantee), so one model can serve concurrent requests.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np

from kg.errors import ValidationError

if TYPE_CHECKING:
    from models.encoders import TextEncoder

__all__ = ["OPSET", "OnnxTextModel", "Precision", "export_text_encoder", "onnx_available", "onnx_cache_file"]

Precision = Literal["fp32", "int8"]
OPSET: Final = 17
_INPUTS: Final = ("input_ids", "attention_mask")

log = logging.getLogger(__name__)


def onnx_available() -> bool:
    """Whether ONNX Runtime (and the ``onnx`` package the export and quantiser need) can be imported."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def onnx_cache_file(cache_dir: Path, fingerprint: str, precision: Precision) -> Path:
    """Where the exported model of an encoder (by fingerprint) is kept for ``precision``."""
    import onnxruntime

    key = hashlib.sha256(f"{fingerprint}|{precision}|opset={OPSET}|ort={onnxruntime.__version__}|"
                         f"torch={_torch_version()}".encode()).hexdigest()[:16]
    return Path(cache_dir) / f"text-encoder-{key}-{precision}.onnx"


def _torch_version() -> str:
    """``torch.__version__`` (part of an export's cache key), read from torch's ``version.py`` so that finding a
    cached export does not import torch (≈ 500 MB resident); the installed distribution's version if unreadable."""
    import importlib.util
    import re
    from importlib.metadata import version

    torch_mod = sys.modules.get("torch")
    if torch_mod is not None:
        return str(torch_mod.__version__)
    spec = importlib.util.find_spec("torch")
    if spec is not None and spec.origin:
        try:
            text = (Path(spec.origin).parent / "version.py").read_text(encoding="utf-8")
            found = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", text, re.MULTILINE)
            if found:
                return found.group(1)
        except OSError:
            pass
    return version("torch")


def _export_module(encoder: TextEncoder) -> Any:
    """The encoder's forward on (input_ids, attention_mask) only: the graph ONNX sees."""
    import torch

    class _Export(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            emb: torch.Tensor = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
            return emb

    return _Export()


def export_text_encoder(encoder: TextEncoder, target: Path, precision: Precision = "fp32") -> Path:
    """Export ``encoder`` (pooled, normalised output) to ``target``; ``int8`` also quantises it.

    Written through a temporary file in the same directory and renamed, so a concurrent reader sees either
    nothing or a whole file.
    """
    if precision not in ("fp32", "int8"):
        raise ValidationError(f"precision must be 'fp32' or 'int8', not {precision!r}")
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    import torch

    module = _export_module(encoder).eval().to("cpu")
    sample = encoder.tokenize(["an example phenotype", "seizures"])
    args = tuple(sample[name].to("cpu") for name in _INPUTS)
    axes = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
            "embedding": {0: "batch"}}
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".export-") as tmp:
        fp32 = Path(tmp) / "model.onnx"
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, args, str(fp32), input_names=list(_INPUTS), output_names=["embedding"],
                              dynamic_axes=axes, opset_version=OPSET, dynamo=False)
        result = fp32
        if precision == "int8":
            import onnx
            from onnxruntime.quantization import QuantType, quantize_dynamic

            result = Path(tmp) / "model-int8.onnx"
            quantize_dynamic(str(fp32), str(result), weight_type=QuantType.QInt8, per_channel=True,
                             extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        os.replace(result, target)
    return target


def _default_threads() -> int:
    """torch's intra-op thread count when torch is loaded (as before), else what torch would pick without being
    imported: the physical cores, at most the CPUs this process may run on."""
    torch_mod = sys.modules.get("torch")
    if torch_mod is not None:
        return int(torch_mod.get_num_threads())
    import psutil

    try:
        allowed = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        allowed = os.cpu_count() or 1
    return max(1, min(allowed, psutil.cpu_count(logical=False) or allowed))


class OnnxTextModel:
    """An exported text encoder in an ONNX Runtime CPU session: ``(input_ids, attention_mask) → [B, dim]``."""

    def __init__(self, path: Path, *, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads or _default_threads())
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._outputs = [self.session.get_outputs()[0].name]

    @classmethod
    def cached(cls, cache_dir: Path, fingerprint: str, precision: Precision, *,
               threads: int | None = None) -> OnnxTextModel | None:
        """The cached export for ``fingerprint`` / ``precision`` if there is one (no torch needed), else None."""
        path = onnx_cache_file(cache_dir, fingerprint, precision)
        return cls(path, threads=threads) if path.is_file() else None

    @classmethod
    def load_or_export(cls, encoder: TextEncoder, cache_dir: Path, fingerprint: str, precision: Precision,
                       *, threads: int | None = None) -> OnnxTextModel:
        """The cached export for ``fingerprint`` / ``precision``, exporting ``encoder`` first if missing."""
        path = onnx_cache_file(cache_dir, fingerprint, precision)
        if not path.is_file():
            log.info("exporting the text encoder to ONNX (%s): %s", precision, path)
            export_text_encoder(encoder, path, precision)
        return cls(path, threads=threads)

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        feeds: dict[str, Any] = {"input_ids": input_ids.astype(np.int64, copy=False),
                                 "attention_mask": attention_mask.astype(np.int64, copy=False)}
        out: np.ndarray = self.session.run(self._outputs, feeds)[0]
        return out.astype(np.float32, copy=False)
