"""Job configs, validated with pydantic against the real training config dataclasses.

A job's ``config`` is one flat object: the fields of :class:`models.train.knowledge.KnowledgeTrainConfig` or
:class:`models.train.clip_train.ClipTrainConfig` (their types and defaults, read from the dataclasses, plus range
checks), and the run options the matching command takes (``phenokg train knowledge-encoder`` /
``phenokg train clip``). Unknown keys and bad values are errors; the dataclass itself is then built, so its own
checks (``__post_init__``) run too. The result splits back into the dataclass and the options.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final, Literal, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator
from pydantic.fields import FieldInfo

from models.train.job_spec import JobKind

__all__ = ["KINDS", "JobConfig", "validate_config"]

KINDS: Final = ("knowledge-encoder", "clip")
DEVICE_PATTERN: Final = r"^(auto|cpu|cuda(:\d+)?)$"

# Range checks of the dataclass fields (the dataclasses give types and defaults; these mirror the CLI options).
_KNOWLEDGE_RANGES: Final[dict[str, FieldInfo]] = {
    "seed": Field(ge=0), "batch_size": Field(ge=2), "lr": Field(ge=0), "weight_decay": Field(ge=0),
    "epochs": Field(ge=1), "max_steps": Field(ge=1), "warmup_steps": Field(ge=0), "temperature": Field(ge=1e-4),
    "max_length": Field(ge=8, le=512), "grad_clip": Field(gt=0), "checkpoint_every": Field(ge=1),
    "log_every": Field(ge=1), "name_anchor_prob": Field(ge=0, le=1), "trainable_layers": Field(ge=1),
}
_CLIP_RANGES: Final[dict[str, FieldInfo]] = {
    "embed_dim": Field(ge=1), "image_size": Field(ge=16, le=1024), "batch_size": Field(ge=2), "lr": Field(ge=0),
    "text_lr": Field(ge=0), "weight_decay": Field(ge=0), "epochs": Field(ge=1), "max_steps": Field(ge=1),
    "warmup_steps": Field(ge=0), "temperature": Field(ge=1e-3), "w_kd": Field(ge=0), "w_soft": Field(ge=0),
    "identity_weight": Field(ge=0, le=1), "max_length": Field(ge=8, le=512), "text_trainable_layers": Field(ge=0),
    "grad_clip": Field(gt=0), "seed": Field(ge=0), "num_workers": Field(ge=0, le=64), "log_every": Field(ge=1),
}
_PATH_FIELDS: Final = ("model_path", "image_checkpoint", "teacher_model")


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device: Annotated[str, Field(pattern=DEVICE_PATTERN, description="auto | cpu | cuda[:N]")] = "auto"


class KnowledgeOptions(_Options):
    """Run options of a knowledge-encoder job (as ``phenokg train knowledge-encoder``)."""

    held_out_fraction: Annotated[float, Field(ge=0, le=0.9)] = 0.05
    branch: str = Field(default="HP:0000118", description="Ontology branch to train on ('all': every live term)")
    baseline: bool = Field(default=True, description="Also evaluate the untrained base model")
    gold: str | None = Field(default=None, description="Gold mentions (GSC+ file) on the server, for normalisation")


class ClipOptions(_Options):
    """Run options of an image–text job (as ``phenokg train clip``)."""

    source: str = Field(min_length=1, description="Evidence source (dataset) to train on")
    split: str | None = Field(default="train", description="Split to train on (null or 'all': every item)")
    eval_split: str | None = Field(default="val", description="Validation split: evaluated on, and retrieval's "
                                   "grounding is calibrated on it (null or 'none': skip both)")
    captions: Literal["stored", "coarse", "medium", "fine", "mixed"] = "stored"
    text_model: str = Field(default="active", description="'active', 'packaged', a model id or a directory")
    k: list[Annotated[int, Field(ge=1)]] = Field(default_factory=lambda: [1, 5, 10], min_length=1)
    gpus: Annotated[int, Field(ge=0, le=64, description="GPUs of the job (>1: torchrun data-parallel)")] = 0


@dataclass(frozen=True)
class JobConfig:
    """A validated job config: the training dataclass and the run options."""

    kind: JobKind
    train: Any
    options: BaseModel

    def to_dict(self) -> dict[str, Any]:
        """The config as recorded: training fields and options in one object (as submitted)."""
        return {**dataclasses.asdict(self.train), **self.options.model_dump(mode="json")}


def _model(kind: str, dataclass_type: type, options: type[_Options], ranges: dict[str, FieldInfo],
           exclude: tuple[str, ...]) -> type[BaseModel]:
    hints = get_type_hints(dataclass_type)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(dataclass_type):
        if f.name in exclude:
            continue
        default = f.default if f.default is not dataclasses.MISSING else None
        if f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        hint = hints[f.name]
        fields[f.name] = (Annotated[hint, ranges[f.name]] if f.name in ranges else hint, default)
    train_names = frozenset(fields)

    def build(model: BaseModel) -> BaseModel:
        values = {k: getattr(model, k) for k in train_names}
        for key in _PATH_FIELDS:
            if values.get(key) and not Path(str(values[key])).expanduser().exists():
                raise ValueError(f"{key}: {values[key]} does not exist on the server")
        dataclass_type(**values)  # the dataclass's own checks (__post_init__)
        return model

    name = re.sub(r"\W", "", kind.title())
    validators: dict[str, Any] = {"check_dataclass": model_validator(mode="after")(build)}
    return create_model(f"{name}JobConfig", __base__=options, __validators__=validators, **fields)


def _models() -> dict[str, tuple[type[BaseModel], type, type[_Options]]]:
    from models.train.clip_train import ClipTrainConfig
    from models.train.knowledge import KnowledgeTrainConfig

    return {
        "knowledge-encoder": (_model("knowledge-encoder", KnowledgeTrainConfig, KnowledgeOptions,
                                     _KNOWLEDGE_RANGES, ()), KnowledgeTrainConfig, KnowledgeOptions),
        # text_model is an option here (resolved at submission), as with `phenokg train clip --text-model`
        "clip": (_model("clip", ClipTrainConfig, ClipOptions, _CLIP_RANGES, ("text_model",)), ClipTrainConfig,
                 ClipOptions),
    }


_CACHE: dict[str, tuple[type[BaseModel], type, type[_Options]]] = {}


def validate_config(kind: JobKind, config: dict[str, Any]) -> JobConfig:
    """Validate ``config`` for ``kind``; raises :class:`pydantic.ValidationError` (locations inside config)."""
    if not _CACHE:
        _CACHE.update(_models())
    model_type, dataclass_type, options_type = _CACHE[kind]
    model = model_type.model_validate(config)
    values = model.model_dump()
    option_names = set(options_type.model_fields)
    train = dataclass_type(**{k: v for k, v in values.items() if k not in option_names})
    options = options_type.model_validate({k: v for k, v in values.items() if k in option_names})
    return JobConfig(kind, train, options)


__all__ += ["ClipOptions", "KnowledgeOptions", "ValidationError"]
