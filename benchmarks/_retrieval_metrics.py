"""Pure parts of ``benchmarks/retrieval_quality.py``: the truth of a phenotype for an image's finding, top-k
phenotype precision, the nearest-evidence vote, accuracy / AUROC / ECE, the summary of the service's answers,
synthetic non-X-ray images, the Markdown table and report. No HTTP, no graph; scikit-learn and the ECE of
:mod:`models.train.grounding_fit` are imported when used."""

from __future__ import annotations

import io
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

__all__ = ["FINDINGS", "PNEUMONIA", "TARGETS", "Truth", "accuracy", "auroc", "build_truth", "ece", "evaluate",
           "evidence_vote", "fmt", "markdown_table", "non_xray_images", "pair_labels", "probability_of", "report",
           "table", "top_k_precision"]

PRESENT_THRESHOLD: Final = 0.5
FINDINGS: Final = {0: "CXR:no_finding", 1: "CXR:pneumonia"}
PNEUMONIA: Final = "HP:0002090"
TARGETS: Final = {"top_finding": 0.86, "auroc": 0.92, "ece": 0.05, "activation_s": 5.0}
Ancestors = Callable[[str], Iterable[str]]


@dataclass(frozen=True)
class Truth:
    """What an image of one finding shows: ``present`` is the finding's defining and typical ids closed upwards
    (a term is present when it or a descendant is in the set); ``excluded`` the finding's excluded ids (a term is
    absent when it or an ancestor is excluded). Present wins a conflict; any other term is unknown."""

    present: frozenset[str]
    excluded: frozenset[str]

    def label(self, term: str, ancestors: Ancestors) -> int | None:
        """1 present, 0 absent, ``None`` unknown."""
        if term in self.present:
            return 1
        if term in self.excluded or any(a in self.excluded for a in ancestors(term)):
            return 0
        return None


def build_truth(present: Iterable[str], excluded: Iterable[str], ancestors: Ancestors) -> Truth:
    """The :class:`Truth` of a finding from its defining + typical ids and its excluded ids."""
    closed: set[str] = set()
    for term in present:
        closed.add(term)
        closed.update(ancestors(term))
    return Truth(frozenset(closed), frozenset(excluded))


def probability_of(phenotypes: Sequence[Mapping[str, Any]], term: str) -> float | None:
    """The ``probability`` of ``term`` in an answer's ``phenotypes`` (``None`` when it is not listed)."""
    for hit in phenotypes:
        if hit["id"] == term:
            value = hit.get("probability")
            return float(value) if value is not None else None
    return None


def top_k_precision(phenotypes: Sequence[Mapping[str, Any]], truth: Truth, *, k: int = 5,
                    threshold: float = PRESENT_THRESHOLD) -> float | None:
    """Among the first ``k`` phenotypes with probability ≥ ``threshold``, the share that ``truth`` holds present;
    ``None`` when none of the first ``k`` reaches the threshold."""
    called = [h["id"] for h in phenotypes[:k] if h.get("probability") is not None and h["probability"] >= threshold]
    if not called:
        return None
    return sum(1 for t in called if t in truth.present) / len(called)


def pair_labels(phenotypes: Sequence[Mapping[str, Any]], truth: Truth, ancestors: Ancestors
                ) -> tuple[list[float], list[int]]:
    """``(probabilities, labels)`` of an answer's phenotypes whose truth is known (unknown ones skipped)."""
    probs: list[float] = []
    labels: list[int] = []
    for hit in phenotypes:
        label = truth.label(hit["id"], ancestors)
        if label is None or hit.get("probability") is None:
            continue
        probs.append(float(hit["probability"]))
        labels.append(label)
    return probs, labels


def evidence_vote(evidence: Sequence[Mapping[str, Any]]) -> tuple[str | None, Counter[str]]:
    """The majority ``finding`` of the nearest evidence hits (unlabelled hits abstain); a tie goes to the finding
    with the higher summed similarity, then to the nearest hit's. Returns ``(winner, votes)``."""
    votes: Counter[str] = Counter()
    weight: dict[str, float] = {}
    first: dict[str, int] = {}
    for rank, hit in enumerate(evidence):
        finding = hit.get("finding")
        if not finding:
            continue
        votes[finding] += 1
        weight[finding] = weight.get(finding, 0.0) + float(hit.get("score") or 0.0)
        first.setdefault(finding, rank)
    if not votes:
        return None, votes
    winner = min(votes, key=lambda f: (-votes[f], -weight[f], first[f]))
    return winner, votes


