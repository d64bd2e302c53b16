"""Image–text commands: labelled-image import, CLIP-style training and evaluation.

``phenokg evidence import-npz FILE``  MedMNIST-style arrays → Evidence with set-theory captions (PNG blobs,
                                      caption links via the linker, dataset / split / label / finding kept)
``phenokg train clip``                train an image–text model on a dataset's evidence (stored captions, or
                                      re-captioned at one granularity), evaluate it, register it (kind clip)
``phenokg evaluate MODEL``            zero-shot accuracy (coarse / medium / fine prompt ensembles), I2T / T2I
                                      and image → phenotype / phenotype → image recall@K, optional linear
                                      probe; the result records config, data hash, seed and code version

Heavy imports happen inside the commands.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, cast

import typer

from app.cli.support import graph_connection, note, settings
from app.schemas.job_configs import describe
from app.services.training import NO_ACTIVE_ENCODER, load_clip_data, resolve_text_model
from kg.errors import ValidationError

if TYPE_CHECKING:
    from kg.store.graph import Graph
    from models.train.clip_data import CaptionSource

TEXT_MODEL_HELP: Final = ("Text tower init and distillation teacher: 'active' (the active knowledge encoder, else "
                          "the packaged MiniLM), 'packaged', a registered model id, or a directory.")


def parse_ks(text: str) -> tuple[int, ...]:
    """``"1,5,10"`` → ``(1, 5, 10)``."""
    try:
        ks = tuple(sorted({int(x) for x in text.split(",") if x.strip()}))
    except ValueError as exc:
        raise ValidationError(f"--k {text!r}: expected comma-separated positive integers") from exc
    if not ks or ks[0] < 1:
        raise ValidationError(f"--k {text!r}: expected comma-separated positive integers")
    return ks


def parse_optional_float(text: str, option: str) -> float | None:
    """``"1.0"`` → 1.0, ``"none"`` → None (an option whose config value may be null); > 0."""
    if text.strip().lower() in ("none", "null", "off"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValidationError(f"{option}: expected a number or 'none', not {text!r}") from None
    if not value > 0:
        raise ValidationError(f"{option}: must be > 0 (or 'none'), not {text!r}")
    return value


def _c(key: str) -> str:
    """Help of a ``train clip`` option: the description of the job-config key of the same name."""
    return describe("clip", key) + "."


def _resolved(path: Path | None) -> str | None:
    return str(path.expanduser().resolve()) if path is not None else None


def _text_model(graph: Graph, text_model: str) -> tuple[str | None, str]:
    path, description = resolve_text_model(graph, text_model)
    if description == NO_ACTIVE_ENCODER:
        note("note: no active knowledge encoder: the text tower starts from the packaged MiniLM")
    return path, description



app = typer.Typer()  # evaluate
train_app = typer.Typer()  # train clip (merged into the train group)
evidence_app = typer.Typer()  # evidence import-npz (merged into the evidence group)

@evidence_app.command("import-npz")
def import_npz(
    file: Annotated[Path, typer.Argument(help="MedMNIST-style .npz (<split>_images, <split>_labels).")],
    labels: Annotated[str, typer.Option(help="Label → finding / disease id, e.g. "
                                             "'0=CXR:no_finding,1=CXR:pneumonia'.")],
    license: Annotated[str, typer.Option(help="License of the images, e.g. 'CC BY 4.0'.")],
    dataset: Annotated[str | None, typer.Option(help="Source name of the evidence (default: file stem).")
                       ] = None,
    splits: Annotated[str, typer.Option(help="Comma-separated splits to import (the test split stays out of the "
                                            "graph by default: held-out images must never be evidence).")
                      ] = "train,val",
    granularity: Annotated[str, typer.Option(help="Stored caption: coarse | medium | fine.")] = "fine",
    seed: Annotated[int, typer.Option(help="Seed of the caption templates and items.")] = 0,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many images per split.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Import labelled images as evidence with set-theory captions from each label's finding sets."""
    from kg.ingest.evidence import BlobStore, import_evidence, linker_from_graph
    from kg.repo.training_views import disease_sets
    from models.npz_evidence import parse_label_map, write_npz_manifest
    from models.views import to_disease_sets

    if not file.is_file():
        raise FileNotFoundError(f"{file}: no such file")
    if granularity not in ("coarse", "medium", "fine"):
        raise ValidationError(f"--granularity must be coarse, medium or fine, not {granularity!r}")
    label_map = parse_label_map(labels)
    split_list = [s.strip() for s in splits.split(",") if s.strip()]
    with graph_connection(migrated=True) as graph:
        found = {d.id: d for d in to_disease_sets(disease_sets(graph, ids=sorted(set(label_map.values()))))}
        unknown = sorted(set(label_map.values()) - set(found))
        if unknown:
            raise ValidationError(f"--labels: no finding or disease {unknown} in the graph (the chest X-ray pack "
                                  "ids look like CXR:pneumonia; build the graph with the pack)")
        with tempfile.TemporaryDirectory(prefix="phenokg-npz-") as tmp:
            manifest = write_npz_manifest(
                file, tmp, {k: found[v] for k, v in label_map.items()}, dataset=dataset or file.stem,
                license=license, splits=split_list, granularity=cast("Any", granularity), seed=seed,
                limit=limit, progress=not quiet)
            report = import_evidence(graph, manifest.path, linker_from_graph(graph),
                                     BlobStore(settings().blob_dir), progress=not quiet)
    for error in report.errors:
        note(f"skipped {error}")
    summary = {k: v for k, v in vars(report).items() if k not in ("errors", "file")}
    summary.update({"file": str(file), "errors": len(report.errors), "per_split": manifest.per_split})
    typer.echo(json.dumps(summary))


