"""``spec.json``: what the API asks a training job to do, written once by the job manager
(:mod:`app.services.jobs.manager`) and read by the job's entry point (:mod:`models.train.job_entry`)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from kg.errors import ValidationError
from models.registry import write_json_atomic

SPEC_FILE: Final = "spec.json"
JobKind = Literal["knowledge-encoder", "clip"]
JOB_KINDS: Final[tuple[JobKind, ...]] = ("knowledge-encoder", "clip")


@dataclass(frozen=True)
class JobSpec:
    """One training job: its ids, where its data is and its model goes, the trainer's config and the options."""

    job_id: str
    kind: JobKind
    model_id: str
    out_dir: str
    data_file: str
    train: dict[str, Any] = field(default_factory=dict)  # the trainer config (``*TrainConfig.from_dict``)
    options: dict[str, Any] = field(default_factory=dict)  # the job options of its kind, as JSON

    @property
    def gpus(self) -> int:
        """GPUs to reserve: ``options.gpus``, or 1 when a CUDA device is named."""
        gpus = int(self.options.get("gpus") or 0)
        if not gpus and str(self.options.get("device", "")).startswith("cuda"):
            return 1
        return gpus

    @property
    def device(self) -> str:
        return str(self.options.get("device") or "auto")

    def write(self, job_dir: Path) -> Path:
        path = job_dir / SPEC_FILE
        write_json_atomic(path, asdict(self))
        return path

    @classmethod
    def read(cls, job_dir: Path) -> JobSpec:
        """The spec in ``job_dir``; a missing or malformed file raises :class:`ValidationError` naming it."""
        path = job_dir / SPEC_FILE
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValidationError(f"{path}: cannot read the job spec: {exc}") from exc
        if not isinstance(raw, dict):
            raise ValidationError(f"{path}: the job spec is not a JSON object")
        missing = [name for name in ("job_id", "kind", "model_id", "out_dir", "data_file") if not raw.get(name)]
        if missing:
            raise ValidationError(f"{path}: the job spec lacks {', '.join(missing)}")
        if raw["kind"] not in JOB_KINDS:
            raise ValidationError(f"{path}: unknown job kind {raw['kind']!r} (known: {', '.join(JOB_KINDS)})")
        return cls(job_id=str(raw["job_id"]), kind=raw["kind"], model_id=str(raw["model_id"]),
                   out_dir=str(raw["out_dir"]), data_file=str(raw["data_file"]), train=dict(raw.get("train") or {}),
                   options=dict(raw.get("options") or {}))
