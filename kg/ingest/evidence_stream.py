"""Streamed, resumable evidence import: the engine under ``evidence import``, ``import-chexpert`` and
``import-reports``.

:func:`import_stream` takes rows one at a time (an :class:`~kg.ingest.evidence_rows.EvidenceRow`, a
:class:`LabelledRow` or a :class:`~kg.ingest.evidence_rows.RowError`) and handles them ``batch`` rows at a time, so a
file of any length imports in bounded memory. For each batch:

1. **already imported?** The (image URI, caption, source) of each row is looked up in one indexed query; a row
   found there is *skipped*: its image is not read, decoded or hashed again, only its links are checked (and
   written if an interrupted run left them out). A row repeating one of the last few batches of this run is a
   *duplicate* (or an error when it names another license).
2. **images, in parallel**: the remaining images are read, checked with Pillow and stored by content
   (:class:`~kg.store.blobs.BlobStore`) by ``workers`` threads (file reads, decoding and hashing release the GIL),
   without a per-file fsync; the writer syncs the store once per batch before the graph refers to the images.
3. **links**: meanwhile the reading thread links the captions (:class:`~kg.text.linker.Linker`: negated mentions →
   ``RULES_OUT``, hedged ones → ``SHOWS {uncertain: true}``); a :class:`LabelledRow` carries its links instead.
4. **written off-thread**: the batch goes to a :class:`~kg.ingest.evidence_batches.BatchWriter`, which writes it
   while the next batch is read (nodes first, then links; existing nodes are never modified).

A killed import keeps every batch it wrote; running it again skips those rows and goes on. Node properties and ids
are :func:`~kg.ingest.evidence_batches.evidence_id` of (image sha256, caption, source).
"""

from __future__ import annotations

import collections
import json
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from tqdm import tqdm

from kg.ingest.evidence_batches import BatchWriter, PendingBatch, Relation, StreamReport, evidence_id
from kg.ingest.evidence_rows import EvidenceRow, RowError
from kg.store import queries as Q
from kg.store.blobs import BlobStore, ImageError, LocalPaths, StoredImage, load_image
from kg.store.graph import Graph
from kg.text.linker import Linker

__all__ = ["BATCH", "WORKERS", "LabelLink", "LabelledRow", "Relation", "StreamItem", "StreamReport", "image_uri",
           "import_stream"]

BATCH: Final = 500
WORKERS: Final = 4  # image threads: reads, decoding and hashing overlap on 2 cores
_WINDOW: Final = 3  # batches whose keys are remembered for duplicates (the writer may not have stored them yet)


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
Key = tuple[str, str, str]  # (image URI, caption, source)


def image_uri(ref: str, base_dir: Path, paths: LocalPaths | None = None) -> str | None:
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
        target = local if local.is_absolute() else base_dir / local
        return paths.uri(target) if paths is not None else target.resolve().as_uri()
    except (OSError, RuntimeError, ValueError):
        return None


def _row(item: EvidenceRow | LabelledRow) -> EvidenceRow:
    return item.row if isinstance(item, LabelledRow) else item


@dataclass
class _First:
    """The first row of a run with one key: its line and license, for duplicate and license-conflict checks."""

    line: int
    license: str


