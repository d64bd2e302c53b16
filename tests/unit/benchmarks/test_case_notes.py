"""Cases written as notes for benchmarks/rank_from_text.py: every term's words where the note says, the same note
for the same seed, absent terms negated, and the real linker reading them back."""

from __future__ import annotations

from benchmarks.case_notes import NEGATIONS, write_note
from kg.analysis.snapshot import TermInfo
from kg.text.linker import Linker, TermLabels
from kg.text.note_terms import note_terms


def term(id_: str, name: str, *synonyms: str) -> TermInfo:
    return TermInfo(id_, name, None, synonyms, ("EXACT",) * len(synonyms), (), None, False, (), None, (), 1.0, 3,
                    1)


TERMS = {t.id: t for t in (term("HP:0001166", "Arachnodactyly", "Long slender fingers"),
                           term("HP:0001083", "Ectopia lentis", "Dislocated lens"),
                           term("HP:0000545", "Myopia", "Near sightedness"), term("HP:0001250", "Seizure", "Seizures"),
                           term("HP:0000821", "Hypothyroidism", "Low T4"), term("HP:0002650", "Scoliosis"))}


def test_terms_are_placed_where_the_note_says_and_the_note_is_seeded() -> None:
    present, absent = ["HP:0001166", "HP:0001083", "HP:0000545", "HP:0002650"], ["HP:0001250", "HP:0000821"]
    note = write_note("case-1", present, [*absent, "HP:9999999"], TERMS, seed=3)
    assert [(p.term, p.polarity) for p in note.placed] == [(t, "present") for t in present] + [
        (t, "absent") for t in absent]                                       # unknown ids left out
    for p in note.placed:
        assert note.text[p.start:p.end] == p.surface
        assert (p.negation in NEGATIONS) == (p.polarity == "absent")
    assert write_note("case-1", present, absent, TERMS, seed=3) == note
    assert write_note("case-1", present, absent, TERMS, seed=4) != note
    only_names = write_note("case-1", present, absent, TERMS, synonym_share=0.0)
    assert {p.field for p in only_names.placed} == {"name"}


def test_the_linker_reads_the_note_back() -> None:
    linker = Linker([TermLabels(t.id, t.name, t.synonyms) for t in TERMS.values()])
    for seed in range(5):
        note = write_note("c", ["HP:0001166", "HP:0001083", "HP:0000545"], ["HP:0001250", "HP:0000821"], TERMS,
                          seed=seed)
        terms = note_terms(linker.annotate(note.text))
        assert (terms.present, terms.absent) == (["HP:0001166", "HP:0001083", "HP:0000545"],
                                                 ["HP:0001250", "HP:0000821"]), note.text
