"""The evidence scale benchmark's output (``benchmarks/evidence_scale.py``): the machine it ran on, the Markdown
tables per size and the plot of cost against size.

Imported by ``benchmarks/evidence_scale.py``, which puts ``benchmarks/`` on ``sys.path``."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from _common import cpu_model


def machine() -> dict[str, Any]:
    """CPU, cores, memory, Python and JVM heap of this run."""
    import psutil

    return {"cpu": cpu_model(), "cores": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": sys.version.split()[0], "jvm_heap": os.environ.get("PHENOKG_DB_HEAP", "512m (default)")}


def _mb(b: float | None) -> str:
    """Bytes as whole MiB (– when missing)."""
    return "–" if b is None else f"{b / 2**20:,.0f}"


def lookup(d: dict[str, Any], *keys: str) -> Any:
    """``d[k1][k2]…``, or None where a key is missing."""
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def _fmt(x: Any, spec: str = "") -> str:
    """``x`` formatted with ``spec`` (– when None)."""
    if x is None:
        return "–"
    return format(x, spec) if spec else str(x)


def markdown(result: dict[str, Any]) -> str:
    """The machine line and one table of measures per size."""
    m = result["machine"]
    lines = [f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GiB, Python {m['python']}, JVM heap "
             f"{m['jvm_heap']}. Generated evidence (performance only), seed {result['params']['seed']}, "
             f"{result['params']['phenotypes']:,} phenotypes.", ""]
    for size in sorted(result["sizes"], key=int):
        s = result["sizes"][size]
        lines += [f"### {int(size):,} pairs", "", "| measure | value |", "|---|---:|"]
        stages = {k: s.get(k) or {} for k in ("import", "resume", "export", "retrieval", "queries", "disk")}
        for k, d in stages.items():
            if "error" in d:
                lines.append(f"| {k} | failed ({d.get('at')}): {d['error'][:200]} |")
                stages[k] = {}
        imp, res, exp, ret, q, disk = stages.values()
        if imp:
            g = imp.get("graph", {})
            top = imp.get("top_phenotype") or {}
            lines += [f"| import wall time | {imp['wall_s']} s ({imp.get('pairs_per_s')} pairs/s; target ≥ 1,000) |",
                      f"| import peak RSS Python / JVM / sum | {imp['peak_rss_python_mb']} / "
                      f"{imp['peak_rss_jvm_mb']} / "
                      f"{imp['peak_rss_total_mb']} MB (target sum ≤ 2,048) |",
                      f"| Evidence nodes / SHOWS / RULES_OUT | {g.get('evidence', 0):,} / {g.get('shows', 0):,} / "
                      f"{g.get('rules_out', 0):,} |",
                      f"| phenotype with most items | {top.get('id')} {top.get('name')} ({top.get('items', 0):,}) |",
                      f"| load average before / after import | {imp.get('load_before')} / {imp.get('load_after')} |"]
        if disk:
            lines += [f"| database on disk | {_mb(lookup(disk, 'graph', 'bytes'))} MB |",
                      f"| blob store on disk | {_mb(lookup(disk, 'blobs', 'bytes'))} MB "
                      f"({_fmt(lookup(disk, 'blobs', 'files'), ',')} files) |"]
        if res:
            kill = (f"{res['killed_after_s']} s / {res['evidence_at_kill']:,}" if res.get("killed") else
                    f"not killed: the import finished first ({res['killed_after_s']} s)")
            lines += [f"| resume: SIGKILL after / Evidence nodes then | {kill} |",
                      f"| resume: rerun wall time | {res['rerun_wall_s']} s |",
                      f"| resume: nothing duplicated | {'yes' if res['nothing_duplicated'] else 'NO'} "
                      f"(Evidence {res['after']['evidence']:,}, distinct ids {res['after']['evidence_ids']:,}, "
                      f"repeated edges {res['after']['repeated_edges']}) |"]
        if exp:
            lines += [f"| training-view export (evidence_items → JSONL) | {exp['total_s']} s (read {exp['read_s']}, "
                      f"write {exp['write_s']}; {exp['items']:,} items, {_mb(exp['file_bytes'])} MB, peak RSS "
                      f"{exp['peak_rss_mb']} MB) |"]
        if q and "figures" in q:
            for variant, fig in q["figures"].items():
                lines.append(f"| GET /terms/{q['term']['id']}/evidence {variant} | p50 "
                             f"{_fmt(fig.get('p50_ms'), '.1f')} ms, p95 {_fmt(fig.get('p95_ms'), '.1f')} ms |")
        elif q:
            why = f"failed: {q['error']}" if "error" in q else f"skipped: {q.get('skipped')}"
            lines.append(f"| evidence queries | {why} |")
        if ret:
            emb = ret["embedding"]
            enc = ret["encoder_single_ms"]
            lines += [f"| image embedding ({ret['image_size']} px, batches of {emb.get('batch', '?')}) | "
                      f"{emb['images_per_s']} images/s ({emb['torch_threads']} torch threads; measured "
                      f"{emb['at']} on {emb['images']:,} images) |",
                      f"| HNSW build / index on disk / load | {ret['ann_build_s']} s / "
                      f"{_mb(ret['index_disk']['bytes'])} MB / {ret['index_load_s']} s |",
                      f"| retrieval per image incl. encoder, HNSW | p50 {ret['ann']['p50_ms']} ms, p95 "
                      f"{ret['ann']['p95_ms']} ms (search alone p50 {ret['ann']['search_p50_ms']} ms) |",
                      f"| retrieval per image incl. encoder, exact | p50 {ret['exact']['p50_ms']} ms, p95 "
                      f"{ret['exact']['p95_ms']} ms (search alone p50 {ret['exact']['search_p50_ms']} ms) |",
                      f"| recall@10 HNSW vs exact | {ret['recall_at_10_ann_vs_exact']} ({ret['queries']} held-out "
                      "queries) |",
                      f"| load average before / after retrieval | {ret.get('load_before')} / "
                      f"{ret.get('load_after')} |",
                      "| single-image decode + encode | " + ", ".join(
                          f"{s} px p50 {v['p50_ms']} ms" for s, v in enc.items()) + " |"]
        lines.append("")
    return "\n".join(lines)


def plot(result: dict[str, Any], path: Path) -> None:
    """Time, evidence-query latency, retrieval latency and disk against size, in a 2×2 figure at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(result["sizes"], key=int)
    xs = [int(s) for s in sizes]

    def series(*keys: str, scale: float = 1.0) -> tuple[list[int], list[float]]:
        pts = [(x, lookup(result["sizes"][s], *keys)) for x, s in zip(xs, sizes, strict=True)]
        pts = [(x, float(v) * scale) for x, v in pts if isinstance(v, (int, float))]
        return [p[0] for p in pts], [p[1] for p in pts]

    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    ax = axes[0][0]
    ax.plot(*series("import", "wall_s"), "o-", label="import")
    ax.plot(*series("export", "total_s"), "s-", label="training-view export")
    ax.plot(*series("resume", "rerun_wall_s"), "^--", label="import rerun after kill")
    ax.set_title("time (s)")
    ax = axes[0][1]
    q_sizes = [s for s in sizes if lookup(result["sizes"][s], "queries", "figures")]
    variants = sorted({v for s in q_sizes for v in result["sizes"][s]["queries"]["figures"]})
    for v in variants:
        ax.plot(*series("queries", "figures", v, "p50_ms"), "o-", label=f"{v}")
    ax.set_title("GET /terms/{id}/evidence p50 (ms)")
    ax = axes[1][0]
    ax.plot(*series("retrieval", "ann", "p50_ms"), "o-", label="HNSW (incl. encoder)")
    ax.plot(*series("retrieval", "exact", "p50_ms"), "s-", label="exact (incl. encoder)")
    ax.set_title("nearest-evidence retrieval p50 per image (ms)")
    ax = axes[1][1]
    mb = 1 / 2**20
    ax.plot(*series("disk", "graph", "bytes", scale=mb), "o-", label="database")
    ax.plot(*series("disk", "blobs", "bytes", scale=mb), "s-", label="blob store")
    ax.plot(*series("retrieval", "index_disk", "bytes", scale=mb), "^-", label="vector index")
    ax.set_title("disk (MB)")
    for row in axes:
        for a in row:
            a.set_xscale("log")
            a.set_xlabel("evidence pairs")
            a.grid(True, alpha=0.3)
            if a.get_legend_handles_labels()[0]:
                a.legend(fontsize=8)
    m = result["machine"]
    fig.suptitle(f"Evidence at scale (generated data): {m['cpu']}, {m['cores']} cores", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
