"""Streamed, resumable evidence import: the engine under ``import-chexpert`` and ``import-reports``.

:func:`import_stream` takes rows one at a time (from a :class:`~kg.ingest.table_stream.TableStream` turned into
:class:`~kg.ingest.evidence_rows.EvidenceRow` / :class:`LabelledRow` by a parser) and writes them in batches, so a
file of any length imports in bounded memory.  Node properties, evidence ids, blob storage and link edges are those
of :func:`kg.ingest.evidence.import_evidence` (same :func:`~kg.ingest.evidence.evidence_id`, same query constants);
what differs:

* **links**: an :class:`~kg.ingest.evidence_rows.EvidenceRow` is linked by the :class:`~kg.text.linker.Linker`
  (negated mentions → ``RULES_OUT``, hedged ones → ``SHOWS {uncertain: true}``), exactly as ``evidence import``
  does; a :class:`LabelledRow` carries its links (from structured labels) and the linker is not run.
* **resumable and cheap to re-run**: before reading any image, the (image URI, caption) pairs of the evidence
  ``source`` already holds are read once; a row whose pair is there is *skipped* (``skipped``): its image is not
  read, decoded or hashed again, only its links are checked (and written if an interrupted run left them out).
  Rows are written every ``batch`` rows, so an interrupted import keeps what it wrote and a re-run goes on.
* a row repeating an earlier row of the same run (same image URI and caption) is counted in ``duplicates``.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from tqdm import tqdm

from kg.ingest.evidence import ImportReport, evidence_id, write_missing_links
from kg.ingest.evidence_rows import EvidenceRow, RowError
from kg.store import queries as Q
from kg.store.blobs import BlobStore, ImageError, StoredImage, load_image
from kg.store.graph import Graph
from kg.text.linker import Linker

__all__ = ["LabelLink", "LabelledRow", "Relation", "StreamItem", "StreamReport", "image_uri", "import_stream"]

BATCH: Final = 500
_ID_CHUNK: Final = 1000
Relation = Literal["SHOWS", "RULES_OUT"]


@dataclass(frozen=True)
class LabelLink:
    """One link a row's labels assert; ``start``/``end`` locate ``matched`` (the label) in the caption."""

    relation: Relation
    phenotype: str
    start: int
    end: int
    matched: str
    field: str
    uncertain: bool = False


@dataclass(frozen=True)
class LabelledRow:
    """An evidence row whose links come from structured labels (the linker is not run on its caption)."""

    row: EvidenceRow
    links: tuple[LabelLink, ...] = ()


StreamItem = EvidenceRow | LabelledRow | RowError


@dataclass
class StreamReport(ImportReport):
    """:class:`~kg.ingest.evidence.ImportReport` plus ``skipped``: rows an earlier run already imported (their
    images were not read again)."""

    skipped: int = 0

    def summary(self) -> dict[str, Any]:
        """The report as JSON-ready numbers (``errors``: how many)."""
        out: dict[str, Any] = {k: v for k, v in vars(self).items() if k != "errors"}
        out["errors"] = len(self.errors)
        return out


def image_uri(ref: str, base_dir: Path) -> str | None:
    """The URI :func:`~kg.store.blobs.load_image` would give ``ref``, without reading it (``None``: a reference
    that load_image refuses, which is then reported when it is read)."""
    parts = urllib.parse.urlsplit(ref)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        return ref
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            return None
        local = Path(urllib.request.url2pathname(parts.path))
    elif len(scheme) > 1:
        return None
    else:
        local = Path(ref).expanduser()
    try:
        return (local if local.is_absolute() else base_dir / local).resolve().as_uri()
    except (OSError, RuntimeError, ValueError):
        return None


def _existing(graph: Graph, source: str) -> dict[tuple[str, str], str]:
    """(image URI, caption) → evidence id, for the evidence of ``source`` already in the graph."""
    records = graph.read(Q.TRAINING_EVIDENCE, source=source)
    rows = list(records[0].get("rows") or []) if records else []
    return {(str(r[2]), str(r[3])): str(r[0]) for r in rows if r[2] is not None and r[3] is not None}