def accuracy(predicted: Sequence[str | None], truth: Sequence[str]) -> dict[str, float]:
    """Overall and per-class accuracy (``None`` predictions are wrong); keys ``all`` and each true class."""
    if len(predicted) != len(truth):
        raise ValueError(f"{len(predicted)} predictions for {len(truth)} labels")
    out = {"all": float(np.mean([p == t for p, t in zip(predicted, truth, strict=True)])) if truth else math.nan}
    for cls in sorted(set(truth)):
        pairs = [(p, t) for p, t in zip(predicted, truth, strict=True) if t == cls]
        out[cls] = float(np.mean([p == t for p, t in pairs]))
    return out


def auroc(scores: Sequence[float], positive: Sequence[int]) -> float:
    """ROC AUC (scikit-learn); NaN with one class only."""
    if len(set(positive)) < 2:
        return math.nan
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(np.asarray(positive), np.asarray(scores, dtype=float)))


def ece(probs: Sequence[float], labels: Sequence[int], bins: int = 10) -> float:
    """Expected calibration error with ``bins`` equal-width bins (the grounding fit's own definition)."""
    from models.train.grounding_fit import expected_calibration_error

    return expected_calibration_error(np.asarray(probs, dtype=float), np.asarray(labels, dtype=float), bins)


