"""Image + report sets (MIMIC-CXR, Open-i / Indiana style) → evidence linked by the text linker.

``phenokg evidence import-reports FILE`` runs :func:`import_reports`.  The file (CSV, TSV or JSONL) lists one
image per record with its report:

* the image: a column ``image`` (or ``path``, ``image_path``, ``image_uri``, ``uri``, ``url``, ``jpg_path``,
  ``filename``), relative to the file or to ``image_root``;
* the text: ``findings`` and / or ``impression`` (joined with a blank line, findings first), else a single
  ``report`` (or ``report_text``, ``text``, ``caption``) column.

The report is the caption, and links are made exactly as ``phenokg evidence import`` makes them: the
:class:`~kg.text.linker.Linker` over the graph's phenotypes, negated mentions ("no pleural effusion") →
``RULES_OUT``, hedged ones ("possible pneumonia") → ``SHOWS {uncertain: true}``.  Every other column is kept as an
extra field (``study_id``, ``subject_id``, ``ViewPosition`` … under their normalised names), with ``dataset`` (the
source), ``index`` (0-based record) and ``split`` (``--split``, else the ``split`` column or ``--split-column``).
Rows are streamed and the import is resumable (see :mod:`kg.ingest.evidence_stream`).
"""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any, Final

from kg.errors import ValidationError
from kg.ingest.evidence_rows import EvidenceRow, RowError
from kg.ingest.evidence_stream import StreamReport, import_stream
from kg.ingest.table_stream import Record, TableStream, column_key
from kg.store.blobs import BlobStore
from kg.store.graph import Graph
from kg.text.linker import Linker

__all__ = ["IMAGE_KEYS", "REPORT_KEYS", "SECTION_KEYS", "ReportParser", "import_reports", "report_text"]

#: Normalised names of the image column, in order of preference.
IMAGE_KEYS: Final = ("image", "path", "image_path", "image_uri", "image_url", "uri", "url", "jpg_path",
                     "filename")
#: Report sections joined into the caption, in this order.
SECTION_KEYS: Final = ("findings", "impression")
#: Whole-report columns, used when no section has text.
REPORT_KEYS: Final = ("report", "report_text", "text", "caption")


def _clean(value: Any) -> str:
    if not isinstance(value, str):
        return ""
    return unicodedata.normalize("NFC", value.replace("\r\n", "\n").replace("\r", "\n")).strip()


def report_text(values: dict[str, Any]) -> str:
    """The caption of one record: its findings and impression joined by a blank line, else its whole report."""
    sections = [t for t in (_clean(values.get(k)) for k in SECTION_KEYS) if t]
    if sections:
        return "\n\n".join(sections)
    return next((t for t in (_clean(values.get(k)) for k in REPORT_KEYS) if t), "")


class ReportParser:
    """Checks the header of a CSV / TSV (JSONL records are checked one by one) and turns each record into an
    :class:`~kg.ingest.evidence_rows.EvidenceRow` or a :class:`RowError`."""

    def __init__(self, table: TableStream, *, source: str, license: str, split: str | None = None,
                 split_column: str | None = None) -> None:
        self.path = str(table.path)
        self.source, self.license, self.split = source, license, split
        self.split_key: str | None = column_key(split_column) if split_column is not None else None
        columns = table.columns
        if columns is not None:
            if not any(k in columns for k in IMAGE_KEYS):
                raise table.header_error("missing image column (image, path, image_path, image_uri or uri)")
            if not any(k in columns for k in (*SECTION_KEYS, *REPORT_KEYS)):
                raise table.header_error("missing report column (findings and/or impression, or report / text)")
            if self.split_key is not None and self.split_key not in columns:
                raise table.header_error(f"missing split column {split_column!r}")
        if self.split_key is None and split is None:
            self.split_key = "split"
        self._text_keys = {*SECTION_KEYS, *REPORT_KEYS, "split"}

    def parse(self, record: Record) -> EvidenceRow | RowError:
        values = record.values
        image_key = next((k for k in IMAGE_KEYS if k in values), None)
        image = values.get(image_key) if image_key is not None else None
        if not isinstance(image, str) or not image.strip():
            what = "missing image path" if image is None or isinstance(image, str) else "the image must be a string"
            return RowError(self.path, record.line, f"{what} ({image_key or 'image / path'})")
        caption = report_text(values)
        if not caption:
            return RowError(self.path, record.line, "no report text (findings, impression or report are empty)")
        extra: dict[str, Any] = {k: v.strip() if isinstance(v, str) else v for k, v in values.items()
                                 if k != image_key and k not in self._text_keys and k != self.split_key}
        extra.update(dataset=self.source, index=record.index)
        split = self.split if self.split is not None else (
            _clean(values.get(self.split_key)) if self.split_key else "")
        if split:
            extra["split"] = split
        return EvidenceRow(line=record.line, image=image.strip(), caption=caption, source=self.source,
                           license=self.license, extra=extra)


def import_reports(graph: Graph, path: Path, linker: Linker, store: BlobStore, *, license: str,
                   source: str | None = None, image_root: Path | None = None, split: str | None = None,
                   split_column: str | None = None, progress: bool = True) -> StreamReport:
    """Import an image + report file (see the module docstring); bad rows are reported and skipped.

    ``source`` defaults to the file's stem. Raises before writing anything when a CSV / TSV header lacks the image
    or every report column, or the split column asked for.
    """
    if not license.strip():
        raise ValidationError("--license: the license of the images is required (e.g. 'PhysioNet Credentialed "
                              "Health Data License 1.5.0')")
    if split is not None and split_column is not None:
        raise ValidationError("give --split (one split for every row) or --split-column, not both")
    path = Path(path)
    name = (source if source is not None else path.stem).strip()
    if not name:
        raise ValidationError("--source must not be empty")
    with TableStream(path) as table:
        parser = ReportParser(table, source=name, license=license.strip(), split=split, split_column=split_column)
        items = (parser.parse(r) if isinstance(r, Record) else r for r in table.records())
        base = (Path(image_root) if image_root is not None else path.parent).expanduser().resolve()
        return import_stream(graph, items, store, path=path, base_dir=base, linker=linker,
                             progress=progress, total=table.size, position=lambda: table.position, desc="reports")
