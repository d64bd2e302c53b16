"""Unit tests for kg.text.negation (NegEx/ConText-style negation and uncertainty detection)."""

from __future__ import annotations

import pytest

from kg.text.negation import (
    BIDIRECTIONAL_UNCERTAINTY,
    POST_NEGATED_UNCERTAINTY,
    POST_NEGATION,
    POST_UNCERTAINTY,
    PRE_NEGATED_UNCERTAINTY,
    PRE_NEGATION,
    PRE_UNCERTAINTY,
    PSEUDO_TRIGGERS,
    TERMINATORS,
    detect,
    find_triggers,
)


def spans_of(text: str, *concepts: str) -> list[tuple[int, int]]:
    """Character spans of each concept (its first occurrence at or after the previous one, any case)."""
    out: list[tuple[int, int]] = []
    pos = 0
    low = text.lower()
    for concept in concepts:
        i = low.index(concept.lower(), pos)
        out.append((i, i + len(concept)))
        pos = i + len(concept)
    return out


def flags(text: str, *concepts: str) -> list[str]:
    """'N' negated, 'U' uncertain, 'NU' both, '-' neither; one entry per concept."""
    out = []
    for neg, unc in detect(text, spans_of(text, *concepts)):
        out.append(("N" if neg else "") + ("U" if unc else "") or "-")
    return out


# Hand-checked fixture: radiology-style sentences WRITTEN FOR THIS TEST SUITE (not copied from any corpus),
# modelled on common chest X-ray / CT report phrasing.  Expected flags per concept, in order.
RADIOLOGY_FIXTURE: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
    ("No pleural effusion, pneumothorax, or consolidation.",
     ("pleural effusion", "pneumothorax", "consolidation"), ("N", "N", "N")),
    ("Small left pleural effusion, unchanged.", ("pleural effusion",), ("-",)),
    ("Interval resolution of the right lower lobe pneumonia.", ("pneumonia",), ("N",)),
    ("Cannot exclude early pneumonia.", ("pneumonia",), ("U",)),
    ("Pneumonia cannot be excluded.", ("pneumonia",), ("U",)),
    ("No change in the small right pleural effusion.", ("pleural effusion",), ("-",)),
    ("No interval change in mild cardiomegaly.", ("cardiomegaly",), ("-",)),
    ("The previously seen pneumothorax has resolved.", ("pneumothorax",), ("N",)),
    ("Pneumothorax is not seen.", ("pneumothorax",), ("N",)),
    ("Right basilar opacity may represent atelectasis or pneumonia.",
     ("opacity", "atelectasis", "pneumonia"), ("-", "U", "U")),
    ("Left lower lobe atelectasis versus pneumonia.", ("atelectasis", "pneumonia"), ("U", "U")),
    ("No focal airspace opacity to suggest pneumonia.", ("pneumonia",), ("N",)),
    ("No pneumothorax; small left pleural effusion.", ("pneumothorax", "pleural effusion"), ("N", "-")),
    ("No pneumothorax, but there is a small pleural effusion.", ("pneumothorax", "pleural effusion"),
     ("N", "-")),
    ("Lungs are clear without consolidation or effusion.", ("consolidation", "effusion"), ("N", "N")),
    ("Cardiomegaly with possible mild pulmonary edema.", ("cardiomegaly", "pulmonary edema"), ("-", "U")),
    ("No definite pleural effusion.", ("pleural effusion",), ("NU",)),
    ("Pneumonia is unlikely.", ("pneumonia",), ("NU",)),
    ("Findings are suspicious for malignancy.", ("malignancy",), ("U",)),
    ("Evaluate for pneumothorax.", ("pneumothorax",), ("U",)),
    ("Patchy opacity in the lingula, concerning for pneumonia.", ("opacity", "pneumonia"), ("-", "U")),
    ("Pulmonary embolism was ruled out.", ("pulmonary embolism",), ("N",)),
    ("Negative for pneumothorax or pleural effusion.", ("pneumothorax", "pleural effusion"), ("N", "N")),
    ("Partially resolved right lower lobe pneumonia.", ("pneumonia",), ("-",)),
    ("Heart size is normal. Lungs are clear. Mild scoliosis.", ("scoliosis",), ("-",)),
    ("Pleural effusion: none.", ("pleural effusion",), ("N",)),
    ("No evidence of pneumonia. Emphysema.", ("pneumonia", "emphysema"), ("N", "-")),
    ("Stable cardiomegaly. No pulmonary edema.", ("cardiomegaly", "pulmonary edema"), ("-", "N")),
    ("Atelectasis, likely.", ("atelectasis",), ("U",)),
    ("No gram negative rods; cultures grew Staphylococcus.", ("staphylococcus",), ("-",)),
]