@train_app.command("clip")
def train_clip_command(
    source: Annotated[str, typer.Option(help=_c("source"))],
    split: Annotated[str | None, typer.Option(help="Split to train on ('all': every item).")] = "train",
    captions: Annotated[str, typer.Option(help="stored | coarse | medium | fine | mixed (re-captioned from "
                                               "each item's finding sets every epoch).")] = "stored",
    eval_split: Annotated[str | None, typer.Option(
        help="Validation split: evaluated on, and the grounding (calibration, domain threshold) is fitted on it "
             "('none': skip both).")] = "val",
    text_model: Annotated[str, typer.Option(help=TEXT_MODEL_HELP)] = "active",
    teacher_model: Annotated[Path | None, typer.Option(help=_c("teacher_model"))] = None,
    image_checkpoint: Annotated[Path | None, typer.Option(help=_c("image_checkpoint"))] = None,
    image_model: Annotated[str, typer.Option(help=_c("image_model"))] = "efficientnet_lite0",
    image_pretrained: Annotated[bool, typer.Option("--image-pretrained/--no-image-pretrained",
                                                   help=_c("image_pretrained"))] = True,
    embed_dim: Annotated[int, typer.Option(min=1, help=_c("embed_dim"))] = 256,
    image_size: Annotated[int, typer.Option(min=16, max=1024, help=_c("image_size"))] = 224,
    epochs: Annotated[int, typer.Option(min=1, help=_c("epochs"))] = 5,
    max_steps: Annotated[int | None, typer.Option(min=1, help=_c("max_steps"))] = None,
    batch_size: Annotated[int, typer.Option(min=2, help=_c("batch_size"))] = 64,
    lr: Annotated[float, typer.Option(min=0.0, help="Learning rate (image tower and heads).")] = 1e-4,
    text_lr: Annotated[float, typer.Option(min=0.0, help=_c("text_lr"))] = 1e-5,
    weight_decay: Annotated[float, typer.Option(min=0.0, help=_c("weight_decay"))] = 0.05,
    text_trainable_layers: Annotated[str, typer.Option(
        help="Text-tower layers that train: 'all', or N (the top N; 0 freezes the tower and caches caption "
             "embeddings: much faster on a CPU).")] = "all",
    w_kd: Annotated[float, typer.Option(min=0.0, help=_c("w_kd"))] = 0.3,
    w_soft: Annotated[float, typer.Option(min=0.0, help=_c("w_soft"))] = 0.0,
    identity_weight: Annotated[float, typer.Option(min=0.0, max=1.0, help=_c("identity_weight"))] = 0.7,
    kd_mode: Annotated[str, typer.Option(help=_c("kd_mode") + ".")] = "contrastive",
    augment: Annotated[bool, typer.Option("--augment/--no-augment", help=_c("augment"))] = False,
    temperature: Annotated[float, typer.Option(min=1e-3, help=_c("temperature"))] = 0.07,
    max_length: Annotated[int, typer.Option(min=8, max=512, help=_c("max_length"))] = 64,
    warmup_steps: Annotated[int, typer.Option(min=0, help=_c("warmup_steps"))] = 0,
    grad_clip: Annotated[str, typer.Option(help=_c("grad_clip") + "; 'none' turns it off.")] = "1.0",
    seed: Annotated[int, typer.Option(min=0, help=_c("seed"))] = 0,
    amp: Annotated[bool, typer.Option("--amp/--no-amp", help=_c("amp"))] = True,
    channels_last: Annotated[bool, typer.Option("--channels-last/--no-channels-last",
                                                help=_c("channels_last"))] = True,
    num_workers: Annotated[int | None, typer.Option(
        min=0, max=64, help="DataLoader workers (default: 0 on a CPU, up to 8 per GPU).")] = None,
    log_every: Annotated[int, typer.Option(min=1, help=_c("log_every"))] = 10,
    k: Annotated[str, typer.Option("--k", help="Recall cut-offs for the evaluation.")] = "1,5,10",
    out: Annotated[Path | None, typer.Option(help="Model directory (default: PHENOKG_HOME/models/clip/<id>)."
                                             )] = None,
    activate: Annotated[bool, typer.Option("--activate", help="Make it the active clip model.")] = False,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda[:N].")] = "auto",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    text_layers: Annotated[str | None, typer.Option(hidden=True, help="Old name of --text-trainable-layers.")
                           ] = None,
    tau: Annotated[float | None, typer.Option(min=1e-3, hidden=True, help="Old name of --temperature.")] = None,
) -> None:
    """Train an image–text model (PhenoLIP stage 2) on graph evidence and register it (kind clip).

    The options are the keys of a clip job's config (`POST /jobs`), with dashes. Data-parallel over N GPUs
    (or CPU processes): `phenokg db start`, then
    `torchrun --nproc_per_node N -m app.cli.main train clip … --out DIR`; rank 0 evaluates and registers."""
    from kg.repo.registry import ModelVersion, register_model
    from kg.repo.registry import activate_model as activate_version
    from models.registry import new_model_id
    from models.train.clip_data import CAPTION_SOURCES
    from models.train.clip_run import KIND, run_clip_training
    from models.train.clip_train import ClipTrainConfig

    if captions not in CAPTION_SOURCES:
        raise ValidationError(f"--captions must be one of {', '.join(CAPTION_SOURCES)}, not {captions!r}")
    ks = parse_ks(k)
    layers_text = text_layers if text_layers is not None else text_trainable_layers
    layers: int | None = None
    if layers_text != "all":
        if not layers_text.isdigit():
            raise ValidationError(f"--text-trainable-layers must be 'all' or a number, not {layers_text!r}")
        layers = int(layers_text)
    if kd_mode not in ("contrastive", "relational", "both"):
        raise ValidationError(f"--kd-mode must be contrastive, relational or both, not {kd_mode!r}")
    for option, path in (("--image-checkpoint", image_checkpoint), ("--teacher-model", teacher_model)):
        if path is not None and not path.expanduser().exists():
            raise FileNotFoundError(f"{option} {path}: no such file or directory")
    from models.registry import pick_device
    from models.train.clip_train import default_loader_workers, dist_info

    rank, world, _ = dist_info()
    if num_workers is None:
        num_workers = default_loader_workers(pick_device(device), world)
    if world > 1 and out is None:
        raise ValidationError("under torchrun pass --out DIR: every rank must write to the same directory")
    if rank == 0 and out is not None and out.exists() and any(out.iterdir()):
        raise ValidationError(f"--out {out} is not empty: choose another directory")
    if quiet:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    with graph_connection() as graph:
        text_path, text_desc = _text_model(graph, text_model)
        train_data = load_clip_data(graph, source, None if split in (None, "all") else split, settings().blob_dir)
        eval_data = None
        if eval_split not in (None, "none"):
            try:
                eval_data = load_clip_data(graph, source, eval_split, settings().blob_dir)
            except ValueError:
                note(f"note: no {source} evidence in split {eval_split!r}: skipping the evaluation")
    config = ClipTrainConfig(
        image_model=image_model, image_checkpoint=_resolved(image_checkpoint), image_pretrained=image_pretrained,
        text_model=text_path, teacher_model=_resolved(teacher_model), embed_dim=embed_dim, image_size=image_size,
        batch_size=batch_size, lr=lr, text_lr=text_lr, weight_decay=weight_decay, epochs=epochs,
        max_steps=max_steps, warmup_steps=warmup_steps, temperature=tau if tau is not None else temperature,
        w_kd=w_kd, w_soft=w_soft, identity_weight=identity_weight, kd_mode=cast("Any", kd_mode),
        max_length=max_length, text_trainable_layers=layers,
        grad_clip=parse_optional_float(grad_clip, "--grad-clip"), augment=augment, seed=seed, amp=amp,
        num_workers=num_workers, channels_last=channels_last, log_every=log_every)
    # under torchrun the id derives from --out so that every rank agrees on it
    model_id = f"{KIND}-{out.resolve().name}" if world > 1 and out is not None else new_model_id(KIND)
    out_dir = out or settings().models_dir / KIND / model_id
    train_data.info["text_model"] = text_desc
    result = run_clip_training(train_data, config, out_dir, captions=cast("CaptionSource", captions),
                               eval_data=eval_data, ks=ks, model_id=model_id, device=device,
                               progress=not quiet and rank == 0)
    if rank != 0:
        return
    version = ModelVersion(id=result.model_id, kind=KIND, path=str(result.out_dir.resolve()),
                           config=result.config, metrics=result.metrics, data_hash=result.data_hash,
                           seed=result.seed, code_version=result.code_version)
    with graph_connection() as graph:
        registered = register_model(graph, version)
        if activate:
            registered = activate_version(graph, registered.id)
    typer.echo(json.dumps({"id": registered.id, "kind": registered.kind, "path": registered.path,
                           "active": registered.active, "data_hash": result.data_hash, "seed": result.seed,
                           "code_version": result.code_version, "train": result.metrics["train"],
                           "headline": result.metrics.get("headline", {})}, indent=2, sort_keys=True))

