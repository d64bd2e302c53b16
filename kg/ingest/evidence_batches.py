"""Writing evidence in batches, off the reading thread: what one batch holds, the thread that writes batches in
order, and the report both fill.

A :class:`PendingBatch` holds the nodes and links of a few hundred rows. :class:`BatchWriter` writes each batch in
one background thread while the importer reads, checks and links the next one, so the database and Python work at
the same time. For every batch, in order:

1. the blob store is synced (images were written without a per-file fsync), so the graph never refers to an image
   that a crash could lose;
2. the ids already in the graph are looked up; only new ``Evidence`` nodes are created (the first import wins);
3. the links of new nodes are written as they are (a new node has none yet); the links of nodes that were already
   there (rows skipped as imported by an earlier run, or found at write time) are written only where the graph
   lacks them, so an import interrupted between its nodes and its links is completed by running it again.

An error in the writer stops the import: the next :meth:`BatchWriter.put` or :meth:`BatchWriter.close` raises it.
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from kg.ingest.evidence_rows import RowError
from kg.store import queries as Q
from kg.store.blobs import BlobStore
from kg.store.graph import Graph

__all__ = ["BatchWriter", "ImportReport", "PendingBatch", "Relation", "StreamReport", "evidence_id",
           "write_missing_links"]

Relation = Literal["SHOWS", "RULES_OUT"]
_CHUNK: Final = 1000  # rows per transaction


@dataclass
class ImportReport:
    """What an import did. Every field but ``errors`` is a plain number or string (JSON-ready)."""

    file: str = ""
    rows: int = 0  # records read, good or bad
    created: int = 0  # new Evidence nodes
    unchanged: int = 0  # Evidence nodes that were already in the graph
    duplicates: int = 0  # records repeating an earlier record of the same file
    links_shows: int = 0  # new SHOWS edges
    links_rules_out: int = 0  # new RULES_OUT edges
    images_stored: int = 0  # blobs newly written to the store
    errors: list[RowError] = field(default_factory=list)


@dataclass
class StreamReport(ImportReport):
    """:class:`ImportReport` plus ``skipped``: rows an earlier run already imported, whose images were not read
    again (they are counted in ``unchanged`` too)."""

    skipped: int = 0

    def summary(self) -> dict[str, Any]:
        """The report as JSON-ready numbers (``errors``: how many)."""
        out: dict[str, Any] = {k: v for k, v in vars(self).items() if k != "errors"}
        out["errors"] = len(self.errors)
        return out


def evidence_id(sha256: str, caption: str, source: str) -> str:
    """Deterministic id of one image–caption pair: ``ev:`` + 32 hex of sha256 over the three parts."""
    canonical = json.dumps([sha256, caption, source], ensure_ascii=False, separators=(",", ":"))
    return "ev:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


class PendingBatch:
    """Nodes and links waiting to be written: ``nodes`` (id → properties) are candidates for creation,
    ``known`` the ids of rows found already stored (their links may be incomplete)."""

    def __init__(self) -> None:
        self.nodes: dict[str, dict[str, Any]] = {}
        self.known: set[str] = set()
        self.links: dict[Relation, list[dict[str, Any]]] = {"SHOWS": [], "RULES_OUT": []}


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def write_missing_links(graph: Graph, links: Iterable[tuple[str, Sequence[Mapping[str, Any]]]], batch: int = _CHUNK
                        ) -> dict[str, int]:
    """Write the ``SHOWS`` / ``RULES_OUT`` rows (``(relation, rows)`` pairs) the graph does not hold yet, keyed
    by evidence, phenotype and span; returns how many were written per relation."""
    written: dict[str, int] = {}
    for relation, rows in links:
        have: set[tuple[str, str, int, int]] = set()
        for chunk in _chunks(sorted({r["evidence"] for r in rows})):
            have.update(tuple(k) for k in graph.read(Q.EVIDENCE_LINK_KEYS[relation], ids=list(chunk))[0]["rows"])
        wanted: list[Mapping[str, Any]] = [
            r for r in rows if (r["evidence"], r["phenotype"], r["start"], r["end"]) not in have]
        if wanted:
            graph.write_batches(Q.LINK_SHOWS if relation == "SHOWS" else Q.LINK_RULES_OUT, wanted, batch)
        written[relation] = len(wanted)
    return written


def write_batch(graph: Graph, store: BlobStore | None, batch: PendingBatch, report: ImportReport) -> None:
    """Write one batch (steps 1–3 of the module docstring) and count what was written in ``report``."""
    if store is not None and batch.nodes:
        store.sync()
    ids = list(batch.nodes)
    present: set[str] = set()
    for chunk in _chunks(ids):
        present.update(graph.read(Q.EVIDENCE_IDS_PRESENT, ids=list(chunk))[0]["ids"])
    new = [{"id": i, "props": batch.nodes[i]} for i in ids if i not in present]
    report.created += len(new)
    report.unchanged += len(ids) - len(new) + len(batch.known)
    if new:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        graph.write_batches(Q.UPSERT_EVIDENCE, new, _CHUNK, now=now)
    created = {n["id"] for n in new}
    for relation, rows in batch.links.items():
        fresh = [r for r in rows if r["evidence"] in created]
        if fresh:
            graph.write_batches(Q.CREATE_LINKS[relation], fresh, _CHUNK)
        older = [r for r in rows if r["evidence"] not in created]
        written = len(fresh)
        if older:
            written += write_missing_links(graph, [(relation, older)]).get(relation, 0)
        if relation == "SHOWS":
            report.links_shows += written
        else:
            report.links_rules_out += written


class BatchWriter:
    """Writes batches in a background thread, in the order given; at most ``depth`` batches wait."""

    def __init__(self, graph: Graph, store: BlobStore | None, report: ImportReport, *, depth: int = 1) -> None:
        self._graph, self._store, self._report = graph, store, report
        self._queue: queue.Queue[PendingBatch | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="evidence-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (batch := self._queue.get()) is not None:
            if self._error is None:
                try:
                    write_batch(self._graph, self._store, batch, self._report)
                except BaseException as exc:  # handed to the reading thread, which raises it
                    self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, batch: PendingBatch) -> None:
        """Queue a batch (blocks while ``depth`` batches wait); raises the writer's error, if it had one."""
        self._raise()
        self._queue.put(batch)

    def close(self, *, raise_error: bool = True) -> None:
        """Write what is queued, stop the thread and raise the writer's error, if any (``raise_error=False``:
        when the reading thread is already failing with its own)."""
        self._queue.put(None)
        self._thread.join()
        if raise_error:
            self._raise()
