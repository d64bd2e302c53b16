"""CheXpert-style rows without a database: the streamed table reader, label values, captions, links, extras."""

from __future__ import annotations

from pathlib import Path

import pytest

from kg.errors import SourceFormatError
from kg.ingest.chexpert import ChexpertParser, label_caption, parse_label
from kg.ingest.evidence_rows import RowError
from kg.ingest.evidence_stream import LabelledRow, image_uri
from kg.ingest.table_stream import Record, TableStream, column_key
from kg.ingest.xray_pack import load_pack

HEADER = ("Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,Enlarged Cardiomediastinum,Cardiomegaly,Lung Opacity,"
          "Lung Lesion,Edema,Consolidation,Pneumonia,Atelectasis,Pneumothorax,Pleural Effusion,Pleural Other,"
          "Fracture,Support Devices")
CARDIOMEGALY, EDEMA, EFFUSION, PNEUMOTHORAX = "HP:0001640", "HP:0100598", "HP:0002202", "HP:0002107"


def row(path: str, **labels: str) -> str:
    """One CSV line of HEADER: metadata fixed, finding columns from ``labels`` (keys as column_key)."""
    cells = [path, "Female", "68", "Frontal", "AP"]
    for name in HEADER.split(",")[5:]:
        cells.append(labels.get(column_key(name), ""))
    return ",".join(cells)


def parse_file(tmp_path: Path, text: str, **kwargs: str | None) -> tuple[ChexpertParser, list[LabelledRow | RowError]]:
    path = tmp_path / "labels.csv"
    path.write_text(text, encoding="utf-8")
    with TableStream(path, kinds=("csv", "tsv")) as table:
        parser = ChexpertParser(table, load_pack(), source="chexpert", license="test licence", **kwargs)
        items = [parser.parse(r) if isinstance(r, Record) else r for r in table.records()]
    return parser, items


def test_parse_label_accepts_only_chexpert_values() -> None:
    assert [parse_label(v) for v in ("1", "1.0", " 0 ", "0.0", "-1", "-1.0", "", "  ")] == [
        1, 1, 0, 0, -1, -1, None, None]
    for bad in ("2", "yes", "0.5", "nan", "1,0"):
        with pytest.raises(ValueError):
            parse_label(bad)


def test_caption_and_spans() -> None:
    text, spans = label_caption([("a", "cardiomegaly"), ("b", "pleural effusion")], [("c", "edema")],
                                [("d", "pneumothorax")])
    assert text == "Chest radiograph showing cardiomegaly and pleural effusion; possible edema. " \
                   "No evidence of pneumothorax."
    assert {k: text[s:e] for k, (s, e) in spans.items()} == {
        "a": "cardiomegaly", "b": "pleural effusion", "c": "edema", "d": "pneumothorax"}
    assert label_caption([], [("c", "edema"), ("e", "atelectasis")], [])[0] == \
        "Chest radiograph showing possible edema and atelectasis."
    assert label_caption([], [], [("x", "a"), ("y", "b"), ("z", "c")], no_finding=True)[0] == \
        "Chest radiograph with no finding. No evidence of a, b or c."
    assert label_caption([], [], [])[0] == "Chest radiograph."


def test_rows_links_extras_and_bad_values(tmp_path: Path) -> None:
    text = "\n".join([
        HEADER,  # 1
        row("p1/view1.jpg", cardiomegaly="1.0", pleural_effusion="1", edema="-1.0", pneumothorax="0.0",
            support_devices="1.0"),  # 2
        row("p2/view1.jpg", no_finding="1.0", pneumonia="0"),  # 3
        row("p3/view1.jpg", cardiomegaly="2", edema="maybe"),  # 4: bad values
        row("", pneumonia="1"),  # 5: no path
        '"p4/view1.jpg",Male,"4',  # 6-7: a quoted field over two lines, too few fields
        '2",Frontal',
        row("p5/view1.jpg", pleural_other="1", lung_lesion="-1"),  # 8
    ]) + "\n"
    parser, items = parse_file(tmp_path, text, split="train")
    assert parser.phenotype_ids() == sorted({i for f in load_pack().findings for i in f.hpo})
    errors = [(e.line, e.message) for e in items if isinstance(e, RowError)]
    assert errors == [
        (4, "label(s) not 1, 0, -1 or blank: Cardiomegaly='2', Edema='maybe'"),
        (5, "missing image path (Path)"),
        (6, "4 fields but the header has 19 (a truncated line?)"),
    ]
    good = [i for i in items if isinstance(i, LabelledRow)]
    first, second, third = good
    caption = first.row.caption
    assert caption == ("Chest radiograph showing cardiomegaly and pleural effusion; possible edema. "
                       "No evidence of pneumothorax.")
    links = {(x.relation, x.phenotype, caption[x.start:x.end], x.matched, x.field, x.uncertain) for x in first.links}
    assert links == {
        ("SHOWS", CARDIOMEGALY, "cardiomegaly", "Cardiomegaly", "chexpert", False),
        ("SHOWS", EFFUSION, "pleural effusion", "Pleural Effusion", "chexpert", False),
        ("SHOWS", EDEMA, "edema", "Edema", "chexpert", True),
        ("RULES_OUT", PNEUMOTHORAX, "pneumothorax", "Pneumothorax", "chexpert", False),
    }
    assert first.row.image == "p1/view1.jpg" and first.row.license == "test licence"
    # Unmapped columns are extras, never links; two positives → no single finding.
    assert first.row.extra == {
        "sex": "Female", "age": "68", "frontal/lateral": "Frontal", "ap/pa": "AP", "support_devices": "1.0",
        "dataset": "chexpert", "index": 0, "split": "train",
        "labels": {"Cardiomegaly": 1, "Edema": -1, "Pneumothorax": 0, "Pleural Effusion": 1}}
    # No Finding: one positive column → finding and label (its place in the pack); no links of its own.
    pack_order = [f.id for f in load_pack().findings]
    assert second.row.caption == "Chest radiograph with no finding. No evidence of pneumonia."
    assert [(x.relation, x.phenotype) for x in second.links] == [("RULES_OUT", "HP:0002090")]
    assert second.row.extra["finding"] == "CXR:no_finding"
    assert second.row.extra["label"] == pack_order.index("CXR:no_finding") and second.row.extra["index"] == 1
    # A finding with two HPO ids links both; the pack's awkward label gets readable words.
    assert third.row.caption == "Chest radiograph showing other pleural abnormality; possible lung lesion."
    assert sorted((x.phenotype, x.uncertain) for x in third.links) == [
        ("HP:0031944", False), ("HP:0033608", True), ("HP:0033821", True)]
    assert third.row.extra["finding"] == "CXR:pleural_other" and third.row.extra["index"] == 5


