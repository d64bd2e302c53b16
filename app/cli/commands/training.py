"""Training, captions and the model registry on the command line.

``phenokg train knowledge-encoder``  train the phenotype knowledge encoder on the graph's phenotype attributes
                                     (held-out evaluation of the trained and the base encoder), register it
``phenokg captions DISEASE_ID``      set-theory captions of a disease's typical / excluded sets (seed 000), or
                                     set-operation comparisons with ``--compare OTHER_ID``
``phenokg models list|show|activate`` registered model versions; one active per kind

Heavy imports (torch, transformers) happen inside the commands, so ``phenokg --help`` stays fast.
"""

from __future__ import annotations

import json
import random
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, cast

import typer

from app.cli.commands import clip as clip_commands
from app.cli.commands.clip import parse_optional_float
from app.cli.support import fail, graph_connection, note, settings
from app.schemas.job_configs import describe
from app.services.training import knowledge_views, model_version_from_dir
from kg.errors import ValidationError

if TYPE_CHECKING:
    from kg.repo.registry import ModelVersion
    from kg.store.graph import Graph
    from models.captions import Granularity
    from models.types import DiseaseSets

REPO_ROOT: Final = Path(__file__).resolve().parents[3]
DEFAULT_GOLD: Final = REPO_ROOT.parent / "shared" / "data" / "GSCplus_dev_gold.tsv"
GRANULARITY_CHOICES: Final = ("coarse", "medium", "fine", "all")
CXR_SOURCE: Final = "CXR_PACK"
RUN_MARKERS: Final = ("run.json", "checkpoint.pt", "metrics.json")  # a directory holding a (started) run


# ---- train ----------------------------------------------------------------------------------------------


def parse_kind_weights(text: str | None) -> dict[str, float] | None:
    """``synonym=3,relation=0.5`` → ``{"synonym": 3.0, "relation": 0.5}`` (checked); empty/None → None."""
    from models.train.sampler import check_kind_weights

    if text is None or not text.strip():
        return None
    weights: dict[str, float] = {}
    for item in text.split(","):
        kind, sep, value = item.partition("=")
        if not sep:
            raise ValidationError(f"--kind-weights: expected KIND=WEIGHT, got {item.strip()!r}")
        try:
            weights[kind.strip()] = float(value)
        except ValueError:
            raise ValidationError(f"--kind-weights: {value.strip()!r} is not a number (in {item.strip()!r})") from None
    return check_kind_weights(weights)


def _k(key: str) -> str:
    """Help of a ``train knowledge-encoder`` option: the description of the job-config key of the same name."""
    return describe("knowledge-encoder", key) + "."


