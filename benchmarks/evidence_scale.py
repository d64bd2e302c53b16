"""Evidence at scale (issue 23): import, evidence queries, nearest-evidence retrieval and the training-view export
on generated image–caption evidence of 10K, 100K and 520K pairs over 3,000 phenotypes.

A PERFORMANCE benchmark only: the data is generated (``benchmarks/evidence_scale_data.py``), so no quality figure
is computed on it (recall@10 below is the ANN index against exact search on the same vectors, not a retrieval
quality).

Run from the repository root::

    .venv/bin/python benchmarks/evidence_scale.py --work /tmp/evscale --json /tmp/evscale/result.json \\
        --markdown /tmp/evscale/result.md                                 # 10K, 100K, 520K; plot in docs/
    .venv/bin/python benchmarks/evidence_scale.py --sizes 2000 --work /tmp/evs-dev --plot /tmp/evs-dev/p.png
    .venv/bin/python benchmarks/evidence_scale.py --sizes 100000 --skip-import --skip-resume  # rerun the rest

What it does, per size N (every step can be skipped, and results merge into an existing ``--json``):

0. **Data**: ``--data`` (default ``WORK/data``) holds the largest size's pairs, generated once with 2 processes
   (about 7 minutes and 4.5 GB for 520K on 2 quiet cores; reused and resumable); size N imports
   ``manifest-N.jsonl``, its first N lines. Phenotypes are drawn from the graph of ``--base-home``.
1. **Import**: a copy of ``--base-home`` (an already built full-HPO ``PHENOKG_HOME``, copied with its database
   stopped; built with ``phenokg kg build`` if it has no database) in ``WORK/homes/N``; its embedded database is
   started (``phenokg db start``), then ``phenokg evidence import manifest-N.jsonl`` runs as a child process.
   Wall time, pairs/s, and peak RSS sampled every 0.5 s with psutil: the CLI's process tree (Python) and the
   database JVM (the pid in ``db/server.json``). Then Evidence nodes, SHOWS / RULES_OUT edges and the phenotype
   with the most linked items (both relations; anchored counts over the generator's 5 heaviest phenotypes) are
   counted. A stage that fails is recorded in the JSON and the run goes on.
2. **Resume** (``--resume-size``, default the smallest size): on another copy of the base home the import is
   killed with SIGKILL once ``--kill-at`` (0.5) of the pairs are Evidence nodes (the count is polled every 0.5 s;
   ``--kill-after-s`` kills at a time instead, if earlier), then run again; recorded: Evidence nodes at the kill,
   the rerun's wall time, and whether Evidence nodes == distinct ids == N with no repeated
   (evidence, phenotype) edge and the same edge counts as the clean import.
3. **Training-view export**: ``kg.repo.training_views.evidence_items`` (what ``phenokg train clip`` and training
   jobs read the evidence through; there is no separate export command for it) in a child process, written as
   JSONL: seconds to read, to write, items, file size, the child's peak RSS.
4. **Evidence queries**: ``phenokg serve --no-build`` on 127.0.0.1 (a free port), then
   ``benchmarks/_evidence_queries.measure_evidence_queries(url, term_id)`` for the phenotype with the most items
   (``GET /terms/{id}/evidence`` p50/p95 per variant the function measures).
5. **Retrieval**: every image of the size embedded with the image tower of phenokg's CLIP architecture
   (``untrained_model(ClipTrainConfig(image_size=S))``, S = ``--image-size``, default 64, on the CPU; cached in
   ``DATA/embeddings`` so a larger size only embeds its new images), put into
   ``models.evidence_index.EvidenceVectorIndex`` keyed by image sha256; HNSW build time, index size on disk, load
   time; per query image, one at a time, 200 held-out generated images: decode bytes → tensor → encode → search
   (k = 10), p50/p95 for the HNSW graph and for exact search, search-only times, recall@10 of HNSW against exact.
   Also the encoder's single-image latency at S and at 224 px, so a reader can put the 224 px model in.
6. **Disk**: database folder and blob store of the home, with the database stopped.

Output: the Markdown tables to stdout (and ``--markdown``), the raw figures to ``--json``, the plot of cost against
size to ``--plot`` (default ``docs/evidence_scale.png``). Progress on stderr, with tqdm bars for the long steps.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _evidence_scale_retrieval as retrieval  # noqa: E402
import evidence_scale_data as gen  # noqa: E402
from _evidence_scale_home import (  # noqa: E402
    copy_home,
    db_stop,
    disk_bytes,
    ensure_base_home,
    say,
    top_phenotype_started,
)
from _evidence_scale_import import stage_import, stage_resume  # noqa: E402
from _evidence_scale_reads import export_view, stage_export, stage_queries  # noqa: E402
from _evidence_scale_report import lookup, machine, markdown, plot  # noqa: E402

DEFAULT_SIZES = "10000,100000,520000"
DEFAULT_BASE_HOME = Path("/tmp/bench-home")
TARGETS = {"import_pairs_per_s": 1000.0, "import_peak_rss_mb": 2048.0, "retrieval_p50_ms": 50.0,
           "recall_at_10": 0.95, "query_p50_ms": 20.0}


def _load_avg() -> list[float]:
    """The 1, 5 and 15 minute load averages, rounded."""
    return [round(x, 2) for x in os.getloadavg()]


def main(argv: list[str] | None = None) -> int:
    """The command line: every size's stages, then the JSON, Markdown and plot."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_export-view"]:
        export_view(Path(argv[1]), Path(argv[2]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="comma-separated pair counts")
    parser.add_argument("--work", type=Path, default=Path("/tmp/evidence-scale"),
                        help="working folder: homes per size, logs, indexes")
    parser.add_argument("--data", type=Path, help="generated data folder (default WORK/data; reused if present)")
    parser.add_argument("--base-home", type=Path, default=DEFAULT_BASE_HOME,
                        help="a built full-HPO PHENOKG_HOME to copy (built there if it has no graph)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--phenotypes", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=2, help="processes generating the data")
    parser.add_argument("--image-size", type=int, default=64, help="model input size S for retrieval")
    parser.add_argument("--embed-batch", type=int, default=128)
    parser.add_argument("--torch-threads", type=int, help="torch intra-op threads for retrieval (default: torch's)")
    parser.add_argument("--blas-threads", type=int, default=1,
                        help="numpy BLAS threads for retrieval (default 1, as the server sets them)")
    parser.add_argument("--ann-threads", type=int, help="hnswlib build threads (default: every core)")
    parser.add_argument("--reference-size", type=int, default=224,
                        help="also time the single-image encoder at this size (0: not)")
    parser.add_argument("--queries", type=int, default=200, help="held-out query images")
    parser.add_argument("--query-repeats", type=int, default=50, help="repeats of each evidence query")
    parser.add_argument("--resume-size", type=int, help="size of the resume check (default: the smallest)")
    parser.add_argument("--kill-at", type=float, default=0.5,
                        help="resume check: kill the import once this share of the pairs are Evidence nodes")
    parser.add_argument("--kill-after-s", type=float,
                        help="resume check: kill the import after this many seconds at the latest")
    for stage in ("import", "resume", "export", "queries", "retrieval"):
        parser.add_argument(f"--skip-{stage}", action="store_true")
    parser.add_argument("--keep-homes", action=argparse.BooleanOptionalAction, default=True,
                        help="keep WORK/homes/N after the size (needed to rerun stages with --skip-import)")
    parser.add_argument("--fresh", action="store_true", help="do not merge into an existing --json")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "evidence_scale.png")
    args = parser.parse_args(argv)
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    resume_size = args.resume_size or sizes[0]
    work: Path = args.work
    data: Path = args.data or work / "data"
    work.mkdir(parents=True, exist_ok=True)

    result: dict[str, Any] = {"sizes": {}}
    if args.json and args.json.exists() and not args.fresh:
        result = json.loads(args.json.read_text())
    result.update({"benchmark": "evidence_scale", "machine": machine(),
                   "params": {"seed": args.seed, "phenotypes": args.phenotypes, "image_size": args.image_size,
                              "queries": args.queries, "query_repeats": args.query_repeats, "k": retrieval.K},
                   "targets": TARGETS})
    result.setdefault("runs", []).append({"started": time.strftime("%Y-%m-%dT%H:%M:%S"), "sizes": sizes,
                                          "load_before": _load_avg()})
    say(f"machine: {result['machine']}; load average {_load_avg()}")

    needs_graph = not (args.skip_import and args.skip_resume and args.skip_export and args.skip_queries)
    if not (args.skip_import and args.skip_resume and args.skip_retrieval):
        if needs_graph or not (data / "terms.json").exists():
            ensure_base_home(args.base_home)
        gen.ensure_data(data, max(sizes), home=args.base_home, seed=args.seed, phenotypes=args.phenotypes,
                        workers=args.workers, say=say)

    def save() -> None:
        result["runs"][-1]["load_after"] = _load_avg()
        if args.json:
            args.json.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")

    for n in sizes:
        measure_size(n, result["sizes"].setdefault(str(n), {}), args, data, resume_size, save)
    save()
    md = markdown(result)
    print(md)
    if args.markdown:
        args.markdown.write_text(md + "\n", encoding="utf-8")
    if args.plot:
        plot(result, args.plot)
        say(f"plot: {args.plot}")
    return 0