@pytest.mark.parametrize(("text", "concepts", "expected"), RADIOLOGY_FIXTURE,
                         ids=[t for t, _, _ in RADIOLOGY_FIXTURE])
def test_radiology_fixture(text: str, concepts: tuple[str, ...], expected: tuple[str, ...]) -> None:
    assert tuple(flags(text, *concepts)) == expected


def test_fixture_is_small_and_hand_written() -> None:
    assert len(RADIOLOGY_FIXTURE) <= 30


# --- scope ------------------------------------------------------------------------------------------------


def test_pre_negation_scope_runs_over_a_long_list() -> None:
    text = ("No focal consolidation, pleural effusion, pneumothorax, pulmonary edema, "
            "or acute osseous abnormality.")
    assert flags(text, "consolidation", "pleural effusion", "pneumothorax", "pulmonary edema",
                 "osseous abnormality") == ["N"] * 5


@pytest.mark.parametrize("terminator", ["but", "however", "although", "except for", "aside from"])
def test_terminators_stop_negation(terminator: str) -> None:
    text = f"No pneumothorax, {terminator} small pleural effusion."
    assert flags(text, "pneumothorax", "pleural effusion") == ["N", "-"]


def test_sentence_end_stops_scope_but_not_abbreviations_or_decimals() -> None:
    assert flags("No pneumothorax. Pleural effusion.", "pneumothorax", "pleural effusion") == ["N", "-"]
    assert flags("Nodule vs. mass.", "nodule", "mass") == ["U", "U"]
    assert flags("No nodule vs. mass.", "nodule", "mass") == ["NU", "NU"]
    assert flags("No nodule over 2.5 cm in the apex or mass.", "nodule", "mass") == ["N", "N"]


def test_scope_window_is_limited() -> None:
    filler = " ".join(["word"] * 30)
    assert flags(f"No {filler} pneumonia", "pneumonia") == ["-"]


def test_forward_uncertainty_stops_at_negation() -> None:
    assert flags("Possible pneumonia, no effusion.", "pneumonia", "effusion") == ["U", "N"]


def test_negation_stops_at_a_new_hedged_list_item() -> None:
    assert flags("No pneumothorax, possible small effusion.", "pneumothorax", "effusion") == ["N", "U"]


def test_singular_post_trigger_does_not_reach_past_comma() -> None:
    assert flags("Possible pneumonia, effusion is not seen.", "pneumonia", "effusion")[0] == "U"
    assert flags("Pneumonia, effusion and edema are not seen.", "pneumonia", "effusion", "edema") == ["N"] * 3


def test_newline_between_list_lines_is_a_boundary() -> None:
    text = "FINDINGS:\nNo pleural effusion\nSmall pneumothorax"
    assert flags(text, "pleural effusion", "pneumothorax") == ["N", "-"]


def test_wrapped_line_keeps_the_sentence() -> None:
    text = "There is no pleural effusion or\npneumothorax."
    assert flags(text, "pleural effusion", "pneumothorax") == ["N", "N"]


def test_semicolon_and_colon_end_scope() -> None:
    assert flags("No fever; cough.", "fever", "cough") == ["N", "-"]
    assert flags("Denies fever. HISTORY: cough", "fever", "cough") == ["N", "-"]


# --- pseudo triggers and traps -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "No change in the pleural effusion.",
        "No significant interval change in the pleural effusion.",
        "No increase in the pleural effusion.",
        "The pleural effusion is not only large but loculated.",
        "Pleural effusion without change.",
        "Pleural effusion, slowly resolving.",
        "Near complete resolution of the pleural effusion.",
        "Pleural effusion with gram negative organisms.",
        "Pleural effusion, drained without difficulty.",
    ],
)
def test_pseudo_negations_do_not_negate(text: str) -> None:
    assert flags(text, "pleural effusion") == ["-"]


