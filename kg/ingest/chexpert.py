"""CheXpert-style label files → evidence: images linked to the chest X-ray pack's HPO ids by their labels.

``phenokg evidence import-chexpert FILE`` runs :func:`import_chexpert`.  The file is a CSV (or TSV) with a
``Path`` column (the image, relative to the file or to ``image_root``) and finding columns named as in CheXpert
(``No Finding, Enlarged Cardiomediastinum, Cardiomegaly, …, Fracture``; case, spaces and underscores do not
matter).  Each finding column is mapped through the pack's ``chexpert`` field to a finding and its ``hpo`` ids:

* ``1`` (or ``1.0``) → ``SHOWS`` the finding's hpo ids; ``-1`` → ``SHOWS {uncertain: true}``; ``0`` → ``RULES_OUT``;
  blank → no link.  Any other value makes the row a bad row (reported with its line, skipped).
* The caption is generated from the labels, e.g. "Chest radiograph showing cardiomegaly and pleural effusion;
  possible edema. No evidence of pneumothorax."; each link's ``start``/``end`` locate the finding's words in it,
  ``matched`` is the column name and ``field`` is ``"chexpert"``.
* Extra fields on the node: ``dataset`` (the source), ``index`` (0-based data row), ``labels`` (column → 1/0/-1 for
  the non-blank finding columns), ``split`` (``--split``, else the ``split`` column or ``--split-column``), every
  column the pack does not map (``Support Devices``, ``Sex``, ``Age``, ``Frontal/Lateral``, ``AP/PA`` …) under its
  normalised name as written, and, when exactly one finding column is ``1`` (possibly *No Finding*), ``finding``
  (the pack id, e.g. ``CXR:cardiomegaly``) and ``label`` (its position in the pack) so that training can
  re-caption by finding and evaluate zero-shot.

Rows are streamed and the import is resumable (see :mod:`kg.ingest.evidence_stream`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from kg.errors import ValidationError
from kg.ingest.evidence_rows import EvidenceRow, RowError
from kg.ingest.evidence_stream import LabelledRow, LabelLink, Relation, StreamReport, import_stream
from kg.ingest.table_stream import Record, TableStream, column_key
from kg.ingest.xray_pack import XrayFinding, XrayPack, load_pack
from kg.store import queries as Q
from kg.store.blobs import BlobStore
from kg.store.graph import Graph

__all__ = [
    "CHEXPERT_SOURCE",
    "IMAGE_COLUMNS",
    "LINK_FIELD",
    "NO_FINDING",
    "ChexpertParser",
    "import_chexpert",
    "label_caption",
    "parse_label",
]

CHEXPERT_SOURCE: Final = "chexpert"
NO_FINDING: Final = "CXR:no_finding"
LINK_FIELD: Final = "chexpert"
STUDY: Final = "Chest radiograph"
#: Normalised names of the image column, in order of preference.
IMAGE_COLUMNS: Final = ("path", "image", "image_path", "image_uri", "image_url", "uri", "url")
#: Caption words of a finding whose lower-cased pack label reads badly.
PHRASES: Final[dict[str, str]] = {"CXR:pleural_other": "other pleural abnormality"}
_VALUES: Final[dict[str, int | None]] = {"": None, "1": 1, "1.0": 1, "0": 0, "0.0": 0, "-0": 0, "-0.0": 0,
                                         "-1": -1, "-1.0": -1}


def parse_label(text: str) -> int | None:
    """``"1"``/``"1.0"`` → 1, ``"0"``/``"0.0"`` → 0, ``"-1"``/``"-1.0"`` → -1, blank → None; else ValueError."""
    key = text.strip()
    if key not in _VALUES:
        raise ValueError(text)
    return _VALUES[key]


def _pieces(items: Sequence[tuple[str, str]], word: str) -> list[tuple[str, str | None]]:
    """``[(id, words), …]`` as the pieces of "a, b and c" (``word``: "and" / "or"), each item tagged with its id."""
    out: list[tuple[str, str | None]] = []
    for i, (fid, words) in enumerate(items):
        if i:
            out.append((f" {word} " if i == len(items) - 1 else ", ", None))
        out.append((words, fid))
    return out


def label_caption(positive: Sequence[tuple[str, str]], uncertain: Sequence[tuple[str, str]],
                  negative: Sequence[tuple[str, str]], *, no_finding: bool = False,
                  study: str = STUDY) -> tuple[str, dict[str, tuple[int, int]]]:
    """The caption of one image's labels, and where each finding's words are in it (finding id → start, end).

    Each list holds ``(finding id, words)`` in the order to write them.  ``no_finding``: the image is labelled
    *No Finding* (said only when nothing is positive or uncertain).
    """
    pieces: list[tuple[str, str | None]] = []
    if positive or uncertain:
        pieces.append((f"{study} showing ", None))
        pieces.extend(_pieces(positive, "and"))
        if uncertain:
            pieces.append(("; possible " if positive else "possible ", None))
            pieces.extend(_pieces(uncertain, "and"))
        pieces.append((".", None))
    elif no_finding:
        pieces.append((f"{study} with no finding.", None))
    else:
        pieces.append((f"{study}.", None))
    if negative:
        pieces.append((" No evidence of ", None))
        pieces.extend(_pieces(negative, "or"))
        pieces.append((".", None))
    text = ""
    spans: dict[str, tuple[int, int]] = {}
    for piece, fid in pieces:
        if fid is not None:
            spans[fid] = (len(text), len(text) + len(piece))
        text += piece
    return text, spans


@dataclass(frozen=True)
class _Column:
    key: str  # normalised column name
    name: str  # as written in the header
    finding: XrayFinding
    order: int  # position in the pack


class ChexpertParser:
    """Checks a CheXpert-style header (raising :class:`~kg.errors.SourceFormatError` at the header line) and turns
    each record into a :class:`~kg.ingest.evidence_stream.LabelledRow` or a :class:`RowError`."""

    def __init__(self, table: TableStream, pack: XrayPack, *, source: str, license: str, split: str | None = None,
                 split_column: str | None = None) -> None:
        if table.columns is None:
            raise table.header_error("a CheXpert-style file needs a header line (CSV or TSV)")
        columns = table.columns
        raw = dict(zip(columns, table.raw_columns or columns, strict=True))
        self.path = str(table.path)
        self.source, self.license, self.split = source, license, split
        image = next((c for c in IMAGE_COLUMNS if c in raw), None)
        if image is None:
            raise table.header_error("missing column 'Path' (the image path; 'image' or 'image_path' also do)")
        self.image_key = image
        by_key = {column_key(f.chexpert): (n, f) for n, f in enumerate(pack.findings)}
        found = [_Column(c, raw[c], by_key[c][1], by_key[c][0]) for c in columns if c in by_key]
        if not found:
            names = ", ".join(f.chexpert for f in pack.findings)
            raise table.header_error(f"no finding column: expected CheXpert columns ({names})")
        self.columns = sorted(found, key=lambda c: c.order)
        self.split_key: str | None = None
        if split_column is not None:
            self.split_key = column_key(split_column)
            if self.split_key not in raw:
                raise table.header_error(f"missing split column {split_column!r}")
        elif split is None and "split" in raw:
            self.split_key = "split"
        skip = {image, "split", *(c.key for c in found)} | ({self.split_key} if self.split_key else set())
        self.extra_keys = [c for c in columns if c not in skip]

    def phenotype_ids(self) -> list[str]:
        """The HPO ids the file's finding columns link to."""
        return sorted({i for c in self.columns for i in c.finding.hpo})

    def parse(self, record: Record) -> LabelledRow | RowError:
        values = record.values
        image = str(values.get(self.image_key) or "").strip()
        if not image:
            return RowError(self.path, record.line, "missing image path (Path)")
        labels: dict[str, int] = {}
        bad: list[str] = []
        for col in self.columns:
            text = str(values.get(col.key) or "")
            try:
                value = parse_label(text)
            except ValueError:
                bad.append(f"{col.name}={text.strip()!r}")
                continue
            if value is not None:
                labels[col.key] = value
        if bad:
            return RowError(self.path, record.line, f"label(s) not 1, 0, -1 or blank: {', '.join(bad)}")
        groups: dict[int, list[_Column]] = {1: [], -1: [], 0: []}
        for col in self.columns:
            if col.key in labels and col.finding.id != NO_FINDING:
                groups[labels[col.key]].append(col)
        no_finding = any(labels.get(c.key) == 1 for c in self.columns if c.finding.id == NO_FINDING)
        caption, spans = label_caption(*([(c.finding.id, _words(c.finding)) for c in groups[v]] for v in (1, -1, 0)),
                                       no_finding=no_finding)
        links: list[LabelLink] = []
        relations: tuple[tuple[int, Relation], ...] = ((1, "SHOWS"), (-1, "SHOWS"), (0, "RULES_OUT"))
        for value, relation in relations:
            for col in groups[value]:
                start, end = spans[col.finding.id]
                links.extend(LabelLink(relation, hpo, start, end, col.name, LINK_FIELD, value == -1)
                             for hpo in col.finding.hpo)
        extra: dict[str, Any] = {k: str(values.get(k) or "").strip() for k in self.extra_keys}
        extra.update(dataset=self.source, index=record.index,
                     labels={c.name: labels[c.key] for c in self.columns if c.key in labels})
        split = self.split if self.split is not None else (
            str(values.get(self.split_key) or "").strip() if self.split_key else "")
        if split:
            extra["split"] = split
        positive = [c for c in self.columns if labels.get(c.key) == 1]
        if len(positive) == 1:
            extra.update(finding=positive[0].finding.id, label=positive[0].order)
        row = EvidenceRow(line=record.line, image=image, caption=caption, source=self.source, license=self.license,
                          extra=extra)
        return LabelledRow(row, tuple(links))


