"""The retrieval-quality benchmark's pure parts (benchmarks/retrieval_quality.py, _retrieval_metrics.py)."""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import pytest
from PIL import Image

from benchmarks import _retrieval_metrics as rm
from benchmarks import retrieval_quality as rq

# A toy hierarchy: LUNG > {PNEU, CONS, EDEMA > KERLEY}; HEART stands apart.
LUNG, PNEU, CONS, EDEMA, KERLEY, HEART = "HP:1", "HP:2", "HP:3", "HP:4", "HP:5", "HP:6"
PARENTS = {PNEU: [LUNG], CONS: [LUNG], EDEMA: [LUNG], KERLEY: [EDEMA], LUNG: [], HEART: []}


def ancestors(term: str) -> set[str]:
    out: set[str] = set()
    todo = list(PARENTS.get(term, []))
    while todo:
        t = todo.pop()
        if t not in out:
            out.add(t)
            todo.extend(PARENTS.get(t, []))
    return out


def hit(term: str, p: float | None, *, in_vocabulary: bool = True) -> dict[str, Any]:
    return {"id": term, "probability": p, "in_vocabulary": in_vocabulary}


def test_truth_closes_present_upwards_and_excluded_downwards() -> None:
    truth = rm.build_truth([PNEU, CONS], [EDEMA, LUNG], ancestors)
    assert truth.present == {PNEU, CONS, LUNG}
    assert truth.label(PNEU, ancestors) == 1
    assert truth.label(LUNG, ancestors) == 1          # an ancestor of a present term; present wins the conflict
    assert truth.label(EDEMA, ancestors) == 0
    assert truth.label(KERLEY, ancestors) == 0        # a descendant of an excluded term
    assert truth.label(HEART, ancestors) is None      # neither: skipped
    normal = rm.build_truth([], [LUNG], ancestors)
    assert normal.present == frozenset()
    assert [normal.label(t, ancestors) for t in (LUNG, PNEU, KERLEY, HEART)] == [0, 0, 0, None]


def test_top_k_precision_counts_only_confident_terms_among_the_first_k() -> None:
    truth = rm.build_truth([PNEU], [EDEMA], ancestors)
    answer = [hit(PNEU, 0.9), hit(EDEMA, 0.7), hit(LUNG, 0.6), hit(HEART, 0.4), hit(CONS, 0.3), hit(KERLEY, 0.95)]
    assert rm.top_k_precision(answer, truth) == pytest.approx(2 / 3)   # PNEU, LUNG right; EDEMA wrong; 6th unseen
    assert rm.top_k_precision(answer, truth, k=1) == 1.0
    assert rm.top_k_precision([hit(PNEU, 0.49), hit(LUNG, None)], truth) is None
    assert rm.top_k_precision(answer, rm.build_truth([], [LUNG], ancestors)) == 0.0


def test_pair_labels_skip_unknown_truth_and_missing_probabilities() -> None:
    truth = rm.build_truth([PNEU], [EDEMA], ancestors)
    answer = [hit(PNEU, 0.8), hit(KERLEY, 0.1), hit(HEART, 0.5), hit(LUNG, None), hit(EDEMA, 0.2)]
    assert rm.pair_labels(answer, truth, ancestors) == ([0.8, 0.1, 0.2], [1, 0, 0])


def test_evidence_vote_majority_ties_and_abstentions() -> None:
    def ev(*pairs: tuple[str | None, float]) -> list[dict[str, Any]]:
        return [{"finding": f, "score": s} for f, s in pairs]

    winner, votes = rm.evidence_vote(ev(("A", 0.9), ("B", 0.8), ("B", 0.7), (None, 0.99)))
    assert (winner, dict(votes)) == ("B", {"A": 1, "B": 2})
    assert rm.evidence_vote(ev(("A", 0.5), ("B", 0.9), ("A", 0.5), ("B", 0.2)))[0] == "B"   # 2–2: higher sum
    assert rm.evidence_vote(ev(("B", 0.5), ("A", 0.5)))[0] == "B"                           # then the nearest
    assert rm.evidence_vote(ev((None, 0.9)))[0] is None
    assert rm.evidence_vote([])[0] is None


def test_accuracy_per_class_and_auroc() -> None:
    acc = rm.accuracy(["a", None, "b", "b"], ["a", "a", "b", "a"])
    assert acc == {"all": 0.5, "a": pytest.approx(1 / 3), "b": 1.0}
    with pytest.raises(ValueError, match="2 predictions for 1 labels"):
        rm.accuracy(["a", "b"], ["a"])
    assert rm.auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert math.isnan(rm.auroc([0.1, 0.2], [1, 1]))


def _answer(top: str | None, p_pneumonia: float, votes: list[str], *, in_domain: bool = True) -> dict[str, Any]:
    return {"findings": [{"id": top}] if top else [], "in_domain": in_domain,
            "phenotypes": [hit(rm.PNEUMONIA, p_pneumonia), hit("HP:0032177", 0.5 * p_pneumonia),
                           hit("HP:0001640", 0.05)],
            "evidence": [{"finding": f, "score": 0.9} for f in votes]}