def test_rule_out_is_hypothetical_not_negated() -> None:
    # The NegEx test set labels "Rule out mucocele" as affirmed; we flag it uncertain.
    assert flags("Rule out pneumonia.", "pneumonia") == ["U"]
    assert flags("R/O pneumonia.", "pneumonia") == ["U"]
    assert flags("Pneumonia was ruled out.", "pneumonia") == ["N"]


def test_trigger_words_inside_a_mention_are_ignored() -> None:
    # "Absent speech" and "No social interaction" are phenotype names: their trigger words do not count.
    assert flags("Absent speech and seizures.", "absent speech", "seizures") == ["-", "-"]
    assert flags("Patient shows no social interaction.", "no social interaction") == ["-"]


def test_question_mark_hedges() -> None:
    assert flags("Right lower lobe opacity ?pneumonia", "pneumonia") == ["U"]
    assert flags("Pneumonia? Effusion.", "pneumonia", "effusion") == ["U", "-"]


def test_contractions_and_unicode() -> None:
    assert flags("Patient doesn’t have fever.", "fever") == ["N"]
    assert flags("Pneumonia can’t be excluded.", "pneumonia") == ["U"]
    assert flags("No pleural effusion — or pneumothorax.", "pleural effusion", "pneumothorax") == ["N", "N"]
    assert flags("NO PLEURAL EFFUSION OR PNEUMOTHORAX.", "pleural effusion", "pneumothorax") == ["N", "N"]


def test_resolved_before_the_finding() -> None:
    assert flags("Resolved left pleural effusion.", "pleural effusion") == ["N"]
    assert flags("Essentially resolved bibasilar atelectasis.", "atelectasis") == ["N"]
    assert flags("Nausea and vomiting resolved.", "nausea", "vomiting") == ["N", "N"]
    assert flags("Effusion resolved; atelectasis persists.", "effusion", "atelectasis") == ["N", "-"]


def test_clinical_history_style() -> None:
    assert flags("She denies fever, chills, or night sweats.", "fever", "chills", "night sweats") == ["N"] * 3
    assert flags("Pain free at rest.", "pain") == ["N"]
    assert flags("Fever resolved.", "fever") == ["N"]


# --- API contract ------------------------------------------------------------------------------------------


def test_empty_inputs() -> None:
    assert detect("", []) == []
    assert detect("No fever.", []) == []
    assert detect("", [(0, 0)]) == [(False, False)]


def test_degenerate_and_out_of_range_spans() -> None:
    assert detect("No fever.", [(5, 5), (100, 120), (-3, -1)]) == [(False, False)] * 3


def test_order_and_overlap_of_spans_do_not_matter() -> None:
    text = "No pleural effusion. Pneumonia."
    a = spans_of(text, "pleural effusion", "pneumonia")
    assert detect(text, a[::-1]) == detect(text, a)[::-1]
    overlapping = [(3, 19), (11, 19)]
    assert detect(text, overlapping) == [(True, False), (True, False)]


def test_very_long_text_is_fast_and_local() -> None:
    sentence = "No pleural effusion. Small pneumothorax. "
    text = sentence * 5000
    spans = []
    for k in range(5000):
        base = k * len(sentence)
        spans += [(base + 3, base + 19), (base + 27, base + 39)]
    result = detect(text, spans)
    assert result[:2] == [(True, False), (False, False)]
    assert result[-2:] == [(True, False), (False, False)]
    assert sum(neg for neg, _ in result) == 5000


def test_find_triggers_reports_phrases_and_offsets() -> None:
    text = "Pneumonia cannot be excluded; no effusion."
    trig = find_triggers(text, [(0, 9)])
    phrases = [(t.phrase, text[t.start : t.end]) for t in trig]
    assert ("cannot be excluded", "cannot be excluded") in phrases
    assert ("no", "no") in phrases


def test_trigger_lists_are_lower_case_and_unique() -> None:
    groups = [PRE_NEGATION, POST_NEGATION, PRE_UNCERTAINTY, POST_UNCERTAINTY, BIDIRECTIONAL_UNCERTAINTY,
              PRE_NEGATED_UNCERTAINTY, POST_NEGATED_UNCERTAINTY, PSEUDO_TRIGGERS, TERMINATORS]
    for group in groups:
        assert all(p == p.lower().strip() and p for p in group)
        assert len(set(group)) == len(group), [p for p in group if group.count(p) > 1]
