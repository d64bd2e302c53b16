"""Image + report rows without a database: sections joined into the caption, extras, bad rows, header errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kg.errors import SourceFormatError
from kg.ingest.evidence_rows import EvidenceRow, RowError
from kg.ingest.reports import ReportParser, report_text
from kg.ingest.table_stream import Record, TableStream


def parse_file(path: Path, text: str, **kwargs: str | None) -> list[EvidenceRow | RowError]:
    path.write_text(text, encoding="utf-8")
    with TableStream(path) as table:
        parser = ReportParser(table, source="mimic", license="PhysioNet", **kwargs)
        return [parser.parse(r) if isinstance(r, Record) else r for r in table.records()]


def test_report_text_joins_sections_else_whole_report() -> None:
    assert report_text({"findings": " Heart is enlarged.\r\n", "impression": "Cardiomegaly. ",
                        "report": "ignored"}) == "Heart is enlarged.\n\nCardiomegaly."
    assert report_text({"findings": "", "impression": "No acute process."}) == "No acute process."
    assert report_text({"findings": "  ", "text": "Whole report."}) == "Whole report."
    assert report_text({"findings": None, "impression": 3}) == ""


def test_csv_rows(tmp_path: Path) -> None:
    items = parse_file(tmp_path / "reports.csv", (
        "dicom_id,study_id,path,findings,impression,split,ViewPosition\n"  # 1
        'd1,s1,files/p1/d1.jpg,"Heart size is enlarged.\nNo pleural effusion.",Possible pneumonia.,train,PA\n'  # 2-3
        "d2,s2,files/p2/d2.jpg,,,validate,AP\n"  # 4: no text
        "d3,s3,,Normal.,,train,PA\n"  # 5: no image
        "d4,s4,files/p4/d4.jpg,,No acute process.,test,LATERAL\n"  # 6
    ))
    assert [(e.line, e.message) for e in items if isinstance(e, RowError)] == [
        (4, "no report text (findings, impression or report are empty)"),
        (5, "missing image path (path)")]
    first, second = [i for i in items if isinstance(i, EvidenceRow)]
    assert first.line == 2 and first.image == "files/p1/d1.jpg"
    assert first.caption == "Heart size is enlarged.\nNo pleural effusion.\n\nPossible pneumonia."
    assert (first.source, first.license) == ("mimic", "PhysioNet")
    assert first.extra == {"dicom_id": "d1", "study_id": "s1", "viewposition": "PA", "dataset": "mimic",
                           "index": 0, "split": "train"}
    assert second.extra["split"] == "test" and second.extra["index"] == 3


def test_jsonl_rows_split_option_and_bad_records(tmp_path: Path) -> None:
    lines = [json.dumps({"image": "a.png", "report": "Cardiomegaly.", "uid": 7}), "[1]",
             json.dumps({"report": "No image."}), json.dumps({"image": 5, "report": "x"}), "{oops"]
    items = parse_file(tmp_path / "openi.jsonl", "\n".join(lines) + "\n", split="test")
    assert [(e.line, e.message) for e in items if isinstance(e, RowError)] == [
        (2, "expected a JSON object, got list"), (3, "missing image path (image / path)"),
        (4, "the image must be a string (image)"), (5, "not valid JSON: Expecting property name enclosed in "
                                                       "double quotes (column 2)")]
    (good,) = [i for i in items if isinstance(i, EvidenceRow)]
    assert good.caption == "Cardiomegaly." and good.extra == {"uid": 7, "dataset": "mimic", "index": 0,
                                                              "split": "test"}


def test_header_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceFormatError, match=r"r\.csv:1: missing image column .*'dicom_id', 'findings'"):
        parse_file(tmp_path / "r.csv", "dicom_id,findings\nd1,x\n")
    with pytest.raises(SourceFormatError, match=r"r\.tsv:1: missing report column"):
        parse_file(tmp_path / "r.tsv", "path\tview\na.png\tPA\n")
    with pytest.raises(SourceFormatError, match=r"r\.csv:1: missing split column 'fold'"):
        parse_file(tmp_path / "r.csv", "path,report\na.png,x\n", split_column="fold")
