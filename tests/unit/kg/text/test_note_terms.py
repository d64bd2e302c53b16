"""A note's mentions → present and absent query terms with their spans (the real linker, a tiny lexicon)."""

from __future__ import annotations

import pytest

from kg.text.linker import Linker, TermLabels
from kg.text.note_terms import Span, note_terms

PNEUMONIA, EFFUSION, CARDIOMEGALY, SEIZURE, SCOLIOSIS = (
    "HP:0002090", "HP:0002202", "HP:0001640", "HP:0001250", "HP:0002650")


@pytest.fixture(scope="module")
def linker() -> Linker:
    return Linker([TermLabels(PNEUMONIA, "Pneumonia", ()), TermLabels(EFFUSION, "Pleural effusion", ()),
                   TermLabels(CARDIOMEGALY, "Cardiomegaly", ("Enlarged heart",)),
                   TermLabels(SEIZURE, "Seizure", ("Seizures",)), TermLabels(SCOLIOSIS, "Scoliosis", ())])


def test_present_absent_and_spans(linker: Linker) -> None:
    note = "Pneumonia with a pleural effusion. No enlarged heart. Denies seizures. The pneumonia was treated."
    terms = note_terms(linker.annotate(note))
    assert terms.present == [PNEUMONIA, EFFUSION]
    assert terms.absent == [CARDIOMEGALY, SEIZURE]
    assert [(m.mention.id, m.role) for m in terms.mentions] == [
        (PNEUMONIA, "present"), (EFFUSION, "present"), (CARDIOMEGALY, "absent"), (SEIZURE, "absent"),
        (PNEUMONIA, "present")]
    assert terms.spans(CARDIOMEGALY) == [Span(38, 52, "enlarged heart")]
    assert [note[s.start:s.end] for s in terms.spans(PNEUMONIA)] == ["Pneumonia", "pneumonia"]
    assert terms.spans(SCOLIOSIS) == []


def test_uncertain_mentions_stay_out_and_an_assertion_beats_a_negation(linker: Linker) -> None:
    note = "Possible scoliosis. No seizures in infancy. Seizures began at age 3."
    terms = note_terms(linker.annotate(note))
    assert terms.present == [SEIZURE] and terms.absent == []
    assert [m.role for m in terms.mentions] == ["uncertain", "overridden", "present"]
    assert [s.text for s in terms.spans(SEIZURE)] == ["Seizures"]   # only the mention that put it in the query


def test_an_empty_note_gives_an_empty_query(linker: Linker) -> None:
    terms = note_terms(linker.annotate("Unremarkable examination."))
    assert (terms.present, terms.absent, terms.mentions) == ([], [], [])