def train_knowledge_encoder_command(
    out: Path | None, base_model: Path | None, train: dict[str, Any], *, resume: bool, held_out_fraction: float,
    activate: bool, gold: Path | None, baseline: bool, branch: str | None, device: str, quiet: bool,
) -> dict[str, Any]:
    """Everything ``phenokg train knowledge-encoder`` does; returns the printed summary.

    ``train``: :class:`models.train.knowledge.KnowledgeTrainConfig` fields other than ``model_path``."""
    # Cheap checks first: nothing heavy is imported before the arguments are known to be usable.
    if resume and out is None:
        raise ValidationError("--resume needs --out DIR (the directory of the interrupted run)")
    if out is not None and not resume and any((out / f).exists() for f in RUN_MARKERS):
        raise ValidationError(f"{out} already holds a training run: pass --resume to continue it, or another --out")
    if base_model is not None and not base_model.expanduser().exists():
        raise FileNotFoundError(f"--model-path {base_model}: no such directory")

    from kg.errors import NotFoundError
    from kg.repo.registry import ModelVersion, get_model, register_model, update_metrics
    from kg.repo.registry import activate_model as activate_version
    from models.registry import new_model_id
    from models.train.knowledge import KnowledgeTrainConfig
    from models.train.knowledge_eval import read_gold_mentions
    from models.train.knowledge_run import KIND, RUN_FILE, run_knowledge_training
    from models.views import to_attributes

    if quiet:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    gold_path: Path | None = None
    mentions: list[tuple[str, str]] = []
    if gold is not None and str(gold) != "none":
        gold_path = gold if gold.is_absolute() else (REPO_ROOT / gold)
        if gold_path.is_file():
            mentions = read_gold_mentions(gold_path)
        elif gold == DEFAULT_GOLD:
            note(f"note: {gold_path} not found: skipping the normalisation evaluation")
            gold_path = None
        else:
            raise FileNotFoundError(f"--gold {gold}: no such file")

    with graph_connection() as graph:
        views, redirects, info = knowledge_views(graph, branch)
    attributes = to_attributes(views)
    if len(attributes) < 2:
        raise ValidationError(f"the graph holds {len(attributes)} live phenotype(s) under {branch or 'the root'}: "
                              "build it first (`phenokg kg build`)")
    model_id = None
    if out is None:
        model_id = new_model_id(KIND)
        out = settings().models_dir / KIND / model_id
    elif resume and not (out / RUN_FILE).is_file():
        note(f"note: {out} holds no interrupted run: starting afresh")
    config = KnowledgeTrainConfig(
        model_path=str(base_model.expanduser().resolve()) if base_model is not None else None, **train)
    result = run_knowledge_training(
        attributes, config, out, held_out_fraction=held_out_fraction, mentions=mentions, gold_path=gold_path,
        redirects=redirects, data_info=info, model_id=model_id, device=device, resume=resume,
        evaluate_base=baseline, progress=not quiet,
    )
    version = ModelVersion(
        id=result.model_id, kind=KIND, path=str(result.out_dir.resolve()), config=result.config,
        metrics=result.metrics, data_hash=result.data_hash, seed=result.seed, code_version=result.code_version,
    )
    with graph_connection() as graph:
        try:
            get_model(graph, result.model_id)
            registered = update_metrics(graph, result.model_id, result.metrics)  # a resumed, registered run
        except NotFoundError:
            registered = register_model(graph, version)
        if activate:
            registered = activate_version(graph, registered.id)
            reembed(graph, registered, progress=not quiet)
    return {"id": registered.id, "kind": registered.kind, "path": registered.path, "active": registered.active,
            "data_hash": result.data_hash, "seed": result.seed, "code_version": result.code_version,
            "held_out_phenotypes": len(result.held_out_ids), "train": result.metrics["train"],
            "headline": result.metrics["headline"], "timings_s": result.metrics["timings_s"]}


def reembed(graph: Graph, version: ModelVersion, *, progress: bool = True) -> dict[str, Any] | None:
    """After activating a knowledge encoder: re-embed the phenotypes with it, so search and normalisation use
    it (the API notices the new embedding stamp and loads the encoder recorded with the vectors)."""
    if version.kind != "knowledge-encoder":
        return None
    from app.services.embeddings import ensure_embeddings
    from models.registry import knowledge_encoder_dir

    note(f"re-embedding the phenotypes with {version.id} (search and normalisation switch to it)")
    report = ensure_embeddings(graph, knowledge_encoder_dir(version.path), progress=progress,
                               onnx_cache=settings().onnx_cache_dir)
    return report.as_dict()


# ---- captions -------------------------------------------------------------------------------------------


def _load_disease(graph: Graph, disease_id: str) -> DiseaseSets:
    import difflib

    from kg.repo.training_views import disease_sets
    from models.views import to_disease_sets

    rows = disease_sets(graph, ids=[disease_id])
    if rows:
        return to_disease_sets(rows)[0]
    known = [d["id"] for d in disease_sets(graph)]
    lowered = {k.casefold(): k for k in known}
    close = [lowered[disease_id.casefold()]] if disease_id.casefold() in lowered else \
        difflib.get_close_matches(disease_id, known, n=3, cutoff=0.8)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    fail(f"unknown disease id {disease_id!r}{hint}", 2)
    raise AssertionError  # unreachable


def _distinct_captions(d: DiseaseSets, granularity: Granularity, n: int, seed: int, max_items: int | None,
                       study: str) -> list[str]:
    from models.captions import caption

    rng = random.Random(f"{seed}:{granularity}")
    out: list[str] = []
    for _ in range(max(1, n) * 25):
        text = caption(d, granularity, rng, max_items=max_items, study=study)
        if text not in out:
            out.append(text)
        if len(out) >= n:
            break
    return out


@contextmanager
def _caption_warnings() -> Iterator[None]:
    from models.captions import CaptionDataWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CaptionDataWarning)
        yield
    seen: set[str] = set()
    for w in caught:
        text = str(w.message)
        if issubclass(w.category, CaptionDataWarning) and text not in seen:
            seen.add(text)
            note(f"note: {text}")


# ---- models ---------------------------------------------------------------------------------------------