def test_evaluate_summarises_the_answers() -> None:
    no, pn = rm.FINDINGS[0], rm.FINDINGS[1]
    answers = [_answer(no, 0.1, [no, no, pn]), _answer(pn, 0.6, [no, no, pn]),      # label 0
               _answer(pn, 0.9, [no, no, pn]), _answer(None, 0.4, [pn, pn, pn], in_domain=False)]  # label 1
    labels = np.array([0, 0, 1, 1])
    anc = {rm.PNEUMONIA: frozenset({"HP:0002088"}), "HP:0032177": frozenset({"HP:0002088"}),
           "HP:0001640": frozenset({"HP:0001627"})}
    truths = {pn: rm.build_truth([rm.PNEUMONIA, "HP:0032177"], ["HP:0001640"], lambda t: anc.get(t, ())),
              no: rm.build_truth([], [rm.PNEUMONIA, "HP:0032177", "HP:0001640"], lambda t: anc.get(t, ()))}
    s = rm.evaluate(answers, labels, truths, anc)
    assert s["top_finding"] == {"all": 0.5, no: 0.5, pn: 0.5} and s["no_findings"] == 1
    assert s["auroc"] == pytest.approx(0.75) and s["pneumonia_missing"] == 0
    # p ≥ 0.5 in the top 5: image 2 {PNEU} wrong; image 3 {PNEU} right; others none (image 4's 0.4 < 0.5)
    assert (s["top5_precision"], s["top5_scored_images"]) == (0.5, 2)
    assert s["normal_clear"] == 0.5 and s["pairs"] == 12 and s["pairs_positive"] == 4
    assert s["out_of_vocabulary"] == 0 and s["in_domain"] == 0.75
    assert s["vote"]["accuracy"] == {"all": 0.75, no: 1.0, pn: 0.5}
    assert 0.0 <= s["ece"] <= 1.0 and 0.0 <= s["pairs_ece"] <= 1.0


def test_markdown_table_cells_and_shape() -> None:
    text = rm.markdown_table([["acc", 0.86123, None, float("nan"), 3, "≥ 0.86"]])
    assert text.splitlines() == ["| metric | phenokg | vote | probe | zero-shot | target |",
                                 "|---|---:|---:|---:|---:|---|",
                                 "| acc | 0.861 | – | – | 3 | ≥ 0.86 |"]
    assert rm.fmt(True) == "yes" and rm.fmt(0.5, 1) == "0.5"
    with pytest.raises(ValueError, match="has 2 cells"):
        rm.markdown_table([["a", 1]])


def test_report_marks_targets_met_and_missed() -> None:
    acc = {"all": 0.9, rm.FINDINGS[0]: 0.95, rm.FINDINGS[1]: 0.85}
    result = {
        "service": {"top_finding": acc, "auroc": 0.9, "ece": 0.03, "pairs_ece": 0.04, "pairs": 100,
                    "top5_precision": 0.8, "top5_scored_images": 250, "normal_clear": 0.7, "out_of_vocabulary": 0,
                    "in_domain": 0.99, "vote": {"accuracy": acc, "auroc": 0.88, "ece": 0.1}},
        "baselines": {"probe": {"accuracy": acc, "auroc": 0.95, "ece": 0.02},
                      "zero_shot": {"accuracy": acc, "auroc": 0.7}, "pooled_probe": {"accuracy": 0.91},
                      "zero_shot_fine_ensembles": {"accuracy": 0.8}},
        "ood": {"n": 20, "out_of_domain": 0.85}, "latency_ms": {"p50": 41.23, "p95": 80.0}, "activation_s": 6.5,
        "model": {"id": "clip-1", "calibrated": True, "vocabulary_size": 58}, "device": "cpu",
        "job": {"id": "job-1"}, "train_s": 300.0, "machine": "CPU X, 2 cores", "command": ".venv/bin/python b.py"}
    text = rm.report(result)
    assert "| top finding accuracy | 0.900 | 0.900 | 0.900 | 0.900 | ≥ 0.86 (met) |" in text
    assert "| HP:0002090 Pneumonia AUROC | 0.900 | 0.880 | 0.950 | 0.700 | ≥ 0.92 (missed) |" in text
    assert "| activation s | 6.50 | – | – | – | < 5 (missed) |" in text
    assert "| latency p50 / p95 ms (sequential) | 41.2 / 80.0 |" in text
    assert text.endswith("Activation: 6.50 s (POST /models/clip-1/activate)")
    assert "trained through POST /jobs (job-1, 300 s)" in text


def test_non_xray_images_and_test_pngs_decode() -> None:
    images = rm.non_xray_images()
    assert [k for k, _ in images].count("noise") == 7 and len(images) == 20
    for _, data in images:
        with Image.open(io.BytesIO(data)) as img:
            assert img.format == "PNG" and min(img.size) >= 64
    arr = np.arange(28 * 28, dtype=np.uint8).reshape(28, 28)
    with Image.open(io.BytesIO(rq.png(arr))) as img:
        assert img.mode == "L" and np.array_equal(np.asarray(img), arr)


def test_help_needs_no_service(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        rq.main(["--help"])
    assert exc.value.code == 0 and "--model" in capsys.readouterr().out
