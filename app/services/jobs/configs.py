"""Validated job configs, split back into the training dataclass and the run options.

The config models themselves (one per kind, generated from the training dataclasses, with every field, default
and range) are in :mod:`app.schemas.job_configs`; the API validates a request against them, the CLI and tests
call :func:`validate_config` with a plain dict.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Final

from pydantic import BaseModel, ValidationError

from app.schemas.job_configs import CONFIG_MODELS, OPTIONS, TRAIN_DATACLASSES, ClipOptions, KnowledgeOptions
from models.train.job_spec import JobKind

__all__ = ["KINDS", "ClipOptions", "JobConfig", "KnowledgeOptions", "ValidationError", "job_config",
           "validate_config"]

KINDS: Final = ("knowledge-encoder", "clip")


@dataclass(frozen=True)
class JobConfig:
    """A validated job config: the training dataclass and the run options."""

    kind: JobKind
    train: Any
    options: BaseModel

    def to_dict(self) -> dict[str, Any]:
        """The config as recorded: training fields and options in one object (as submitted)."""
        return {**dataclasses.asdict(self.train), **self.options.model_dump(mode="json")}


def job_config(kind: JobKind, model: BaseModel) -> JobConfig:
    """Split a validated config model of ``kind`` into the training dataclass and the run options."""
    values = model.model_dump()
    options_type = OPTIONS[kind]
    option_names = set(options_type.model_fields)
    train = TRAIN_DATACLASSES[kind](**{k: v for k, v in values.items() if k not in option_names})
    options = options_type.model_validate({k: v for k, v in values.items() if k in option_names})
    return JobConfig(kind, train, options)


def validate_config(kind: JobKind, config: dict[str, Any]) -> JobConfig:
    """Validate ``config`` for ``kind``; raises :class:`pydantic.ValidationError` (locations inside config)."""
    return job_config(kind, CONFIG_MODELS[kind].model_validate(config))