def _model_or_exit(graph: Graph, model_id: str) -> ModelVersion:
    """The registered version ``model_id``; an unknown id is bad input (exit 2), not a failure."""
    from kg.errors import NotFoundError
    from kg.repo.registry import get_model

    try:
        return get_model(graph, model_id)
    except NotFoundError as exc:
        fail(str(exc), 2)


def _metric_summary(m: ModelVersion) -> str:
    head = m.metrics.get("headline", {}).get("trained", {}) if isinstance(m.metrics, dict) else {}
    return " ".join(f"{k}={v:.3f}" for k, v in head.items() if isinstance(v, (int, float)))



app = typer.Typer()  # captions
train_app = typer.Typer(help="Train models on the graph (knowledge encoder, image–text model).",
                        no_args_is_help=True)
models_app = typer.Typer(help="Registered model versions (one active per kind).", no_args_is_help=True)
app.add_typer(train_app, name="train")
app.add_typer(models_app, name="models")
train_app.add_typer(clip_commands.train_app)

@train_app.command("knowledge-encoder")
def train_knowledge(
    out: Annotated[Path | None, typer.Option(help="Model directory (default: PHENOKG_HOME/models/"
                                                  "knowledge-encoder/<id>).")] = None,
    model_path: Annotated[Path | None, typer.Option(help=_k("model_path"))] = None,
    epochs: Annotated[int, typer.Option(min=1, help=_k("epochs"))] = 1,
    batch_size: Annotated[int, typer.Option(min=2, help=_k("batch_size"))] = 64,
    lr: Annotated[float, typer.Option(min=0.0, help=_k("lr"))] = 2e-5,
    weight_decay: Annotated[float, typer.Option(min=0.0, help=_k("weight_decay"))] = 0.01,
    temperature: Annotated[float, typer.Option(min=1e-4, help=_k("temperature"))] = 0.07,
    learnable_temperature: Annotated[bool, typer.Option("--learnable-temperature/--no-learnable-temperature",
                                                        help=_k("learnable_temperature"))] = False,
    max_steps: Annotated[int | None, typer.Option(min=1, help=_k("max_steps"))] = None,
    seed: Annotated[int, typer.Option(min=0, help=_k("seed"))] = 0,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the interrupted run in --out.")] = False,
    held_out_fraction: Annotated[float, typer.Option(min=0.0, max=0.9, help=_k("held_out_fraction"))] = 0.05,
    activate: Annotated[bool, typer.Option("--activate", help="Make it the active knowledge encoder.")] = False,
    gold: Annotated[Path | None, typer.Option(
        help="Gold mentions for normalisation (GSC+ format), relative to the repository root; "
             "'none' skips it.")] = DEFAULT_GOLD,
    baseline: Annotated[bool, typer.Option("--baseline/--no-baseline", help=_k("baseline"))] = True,
    branch: Annotated[str, typer.Option(help=_k("branch"))] = "HP:0000118",
    max_length: Annotated[int, typer.Option(min=8, max=512, help=_k("max_length"))] = 64,
    warmup_steps: Annotated[int, typer.Option(min=0, help=_k("warmup_steps"))] = 0,
    schedule: Annotated[str, typer.Option(help=_k("schedule") + ": cosine | linear | constant.")] = "cosine",
    grad_clip: Annotated[str, typer.Option(help=_k("grad_clip") + "; 'none' turns it off.")] = "1.0",
    checkpoint_every: Annotated[int, typer.Option(min=1, help=_k("checkpoint_every"))] = 500,
    log_every: Annotated[int, typer.Option(min=1, help=_k("log_every"))] = 1,
    single_attribute: Annotated[str, typer.Option(help=_k("single_attribute") + ": skip | template.")] = "skip",
    name_anchor_prob: Annotated[float, typer.Option(min=0.0, max=1.0, help=_k("name_anchor_prob"))] = 0.5,
    kind_weights: Annotated[str | None, typer.Option(
        help="Sampling weight per attribute kind, e.g. 'synonym=3,definition=1,relation=0.5' "
             "(kinds not named weigh 1).")] = None,
    trainable_layers: Annotated[int | None, typer.Option(min=1, help=_k("trainable_layers"))] = None,
    paraphrases: Annotated[bool, typer.Option("--paraphrases/--no-paraphrases", help=_k("paraphrases"))] = False,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda[:N].")] = "auto",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    base_model: Annotated[Path | None, typer.Option(hidden=True, help="Old name of --model-path.")] = None,
    tau: Annotated[float | None, typer.Option(min=1e-4, hidden=True, help="Old name of --temperature.")] = None,
) -> None:
    """Train the phenotype knowledge encoder (seed 004 stage 1), evaluate it against the base model on
    held-out phenotypes and gold mentions, and register it as a ModelVersion.

    The options are the keys of a knowledge-encoder job's config (`POST /jobs`), with dashes."""
    if schedule not in ("cosine", "linear", "constant"):
        raise ValidationError(f"--schedule must be cosine, linear or constant, not {schedule!r}")
    if single_attribute not in ("skip", "template"):
        raise ValidationError(f"--single-attribute must be skip or template, not {single_attribute!r}")
    train = {"seed": seed, "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay, "epochs": epochs,
             "max_steps": max_steps, "warmup_steps": warmup_steps, "schedule": schedule,
             "temperature": tau if tau is not None else temperature, "learnable_temperature": learnable_temperature,
             "max_length": max_length, "grad_clip": parse_optional_float(grad_clip, "--grad-clip"),
             "checkpoint_every": checkpoint_every, "log_every": log_every, "single_attribute": single_attribute,
             "name_anchor_prob": name_anchor_prob, "kind_weights": parse_kind_weights(kind_weights),
             "trainable_layers": trainable_layers, "paraphrases": paraphrases}
    summary = train_knowledge_encoder_command(
        out, model_path or base_model, train, resume=resume, held_out_fraction=held_out_fraction,
        activate=activate, gold=gold, baseline=baseline, branch=None if branch.lower() == "all" else branch,
        device=device, quiet=quiet,
    )
    typer.echo(json.dumps(summary, indent=2, sort_keys=True))

