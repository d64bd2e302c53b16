"""Job configs: one flat pydantic model per job kind, generated from the training config dataclasses.

A job's ``config`` holds the fields of :class:`models.train.configs.KnowledgeTrainConfig` or
:class:`models.train.configs.ClipTrainConfig` (their types and defaults, read from the dataclasses, plus the ranges
and descriptions here) and the run options of the matching command. The JSON keys are the names of the
command's options (``text_trainable_layers`` ↔ ``phenokg train clip --text-trainable-layers``). Unknown keys
and bad values are errors; the dataclass is then built, so its own checks (``__post_init__``) run too.
"""

from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator
from pydantic.fields import FieldInfo

from models.train.configs import ClipTrainConfig, KnowledgeTrainConfig
from models.train.job_spec import JobKind

__all__ = ["CONFIG_MODELS", "OPTIONS", "RENAMED", "TRAIN_DATACLASSES", "ClipJobConfig", "ClipOptions", "JobOptions",
           "KnowledgeEncoderJobConfig", "KnowledgeOptions", "describe", "unknown_key_message", "valid_keys"]

DEVICE_PATTERN: Final = r"^(auto|cpu|cuda(:\d+)?)$"
# Earlier spellings of the command-line options (still accepted there, hidden) → the key of the same meaning.
RENAMED: Final = {"tau": "temperature", "text_layers": "text_trainable_layers", "base_model": "model_path"}
_PATH_FIELDS: Final = ("model_path", "image_checkpoint", "teacher_model")

# Ranges and descriptions of the dataclass fields (the dataclasses give types and defaults).
_COMMON: Final[dict[str, FieldInfo]] = {
    "seed": Field(ge=0, description="Seed of the split, the batches, the weights' RNG (and clip: the captions)"),
    "batch_size": Field(ge=2, description="Examples per batch (in-batch negatives; per GPU)"),
    "lr": Field(ge=0, description="AdamW learning rate"),
    "weight_decay": Field(ge=0, description="AdamW weight decay (not on biases, norms and the temperature)"),
    "epochs": Field(ge=1, description="Epochs (ignored when max_steps is set)"),
    "max_steps": Field(ge=1, description="Stop after this many optimizer steps (cycling epochs as needed)"),
    "warmup_steps": Field(ge=0, description="Linear warm-up steps"),
    "max_length": Field(ge=8, le=512, description="Tokens per text"),
    "grad_clip": Field(gt=0, description="Gradient-norm clipping (null: none)"),
    "log_every": Field(ge=1, description="Log metrics every N steps"),
}
_KNOWLEDGE: Final[dict[str, FieldInfo]] = {
    **_COMMON,
    "model_path": Field(description="Initial text model: a local Hugging Face / sentence-transformers directory "
                                    "on the server (null: the packaged all-MiniLM-L6-v2)"),
    "temperature": Field(ge=1e-4, description="InfoNCE temperature"),
    "schedule": Field(description="Learning-rate decay after the warm-up"),
    "learnable_temperature": Field(description="Learn the temperature (starting at temperature)"),
    "checkpoint_every": Field(ge=1, description="Checkpoint every N steps (a run can be resumed from it)"),
    "single_attribute": Field(description="Phenotypes with a single attribute: skip them, or pair the name with "
                                          "a templated copy"),
    "name_anchor_prob": Field(ge=0, le=1, description="Probability that one side of a pair is the phenotype's "
                                                      "name"),
    "kind_weights": Field(description="Sampling weight per attribute kind, e.g. {\"synonym\": 3, \"relation\": "
                                      "0.5} (kinds not named weigh 1; null: uniform)"),
    "trainable_layers": Field(ge=1, description="Train only the top N transformer layers (null: all)"),
    "paraphrases": Field(description="Add mention-style paraphrases of grouping terms ('cutaneous "
                                     "abnormalities' for Abnormality of the skin) as a 'paraphrase' attribute kind"),
}
_CLIP: Final[dict[str, FieldInfo]] = {
    **_COMMON,
    "image_model": Field(description="timm architecture of the image tower"),
    "image_checkpoint": Field(description="Image tower weights on the server: a timm checkpoint / safetensors file "
                                          "or a saved image encoder (null: the packaged ImageNet EfficientNet-Lite0)"),
    "image_pretrained": Field(description="Start the image tower from pretrained weights (false: random)"),
    "teacher_model": Field(description="Frozen distillation teacher directory on the server (null: the text "
                                       "model)"),
    "embed_dim": Field(ge=1, description="Dimension of the shared image–text space"),
    "image_size": Field(ge=16, le=1024, description="Input side in pixels"),
    "text_lr": Field(ge=0, description="Learning rate of the text tower"),
    "temperature": Field(ge=1e-3, description="Initial InfoNCE temperature"),
    "w_kd": Field(ge=0, description="Weight of the distillation term"),
    "w_soft": Field(ge=0, description="Weight of the Jaccard soft-target term"),
    "identity_weight": Field(ge=0, le=1, description="Soft targets: weight of the identity against the Jaccard "
                                                     "similarity of the items' phenotype sets"),
    "kd_mode": Field(description="Distillation: contrastive, relational or both"),
    "text_trainable_layers": Field(ge=0, description="Text-tower layers that train: null all, N the top N, 0 none "
                                                     "(frozen tower, caption embeddings cached: much faster on a "
                                                     "CPU)"),
    "augment": Field(description="Random affine and exposure jitter of training images"),
    "amp": Field(description="Mixed precision on CUDA (ignored on a CPU)"),
    "num_workers": Field(ge=0, le=64, description="DataLoader workers"),
    "channels_last": Field(description="On CUDA, keep the image tower in channels-last memory format"),
}


class JobOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device: Annotated[str, Field(pattern=DEVICE_PATTERN, description="auto | cpu | cuda[:N]")] = "auto"


class KnowledgeOptions(JobOptions):
    """Run options of a knowledge-encoder job (as ``phenokg train knowledge-encoder``)."""

    held_out_fraction: Annotated[float, Field(ge=0, le=0.9, description="Fraction of phenotypes (with a "
                                              "definition or synonym) held out for evaluation")] = 0.05
    branch: str = Field(default="HP:0000118", description="Ontology branch to train on ('all': every live term)")
    baseline: bool = Field(default=True, description="Also evaluate the untrained base model")
    gold: str | None = Field(default=None, description="Gold mentions (GSC+ file) on the server, for normalisation")


class ClipOptions(JobOptions):
    """Run options of an image–text job (as ``phenokg train clip``)."""

    source: str = Field(min_length=1, description="Evidence source (dataset) to train on")
    split: str | None = Field(default="train", description="Split to train on (null or 'all': every item)")
    eval_split: str | None = Field(default="val", description="Validation split: evaluated on, and retrieval's "
                                   "grounding is calibrated on it (null or 'none': skip both)")
    captions: Literal["stored", "coarse", "medium", "fine", "mixed"] = Field(
        default="stored", description="Stored captions, or re-captioned from each item's finding sets every epoch")
    text_model: str = Field(default="active", description="Text tower init and distillation teacher: 'active' (the "
                            "active knowledge encoder, else the packaged MiniLM), 'packaged', a model id or a "
                            "directory")
    k: list[Annotated[int, Field(ge=1)]] = Field(default=[1, 5, 10], min_length=1,
                                                 description="Recall cut-offs of the evaluation")
    gpus: Annotated[int, Field(ge=0, le=64, description="GPUs of the job (>1: torchrun data-parallel)")] = 0


def _model(name: str, dataclass_type: type, options: type[JobOptions], fields_info: dict[str, FieldInfo],
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
        fields[f.name] = (Annotated[hint, fields_info[f.name]] if f.name in fields_info else hint, default)
    train_names = frozenset(fields)

    def build(model: BaseModel) -> BaseModel:
        values = {k: getattr(model, k) for k in train_names}
        for key in _PATH_FIELDS:
            if values.get(key) and not Path(str(values[key])).expanduser().exists():
                raise ValueError(f"{key}: {values[key]} does not exist on the server")
        dataclass_type(**values)  # the dataclass's own checks (__post_init__)
        return model

    validators: dict[str, Any] = {"check_dataclass": model_validator(mode="after")(build)}
    model: type[BaseModel] = create_model(name, __base__=options, __validators__=validators, **fields)
    model.__doc__ = (f"Config of a {name.removesuffix('JobConfig').lower()} job: {dataclass_type.__name__} "
                     f"fields and the run options, flat. Unknown keys are 422.")
    return model


if TYPE_CHECKING:  # the generated models, as the type checker sees them
    class KnowledgeEncoderJobConfig(KnowledgeOptions): ...

    class ClipJobConfig(ClipOptions): ...
else:
    KnowledgeEncoderJobConfig = _model("KnowledgeEncoderJobConfig", KnowledgeTrainConfig, KnowledgeOptions,
                                       _KNOWLEDGE, ())
    # text_model is an option here (resolved at submission), as with `phenokg train clip --text-model`
    ClipJobConfig = _model("ClipJobConfig", ClipTrainConfig, ClipOptions, _CLIP, ("text_model",))

CONFIG_MODELS: Final[dict[str, type[BaseModel]]] = {"knowledge-encoder": KnowledgeEncoderJobConfig,
                                                    "clip": ClipJobConfig}
TRAIN_DATACLASSES: Final[dict[str, type]] = {"knowledge-encoder": KnowledgeTrainConfig, "clip": ClipTrainConfig}
OPTIONS: Final[dict[str, type[JobOptions]]] = {"knowledge-encoder": KnowledgeOptions, "clip": ClipOptions}


def valid_keys(kind: JobKind) -> list[str]:
    """The keys a config of ``kind`` accepts, sorted."""
    return sorted(CONFIG_MODELS[kind].model_fields)


def describe(kind: JobKind, key: str) -> str:
    """The description of a config key (the help of the command-line option of the same name)."""
    return CONFIG_MODELS[kind].model_fields[key].description or key


def unknown_key_message(kind: JobKind, key: str) -> str:
    """``unknown key 'epochz' (did you mean 'epochs'?); valid keys: …``."""
    keys = valid_keys(kind)
    close = [RENAMED[key]] if RENAMED.get(key) in keys else difflib.get_close_matches(key, keys, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key {key!r} for a {kind} job{hint}; valid keys: {', '.join(keys)}"