def test_split_column_and_header_errors(tmp_path: Path) -> None:
    _, items = parse_file(tmp_path, "image,Fold,Edema\na.png,val,1\nb.png,,0\n", split_column="Fold")
    assert [i.row.extra.get("split") for i in items if isinstance(i, LabelledRow)] == ["val", None]
    _, items = parse_file(tmp_path, "Path\tsplit\tEdema\na.png\ttest\t1\n".replace("\t", ","))
    assert isinstance(items[0], LabelledRow) and items[0].row.extra["split"] == "test"
    assert items[0].row.extra["finding"] == "CXR:edema"

    with pytest.raises(SourceFormatError, match=r"labels\.csv:2: missing column 'Path'.*'Image Index'"):
        parse_file(tmp_path, "\nImage Index,Edema\na.png,1\n")
    with pytest.raises(SourceFormatError, match=r"labels\.csv:1: no finding column"):
        parse_file(tmp_path, "Path,Sex\na.png,F\n")
    with pytest.raises(SourceFormatError, match=r"labels\.csv:1: missing split column 'fold'"):
        parse_file(tmp_path, "Path,Edema\na.png,1\n", split_column="fold")
    with pytest.raises(SourceFormatError, match=r"labels\.csv:1: columns 'Edema' and 'edema' have the same name"):
        parse_file(tmp_path, "Path,Edema,edema\na.png,1,1\n")


def test_table_stream_streams_and_reports_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"\xef\xbb\xbfPath,Edema\n" + b"a.png,1\n" + b"b\xff.png,0\n" + b"\n" + b'"c.png",-1\n'
                     + b'"d.png,1\n')
    with TableStream(path) as table:
        assert table.columns == ["path", "edema"] and table.header_line == 1
        records = table.records()
        first = next(records)
        assert isinstance(first, Record) and first.values == {"path": "a.png", "edema": "1"}
        assert table.position < table.size  # streamed, not read whole
        rest = list(records)
        assert table.position == table.size
    assert [(r.line, r.message) for r in rest if isinstance(r, RowError)] == [
        (3, "not valid UTF-8 (byte 0xff at column 2; save the file as UTF-8)"),
        (6, "malformed CSV: unterminated quoted field (runs from line 6 to the end of the file)")]
    assert [(r.line, r.index, r.values["path"]) for r in rest if isinstance(r, Record)] == [(5, 2, "c.png")]

    wide = tmp_path / "w.csv"
    wide.write_bytes("Path,Edema\n".encode("utf-16"))
    with pytest.raises(SourceFormatError, match="UTF-16"), TableStream(wide):
        pass
    with pytest.raises(SourceFormatError, match=r"unknown file type '\.jsonl'"):
        TableStream(tmp_path / "x.jsonl", kinds=("csv", "tsv"))


def test_image_uri_matches_what_load_image_gives(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    assert image_uri("img/a.png", tmp_path) == (tmp_path / "img" / "a.png").resolve().as_uri()
    assert image_uri((tmp_path / "b.png").as_uri(), Path("/elsewhere")) == (tmp_path / "b.png").as_uri()
    assert image_uri("https://example.org/a.png", tmp_path) == "https://example.org/a.png"
    assert image_uri("s3://bucket/a.png", tmp_path) is None