def non_xray_images(seed: int = 0) -> list[tuple[str, bytes]]:
    """20 PNGs that are no chest radiograph: 7 uniform noise (3 grey, 4 colour), 7 colour gradients,
    6 checkerboards (3 black/white, 3 coloured), 64–256 px. ``(kind, png bytes)``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    arrays: list[tuple[str, np.ndarray]] = []
    for i in range(7):
        size = (64, 128, 224, 256)[i % 4]
        shape = (size, size) if i < 3 else (size, size, 3)
        arrays.append(("noise", rng.integers(0, 256, shape, dtype=np.uint8)))
    for i in range(7):
        size = (96, 160, 224)[i % 3]
        y, x = np.mgrid[0:size, 0:size] / (size - 1)
        a, b = rng.random(3), rng.random(3)
        t = (x, y, (x + y) / 2, np.hypot(x - 0.5, y - 0.5) * math.sqrt(2))[i % 4]
        rgb = (a[None, None, :] * (1 - t[..., None]) + b[None, None, :] * t[..., None]) * 255
        arrays.append(("gradient", rgb.astype(np.uint8)))
    for i in range(6):
        size, cell = 128, (4, 8, 16)[i % 3]
        y, x = np.mgrid[0:size, 0:size]
        board = ((x // cell + y // cell) % 2).astype(bool)
        if i < 3:
            arrays.append(("checkerboard", (board * 255).astype(np.uint8)))
        else:
            c1, c2 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
            arrays.append(("checkerboard", np.where(board[..., None], c1, c2).astype(np.uint8)))
    out = []
    for kind, arr in arrays:
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="PNG")
        out.append((kind, buf.getvalue()))
    return out


def fmt(value: Any, digits: int = 3) -> str:
    """A table cell: floats to ``digits`` places, ``None`` / NaN as an en dash, anything else as text."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(rows: Sequence[Sequence[Any]],
                   header: Sequence[str] = ("metric", "phenokg", "vote", "probe", "zero-shot", "target")) -> str:
    """A Markdown table: the first column left-aligned, the value columns right-aligned, the last left."""
    width = len(header)
    for row in rows:
        if len(row) != width:
            raise ValueError(f"row {row!r} has {len(row)} cells, the header {width}")
    align = ["---", *["---:"] * (width - 2), "---"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _mean(values: list[float | None]) -> float:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else float("nan")


def evaluate(answers: list[dict[str, Any]], labels: np.ndarray, truths: dict[str, Truth],
             ancestors: dict[str, frozenset[str]]) -> dict[str, Any]:
    """The service's metrics and the nearest-evidence vote over the test answers."""
    truth = [FINDINGS[int(v)] for v in labels]
    y = [int(v) for v in labels]

    def anc(term: str) -> frozenset[str]:
        return ancestors.get(term, frozenset())

    p_raw = [probability_of(a["phenotypes"], PNEUMONIA) for a in answers]
    p = [v if v is not None else 0.0 for v in p_raw]
    precision = [top_k_precision(a["phenotypes"], truths[f]) for a, f in zip(answers, truth, strict=True)]
    normal = [a for a, f in zip(answers, truth, strict=True) if f == FINDINGS[0]]
    probs: list[float] = []
    pair_truth: list[int] = []
    for a, f in zip(answers, truth, strict=True):
        ps, ls = pair_labels(a["phenotypes"], truths[f], anc)
        probs += ps
        pair_truth += ls
    votes = [evidence_vote(a["evidence"]) for a in answers]
    vote_share = [c[FINDINGS[1]] / max(1, sum(c.values())) for _, c in votes]
    return {
        "top_finding": accuracy([a["findings"][0]["id"] if a["findings"] else None for a in answers], truth),
        "no_findings": sum(1 for a in answers if not a["findings"]),
        "auroc": auroc(p, y), "ece": ece(p, y), "pneumonia_missing": sum(v is None for v in p_raw),
        "top5_precision": _mean(precision), "top5_scored_images": sum(v is not None for v in precision),
        "top5_precision_by_class": {f: _mean([v for v, t in zip(precision, truth, strict=True) if t == f])
                                    for f in FINDINGS.values()},
        "normal_clear": float(np.mean([not any((h["probability"] or 0) >= 0.5 for h in a["phenotypes"])
                                       for a in normal])),
        "pairs_ece": ece(probs, pair_truth), "pairs": len(probs), "pairs_positive": int(sum(pair_truth)),
        "out_of_vocabulary": sum(1 for a in answers for h in a["phenotypes"] if not h["in_vocabulary"]),
        "in_domain": float(np.mean([bool(a["in_domain"]) for a in answers])),
        "vote": {"accuracy": accuracy([w for w, _ in votes], truth), "auroc": auroc(vote_share, y),
                 "ece": ece(vote_share, y)},
    }


def table(r: dict[str, Any]) -> str:
    s, b = r["service"], r["baselines"]
    vote, probe, zs = s["vote"], b["probe"], b["zero_shot"]

    def met(ok: bool) -> str:
        return " (met)" if ok else " (missed)"

    no, pn = FINDINGS[0], FINDINGS[1]
    rows = [
        ["top finding accuracy", s["top_finding"]["all"], vote["accuracy"]["all"], probe["accuracy"]["all"],
         zs["accuracy"]["all"], "≥ 0.86" + met(s["top_finding"]["all"] >= TARGETS["top_finding"])],
        ["… normal images", s["top_finding"][no], vote["accuracy"][no], probe["accuracy"][no], zs["accuracy"][no], ""],
        ["… pneumonia images", s["top_finding"][pn], vote["accuracy"][pn], probe["accuracy"][pn], zs["accuracy"][pn],
         ""],
        ["HP:0002090 Pneumonia AUROC", s["auroc"], vote["auroc"], probe["auroc"], zs["auroc"],
         "≥ 0.92" + met(s["auroc"] >= TARGETS["auroc"])],
        ["HP:0002090 ECE (10 bins)", s["ece"], vote["ece"], probe["ece"], None,
         "≤ 0.05" + met(s["ece"] <= TARGETS["ece"])],
        [f"ECE, all (image, phenotype) pairs with a known truth (n={s['pairs']})", s["pairs_ece"], None, None, None,
         ""],
        [f"top-5 phenotype precision at p ≥ 0.5 (images with one: {s['top5_scored_images']})", s["top5_precision"],
         None, None, None, ""],
        ["normal images with no phenotype at p ≥ 0.5", s["normal_clear"], None, None, None, ""],
        ["phenotypes outside the vocabulary (scope=model)", s["out_of_vocabulary"], None, None, None,
         "0" + met(s["out_of_vocabulary"] == 0)],
        ["test images in domain", s["in_domain"], None, None, None, ""],
        [f"non-X-ray images answered out of domain (n={r['ood']['n']})", r["ood"]["out_of_domain"], None, None,
         None, ""],
        ["latency p50 / p95 ms (sequential)", f"{r['latency_ms']['p50']:.1f} / {r['latency_ms']['p95']:.1f}", None,
         None, None, ""],
        ["activation s", f"{r['activation_s']:.2f}", None, None, None,
         "< 5" + met(r["activation_s"] < TARGETS["activation_s"])],
        ["accuracy: pooled-feature probe / fine prompt ensembles", None, None, b["pooled_probe"]["accuracy"],
         b["zero_shot_fine_ensembles"]["accuracy"], ""],
    ]
    return markdown_table(rows)


def report(r: dict[str, Any]) -> str:
    m = r["model"]
    how = (f"trained through POST /jobs ({r['job']['id']}, {r['train_s']:.0f} s)" if r.get("job")
           else "given with --model")
    return "\n".join([table(r), "", f"Machine: {r['machine']}", f"Command: `{r['command']}`",
                      f"Model: {m['id']} ({how}; calibrated: {m['calibrated']}, vocabulary {m['vocabulary_size']} "
                      f"phenotypes, device {r['device']})",
                      f"Activation: {r['activation_s']:.2f} s (POST /models/{m['id']}/activate)"])
