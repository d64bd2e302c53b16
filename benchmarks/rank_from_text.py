"""Ranking from a clinical note against ranking from the same case's ids: the real dev cases written as plain
sentences (``case_notes.py``), linked back to phenotypes with the service's linker (negation included), and
ranked through the same index as the ids.

Run from the repository root::

    .venv/bin/python benchmarks/rank_from_text.py                    # every dev case
    .venv/bin/python benchmarks/rank_from_text.py --max-per-disease 2  # a quick check

**Cases**: ``../shared/data/phenopackets_dev.jsonl`` read as ``ranking_real_cases.py`` reads them (ids resolved,
unknown ids dropped, cases whose gold disease is not in the release skipped). **Notes**: present terms listed
three to a sentence, each absent term negated in its own sentence ("There was no X." / "X was absent." /
"…, without X." / "… negative for X." / "The patient denies X."); each term written as its name or, half the
time, one of its EXACT synonyms; all choices seeded per case (``--seed``). **Text query**: the linker's
mentions (``Services.linker()``: names and synonyms of the terms under HP:0000118) → present / absent
(``kg.text.note_terms``: uncertain mentions left out, an asserted term never absent). **Score**: the gold disease
among every OMIM disease, tie-aware, ``method="likelihood"`` with the absent terms (the headline ranker of
``ranking_real_cases.py``); top-1 / top-10 per disease (each disease's cases averaged) and per case.
**One row per disease** (what ``POST /rank`` shows by default): for the id queries, the gold disease (or its
equivalent entry, ``RankingIndex.equivalents``) in the list that mixes every source, raw and grouped: a hit in
the top 1 / top 10 rows, per case. **Losses**: each written term is *linked* (a mention of its id with the
right polarity over its words), *polarity* (its id, but negated / uncertain / overridden wrongly), *mis-linked*
(only other ids over its words) or *missed* (no mention over its words); mentions outside every term's words
are *extra*.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_line
from case_notes import Note, Placed, write_note
from ranking_bench import snapshot_from_sources, tie_aware_rank
from ranking_real_cases import DEFAULT_CASES, Case, load_cases, per_case, per_disease

from kg.analysis.ranking import RankingIndex, group_rows
from kg.text.annotate import linker_from_snapshot
from kg.text.linker import Mention
from kg.text.note_terms import NoteTerms, note_terms

OUTCOMES = ("linked", "polarity", "mis-linked", "missed")


@dataclass
class TermOutcome:
    placed: Placed
    outcome: str
    linked_to: tuple[str, ...] = ()  # ids of the mentions over its words


def outcomes(note: Note, terms: NoteTerms) -> tuple[list[TermOutcome], list[Mention]]:
    """How each written term came back, and the mentions outside every written term (extra)."""
    out: list[TermOutcome] = []
    used: set[int] = set()
    for p in note.placed:
        over = [(i, m) for i, m in enumerate(terms.mentions) if m.mention.start < p.end and m.mention.end > p.start]
        used.update(i for i, _ in over)
        ids = tuple(dict.fromkeys(m.mention.id for _, m in over))
        if not over:
            out.append(TermOutcome(p, "missed"))
        elif any(m.mention.id == p.term and m.role == p.polarity for _, m in over):
            out.append(TermOutcome(p, "linked", ids))
        elif p.term in ids:
            out.append(TermOutcome(p, "polarity", ids))
        else:
            out.append(TermOutcome(p, "mis-linked", ids))
    extra = [m.mention for i, m in enumerate(terms.mentions) if i not in used]
    return out, extra


def scores_of(index: RankingIndex, present: Sequence[str], absent: Sequence[str]) -> np.ndarray:
    total: np.ndarray = index.score_vectors(index.sem.indices(present), index.sem.indices(absent),
                                            method="likelihood").total
    return total


def mixed_ranks(index: RankingIndex, total: np.ndarray, row: int) -> tuple[int, int]:
    """The first row of the gold disease or its equivalent in the list mixing every source (ties by id, as the
    API orders): its rank in the raw list and in the grouped one."""
    n = len(total)
    order = np.lexsort((np.arange(n), -total))
    targets = [row] + ([index.partner[row]] if row in index.partner else [])
    pos = int(np.flatnonzero(np.isin(order, targets))[0])
    grouped = group_rows((int(r) for r in order[:pos + 1]), index.partner, np.ones(n, dtype=np.bool_), pos + 1)
    return pos + 1, len(grouped)


def run(args: argparse.Namespace) -> str:
    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    snapshot = snapshot_from_sources()
    index = RankingIndex.from_snapshot(snapshot)
    linker = linker_from_snapshot(snapshot)
    say(f"index and linker ready in {time.perf_counter() - t0:.1f} s")
    loaded = load_cases(Path(args.cases), index, args.max_per_disease)
    cases: list[Case] = loaded.cases
    omim = np.flatnonzero(index.source_mask(["OMIM"]))
    names = snapshot.view.names
    id_ranks: list[float] = []
    mixed: list[tuple[int, int]] = []
    text_ranks: list[float] = []
    all_outcomes: list[tuple[Case, TermOutcome, float]] = []  # with the case's rank change (text − ids)
    extra: Counter[str] = Counter()
    no_present = chars = 0
    t_link = t_rank = 0.0
    for n, c in enumerate(cases, start=1):
        note = write_note(c.id, c.present, c.absent, snapshot.terms, seed=args.seed, synonym_share=args.synonyms)
        chars += len(note.text)
        t = time.perf_counter()
        terms = note_terms(linker.annotate(note.text))
        t_link += time.perf_counter() - t
        t = time.perf_counter()
        id_scores = scores_of(index, c.present, c.absent)
        by_ids = tie_aware_rank(id_scores, c.row, omim)
        mixed.append(mixed_ranks(index, id_scores, c.row))
        present = index.resolve_terms(terms.present).ids
        absent = [a for a in index.resolve_terms(terms.absent).ids if a not in set(present)]
        no_present += not present
        by_text = tie_aware_rank(scores_of(index, present, absent), c.row, omim)
        t_rank += time.perf_counter() - t
        id_ranks.append(by_ids)
        text_ranks.append(by_text)
        found, stray = outcomes(note, terms)
        all_outcomes += [(c, o, by_text - by_ids) for o in found]
        extra.update(f"{m.text!r} → {m.id} {names.get(m.id, '')}" for m in stray)
        if n % 500 == 0:
            say(f"{n} / {len(cases)} cases")
    return report(args, loaded.total, cases, id_ranks, text_ranks, all_outcomes, extra, no_present, chars,
                  t_link, t_rank, time.perf_counter() - t0, names) + "\n" + grouping_report(index, cases, mixed)


def grouping_report(index: RankingIndex, cases: Sequence[Case], mixed: Sequence[tuple[int, int]]) -> str:
    raw = np.asarray([m[0] for m in mixed], dtype=np.float64)
    grouped = np.asarray([m[1] for m in mixed], dtype=np.float64)
    twins = sum(c.row in index.partner for c in cases)
    return "\n".join([
        "", f"One row per disease, id queries, the list mixing every source ({len(index.disease_ids)} entries, "
        f"{len(index.equivalents)} OMIM-Orphanet pairs; {twins} of {len(cases)} cases have a gold disease with a "
        "twin), the gold disease or its twin counted in both:", "",
        "| list | top-1 | top-10 (per case) |", "|---|---:|---:|",
        f"| raw (group=false) | {(raw <= 1).mean():.3f} | {(raw <= 10).mean():.3f} |",
        f"| grouped (default) | {(grouped <= 1).mean():.3f} | {(grouped <= 10).mean():.3f} |", "",
        f"- grouping moves the gold disease up in {int((grouped < raw).sum())} cases, by "
        f"{float(np.mean((raw - grouped)[grouped < raw])) if (grouped < raw).any() else 0.0:.1f} rows on average"])


def _examples(items: Sequence[TermOutcome], names: dict[str, str], k: int) -> str:
    def named(term: str) -> str:
        return f"{term} {names.get(term, '')}"

    counted = Counter(f"{o.placed.surface!r} ({named(o.placed.term)}"
                      + (" → " + ", ".join(named(i) for i in o.linked_to) if o.linked_to else "") + ")"
                      for o in items)
    return "; ".join(f"{text} ×{n}" for text, n in counted.most_common(k))


def report(args: argparse.Namespace, total: int, cases: Sequence[Case], id_ranks: Sequence[float],
           text_ranks: Sequence[float], found: Sequence[tuple[Case, TermOutcome, float]], extra: Counter[str],
           no_present: int, chars: int, t_link: float, t_rank: float, seconds: float, names: dict[str, str]) -> str:
    capped = f" (at most {args.max_per_disease} per disease)" if args.max_per_disease else ""
    d_ids, d_text = per_disease(cases, id_ranks), per_disease(cases, text_ranks)
    c_ids, c_text = per_case(id_ranks), per_case(text_ranks)
    worse = sum(t > i for t, i in zip(text_ranks, id_ranks, strict=True))
    better = sum(t < i for t, i in zip(text_ranks, id_ranks, strict=True))
    lines = [f"Machine: {machine_line()}. Cases: `{args.cases}`{capped}: {len(cases)} of {total} rankable, "
             f"{len({c.gold for c in cases})} diseases; the gold disease among the OMIM diseases, "
             f"method likelihood, present + absent. Notes: seed {args.seed}, synonym share {args.synonyms}, "
             f"{chars / max(1, len(cases)):.0f} characters per note on average.", "",
             "| query | top-1 | top-10 (per disease) | top-1 | top-10 (per case) |", "|---|---:|---:|---:|---:|",
             f"| ids | {d_ids.top1:.3f} | {d_ids.top10:.3f} | {c_ids.top1:.3f} | {c_ids.top10:.3f} |",
             f"| text | {d_text.top1:.3f} | {d_text.top10:.3f} | {c_text.top1:.3f} | {c_text.top10:.3f} |",
             f"| text − ids | {d_text.top1 - d_ids.top1:+.3f} | {d_text.top10 - d_ids.top10:+.3f} | "
             f"{c_text.top1 - c_ids.top1:+.3f} | {c_text.top10 - c_ids.top10:+.3f} |", "",
             f"- text ranks the gold disease lower in {worse} cases, higher in {better}, the same in "
             f"{len(cases) - worse - better}; {no_present} note(s) gave no present term", ""]
    by_polarity: dict[str, Counter[str]] = {"present": Counter(), "absent": Counter()}
    for _, o, _ in found:
        by_polarity[o.placed.polarity][o.outcome] += 1
    lines += ["| written terms | " + " | ".join(OUTCOMES) + " |", "|---|" + "---:|" * len(OUTCOMES)]
    for polarity, counts in by_polarity.items():
        n = sum(counts.values())
        lines.append(f"| {polarity} ({n}) | " + " | ".join(f"{counts[k]} ({counts[k] / max(1, n):.1%})"
                                                             for k in OUTCOMES) + " |")
    lines.append("")
    k = args.examples
    for outcome in OUTCOMES[1:]:
        items = [o for _, o, _ in found if o.outcome == outcome]
        in_worse = [o for _, o, delta in found if o.outcome == outcome and delta > 0]
        lines.append(f"- **{outcome}**: {len(items)} terms, {len(in_worse)} of them in cases the text ranks "
                     f"lower; most frequent: {_examples(items, names, k) or 'none'}")
    negations = Counter(o.placed.negation for _, o, _ in found if o.placed.polarity == "absent")
    wrong = Counter(o.placed.negation for _, o, _ in found if o.placed.polarity == "absent" and o.outcome == "polarity")
    lines.append("- absent terms with the wrong polarity, by phrasing: "
                 + ", ".join(f"\"{k}\" {wrong[k]} of {n}" for k, n in sorted(negations.items())))
    fields = Counter(o.placed.field for _, o, _ in found)
    lost = Counter(o.placed.field for _, o, _ in found if o.outcome != "linked")
    lines.append("- not linked, by the words written: "
                 + ", ".join(f"{f} {lost[f]} of {n}" for f, n in sorted(fields.items())))
    lines.append(f"- extra mentions (outside every written term): {sum(extra.values())}; most frequent: "
                 + ("; ".join(f"{t} ×{n}" for t, n in extra.most_common(k)) or "none"))
    lines.append(f"- linking {1000 * t_link / max(1, len(cases)):.1f} ms a note, the two rankings "
                 f"{1000 * t_rank / max(1, len(cases)):.1f} ms a case; whole run {seconds:.0f} s")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=str(DEFAULT_CASES), help="JSONL of cases (default: the shared dev file)")
    parser.add_argument("--max-per-disease", type=int, help="at most this many cases per disease (a quick check)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the wording choices")
    parser.add_argument("--synonyms", type=float, default=0.5, help="share of terms written as an EXACT synonym")
    parser.add_argument("--examples", type=int, default=8, help="examples per kind of loss")
    print(run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