@train_app.command("export-views")
def export_views(
    file: Annotated[Path, typer.Argument(help="Views file to write (JSON; gzipped if it ends in .gz).")],
    branch: Annotated[str, typer.Option(help="Ontology branch ('all': every live term).")] = "HP:0000118",
) -> None:
    """Write the knowledge encoder's training view (phenotypes with names, definitions, synonyms, parents),
    the id redirects and provenance to a file, for `python -m models.train.knowledge_run --views FILE` on a
    machine without the graph (a GPU box); bring the model directory back with `phenokg models register`."""
    from models.views import write_views_file

    with graph_connection() as graph:
        views, redirects, info = knowledge_views(graph, None if branch.lower() == "all" else branch)
    if not views:
        fail(f"the graph holds no live phenotype under {branch}: build it first (`phenokg kg build`)", 2)
    write_views_file(file, views, redirects, info)
    typer.echo(f"wrote {len(views)} phenotypes and {len(redirects)} id redirects to {file}")

@app.command("captions")
def captions(
    disease_id: Annotated[str, typer.Argument(help="Disease or finding id, e.g. CXR:pneumonia, OMIM:154700.")],
    granularity: Annotated[str, typer.Option(
        help="coarse (d) | medium (d + typical) | fine (d + typical + 'no evidence of' excluded) | all.")
    ] = "all",
    n: Annotated[int, typer.Option("--n", min=1, max=50, help="Distinct captions per granularity.")] = 3,
    seed: Annotated[int, typer.Option(help="Seed of the template and item choice.")] = 0,
    compare: Annotated[str | None, typer.Option(help="Another disease id: print set-operation "
                                                     "comparisons instead of captions.")] = None,
    max_items: Annotated[int | None, typer.Option(min=1, help="At most this many phenotypes per list "
                                                              "(seeded choice).")] = 8,
    study: Annotated[str | None, typer.Option(help="Study noun (default: 'chest radiograph' for the chest "
                                                   "X-ray pack, else 'clinical presentation').")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Set-theory captions (seed 000) from a disease's typical and excluded phenotype sets."""
    from models.captions import compare as compare_sets

    if granularity not in GRANULARITY_CHOICES:
        fail(f"--granularity must be one of {', '.join(GRANULARITY_CHOICES)}, not {granularity!r}", 2)
    with graph_connection() as graph:
        d = _load_disease(graph, disease_id)
        other = _load_disease(graph, compare) if compare is not None else None
        from kg.repo.training_views import disease_sets

        source = disease_sets(graph, ids=[d.id])[0]["source"]
    header = {"id": d.id, "name": d.name, "source": source, "typical": len(d.typical),
              "excluded": len(d.excluded)}
    with _caption_warnings():
        if other is not None:
            items = compare_sets(d, other)
            if as_json:
                typer.echo(json.dumps({"a": header, "b": {"id": other.id, "name": other.name},
                                       "comparisons": [{"kind": c.kind, "items": [list(i) for i in c.items],
                                                        "text": c.text} for c in items]}, indent=2))
                return
            typer.echo(f"{d.id} {d.name}  vs  {other.id} {other.name}")
            for c in items:
                typer.echo(f"  [{c.kind}] {c.text}")
            if not items:
                typer.echo("  (no set operation yields a statement: the sets do not overlap)")
            return
        study_text = study or ("chest radiograph" if source == CXR_SOURCE else "clinical presentation")
        levels: list[Granularity] = (["coarse", "medium", "fine"] if granularity == "all"
                                     else [cast("Granularity", granularity)])
        result = {g: _distinct_captions(d, g, n, seed, max_items, study_text) for g in levels}
    if as_json:
        typer.echo(json.dumps({**header, "captions": result}, indent=2, ensure_ascii=False))
        return
    typer.echo(f"{d.id} {d.name}  ({source}; typical {len(d.typical)}, excluded {len(d.excluded)})")
    for g, texts in result.items():
        typer.echo(f"{g}:")
        for text in texts:
            typer.echo(f"  {text}")

@models_app.command("list")
def models_list(
    kind: Annotated[str | None, typer.Option(help="Only this kind (knowledge-encoder, clip, …).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines, one per version.")] = False,
) -> None:
    """Registered model versions, newest first (* marks the active one of each kind)."""
    from kg.repo.registry import list_models

    with graph_connection() as graph:
        versions = list_models(graph, kind)
    if as_json:
        for m in versions:
            sys.stdout.write(json.dumps(m.to_dict(), sort_keys=True) + "\n")
        return
    if not versions:
        typer.echo("no registered models" + (f" of kind {kind}" if kind else ""))
        return
    for m in versions:
        typer.echo(f"{'*' if m.active else ' '} {m.id}  {m.kind}  {m.created_at}  {_metric_summary(m)}  "
                   f"{m.path}".rstrip())

@models_app.command("show")
def models_show(model_id: Annotated[str, typer.Argument(help="Model version id.")]) -> None:
    """One model version as JSON (config and metrics included)."""
    with graph_connection() as graph:
        m = _model_or_exit(graph, model_id)
    typer.echo(json.dumps(m.to_dict(), indent=2, sort_keys=True))

@models_app.command("register")
def models_register(
    directory: Annotated[Path, typer.Argument(help="Model directory written by a training run elsewhere "
                                                   "(config.json, metrics.json, safetensors).")],
    activate: Annotated[bool, typer.Option("--activate", help="Make it the active one of its kind.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Record a model directory trained on another machine (`python -m models.train.knowledge_run`, or a
    copied run) as a ModelVersion, with the id, data hash, seed and code version its config.json holds."""
    from kg.repo.registry import activate_model as activate_version
    from kg.repo.registry import register_model

    version = model_version_from_dir(directory)
    with graph_connection() as graph:
        m = register_model(graph, version)
        typer.echo(f"registered {m.id} ({m.kind}): {m.path}")
        if activate:
            m = activate_version(graph, m.id)
            typer.echo(f"activated {m.id}")
            reembed(graph, m, progress=not quiet)

@models_app.command("activate")
def models_activate(
    model_id: Annotated[str, typer.Argument(help="Model version id (see `phenokg models list`).")],
    force: Annotated[bool, typer.Option("--force", help="Activate even if its directory is missing.")] = False,
    embed: Annotated[bool, typer.Option("--embed/--no-embed", help="Knowledge encoders: re-embed the "
                                        "phenotypes with it now (search switches to it).")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Make a model version the active one of its kind (the others of that kind are deactivated); a knowledge
    encoder also re-embeds the phenotypes used by search and normalisation."""
    from kg.repo.registry import activate_model

    with graph_connection() as graph:
        m = _model_or_exit(graph, model_id)
        if not force and not Path(m.path).is_dir():
            fail(f"model directory of {model_id} is missing: {m.path} (use --force to activate anyway)", 2)
        m = activate_model(graph, model_id)
        typer.echo(f"activated {m.id} ({m.kind}): {m.path}")
        if embed and Path(m.path).is_dir():
            report = reembed(graph, m, progress=not quiet)
            if report is not None:
                typer.echo(f"phenotype vectors: {report['embedded_strings']} strings embedded "
                           f"({report['encoder']})")