def measure_size(n: int, entry: dict[str, Any], args: argparse.Namespace, data: Path, resume_size: int,
                 save: Callable[[], None]) -> None:
    """Every stage asked for at size ``n``, into ``entry``; ``save`` writes the JSON after each."""
    work: Path = args.work
    folder = work / f"n{n}"
    folder.mkdir(parents=True, exist_ok=True)
    home = work / "homes" / str(n)
    manifest = gen.manifest_for(data, n) if (data / "manifest.jsonl").exists() else None

    def run_stage(name: str, fn: Callable[[], dict[str, Any]]) -> bool:
        """Run one stage; a failure is recorded (and the run goes on with the next stage or size)."""
        before = _load_avg()
        try:
            entry[name] = fn()
            entry[name].update(load_before=before, load_after=_load_avg(),
                               at=time.strftime("%Y-%m-%dT%H:%M:%S"))
            return True
        except Exception as exc:  # a long unattended run records the failure and goes on
            say(f"{name} ({n:,} pairs) failed: {exc!r}\n{traceback.format_exc()}")
            entry[name] = {"error": repr(exc), "at": time.strftime("%Y-%m-%dT%H:%M:%S")}
            return False
        finally:
            save()

    try:
        imported = True
        if not args.skip_import:
            assert manifest is not None
            copy_home(args.base_home, home)
            imported = run_stage("import", lambda: stage_import(home, manifest, n, folder, data))
        has_home = (home / "db").is_dir() and imported
        if not args.skip_export and has_home:
            run_stage("export", lambda: stage_export(home, folder))
        if not args.skip_queries and has_home:
            run_stage("queries", lambda: stage_queries(
                home, folder, lookup(entry, "import", "top_phenotype") or top_phenotype_started(home, data),
                args.query_repeats))
        if has_home:
            db_stop(home)
            run_stage("disk", lambda: {"graph": disk_bytes(home / "db"), "blobs": disk_bytes(home / "blobs")})
        if not args.skip_resume and n == resume_size:
            assert manifest is not None
            clean = entry.get("import")
            clean = clean if clean and "error" not in clean else None
            run_stage("resume", lambda: stage_resume(args.base_home, manifest, n, folder, clean,
                                                     args.kill_at, args.kill_after_s, keep=False))
        if not args.skip_retrieval:
            run_stage("retrieval", lambda: retrieval.stage_retrieval(data, n, folder, args))
    finally:
        with contextlib.suppress(Exception):
            db_stop(home)
        if not args.keep_homes:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