class _Importer:
    """One run of :func:`import_stream` (the state shared by its batches)."""

    def __init__(self, graph: Graph, store: BlobStore, report: StreamReport, *, path: Path, base_dir: Path,
                 linker: Linker | None, pool: ThreadPoolExecutor) -> None:
        self.graph, self.store, self.report, self.path, self.base_dir = graph, store, report, path, base_dir
        self.linker, self.pool = linker, pool
        self.recent: collections.deque[dict[Key, _First]] = collections.deque(maxlen=_WINDOW)
        self.paths = LocalPaths()

    def _error(self, row: EvidenceRow, message: str) -> None:
        self.report.errors.append(RowError(str(self.path), row.line, message))

    def _earlier(self, key: Key, current: dict[Key, _First]) -> _First | None:
        if key in current:
            return current[key]
        return next((batch[key] for batch in self.recent if key in batch), None)

    def _repeat(self, row: EvidenceRow, first: _First, what: str) -> None:
        if first.license == row.license:
            self.report.duplicates += 1
        else:
            self._error(row, f"same image, caption and source as {what} but another license ({row.license!r})")

    def _stored(self, keys: Iterable[Key]) -> dict[Key, tuple[str, str]]:
        """(uri, caption, source) → (evidence id, license) of the rows the graph already holds."""
        uris = sorted({k[0] for k in keys})
        if not uris:
            return {}
        rows = self.graph.read(Q.EVIDENCE_BY_IMAGE_URI, uris=uris)[0]["rows"] or []
        return {(str(r[0]), str(r[1]), str(r[2])): (str(r[3]), str(r[4])) for r in rows}

    def _store_image(self, ref: str) -> tuple[StoredImage, str] | ImageError:
        try:
            data, uri = load_image(ref, self.base_dir, self.paths)
            return self.store.put_image(data, durable=False), uri
        except ImageError as exc:
            return exc

    def _links(self, pending: PendingBatch, ident: str, item: EvidenceRow | LabelledRow) -> None:
        if isinstance(item, LabelledRow):
            for link in item.links:
                pending.links[link.relation].append({
                    "evidence": ident, "phenotype": link.phenotype, "matched": link.matched, "field": link.field,
                    "start": link.start, "end": link.end, "uncertain": link.uncertain})
            return
        if self.linker is None:
            raise ValueError("rows without labels need a linker")
        for m in self.linker.annotate(item.caption):
            pending.links["RULES_OUT" if m.negated else "SHOWS"].append({
                "evidence": ident, "phenotype": m.id, "matched": m.matched, "field": m.field,
                "start": m.start, "end": m.end, "uncertain": m.uncertain})

    def prepare(self, items: list[EvidenceRow | LabelledRow]) -> PendingBatch:
        """Steps 1–3 of the module docstring for one batch."""
        pending = PendingBatch()
        current: dict[Key, _First] = {}
        fresh: list[tuple[EvidenceRow | LabelledRow, Key | None]] = []
        for item in items:
            row = _row(item)
            uri = image_uri(row.image, self.base_dir, self.paths)
            key = (uri, row.caption, row.source) if uri is not None else None
            first = self._earlier(key, current) if key is not None else None
            if first is not None:
                self._repeat(row, first, f"line {first.line}")
                continue
            if key is not None:
                current[key] = _First(row.line, row.license)
            fresh.append((item, key))
        stored = self._stored(k for _, k in fresh if k is not None)
        to_load: list[tuple[EvidenceRow | LabelledRow, Key | None]] = []
        for item, key in fresh:
            row = _row(item)
            found = stored.get(key) if key is not None else None
            if found is None:
                to_load.append((item, key))
            elif found[1] != row.license:
                self._error(row, f"already imported with another license ({found[1]!r}, this row {row.license!r})")
            else:
                self.report.skipped += 1
                pending.known.add(found[0])
                self._links(pending, found[0], item)
        refs = list(dict.fromkeys(_row(i).image for i, _ in to_load))
        loads: dict[str, Future[tuple[StoredImage, str] | ImageError]] = {
            ref: self.pool.submit(self._store_image, ref) for ref in refs}
        firsts: dict[str, int] = {}  # evidence id → line, within this batch
        for item, _key in to_load:
            row = _row(item)
            result = loads[row.image].result()
            if isinstance(result, ImageError):
                self._error(row, str(result))
                continue
            image, uri = result
            ident = evidence_id(image.sha256, row.caption, row.source)
            if ident in pending.nodes:  # same bytes, caption and source under another path
                self._repeat(row, _First(firsts[ident], pending.nodes[ident]["license"]), f"line {firsts[ident]}")
                continue
            firsts[ident] = row.line
            pending.nodes[ident] = _props(ident, row, uri, image)
            self._links(pending, ident, item)
        self.report.images_stored += sum(1 for f in loads.values() if not isinstance(r := f.result(), ImageError)
                                         and r[0].written)
        self.recent.append(current)
        return pending


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


def _batches(items: Iterable[StreamItem], report: StreamReport, size: int, tick: Callable[[], None]
             ) -> Iterator[list[EvidenceRow | LabelledRow]]:
    chunk: list[EvidenceRow | LabelledRow] = []
    for item in items:
        report.rows += 1
        tick()
        if isinstance(item, RowError):
            report.errors.append(item)
            continue
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def import_stream(graph: Graph, items: Iterable[StreamItem], store: BlobStore, *, path: Path, base_dir: Path,
                  linker: Linker | None = None, progress: bool = True, total: int | None = None,
                  position: Callable[[], int] | None = None, batch: int = BATCH, workers: int = WORKERS,
                  desc: str = "evidence") -> StreamReport:
    """Import ``items`` (images relative to ``base_dir``); bad rows are collected in ``errors`` and skipped.

    ``total`` / ``position``: the file's size and a callable giving the bytes read so far, for the progress bar
    (without ``position``, ``total`` is the expected number of rows). ``linker`` is needed for plain rows.
    """
    report = StreamReport(file=str(path))
    by_bytes = total is not None and position is not None
    with tqdm(desc=desc, total=total, unit="B" if by_bytes else "row", unit_scale=by_bytes,
              disable=not progress, dynamic_ncols=True, mininterval=0.5) as bar:

        def tick() -> None:
            if by_bytes and position is not None:
                bar.update(position() - bar.n)
            else:
                bar.update(1)
            if report.rows % 1000 == 0:
                bar.set_postfix(rows=report.rows, skipped=report.skipped, errors=len(report.errors), refresh=False)

        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="evidence-image") as pool:
            importer = _Importer(graph, store, report, path=path, base_dir=base_dir, linker=linker, pool=pool)
            writer = BatchWriter(graph, store, report)
            try:
                for chunk in _batches(items, report, batch, tick):
                    writer.put(importer.prepare(chunk))
            except BaseException:
                writer.close(raise_error=False)
                raise
            writer.close()
        report.errors.sort(key=lambda e: e.line)  # rows with image problems are found after the next rows are read
        if by_bytes:
            bar.update(max(0, (total or 0) - bar.n))
    return report