def _words(finding: XrayFinding) -> str:
    return PHRASES.get(finding.id, finding.label.lower())


def import_chexpert(graph: Graph, path: Path, store: BlobStore, *, license: str, source: str = CHEXPERT_SOURCE,
                    image_root: Path | None = None, split: str | None = None, split_column: str | None = None,
                    pack: XrayPack | None = None, progress: bool = True) -> StreamReport:
    """Import a CheXpert-style label file (see the module docstring); bad rows are reported and skipped.

    Raises before writing anything when the header lacks ``Path`` or every finding column, names no split column
    asked for, or the graph lacks a phenotype the finding columns link to.
    """
    if not license.strip():
        raise ValidationError("--license: the license of the images is required (e.g. 'Stanford CheXpert RUA')")
    if not source.strip():
        raise ValidationError("--source must not be empty")
    if split is not None and split_column is not None:
        raise ValidationError("give --split (one split for every row) or --split-column, not both")
    path = Path(path)
    pack = pack or load_pack()
    with TableStream(path, kinds=("csv", "tsv")) as table:
        parser = ChexpertParser(table, pack, source=source.strip(), license=license.strip(), split=split,
                                split_column=split_column)
        wanted = parser.phenotype_ids()
        records = graph.read(Q.TRAINING_TERM_NAMES, ids=wanted)
        have = {str(r[0]) for r in (records[0].get("rows") or [] if records else [])}
        missing = [i for i in wanted if i not in have]
        if missing:
            raise ValidationError(f"the graph has no phenotype {', '.join(missing)} (the chest X-ray pack's ids for "
                                  "the file's finding columns): build the graph first (`phenokg kg build`)")
        items = (parser.parse(r) if isinstance(r, Record) else r for r in table.records())
        base = (Path(image_root) if image_root is not None else path.parent).expanduser().resolve()
        return import_stream(graph, items, store, path=path, base_dir=base,
                             progress=progress, total=table.size, position=lambda: table.position, desc="chexpert")
