"""Image–caption evidence files: read CSV/TSV/JSONL records into :class:`EvidenceRow` / :class:`RowError`.

:func:`read_evidence_rows` yields one :class:`EvidenceRow` per record, or a :class:`RowError` carrying the
record's physical line number (missing field, undecodable bytes, a JSONL line that is not an object …).
Problems with the whole file (unknown format, no header, missing columns, UTF-16 without BOM) raise
:class:`~kg.errors.SourceFormatError` before anything is written.
"""

from __future__ import annotations

import csv
import json
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from kg.errors import SourceFormatError

__all__ = [
    "ALIASES",
    "FIELDS",
    "FORMATS",
    "EvidenceRow",
    "RowError",
    "read_evidence_rows",
]

FIELDS: Final = ("image", "caption", "source", "license")
ALIASES: Final[dict[str, str]] = {
    "image": "image", "image_path": "image", "image_uri": "image", "image_url": "image", "path": "image",
    "uri": "image", "url": "image",
    "caption": "caption",
    "source": "source",
    "license": "license", "licence": "license",
}
FORMATS: Final[dict[str, str]] = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


@dataclass(frozen=True)
class EvidenceRow:
    """One image–caption record as written in the file (caption NFC-normalised, fields stripped)."""

    line: int
    image: str
    caption: str
    source: str
    license: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RowError:
    """A record that was skipped, with the physical line where it starts (1-based)."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def _column_key(name: str) -> str:
    return "_".join(name.strip().lower().replace("-", " ").split())


def read_evidence_rows(path: Path) -> Iterator[EvidenceRow | RowError]:
    """Rows of an evidence file, chosen by extension: ``.csv``, ``.tsv``, ``.jsonl`` / ``.ndjson``.

    Raises :class:`SourceFormatError` for problems with the file as a whole (it cannot be read, has an
    unknown extension, is not UTF-8 at all, lacks a header or a required column); every problem confined
    to one record is yielded as a :class:`RowError` and the other records still come.
    """
    path = Path(path)
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise SourceFormatError(path, None, f"unknown evidence file type {path.suffix!r} "
                                            f"(expected {', '.join(sorted(FORMATS))})")
    lines, bad = _decode_lines(path)
    if kind == "jsonl":
        yield from _jsonl_rows(path, lines, bad)
    else:
        yield from _csv_rows(path, lines, bad, "," if kind == "csv" else "\t")


_HEAD: Final = 1 << 16  # bytes read first to recognise the encoding


def _decode_lines(path: Path) -> tuple[Iterator[str], dict[int, str]]:
    """The file's physical lines (with their line ends), decoded as they are read, and a dict that collects the
    1-based numbers of undecodable ones as the lines go by (the readers drop entries they are done with).

    UTF-8, with or without BOM, is streamed line by line, so a file of any size reads in bounded memory;
    UTF-16/32 *with* a BOM is decoded whole. A line that is not valid UTF-8 is kept (bytes replaced, so the CSV
    structure survives) and reported by its number; a file whose start is mostly NUL bytes (UTF-16/32 without
    BOM) is refused as a whole.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(_HEAD)
    except OSError as exc:
        raise SourceFormatError(path, None, f"cannot read the file: {exc.strerror or exc}") from exc
    for bom, codec in ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
                       (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if head.startswith(bom):
            data = path.read_bytes()
            try:
                text = data.decode(codec)
            except UnicodeDecodeError as exc:
                line = data[: exc.start].decode(codec, errors="replace").count("\n") + 1
                raise SourceFormatError(path, line, f"not valid {codec.upper()} text: {exc.reason}") from exc
            return iter(_split_text(text)), {}
    skip = 3 if head.startswith(b"\xef\xbb\xbf") else 0
    head = head[skip:]
    nul = head.find(b"\x00")
    if nul >= 0 and head.count(b"\x00") * 8 > len(head):
        line = head[:nul].count(b"\n") + 1
        raise SourceFormatError(path, line, "not UTF-8 text (NUL bytes: UTF-16 or UTF-32 without a "
                                            "byte-order mark?); save the file as UTF-8")
    bad: dict[int, str] = {}
    return _utf8_lines(path, skip, bad), bad


def _utf8_lines(path: Path, skip: int, bad: dict[int, str]) -> Iterator[str]:
    with open(path, "rb") as fh:
        fh.seek(skip)
        for number, raw in enumerate(fh, start=1):  # binary files split on \n only, keeping it
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                byte = raw[exc.start: exc.start + 1].hex()
                column = len(raw[: exc.start].decode("utf-8", errors="replace")) + 1
                bad[number] = (f"not valid UTF-8 (byte 0x{byte} at column {column}; unknown encoding, "
                               "save the file as UTF-8)")
                text = raw.decode("utf-8", errors="replace")
            if "\x00" in text:
                bad.setdefault(number, "NUL byte in the line")
            yield text


def _split_text(text: str) -> list[str]:
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _bad_in(bad: dict[int, str], first: int, last: int) -> tuple[int, str] | None:
    """The first undecodable line of a record (lines ``first``..``last``); forgets the lines up to ``last``."""
    hit = next(((n, bad[n]) for n in range(first, last + 1) if n in bad), None)
    for number in [n for n in bad if n <= last]:
        del bad[number]
    return hit


def _csv_rows(path: Path, lines: Iterator[str], bad: dict[int, str],
              delimiter: str) -> Iterator[EvidenceRow | RowError]:
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    columns: list[str] | None = None
    end = 0  # physical line where the previous record ended
    while True:
        start = end + 1
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            end = reader.line_num
            message = str(exc)
            if "unexpected end of data" in message:
                message = f"unterminated quoted field (runs from line {start} to the end of the file)"
            if columns is None:
                raise SourceFormatError(path, start, f"bad header: {message}") from exc
            yield RowError(str(path), start, f"malformed {'CSV' if delimiter == ',' else 'TSV'}: {message}")
            continue
        end = reader.line_num
        if not any(cell.strip() for cell in record):
            continue  # blank line (or a row of empty cells, as spreadsheets leave behind)
        hit = _bad_in(bad, start, end)
        if columns is None:
            if hit is not None:
                raise SourceFormatError(path, hit[0], f"header: {hit[1]}")
            columns = _header(path, start, record)
            continue
        if hit is not None:
            yield RowError(str(path), hit[0], hit[1])
            continue
        if len(record) > len(columns):
            yield RowError(str(path), start, f"{len(record)} fields but the header has {len(columns)} "
                                             "(an unquoted delimiter in a field?)")
            continue
        values = dict(zip(columns, record, strict=False))
        yield _make_row(path, start, values)
    if columns is None:
        raise SourceFormatError(path, 1, "empty file: expected a header with columns "
                                         "image, caption, source, license")


def _header(path: Path, line: int, record: list[str]) -> list[str]:
    columns: list[str] = []
    seen: dict[str, str] = {}
    for index, raw in enumerate(record):
        key = _column_key(raw) or f"column_{index + 1}"
        name = ALIASES.get(key, key)
        if name in seen:
            raise SourceFormatError(path, line,
                                    f"columns {seen[name]!r} and {raw.strip()!r} both give the {name}")
        seen[name] = raw.strip()
        columns.append(name)
    missing = [f for f in FIELDS if f not in seen]
    if missing:
        raise SourceFormatError(
            path, line, f"missing column(s) {', '.join(missing)} in the header (found: "
                        f"{', '.join(repr(c.strip()) for c in record)}; image may be called image_path, "
                        "image_uri, path or uri, license licence)")
    return columns


def _jsonl_rows(path: Path, lines: Iterator[str], bad: dict[int, str]) -> Iterator[EvidenceRow | RowError]:
    for number, text in enumerate(lines, start=1):
        problem = bad.pop(number, None)
        if not text.strip():
            continue
        if problem is not None:
            yield RowError(str(path), number, problem)
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            yield RowError(str(path), number, f"not valid JSON: {exc.msg} (column {exc.colno})")
            continue
        if not isinstance(obj, dict):
            yield RowError(str(path), number, f"expected a JSON object, got {type(obj).__name__}")
            continue
        values: dict[str, Any] = {}
        clash = None
        for raw_key, value in obj.items():
            key = _column_key(str(raw_key))
            name = ALIASES.get(key, key)
            if name in values:
                clash = f"keys give the {name} twice ({raw_key!r})"
                break
            values[name] = value
        if clash:
            yield RowError(str(path), number, clash)
            continue
        yield _make_row(path, number, values)


def _make_row(path: Path, line: int, values: Mapping[str, Any]) -> EvidenceRow | RowError:
    missing: list[str] = []
    wrong: list[str] = []
    found: dict[str, str] = {}
    for name in FIELDS:
        value = values.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            missing.append(name)
        elif not isinstance(value, str):
            wrong.append(f"{name} must be a string, not {type(value).__name__}")
        else:
            found[name] = value
    if missing:
        return RowError(str(path), line, f"missing {', '.join(missing)}")
    if wrong:
        return RowError(str(path), line, "; ".join(wrong))
    caption = unicodedata.normalize("NFC", found["caption"].replace("\r\n", "\n").replace("\r", "\n")).strip()
    extra = {k: v for k, v in values.items() if k not in FIELDS}
    return EvidenceRow(line=line, image=found["image"].strip(), caption=caption,
                       source=found["source"].strip(), license=found["license"].strip(), extra=extra)