@app.command("evaluate")
def evaluate_command(
    model: Annotated[str, typer.Argument(help="Registered clip model id, a model directory, or 'untrained' "
                                              "(the starting point of a run: --text-model, --seed).")],
    source: Annotated[str, typer.Option(help="Evidence source (dataset) to evaluate on.")],
    split: Annotated[str | None, typer.Option(
        help="Split to evaluate on ('all': every item). The test split is in the graph only when imported by "
             "name; held-out retrieval is measured over HTTP by benchmarks/retrieval_quality.py.")] = "val",
    probe_split: Annotated[str | None, typer.Option(
        help="Also fit a linear probe of the image tower on this split (e.g. train).")] = None,
    k: Annotated[str, typer.Option("--k", help="Recall cut-offs.")] = "1,5,10",
    image_size: Annotated[int | None, typer.Option(min=16, max=1024, help="Input side (default: the "
                                                                           "model's training size).")] = None,
    text_model: Annotated[str, typer.Option(help="With 'untrained': " + TEXT_MODEL_HELP)] = "active",
    seed: Annotated[int, typer.Option(help="With 'untrained': seed of the projection heads.")] = 0,
    record: Annotated[bool, typer.Option("--record", help="Store the result in the model version's metrics "
                                                          "(registered models).")] = False,
    out: Annotated[Path | None, typer.Option(help="Also write the result to this JSON file.")] = None,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda[:N].")] = "auto",
) -> None:
    """Evaluate an image–text model on a dataset split: zero-shot, retrieval and phenotype retrieval."""
    from kg.errors import NotFoundError
    from kg.repo.registry import get_model, update_metrics
    from models.clip_files import clip_model_dir, load_clip_model, model_image_size
    from models.train.clip_run import evaluate_model, evaluation_record, untrained_model
    from models.train.clip_train import ClipTrainConfig

    ks = parse_ks(k)
    if record and (model == "untrained" or Path(model).expanduser().exists()):
        raise ValidationError("--record needs a registered model id (see `phenokg models list --kind clip`)")
    registered = None
    with graph_connection() as graph:
        blobs = settings().blob_dir
        data = load_clip_data(graph, source, None if split in (None, "all") else split, blobs)
        probe = load_clip_data(graph, source, probe_split, blobs) if probe_split else None
        if model == "untrained":
            text_path, text_desc = _text_model(graph, text_model)
        elif not Path(model).expanduser().exists():
            try:
                registered = get_model(graph, model)
            except NotFoundError as exc:
                raise ValidationError(f"{model!r} is neither a model directory nor a registered model id") from exc
    if model == "untrained":
        size = image_size or 224
        config = ClipTrainConfig(text_model=text_path, image_size=size, seed=seed)
        net = untrained_model(config, device)
        ref: dict[str, Any] = {"id": "untrained", "text_model": text_desc}
        config_dict: dict[str, Any] = {"train": config.to_dict()}
        model_seed: int | None = seed
    else:
        root = Path(registered.path) if registered is not None else Path(model).expanduser()
        model_dir = clip_model_dir(root)
        size = image_size or model_image_size(model_dir)
        net = load_clip_model(model_dir, device)
        ref = {"id": registered.id if registered else None, "path": str(root)}
        card = root / "config.json"
        config_dict = registered.config if registered else (
            json.loads(card.read_text(encoding="utf-8")) if card.is_file() else {})
        model_seed = registered.seed if registered else config_dict.get("seed")
    metrics = evaluate_model(net, data, size, ks=ks, probe_train=probe)
    result = evaluation_record(ref, metrics, data, seed=model_seed, probe_train=probe,
                               config={**config_dict, "evaluation": {"image_size": size, "k": list(ks),
                                                                     "probe_split": probe_split}})
    if record and registered is not None:
        with graph_connection() as graph:
            update_metrics(graph, registered.id, {**registered.metrics, "evaluations": [
                *registered.metrics.get("evaluations", []), result]})
    text = json.dumps(result, indent=2, sort_keys=True, default=str)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n", encoding="utf-8")
    typer.echo(text)


