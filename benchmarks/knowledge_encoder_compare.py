"""Knowledge encoders against the untrained MiniLM on text -> phenotype normalisation, paired, per corpus.

Run from the repository root (no graph database needed)::

    .venv/bin/python benchmarks/knowledge_encoder_compare.py \\
        --encoder B=/tmp/runs/ke-B/encoder --encoder P=/tmp/runs/ke-P/encoder \\
        --gold dev=../shared/data/GSCplus_dev_gold.tsv --gold test=/tmp/ext/GSCplus_test_gold.tsv

Gallery: the names and synonyms of every live term under *Phenotypic abnormality* (HP:0000118) of the shipped
``hp.obo``, i.e. the knowledge-encoder training view's normalisation gallery; gold ids are mapped through
``alt_id`` / ``replaced_by``. Each mention is embedded on its own and ranked against the gallery by
:func:`models.train.knowledge_eval.normalisation_ranks` (a term scores its best label), with every encoder loaded
as :class:`models.encoders.TextEncoder` at ``--max-length`` tokens: the same code the training command's
``metrics.json`` comes from. The packaged all-MiniLM-L6-v2 (``base``) is always evaluated, in the same run.

Per corpus (and for all corpora pooled) and encoder: acc@1, acc@5, acc@10 and MRR; for each encoder against
``base``: mentions won and lost at k = 1 and 5, the exact McNemar p-value on those discordant mentions, and a
95 % bootstrap interval of the accuracy difference that resamples whole documents (mentions of one abstract are
not independent).

Corpora are GSC+-style TSV files (a document id line, a text line, then ``start<TAB>end<TAB>mention<TAB>HP id``
lines, a blank line between documents) or PhenoBERT-style directories (``ann/<doc>`` files of such mention
lines). Only the GSC+ dev file is part of ``../shared``; where the GSC+ test split and ID-68 come from is in
``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from kg.analysis.ontology import OntologyView  # noqa: E402
from kg.ingest.obo import parse_obo, sha256_file, shipped_file  # noqa: E402

DEFAULT_GOLD = ROOT.parent / "shared" / "data" / "GSCplus_dev_gold.tsv"
KS = (1, 5, 10)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Corpus:
    name: str
    path: Path
    docs: list[str]  # document id of each mention
    mentions: list[tuple[str, str]]  # (text, gold id)


def read_corpus(name: str, path: Path) -> Corpus:
    """Mentions of a GSC+-style file (or a PhenoBERT-style directory) with the document each belongs to."""
    from models.train.knowledge_eval import read_gold_corpus

    try:
        docs, mentions = read_gold_corpus(path)
    except ValueError as exc:  # a bad mention line, named with file:line
        raise SystemExit(str(exc)) from None
    if not mentions:
        raise SystemExit(f"{path}: no mention lines (start<TAB>end<TAB>text<TAB>HP id)")
    return Corpus(name, path, docs, mentions)


def named_path(text: str, option: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise SystemExit(f"{option} wants NAME=PATH, not {text!r}")
    return name, value


def ranks_for(path: str | None, max_length: int, gallery: list[tuple[str, list[str]]], corpora: Sequence[Corpus],
              redirects: dict[str, str]) -> dict[str, list[int | None]]:
    from models.encoders import TextEncoder
    from models.train.knowledge_eval import CachedEncoder, normalisation_ranks

    encoder = TextEncoder.from_pretrained(path, max_length=max_length)
    cached = CachedEncoder(encoder, batch_size=128, progress=True, desc=f"embedding ({path or 'base'})")
    cached.prefill([label for _, labels in gallery for label in labels]
                   + [text for corpus in corpora for text, _ in corpus.mentions])
    return {c.name: normalisation_ranks(cached, gallery, c.mentions, redirects=redirects) for c in corpora}


def accuracy(ranks: Sequence[int | None], k: int) -> float:
    kept = [r for r in ranks if r is not None]
    return sum(r <= k for r in kept) / len(kept) if kept else float("nan")


def mrr(ranks: Sequence[int | None]) -> float:
    kept = [r for r in ranks if r is not None]
    return sum(1.0 / r for r in kept) / len(kept) if kept else float("nan")


def paired(base: Sequence[int | None], other: Sequence[int | None], docs: Sequence[str], k: int,
           rounds: int, seed: int) -> dict[str, float]:
    """Wins / losses at k, exact McNemar p and a document-bootstrap 95 % interval of the accuracy change."""
    from scipy.stats import binomtest

    both = [(i, a, b) for i, (a, b) in enumerate(zip(base, other, strict=True)) if a is not None and b is not None]
    hit_a = np.array([a <= k for _, a, _ in both], dtype=np.float64)
    hit_b = np.array([b <= k for _, _, b in both], dtype=np.float64)
    wins, losses = int(((hit_b == 1) & (hit_a == 0)).sum()), int(((hit_b == 0) & (hit_a == 1)).sum())
    p = binomtest(wins, wins + losses).pvalue if wins + losses else 1.0
    rows_of: dict[str, list[int]] = {}
    for row, (i, _, _) in enumerate(both):
        rows_of.setdefault(docs[i], []).append(row)
    doc_ids = sorted(rows_of)
    groups = [np.array(rows_of[d]) for d in doc_ids]
    rng = np.random.default_rng(seed)
    deltas = []
    for _ in range(rounds):
        picked = np.concatenate([groups[j] for j in rng.integers(len(groups), size=len(groups))])
        deltas.append(hit_b[picked].mean() - hit_a[picked].mean())
    lo, hi = np.percentile(deltas, [2.5, 97.5])
    return {"wins": wins, "losses": losses, "delta": float(hit_b.mean() - hit_a.mean()), "mcnemar_p": float(p),
            "ci_low": float(lo), "ci_high": float(hi)}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--encoder", action="append", default=[], metavar="NAME=DIR",
                    help="a trained text encoder directory (repeatable)")
    ap.add_argument("--gold", action="append", default=[], metavar="NAME=FILE",
                    help=f"a GSC+-style corpus (repeatable; default dev={DEFAULT_GOLD})")
    ap.add_argument("--max-length", type=int, default=32, help="tokens per text (the training runs' setting)")
    ap.add_argument("--bootstrap", type=int, default=2000, help="document-bootstrap rounds")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures (and every rank) as JSON")
    args = ap.parse_args(argv)

    golds = [named_path(g, "--gold") for g in args.gold] or [("dev", str(DEFAULT_GOLD))]
    corpora = [read_corpus(name, Path(path)) for name, path in golds]
    encoders: list[tuple[str, str | None]] = [("base", None)] + [named_path(e, "--encoder") for e in args.encoder]
    for name, path in encoders[1:]:
        if path is None or not Path(path).is_dir():
            raise SystemExit(f"--encoder {name}={path}: no such directory")

    obo = shipped_file("hp.obo")
    _, terms = parse_obo(obo)
    view = OntologyView.from_rows(terms)
    live = [t for t in terms if not t.obsolete and view.in_phenotypic_abnormality(t.id)]
    gallery = [(t.id, [t.name, *t.synonyms]) for t in live]
    redirects = {}
    for corpus in corpora:
        for _, gold in corpus.mentions:
            current = view.resolve(gold)
            if current and current != gold:
                redirects[gold] = current
    log(f"{len(gallery):,} gallery terms; " + ", ".join(f"{c.name}: {len(c.mentions)} mentions" for c in corpora))

    started = time.perf_counter()
    ranks = {name: ranks_for(path, args.max_length, gallery, corpora, redirects) for name, path in encoders}
    seconds = time.perf_counter() - started

    all_results: dict[str, object] = {}
    report: dict[str, object] = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "hp_obo_sha256": sha256_file(obo), "gallery_terms": len(gallery), "max_length": args.max_length,
        "seconds": round(seconds, 1), "encoders": dict(encoders),
        "corpora": {c.name: {"path": str(c.path), "sha256": sha256_file(c.path) if c.path.is_file() else None,
                             "mentions": len(c.mentions),
                             "documents": len(set(c.docs))} for c in corpora},
        "results": all_results, "ranks": ranks,
    }
    print(f"Machine: {report['machine']}; {len(gallery):,} gallery terms; {seconds:.0f} s for "
          f"{len(encoders)} encoders; document bootstrap x{args.bootstrap}.\n")
    sections = [(c.name, c.docs, {e: r[c.name] for e, r in ranks.items()}) for c in corpora]
    if len(corpora) > 1:  # every mention of every corpus, documents kept apart by corpus
        pooled_docs = [f"{c.name}/{d}" for c in corpora for d in c.docs]
        sections.append(("all corpora pooled", pooled_docs,
                         {e: [x for c in corpora for x in r[c.name]] for e, r in ranks.items()}))
    for title, docs, by_encoder in sections:
        evaluated = sum(r is not None for r in by_encoder["base"])
        print(f"### {title}: {evaluated} of {len(docs)} mentions evaluated ({len(set(docs))} documents)\n")
        print("| encoder | acc@1 | acc@5 | acc@10 | MRR | vs base @1: won/lost, Δ [95 % CI], p "
              "| vs base @5: won/lost, Δ [95 % CI], p |")
        print("|---|---:|---:|---:|---:|---|---|")
        results: dict[str, object] = {}
        for name, _ in encoders:
            r = by_encoder[name]
            row: dict[str, object] = {f"acc@{k}": accuracy(r, k) for k in KS}
            row["mrr"] = mrr(r)
            cells = []
            for k in (1, 5):
                if name == "base":
                    cells.append("–")
                    continue
                cmp = paired(by_encoder["base"], r, docs, k, args.bootstrap, args.seed)
                row[f"vs_base@{k}"] = cmp
                cells.append(f"+{cmp['wins']}/−{cmp['losses']}, {cmp['delta'] * 100:+.1f} pts "
                             f"[{cmp['ci_low'] * 100:+.1f}, {cmp['ci_high'] * 100:+.1f}], p={cmp['mcnemar_p']:.2f}")
            results[name] = row
            print(f"| {name} | {row['acc@1']:.3f} | {row['acc@5']:.3f} | {row['acc@10']:.3f} | {row['mrr']:.3f} "
                  f"| {cells[0]} | {cells[1]} |")
        print()
        all_results[title] = results
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
