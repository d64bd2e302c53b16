from __future__ import annotations

from pathlib import Path

import pytest

from kg.analysis.ontology import OntologyView
from kg.errors import SourceFormatError
from kg.ingest.obo import parse_obo
from tests.helpers import FIXTURES as FIXTURES_DIR

FIXTURES = FIXTURES_DIR


def test_parse_mini_terms_and_release() -> None:
    release, rows = parse_obo(FIXTURES / "mini.obo")
    assert release.version == "2099-01-01"
    assert release.license == "https://hpo.jax.org/app/license"
    assert (release.terms, release.obsolete) == (13, 2)
    by_id = {r.id: r for r in rows}
    cardio = by_id["HP:0001640"]
    assert cardio.synonyms == ("Enlarged heart", "Increased heart size")
    assert cardio.synonym_scopes == ("EXACT", "EXACT")
    assert cardio.definition == "Increased size of the heart."
    assert cardio.parents == ("HP:0001626",)
    assert by_id["HP:0002202"].alt_ids == ("HP:0002203",)
    assert by_id["HP:0000057"].obsolete and by_id["HP:0000057"].replaced_by == "HP:0001640"
    assert by_id["HP:0003295"].consider == ("HP:0001250",)


def test_view_depth_ic_and_resolution() -> None:
    _, rows = parse_obo(FIXTURES / "mini.obo")
    view = OntologyView.from_rows(rows)
    assert view.depth["HP:0000001"] == 0 and view.depth["HP:0002090"] == 4
    assert view.ancestors("HP:0002090") >= {"HP:0002088", "HP:0002086", "HP:0000118", "HP:0000001"}
    assert view.resolve("HP:0002203") == "HP:0002202"     # alternative id
    assert view.resolve("HP:0000057") == "HP:0001640"     # obsolete, replaced
    assert view.resolve("HP:0003295") is None             # obsolete, only "consider"
    assert view.branches("HP:0001250") == ["HP:0000118"]
    view.compute_ic([("D1", "HP:0002090"), ("D2", "HP:0002202"), ("D3", "HP:0001250")])
    assert view.ic["HP:0000118"] == pytest.approx(0.0)
    assert view.ic["HP:0002086"] < view.ic["HP:0002090"]
    assert view.ic["HP:0002107"] == view.ic["HP:0002090"]  # unannotated: as specific as a one-disease term


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.obo"
    bad.write_text("format-version: 1.2\nontology: hp\n\n[Term]\nid: HP:0000001\nname: All\n\n"
                   "[Term]\nid: HP:0000002\nname: X\nis_a HP:0000001\n", encoding="utf-8")
    with pytest.raises(SourceFormatError) as info:
        parse_obo(bad)
    assert info.value.line == 11
    assert str(info.value).startswith(f"{bad}:11:")


def test_unknown_parent_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "orphan.obo"
    bad.write_text("format-version: 1.2\nontology: hp\n\n[Term]\nid: HP:0000001\nname: All\n\n"
                   "[Term]\nid: HP:0000002\nname: X\nis_a: HP:0009999\n", encoding="utf-8")
    with pytest.raises(SourceFormatError, match="unknown term HP:0009999") as info:
        parse_obo(bad)
    assert info.value.line == 11


def test_missing_file() -> None:
    with pytest.raises(SourceFormatError, match="file not found"):
        parse_obo(Path("/nonexistent/hp.obo"))
