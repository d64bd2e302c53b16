"""PneumoniaMNIST demonstration (issue 5): set-theory captions → image–text model → zero-shot normal vs pneumonia.

Everything goes through the ``phenokg`` command line against the graph of ``PHENOKG_HOME`` (the embedded
server is started once for the whole run):

1. build the graph if it is empty (HPO + chest X-ray pack);
2. ``phenokg evidence import-npz`` — every train / val / test image of ``shared/data/pneumoniamnist.npz`` as
   evidence with a *fine* set-theory caption from its finding (0 → CXR:no_finding, 1 → CXR:pneumonia);
3. ``phenokg evaluate untrained --probe-split train`` — the starting point (ImageNet Lite0 + the text tower,
   random projection heads) and a linear probe of the same frozen image encoder;
4. ``phenokg train clip --captions coarse|medium|fine`` — three models re-captioned at one granularity each
   (seed 000's ablation), each evaluated on the test split with coarse, medium and fine prompt ensembles;
5. a Markdown table and a PNG plot in ``--out-dir`` (default ``docs/``).

CPU settings (the default): 64 px inputs, frozen text tower (cached caption embeddings, LiT-style), 4 epochs
per model. ``--quick`` is the CI version: 96 images per split, 3 steps, 32 px; it checks the pipeline, not the
figures.

    python benchmarks/pneumonia_demo.py [--epochs 4] [--image-size 64] [--seeds 0] [--quick] [--out-dir docs]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
NPZ = REPO.parent / "shared" / "data" / "pneumoniamnist.npz"
LABELS = "0=CXR:no_finding,1=CXR:pneumonia"
LICENSE = "CC BY 4.0 (MedMNIST v2, Yang et al. 2023; source: Kermany et al. 2018)"
GRANULARITIES = ("coarse", "medium", "fine")


def phenokg(*args: str, capture: bool = True) -> str:
    """Run a ``phenokg`` command; return its stdout (raise with its stderr on failure)."""
    cmd = [sys.executable, "-m", "app.cli.main", *args]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=capture, text=True, cwd=REPO,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
    took = time.perf_counter() - started
    print(f"  phenokg {' '.join(args[:3])} … {took:.1f} s", file=sys.stderr, flush=True)
    if proc.returncode != 0:
        raise SystemExit(f"phenokg {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc.stdout if capture else ""


def _zero_shot(ev: dict[str, Any]) -> dict[str, float]:
    return {g: float(ev["zero_shot"][g]["accuracy"]) for g in GRANULARITIES}


def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    out: dict[str, Any] = {"settings": settings, "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
                           "steps": {}}
    clock = time.perf_counter()
    phenokg("db", "start")
    try:
        if args.build:
            phenokg("kg", "build", "--quiet")
        out["steps"]["build_s"] = round(time.perf_counter() - clock, 1)
        limit = ["--limit", "96"] if args.quick else []
        # this ablation evaluates on the test split through `phenokg evaluate`, so its own home imports it too
        # (the service's default keeps test out of the graph; never serve retrieval from this home)
        imported = json.loads(phenokg("evidence", "import-npz", str(args.npz), "--labels", LABELS, "--license",
                                      LICENSE, "--dataset", args.dataset, "--splits", "train,val,test", "--quiet",
                                      *limit))
        out["import"] = imported
        out["steps"]["import_s"] = round(time.perf_counter() - clock, 1)
        common = ["--source", args.dataset, "--split", "test", "--image-size", str(args.image_size)]
        t = time.perf_counter()
        out["untrained"] = json.loads(phenokg("evaluate", "untrained", *common, "--probe-split", "train",
                                              "--text-model", args.text_model, "--seed", str(args.seeds[0])))
        out["steps"]["untrained_and_probe_s"] = round(time.perf_counter() - t, 1)
        steps = ["--max-steps", "3"] if args.quick else ["--epochs", str(args.epochs)]
        out["trained"] = {}
        for seed in args.seeds:
            for g in GRANULARITIES:
                t = time.perf_counter()
                trained = json.loads(phenokg(
                    "train", "clip", "--source", args.dataset, "--captions", g, "--image-size", str(args.image_size),
                    "--text-layers", "0", "--text-model", args.text_model, "--batch-size", str(args.batch_size),
                    "--lr", str(args.lr), "--seed", str(seed), "--eval-split", "val", "--quiet", *steps))
                evaluated = json.loads(phenokg("evaluate", trained["id"], "--source", args.dataset, "--split", "test"))
                out["trained"][f"{g}/{seed}"] = {"id": trained["id"], "path": trained["path"],
                                                 "train": trained["train"], "eval": evaluated["metrics"],
                                                 "seconds": round(time.perf_counter() - t, 1)}
    finally:
        phenokg("db", "stop")
    out["steps"]["total_s"] = round(time.perf_counter() - clock, 1)
    return out


def table(result: dict[str, Any]) -> str:
    """The Markdown table: zero-shot accuracy per prompt granularity, retrieval, linear probe."""
    seeds = result["settings"]["seeds"]
    rows = ["| model | prompts: coarse | medium | fine | I2T@1 | I2P@5 | P2I@10 | train s |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    un = result["untrained"]["metrics"]
    zs = _zero_shot(un)
    rows.append(f"| untrained (ImageNet Lite0 + text tower, random heads) | {zs['coarse']:.3f} | {zs['medium']:.3f} | "
                f"{zs['fine']:.3f} | {un['retrieval']['I2T@1']:.3f} | {un['phenotype_retrieval']['I2P@5']:.3f} | "
                f"{un['phenotype_retrieval']['P2I@10']:.3f} | – |")
    for g in GRANULARITIES:
        for seed in seeds:
            run_ = result["trained"][f"{g}/{seed}"]
            ev = run_["eval"]
            zs = _zero_shot(ev)
            rows.append(f"| trained on {g} captions (seed {seed}) | {zs['coarse']:.3f} | {zs['medium']:.3f} | "
                        f"{zs['fine']:.3f} | {ev['retrieval']['I2T@1']:.3f} | "
                        f"{ev['phenotype_retrieval']['I2P@5']:.3f} | {ev['phenotype_retrieval']['P2I@10']:.3f} | "
                        f"{run_['train']['train_time_s']:.0f} |")
    probe = un["linear_probe"]
    rows.append(f"| linear probe, frozen ImageNet Lite0 (logistic regression on train) | {probe['accuracy']:.3f} "
                "| | | | | | |")
    return "\n".join(rows)


def plot(result: dict[str, Any], path: Path) -> None:
    """Grouped bars: zero-shot accuracy per model and prompt granularity; the linear probe as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seeds = result["settings"]["seeds"]
    models = [("untrained", [_zero_shot(result["untrained"]["metrics"])])]
    models += [(f"trained: {g}", [_zero_shot(result["trained"][f"{g}/{s}"]["eval"]) for s in seeds])
               for g in GRANULARITIES]
    fig, ax = plt.subplots(figsize=(8.5, 4.6), dpi=120)
    width = 0.25
    for j, prompt in enumerate(GRANULARITIES):
        values = [[z[prompt] for z in zs] for _, zs in models]
        means = [sum(v) / len(v) for v in values]
        spread = [[m - min(v) for m, v in zip(means, values, strict=True)],
                  [max(v) - m for m, v in zip(means, values, strict=True)]]
        xs = [i + (j - 1) * width for i in range(len(models))]
        ax.bar(xs, means, width, label=f"{prompt} prompts", yerr=spread if len(seeds) > 1 else None, capsize=2)
        for x, m in zip(xs, means, strict=True):
            ax.text(x, m + 0.015, f"{m:.2f}", ha="center", fontsize=7)
    probe = result["untrained"]["metrics"]["linear_probe"]["accuracy"]
    ax.axhline(probe, color="black", linestyle="--", linewidth=1, label=f"linear probe ({probe:.2f})")
    ax.axhline(0.5, color="grey", linestyle=":", linewidth=1, label="chance (balanced test set)")
    ax.set_xticks(range(len(models)), [m for m, _ in models])
    ax.set_ylim(0, 1.2)
    n_test = int(result["untrained"]["metrics"]["zero_shot"]["coarse"]["n"])
    ax.set_ylabel(f"zero-shot accuracy (test, n={n_test})")
    runs = f"mean of seeds {', '.join(map(str, seeds))}, bars: min–max" if len(seeds) > 1 else f"seed {seeds[0]}"
    ax.set_title(f"PneumoniaMNIST normal vs pneumonia: zero-shot with prompt ensembles ({runs})", fontsize=10)
    ax.legend(loc="upper left", fontsize=7, ncol=3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--npz", type=Path, default=NPZ)
    ap.add_argument("--dataset", default="pneumoniamnist")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--text-model", default="active")
    ap.add_argument("--build", action=argparse.BooleanOptionalAction, default=True,
                    help="run `phenokg kg build` first (a no-op write when the graph is current)")
    ap.add_argument("--quick", action="store_true", help="CI version: 96 images per split, 3 steps, 32 px")
    ap.add_argument("--out-dir", type=Path, default=REPO / "docs")
    args = ap.parse_args(argv)
    if args.quick:
        args.image_size, args.batch_size = 32, 16
    if not args.npz.is_file():
        raise SystemExit(f"{args.npz}: no such file")
    result = run(args)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "pneumonia_demo.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n",
                                                      encoding="utf-8")
    md = table(result)
    (args.out_dir / "pneumonia_demo_table.md").write_text(md + "\n", encoding="utf-8")
    plot(result, args.out_dir / "pneumonia_demo.png")
    print(md)
    print(json.dumps(result["steps"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
