"""The entrypoint of a training job on Ray: ``python -m models.train.job_entry JOB_DIR``.

The API (:mod:`app.services.jobs`) writes ``JOB_DIR/spec.json`` and the job's data file (a views file for a knowledge
encoder, a clip data file for an image–text model) and submits this module as a Ray job. It trains with the
existing runs (:func:`models.train.knowledge_run.run_knowledge_training`,
:func:`models.train.clip_run.run_clip_training`) into the model directory the spec names, and leaves:

* ``entry.pid``: the process id (of rank 0) while it runs;
* ``<out_dir>/metrics.jsonl``: one line per logged step (the trainers' log, with ``total_steps``), which the API
  reads for progress and the metrics history;
* ``result.json``: ``{"status": "succeeded", "model_id", "out_dir", ...}`` or ``{"status": "failed", "error"}``.

The graph is never touched here: the API registers the model directory (as ``phenokg models register`` does),
so a job also runs on a Ray cluster that cannot reach the graph, given a shared ``PHENOKG_HOME``.

Multi-GPU (image–text only): with ``options.gpus`` > 1 the entry re-runs itself under ``torchrun
--nproc_per_node N`` (data-parallel :func:`models.train.clip_train.train_clip`; rank 0 evaluates and writes), inside
the one Ray job that reserved the N GPUs.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Final, cast

from kg.errors import ValidationError
from models.registry import write_json_atomic
from models.train.job_spec import SPEC_FILE, JobSpec

__all__ = ["CLIP_DATA_FORMAT", "RESULT_FILE", "SPEC_FILE", "main", "read_clip_data_file", "write_clip_data_file"]

RESULT_FILE: Final = "result.json"
PID_FILE: Final = "entry.pid"
CLIP_DATA_FORMAT: Final = "phenokg-clip-data/1"


def _log(message: str) -> None:
    print(f"phenokg-job: {message}", flush=True)


def write_clip_data_file(path: str | Path, train: Any, eval_data: Any | None) -> Path:
    """Write :class:`models.train.clip_run.ClipData` for training (and evaluation) as one gzipped JSON document."""
    def part(data: Any) -> dict[str, Any]:
        return {"views": data.views, "diseases": [asdict(d) for d in data.diseases.values()],
                "phenotype_names": data.phenotype_names, "info": data.info, "ancestors": data.ancestors,
                "finding_sources": data.finding_sources}

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"format": CLIP_DATA_FORMAT, "train": part(train), "eval": part(eval_data) if eval_data else None}
    with gzip.open(out, "wt", encoding="utf-8") as fh:
        json.dump(doc, fh, ensure_ascii=False, separators=(",", ":"), default=str)
    return out


def read_clip_data_file(path: str | Path) -> tuple[Any, Any | None]:
    """``(train, eval or None)`` as :class:`models.train.clip_run.ClipData`; a malformed file raises ``ValueError``."""
    from models.train.clip_run import ClipData
    from models.views import to_disease_sets

    src = Path(path)
    with gzip.open(src, "rt", encoding="utf-8") as fh:
        doc = json.load(fh)
    if not isinstance(doc, dict) or doc.get("format") != CLIP_DATA_FORMAT:
        raise ValidationError(f"{src}: not a phenokg clip data file (expected format {CLIP_DATA_FORMAT!r})")

    def part(d: Mapping[str, Any]) -> ClipData:
        diseases = {x.id: x for x in to_disease_sets(d.get("diseases") or [])}
        return ClipData(list(d["views"]), diseases, dict(d.get("phenotype_names") or {}), dict(d.get("info") or {}),
                        {k: list(v) for k, v in (d.get("ancestors") or {}).items()},
                        dict(d.get("finding_sources") or {}))

    return part(doc["train"]), part(doc["eval"]) if doc.get("eval") else None


def _run_knowledge(spec: JobSpec) -> dict[str, Any]:
    from models.train.knowledge import KnowledgeTrainConfig
    from models.train.knowledge_eval import read_gold_mentions
    from models.train.knowledge_run import run_knowledge_training
    from models.views import read_views_file

    options = spec.options
    config = KnowledgeTrainConfig.from_dict(spec.train)
    attributes, redirects, info = read_views_file(spec.data_file)
    gold = Path(options["gold"]) if options.get("gold") else None
    mentions = read_gold_mentions(gold) if gold is not None else []
    _log(f"training knowledge encoder {spec.model_id} on {len(attributes)} phenotypes")
    result = run_knowledge_training(
        attributes, config, Path(spec.out_dir), held_out_fraction=float(options.get("held_out_fraction", 0.05)),
        mentions=mentions, gold_path=gold, redirects=redirects, data_info={**info, "job": spec.job_id},
        model_id=spec.model_id, device=spec.device,
        evaluate_base=bool(options.get("baseline", True)), progress=False)
    return {"model_id": result.model_id, "out_dir": str(result.out_dir), "data_hash": result.data_hash,
            "headline": result.metrics.get("headline", {})}


def _run_clip(spec: JobSpec) -> dict[str, Any] | None:
    from models.train.clip_data import CaptionSource
    from models.train.clip_run import run_clip_training
    from models.train.clip_train import ClipTrainConfig, dist_info

    options = spec.options
    config = ClipTrainConfig.from_dict(spec.train)
    train, eval_data = read_clip_data_file(spec.data_file)
    train.info["job"] = spec.job_id
    _log(f"training clip model {spec.model_id} on {len(train.views)} items")
    result = run_clip_training(
        train, config, Path(spec.out_dir), captions=cast("CaptionSource", options.get("captions", "stored")),
        eval_data=eval_data, ks=tuple(options.get("k", (1, 5, 10))), model_id=spec.model_id,
        device=spec.device, progress=False)
    if dist_info()[0] != 0:
        return None
    return {"model_id": result.model_id, "out_dir": str(result.out_dir), "data_hash": result.data_hash,
            "headline": result.metrics.get("headline", {})}


def _torchrun(job_dir: Path, gpus: int) -> int:
    """Re-run this entry data-parallel over ``gpus`` processes on this node."""
    _log(f"starting {gpus} data-parallel ranks (torchrun)")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={gpus}",
           "-m", "models.train.job_entry", str(job_dir)]
    return subprocess.call(cmd)


def run(job_dir: Path) -> int:
    """Run the job in ``job_dir``; 0 on success."""
    rank = int(os.environ.get("RANK", "0"))
    try:
        spec = JobSpec.read(job_dir)
    except ValidationError as exc:
        if rank == 0:
            write_json_atomic(job_dir / RESULT_FILE, {"status": "failed", "error": str(exc)})
        return 1
    gpus = int(spec.options.get("gpus") or 0)
    if spec.kind == "clip" and gpus > 1 and "RANK" not in os.environ:
        (job_dir / PID_FILE).write_text(str(os.getpid()), encoding="utf-8")
        code = _torchrun(job_dir, gpus)
        if code != 0 and not (job_dir / RESULT_FILE).exists():
            write_json_atomic(job_dir / RESULT_FILE, {"status": "failed", "error": f"torchrun exited with {code}"})
        return code
    if rank == 0:
        (job_dir / PID_FILE).write_text(str(os.getpid()), encoding="utf-8")
    try:
        outcome = _run_knowledge(spec) if spec.kind == "knowledge-encoder" else _run_clip(spec)
    except Exception as exc:
        traceback.print_exc()
        if rank == 0:
            write_json_atomic(job_dir / RESULT_FILE, {"status": "failed", "error": f"{type(exc).__name__}: {exc}"})
        return 1
    if outcome is not None:
        write_json_atomic(job_dir / RESULT_FILE, {"status": "succeeded", **outcome})
        _log(f"done: {outcome['model_id']} in {outcome['out_dir']}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m models.train.job_entry JOB_DIR", file=sys.stderr)
        return 2
    return run(Path(args[0]))


if __name__ == "__main__":
    raise SystemExit(main())
