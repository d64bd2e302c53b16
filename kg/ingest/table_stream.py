"""Stream the records of a CSV / TSV / JSONL file, one at a time, with the physical line each starts on.

:class:`TableStream` is what the labelled-set importers (:mod:`kg.ingest.chexpert`, :mod:`kg.ingest.reports`) read
their files with: unlike :func:`kg.ingest.evidence_rows.read_evidence_rows` it never holds the whole file, so a
CheXpert ``train.csv`` (223k rows) or a MIMIC-CXR report list streams in constant memory, and it says how many
bytes it has consumed (``position``) for a progress bar.

* Each physical line is decoded on its own as UTF-8 (a UTF-8 BOM is dropped); a line that is not UTF-8 or holds a
  NUL byte makes the record it belongs to a :class:`~kg.ingest.evidence_rows.RowError`, the other records still
  come.  A file starting with a UTF-16/32 BOM, or a header that is not UTF-8, is refused as a whole.
* CSV / TSV: the first non-blank record is the header; its names are normalised (:func:`column_key`: lower case,
  spaces and hyphens → ``_``), and two names normalising alike are an error.  A record with more or fewer fields
  than the header is a row error (a truncated last line of an interrupted download is not read as blanks).
* JSONL: one object per line, keys normalised the same way; no header (``columns`` is ``None``).

Problems with the file as a whole raise :class:`~kg.errors.SourceFormatError` (path and line).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final

from kg.errors import SourceFormatError
from kg.ingest.evidence_rows import RowError

__all__ = ["TABLE_FORMATS", "Record", "TableStream", "column_key"]

TABLE_FORMATS: Final[dict[str, str]] = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_WIDE_BOMS: Final = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")
_UTF8_BOM: Final = b"\xef\xbb\xbf"


def column_key(name: str) -> str:
    """``"Pleural Effusion"`` → ``"pleural_effusion"``; ``"AP/PA"`` → ``"ap/pa"`` (as the evidence import does)."""
    return "_".join(name.strip().lower().replace("-", " ").split())


@dataclass(frozen=True, slots=True)
class Record:
    """One record: ``line`` where it starts (1-based), ``index`` its 0-based place among the data records (good
    or bad), ``values`` by normalised column name (CSV cells are strings, JSONL values as parsed)."""

    line: int
    index: int
    values: dict[str, Any]


class TableStream:
    """A CSV / TSV / JSONL file opened for streaming; use as a context manager.

    ``columns`` (normalised) and ``raw_columns`` (as written) are the header of a CSV / TSV file, read on entry;
    ``header_line`` is its line.  Iterate :meth:`records` once.
    """

    def __init__(self, path: Path, *, kinds: tuple[str, ...] = ("csv", "tsv", "jsonl")) -> None:
        self.path = Path(path)
        kind = TABLE_FORMATS.get(self.path.suffix.lower())
        if kind is None or kind not in kinds:
            accepted = sorted(k for k, v in TABLE_FORMATS.items() if v in kinds)
            raise SourceFormatError(self.path, None, f"unknown file type {self.path.suffix!r} "
                                                     f"(expected {', '.join(accepted)})")
        self.kind = kind
        self.columns: list[str] | None = None
        self.raw_columns: list[str] | None = None
        self.header_line = 0
        self.position = 0  # bytes consumed
        self.size = 0
        self._fh: IO[bytes] | None = None
        self._bad: dict[int, str] = {}
        self._csv: Any = None
        self._end = 0  # physical line where the previous CSV record ended

    # -- opening -------------------------------------------------------------------------------------------
    def __enter__(self) -> TableStream:
        try:
            self._fh = self.path.open("rb")
            self.size = self.path.stat().st_size
        except OSError as exc:
            raise SourceFormatError(self.path, None, f"cannot read the file: {exc.strerror or exc}") from exc
        try:
            head = self._fh.read(4)
            self._fh.seek(0)
            if head.startswith(_WIDE_BOMS):
                raise SourceFormatError(self.path, 1, "UTF-16 or UTF-32 text: save the file as UTF-8")
            if self.kind != "jsonl":
                self._open_csv()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def _lines(self) -> Iterator[str]:
        assert self._fh is not None
        for number, raw in enumerate(self._fh, start=1):
            self.position += len(raw)
            if number == 1 and raw.startswith(_UTF8_BOM):
                raw = raw[len(_UTF8_BOM):]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                byte = raw[exc.start: exc.start + 1].hex()
                column = len(raw[: exc.start].decode("utf-8", errors="replace")) + 1
                self._bad[number] = (f"not valid UTF-8 (byte 0x{byte} at column {column}; save the file as "
                                     "UTF-8)")
                text = raw.decode("utf-8", errors="replace")
            if "\x00" in text:
                self._bad.setdefault(number, "NUL byte in the line")
            yield text

    def _bad_in(self, first: int, last: int) -> tuple[int, str] | None:
        hit = next(((n, self._bad[n]) for n in range(first, last + 1) if n in self._bad), None)
        for n in [n for n in self._bad if n <= last]:
            del self._bad[n]
        return hit

    # -- CSV / TSV -----------------------------------------------------------------------------------------
    def _next_csv(self) -> tuple[int, list[str] | None, str | None]:
        """``(start line, cells, None)``, ``(start, None, problem)`` or ``(0, None, None)`` at the end."""
        while True:
            start = self._end + 1
            try:
                cells = next(self._csv)
            except StopIteration:
                return 0, None, None
            except csv.Error as exc:
                self._end = self._csv.line_num
                message = str(exc)
                if "unexpected end of data" in message:
                    message = f"unterminated quoted field (runs from line {start} to the end of the file)"
                self._bad_in(start, self._end)
                return start, None, f"malformed {self.kind.upper()}: {message}"
            self._end = self._csv.line_num
            if not any(cell.strip() for cell in cells):
                self._bad_in(start, self._end)
                continue  # blank line, or a row of empty cells as spreadsheets leave behind
            hit = self._bad_in(start, self._end)
            if hit is not None:
                return hit[0], None, hit[1]
            return start, cells, None

    def _open_csv(self) -> None:
        self._csv = csv.reader(self._lines(), delimiter="," if self.kind == "csv" else "\t", strict=True)
        start, cells, problem = self._next_csv()
        if problem is not None:
            raise SourceFormatError(self.path, start, f"bad header: {problem}")
        if cells is None:
            raise SourceFormatError(self.path, 1, "empty file: expected a header line")
        self.header_line = start
        self.raw_columns = [c.strip() for c in cells]
        columns: list[str] = []
        seen: dict[str, str] = {}
        for index, raw in enumerate(self.raw_columns):
            key = column_key(raw) or f"column_{index + 1}"
            if key in seen:
                raise SourceFormatError(self.path, start, f"columns {seen[key]!r} and {raw!r} have the same name")
            seen[key] = raw
            columns.append(key)
        self.columns = columns

    def header_error(self, message: str) -> SourceFormatError:
        """An error about the header line, naming the columns found."""
        found = ", ".join(repr(c) for c in self.raw_columns or ())
        return SourceFormatError(self.path, self.header_line or None,
                                 f"{message} (header: {found})" if self.columns is not None else message)

    # -- records -------------------------------------------------------------------------------------------
    def records(self) -> Iterator[Record | RowError]:
        """Every data record, or a :class:`RowError` for one that cannot be read."""
        if self._fh is None:
            raise RuntimeError("TableStream.records() outside its `with` block")
        if self.kind == "jsonl":
            yield from self._jsonl_records()
            return
        assert self.columns is not None
        width = len(self.columns)
        index = 0
        while True:
            start, cells, problem = self._next_csv()
            if cells is None and problem is None:
                return
            index += 1
            if problem is not None or cells is None:
                yield RowError(str(self.path), start, problem or "unreadable record")
                continue
            if len(cells) != width:
                hint = " (an unquoted delimiter in a field?)" if len(cells) > width else " (a truncated line?)"
                yield RowError(str(self.path), start, f"{len(cells)} fields but the header has {width}{hint}")
                continue
            yield Record(start, index - 1, dict(zip(self.columns, cells, strict=True)))

    def _jsonl_records(self) -> Iterator[Record | RowError]:
        index = 0
        for number, text in enumerate(self._lines(), start=1):
            bad = self._bad.pop(number, None)
            if not text.strip():
                continue
            index += 1
            if bad is not None:
                yield RowError(str(self.path), number, bad)
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                yield RowError(str(self.path), number, f"not valid JSON: {exc.msg} (column {exc.colno})")
                continue
            if not isinstance(obj, dict):
                yield RowError(str(self.path), number, f"expected a JSON object, got {type(obj).__name__}")
                continue
            values: dict[str, Any] = {}
            clash = None
            for raw_key, value in obj.items():
                key = column_key(str(raw_key))
                if key in values:
                    clash = f"keys {raw_key!r} and another give {key!r} twice"
                    break
                values[key] = value
            if clash:
                yield RowError(str(self.path), number, clash)
                continue
            yield Record(number, index - 1, values)
