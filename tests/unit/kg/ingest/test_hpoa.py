from __future__ import annotations

from pathlib import Path

import pytest

from kg.errors import SourceFormatError
from kg.ingest.hpoa import COLUMNS, diseases, fold, frequency_value, parse_hpoa
from tests.helpers import FIXTURES as FIXTURES_DIR

FIXTURES = FIXTURES_DIR


def test_frequency_values() -> None:
    assert frequency_value("3/4") == 0.75
    assert frequency_value("25%") == 0.25
    assert frequency_value("HP:0040281") == pytest.approx(0.895)
    assert frequency_value("HP:0040285") == 0.0
    assert frequency_value("") is None


def test_parse_mini_rows_and_header() -> None:
    header, rows = parse_hpoa(FIXTURES / "mini.hpoa")
    assert header.version == "2099-01-01"
    assert len(rows) == 10
    first = rows[0]
    assert (first.line, first.disease_id, first.hpo_id, first.frequency) == (6, "OMIM:100001", "HP:0002090", "3/4")
    assert first.source == "OMIM"
    assert rows[-1].references == ("PMID:3", "PMID:4")


def test_excluded_rows_are_not_only_not_qualifiers() -> None:
    _, rows = parse_hpoa(FIXTURES / "mini.hpoa")
    excluded = {(r.disease_id, r.hpo_id) for r in rows if r.excluded}
    assert excluded == {
        ("OMIM:100001", "HP:0001640"),   # frequency 0/5
        ("ORPHA:200002", "HP:0002107"),  # NOT qualifier
        ("ORPHA:200002", "HP:0002202"),  # frequency term HP:0040285 "Excluded"
    }


def test_fold_reconciles_with_source_rows() -> None:
    _, rows = parse_hpoa(FIXTURES / "mini.hpoa")
    edges = fold(rows, resolve={"HP:0002203": "HP:0002202", "HP:0002279": "HP:0001250"})
    assert sum(e.source_rows for e in edges) == len(rows)
    typical = {(e.disease, e.phenotype) for e in edges if e.relation == "HAS_PHENOTYPE"}
    assert len(typical) == 5
    pneumonia = next(e for e in edges if e.phenotype == "HP:0002090")
    assert pneumonia.source_rows == 2
    assert pneumonia.frequency == 0.75  # the highest stated frequency
    assert pneumonia.frequencies == ["3/4", "1/4"]
    assert pneumonia.references == ["PMID:1", "PMID:2"]
    assert pneumonia.onsets == ["HP:0003577"]
    seizure = next(e for e in edges if e.phenotype == "HP:0001250")
    assert seizure.source_rows == 2  # the alternative id folds into the current term
    assert seizure.sexes == ["MALE"]
    inheritance = next(e for e in edges if e.phenotype == "HP:0000006")
    assert inheritance.aspect == "I"  # filterable: not a phenotypic abnormality
    assert [d["id"] for d in diseases(rows)] == ["OMIM:100001", "ORPHA:200002", "DECIPHER:3"]


def _write(tmp_path: Path, *data_lines: str) -> Path:
    path = tmp_path / "bad.hpoa"
    path.write_text("#version: x\n" + "\t".join(COLUMNS) + "\n" + "\n".join(data_lines) + "\n", encoding="utf-8")
    return path


GOOD = "OMIM:1\tD\t\tHP:0000001\tPMID:1\tPCS\t\t1/2\t\t\tP\tx"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("OMIM:1\tD\t\tHP:1\tPMID:1\tPCS\t\t\t\t\tP\tx", "malformed HPO id"),
        ("OMIM:1\tD\tMAYBE\tHP:0000001\tPMID:1\tPCS\t\t\t\t\tP\tx", "unknown qualifier"),
        ("OMIM:1\tD\t\tHP:0000001\tPMID:1\tPCS\t\t5/3\t\t\tP\tx", "impossible frequency"),
        ("OMIM:1\tD\t\tHP:0000001\tPMID:1\tPCS\t\toften\t\t\tP\tx", "unreadable frequency"),
        ("OMIM:1\tD\t\tHP:0000001\tPMID:1\tPCS\t\t\t\t\tZ\tx", "unknown aspect"),
        ("MONDO:1\tD\t\tHP:0000001\tPMID:1\tPCS\t\t\t\t\tP\tx", "unknown disease id"),
        ("OMIM:1\tD\tHP:0000001", "expected 12 tab-separated columns"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = _write(tmp_path, GOOD, line)
    with pytest.raises(SourceFormatError) as info:
        parse_hpoa(path)
    assert info.value.line == 4
    assert message in str(info.value)
    assert str(info.value).startswith(f"{path}:4:")


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.hpoa"
    path.write_bytes(("\t".join(COLUMNS) + "\n" + GOOD.replace("D", "Dés") + "\n").encode("latin-1"))
    with pytest.raises(SourceFormatError, match="not UTF-8"):
        parse_hpoa(path)