def _chunks(items: list[str], size: int = _ID_CHUNK) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class _Batch:
    """Nodes and links waiting to be written."""

    def __init__(self) -> None:
        self.rows = 0
        self.nodes: dict[str, dict[str, Any]] = {}
        self.links: dict[Relation, list[dict[str, Any]]] = {"SHOWS": [], "RULES_OUT": []}

    def add_links(self, ident: str, row: EvidenceRow | LabelledRow, linker: Linker | None) -> None:
        if isinstance(row, LabelledRow):
            for link in row.links:
                self.links[link.relation].append({
                    "evidence": ident, "phenotype": link.phenotype, "matched": link.matched, "field": link.field,
                    "start": link.start, "end": link.end, "uncertain": link.uncertain})
            return
        if linker is None:
            raise ValueError("rows without labels need a linker")
        for m in linker.annotate(row.caption):
            self.links["RULES_OUT" if m.negated else "SHOWS"].append({
                "evidence": ident, "phenotype": m.id, "matched": m.matched, "field": m.field,
                "start": m.start, "end": m.end, "uncertain": m.uncertain})

    def flush(self, graph: Graph, report: StreamReport) -> None:
        ids = list(self.nodes)
        present: set[str] = set()
        for chunk in _chunks(ids):
            present.update(graph.read(Q.EVIDENCE_IDS_PRESENT, ids=chunk)[0]["ids"])
        new: list[Mapping[str, Any]] = [{"id": i, "props": self.nodes[i]} for i in ids if i not in present]
        report.created += len(new)
        report.unchanged += len(ids) - len(new)
        if new:
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            graph.write_batches(Q.UPSERT_EVIDENCE, new, _ID_CHUNK, now=now)
        written = write_missing_links(graph, self.links.items(), _ID_CHUNK)
        report.links_shows += written.get("SHOWS", 0)
        report.links_rules_out += written.get("RULES_OUT", 0)


def _props(ident: str, row: EvidenceRow, uri: str, stored: StoredImage) -> dict[str, Any]:
    info = stored.info
    props: dict[str, Any] = {
        "id": ident, "image_uri": uri, "caption": row.caption, "source": row.source, "license": row.license,
        "sha256": stored.sha256, "width": info.width, "height": info.height, "image_format": info.format,
        "image_mode": info.mode, "image_bytes": info.size,
    }
    if row.extra:
        props["extra"] = json.dumps(row.extra, sort_keys=True, ensure_ascii=False, default=str)
    return props


def import_stream(graph: Graph, items: Iterable[StreamItem], store: BlobStore, *, path: Path, source: str,
                  base_dir: Path, linker: Linker | None = None, progress: bool = True, total: int | None = None,
                  position: Callable[[], int] | None = None, batch: int = BATCH,
                  desc: str = "evidence") -> StreamReport:
    """Import ``items`` (all of evidence source ``source``; images relative to ``base_dir``).

    ``total`` / ``position``: the file's size and a callable giving the bytes read so far, for the progress bar
    (rows are counted in its postfix). Bad rows are collected in ``errors`` and skipped.
    """
    report = StreamReport(file=str(path))
    existing = _existing(graph, source)
    seen: dict[tuple[str, str], str] = {}  # (uri, caption) → id, rows of this run
    seen_ids: set[str] = set()
    pending = _Batch()
    by_bytes = total is not None and position is not None
    with tqdm(desc=desc, total=total if by_bytes else None, unit="B" if by_bytes else "row",
              unit_scale=by_bytes, disable=not progress, dynamic_ncols=True, mininterval=0.5) as bar:
        for item in items:
            report.rows += 1
            if by_bytes and position is not None:
                bar.update(position() - bar.n)
                if report.rows % 1000 == 0:
                    bar.set_postfix(rows=report.rows, skipped=report.skipped, errors=len(report.errors),
                                    refresh=False)
            else:
                bar.update(1)
            if isinstance(item, RowError):
                report.errors.append(item)
                continue
            row = item.row if isinstance(item, LabelledRow) else item
            uri = image_uri(row.image, base_dir)
            key = (uri or "", row.caption)
            if uri is not None and key in seen:
                report.duplicates += 1
                continue
            if uri is not None and key in existing:
                ident = existing[key]
                report.skipped += 1
                seen[key] = ident
                pending.add_links(ident, item, linker)
            else:
                try:
                    data, uri = load_image(row.image, base_dir)
                    stored = store.put_image(data)
                except ImageError as exc:
                    report.errors.append(RowError(str(path), row.line, str(exc)))
                    continue
                report.images_stored += stored.written
                ident = evidence_id(stored.sha256, row.caption, row.source)
                seen[(uri, row.caption)] = ident
                if ident in seen_ids:  # same bytes and caption under another path
                    report.duplicates += 1
                    continue
                seen_ids.add(ident)
                pending.nodes[ident] = _props(ident, row, uri, stored)
                pending.add_links(ident, item, linker)
            pending.rows += 1
            if pending.rows >= batch:
                pending.flush(graph, report)
                pending = _Batch()
        if pending.rows:
            pending.flush(graph, report)
        if by_bytes:
            bar.update(max(0, (total or 0) - bar.n))
    return report
