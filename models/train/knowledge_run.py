"""One knowledge-encoder run end to end, on plain data: split, train, evaluate, write the model directory.

The caller reads the data from the graph (:mod:`kg.repo.training_views`, converted by :mod:`models.views`) and
registers the result (:mod:`kg.repo.registry`): ``phenokg train knowledge-encoder`` does both; ``python -m
models.train.knowledge_run --views FILE`` (:func:`main`) trains from an exported views file on a machine without
the graph, and ``phenokg models register DIR`` records the result later. Nothing here touches the graph.

Steps:

1. seeded held-out split of the phenotypes (:func:`models.views.split_held_out`);
2. data hash of (training attributes, held-out ids): equal data and split ⇒ equal hash;
3. :func:`models.train.knowledge.train_knowledge_encoder` into ``out_dir`` (resumable);
4. evaluation of the **trained** encoder and of the **base** (untrained) one with the same settings:
   attribute → term R@1/R@10 on the held-out phenotypes (gallery: every phenotype name) and text →
   phenotype normalisation acc@1/@5 on gold mentions (gallery: names and synonyms of every phenotype);
5. ``config.json`` and ``metrics.json`` (:mod:`models.registry`), each carrying the data hash, seed and code
   version.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import torch

from kg.errors import ValidationError
from models.encoders import TextEncoder
from models.registry import (
    METRICS_FILE,
    RunResult,
    attribute_records,
    code_version,
    data_hash,
    new_model_id,
    pick_device,
    write_json_atomic,
    write_model_card,
)
from models.train.knowledge import CHECKPOINT, ENCODER_DIR, KnowledgeTrainConfig, train_knowledge_encoder
from models.train.knowledge_eval import GoldMention, evaluate_knowledge_encoder
from models.types import PhenotypeAttributes
from models.views import split_held_out

__all__ = ["KIND", "RUN_FILE", "KnowledgeRunResult", "run_knowledge_training"]

KIND: Final = "knowledge-encoder"
RUN_FILE: Final = "run.json"
PACKAGED_BASE: Final = "packaged sentence-transformers/all-MiniLM-L6-v2"


@dataclass
class KnowledgeRunResult(RunResult):
    """A knowledge-encoder run's result, with the held-out phenotype ids."""

    held_out_ids: list[str] = field(default_factory=list)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def _headline(ev: Mapping[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for part, keys in (("attribute_retrieval", ("R@1", "R@10")), ("normalisation", ("acc@1", "acc@5"))):
        for key in keys:
            if part in ev and key in ev[part]:
                out[key] = float(ev[part][key])
    return out


def run_knowledge_training(
    attributes: Sequence[PhenotypeAttributes],
    config: KnowledgeTrainConfig,
    out_dir: Path,
    *,
    held_out_fraction: float = 0.05,
    mentions: Sequence[GoldMention] = (),
    gold_path: Path | None = None,
    redirects: Mapping[str, str] | None = None,
    data_info: Mapping[str, Any] | None = None,
    model_id: str | None = None,
    device: str | None = None,
    resume: bool = False,
    evaluate_base: bool = True,
    eval_batch_size: int = 128,
    progress: bool = True,
) -> KnowledgeRunResult:
    """Split, train, evaluate and write ``config.json`` / ``metrics.json`` into ``out_dir``.

    ``mentions``: gold ``(text, HP id)`` pairs for normalisation (``gold_path`` only recorded);
    ``redirects``: old → current ids for them. ``data_info``: extra provenance recorded in the config (graph
    build stamp, release, branch). ``resume`` continues an interrupted run in ``out_dir`` (same data, same
    config, same model id); without it ``out_dir`` must not hold a run yet.
    """
    out = Path(out_dir)
    dev = pick_device(device)
    train_set, held_out = split_held_out(attributes, held_out_fraction, seed=config.seed)
    held_ids = [p.id for p in held_out]
    dhash = data_hash({"attributes": attribute_records(train_set), "held_out": held_ids})
    run_path = out / RUN_FILE
    if resume and run_path.is_file():
        saved = json.loads(run_path.read_text(encoding="utf-8"))
        if saved.get("data_hash") != dhash:
            raise ValidationError(f"cannot resume {out}: the training data changed since the run started "
                                  f"({saved.get('data_hash')} -> {dhash})")
        model_id = str(saved["model_id"])
    elif not resume and out.exists() and any((out / f).exists() for f in (CHECKPOINT, METRICS_FILE, RUN_FILE)):
        raise ValidationError(f"{out} already holds a training run: pass --resume to continue it, or another --out")
    model_id = model_id or new_model_id(KIND)
    version = code_version()
    created = datetime.now(UTC).isoformat(timespec="seconds")
    write_json_atomic(run_path, {"model_id": model_id, "data_hash": dhash, "created_at": created,
                                 "held_out_ids": held_ids})

    started = time.perf_counter()
    summary = train_knowledge_encoder(train_set, config, out, device=dev, progress=progress, resume=resume)
    train_s = time.perf_counter() - started

    names = [p.name for p in train_set]
    gallery = [(p.id, [p.name, *p.synonyms]) for p in attributes]
    evals: dict[str, Any] = {}
    eval_started = time.perf_counter()
    which = [("trained", out / ENCODER_DIR)] + ([("base", None)] if evaluate_base else [])
    for label, path in which:
        encoder = TextEncoder.from_pretrained(path if path is not None else config.model_path,
                                              max_length=config.max_length).to(dev)
        evals[label] = evaluate_knowledge_encoder(
            encoder, held_out, distractors=names, gallery=gallery if mentions else (), mentions=mentions,
            redirects=redirects, batch_size=eval_batch_size, progress=progress, desc=f"evaluating {label}",
        )
        del encoder
    eval_s = time.perf_counter() - eval_started

    run_config: dict[str, Any] = {
        "kind": KIND,
        "model_id": model_id,
        "created_at": created,
        "base_model": config.model_path or PACKAGED_BASE,
        "train": config.to_dict(),
        "held_out_fraction": held_out_fraction,
        "held_out_ids": held_ids,
        "data_hash": dhash,
        "seed": config.seed,
        "code_version": version,
        "device": dev,
        "torch": torch.__version__,
        "data": {
            "phenotypes": len(attributes),
            "train_phenotypes": len(train_set),
            "held_out_phenotypes": len(held_out),
            **dict(data_info or {}),
        },
        "evaluation": {
            "gold": str(gold_path) if gold_path is not None else None,
            "gold_sha256": _sha256_file(gold_path) if gold_path is not None and gold_path.is_file() else None,
            "gold_mentions": len(mentions),
            "attribute_queries": ["definition", "synonym"],
            "attribute_gallery": "held-out names + every training phenotype name",
            "normalisation_gallery": "names and synonyms of every phenotype in the training view",
        },
    }
    metrics: dict[str, Any] = {
        "kind": KIND,
        "model_id": model_id,
        "data_hash": dhash,
        "seed": config.seed,
        "code_version": version,
        "config": run_config["train"],
        "train": summary,
        "eval": evals,
        "headline": {label: _headline(ev) for label, ev in evals.items()},
        "timings_s": {"train": round(train_s, 3), "eval": round(eval_s, 3)},
    }
    write_model_card(out, run_config, metrics)
    return KnowledgeRunResult(model_id=model_id, out_dir=out, data_hash=dhash, seed=config.seed,
                              code_version=version, config=run_config, metrics=metrics, held_out_ids=held_ids)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m models.train.knowledge_run --views FILE --out DIR [--gold FILE] [--config JSON]``: a run on a
    machine without the graph (a GPU box, say), from a views file written by ``phenokg train export-views``.
    Register the resulting directory with ``phenokg models register DIR`` where the graph is."""
    import argparse

    from models.train.knowledge_eval import read_gold_mentions
    from models.views import read_views_file

    ap = argparse.ArgumentParser(prog="python -m models.train.knowledge_run", description=main.__doc__)
    ap.add_argument("--views", type=Path, required=True, help="views file (phenokg train export-views)")
    ap.add_argument("--out", type=Path, required=True, help="model directory to write")
    ap.add_argument("--gold", type=Path, default=None,
                    help="gold mentions: a GSC+ file, or a PhenoBERT-style corpus directory holding ann/")
    ap.add_argument("--config", default="{}", help="KnowledgeTrainConfig fields as a JSON object")
    ap.add_argument("--held-out-fraction", type=float, default=0.05)
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    ap.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    ap.add_argument("--no-baseline", action="store_true", help="skip evaluating the untrained base model")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    args = ap.parse_args(argv)
    try:
        fields = json.loads(args.config)
        if not isinstance(fields, dict):
            raise ValidationError("--config must be a JSON object")
        config = KnowledgeTrainConfig.from_dict(fields)
        attributes, redirects, info = read_views_file(args.views)
        mentions = read_gold_mentions(args.gold) if args.gold is not None else []
        result = run_knowledge_training(
            attributes, config, args.out, held_out_fraction=args.held_out_fraction, mentions=mentions,
            gold_path=args.gold, redirects=redirects, data_info={**info, "views_file": str(args.views)},
            device=args.device, resume=args.resume, evaluate_base=not args.no_baseline, progress=not args.quiet,
        )
    except (OSError, ValueError, TypeError) as exc:
        ap.exit(2, f"{ap.prog}: error: {exc}\n")
    print(json.dumps({"id": result.model_id, "out": str(result.out_dir), "headline": result.metrics["headline"],
                      "timings_s": result.metrics["timings_s"]}, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
