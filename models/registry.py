"""Model registry, file side: a trained model is a directory; helpers to write, read and identify it.

Layout of a model directory (``kind`` decides the weights part)::

    <dir>/config.json        what made it: kind, hyper-parameters, base model, data hash, seed, code version
    <dir>/metrics.json       evaluation figures (with the same data hash and seed) + training summary
    <dir>/encoder/           knowledge encoder: model.safetensors + tokenizer + configs (TextEncoder.save)
    <dir>/model/             CLIP model (CLIPModel.save: image/, text/, heads.safetensors)

plus training by-products (``metrics.jsonl``, ``checkpoint.pt`` for ``--resume``, ``summary.json``).
The graph side (:mod:`kg.repo.registry`) records the directory as a ``(:ModelVersion)``.

No torch at import time: :func:`load_knowledge_encoder` imports it lazily.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields, is_dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

from kg.errors import ValidationError

if TYPE_CHECKING:
    from models.encoders import TextEncoder

__all__ = [
    "CLIP_DIR",
    "CONFIG_FILE",
    "ENCODER_DIR",
    "METRICS_FILE",
    "ModelDir",
    "RunResult",
    "attribute_records",
    "code_version",
    "config_from_dict",
    "data_hash",
    "json_safe",
    "knowledge_encoder_dir",
    "load_knowledge_encoder",
    "new_model_id",
    "pick_device",
    "read_model_dir",
    "write_json_atomic",
    "write_model_card",
]

CONFIG_FILE: Final = "config.json"
METRICS_FILE: Final = "metrics.json"
ENCODER_DIR: Final = "encoder"
CLIP_DIR: Final = "model"
PACKAGE: Final = "phenokg"
_REPO_ROOT: Final = Path(__file__).resolve().parents[1]


def json_safe(value: Any) -> Any:
    """Recursively: dataclasses → dicts, tuples/sets → lists, Paths → str, NaN/inf → None."""
    if is_dataclass(value) and not isinstance(value, type):
        return json_safe(asdict(value))
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(json_safe(v) for v in value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


_Config = TypeVar("_Config")


def config_from_dict(cls: type[_Config], data: Mapping[str, Any]) -> _Config:
    """Build the config dataclass ``cls`` from ``data``; unknown keys raise ``ValueError``."""
    unknown = set(data) - {f.name for f in fields(cls)}  # type: ignore[arg-type]
    if unknown:
        raise ValidationError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
    return cls(**dict(data))


def data_hash(obj: Any) -> str:
    """``sha256:`` + hex digest of ``obj`` as canonical JSON (sorted keys, no spaces, dataclasses as dicts).

    Equal data gives an equal hash whatever the dict order; any changed attribute, id or split changes it.
    """
    canonical = json.dumps(json_safe(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def code_version(repo: Path | None = None) -> str:
    """``git rev-parse HEAD`` of the source tree (``+dirty`` with uncommitted tracked changes), else
    ``phenokg <package version>``."""
    root = repo or _REPO_ROOT
    if (root / ".git").exists():
        try:
            head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                  text=True, timeout=10, check=True).stdout.strip()
            dirty = subprocess.run(["git", "-C", str(root), "diff", "--quiet", "HEAD", "--"],
                                   capture_output=True, timeout=30).returncode == 1
            if head:
                return head + ("+dirty" if dirty else "")
        except (OSError, subprocess.SubprocessError):
            pass
    try:
        from importlib.metadata import PackageNotFoundError, version

        return f"{PACKAGE} {version(PACKAGE)}"
    except PackageNotFoundError:
        return f"{PACKAGE} unknown"


def new_model_id(kind: str, *, now: datetime | None = None) -> str:
    """``<kind>-YYYYmmdd-HHMMSS-<6 hex>`` (sortable by time, unique in practice)."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    return f"{kind}-{stamp}-{secrets.token_hex(3)}"


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(json_safe(data), indent=2, sort_keys=True, ensure_ascii=False) + "\n",
                   encoding="utf-8")
    os.replace(tmp, path)


def write_model_card(directory: Path, config: Mapping[str, Any], metrics: Mapping[str, Any]) -> None:
    """Write ``config.json`` and ``metrics.json`` into a model directory."""
    write_json_atomic(Path(directory) / CONFIG_FILE, dict(config))
    write_json_atomic(Path(directory) / METRICS_FILE, dict(metrics))


@dataclass(frozen=True)
class ModelDir:
    """A model directory as read back: its config, metrics and where the weights are."""

    path: Path
    config: dict[str, Any]
    metrics: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.config.get("kind", ""))

    def weights(self) -> list[Path]:
        """Every ``*.safetensors`` file under the directory."""
        return sorted(self.path.rglob("*.safetensors"))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from exc
    if not isinstance(data, dict):
        raise ValidationError(f"{path}: expected a JSON object")
    return data


def read_model_dir(directory: str | Path) -> ModelDir:
    """Read ``config.json`` and ``metrics.json`` (missing metrics: ``{}``); the directory must hold weights."""
    root = Path(directory).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"model directory not found: {root}")
    config_path = root / CONFIG_FILE
    if not config_path.is_file():
        raise FileNotFoundError(f"{root}: no {CONFIG_FILE} (not a phenokg model directory)")
    metrics_path = root / METRICS_FILE
    model = ModelDir(root, _read_json(config_path), _read_json(metrics_path) if metrics_path.is_file() else {})
    if not model.weights():
        raise FileNotFoundError(f"{root}: no *.safetensors weights")
    return model


def knowledge_encoder_dir(directory: str | Path) -> Path:
    """The text-encoder directory of a knowledge-encoder model (``<dir>/encoder``), or ``directory`` itself
    when it already is one (loadable by :meth:`models.encoders.TextEncoder.from_pretrained`)."""
    root = Path(directory).expanduser()
    inner = root / ENCODER_DIR
    return inner if inner.is_dir() else root


def load_knowledge_encoder(directory: str | Path, **kwargs: Any) -> TextEncoder:
    """Load the knowledge encoder of a model directory (or a text-encoder directory)."""
    from models.encoders import TextEncoder

    return TextEncoder.from_pretrained(knowledge_encoder_dir(directory), **kwargs)


def attribute_records(attributes: Iterable[Any]) -> list[dict[str, Any]]:
    """Canonical records of :class:`models.types.PhenotypeAttributes` for :func:`data_hash` (sorted by id)."""
    rows = [json_safe(a) for a in attributes]
    return sorted(rows, key=lambda r: str(r.get("id", "")))


@dataclass
class RunResult:
    """What a training run produced: ids, the model directory and the two JSON documents written into it."""

    model_id: str
    out_dir: Path
    data_hash: str
    seed: int
    code_version: str
    config: dict[str, Any]
    metrics: dict[str, Any]


def pick_device(device: str | None) -> str:
    """``auto`` / ``None`` → ``cuda`` when there is a GPU, else ``cpu``; ``cuda…`` without one is an error."""
    import torch

    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValidationError(f"device {device!r} requested but CUDA is not available")
    return str(device)
