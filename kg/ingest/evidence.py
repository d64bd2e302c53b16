"""Image–caption evidence import: store images by content, link captions to phenotypes.

``phenokg evidence import FILE`` runs :func:`import_evidence`:

1. :func:`~kg.ingest.evidence_rows.read_evidence_rows` yields one :class:`~kg.ingest.evidence_rows.EvidenceRow` per
   record, or a :class:`~kg.ingest.evidence_rows.RowError` with the record's physical line number; problems with the
   whole file raise :class:`~kg.errors.SourceFormatError` before anything is written (see
   :mod:`kg.ingest.evidence_rows`).
Rows are handled in batches by :func:`~kg.ingest.evidence_stream.import_stream` (bounded memory, images stored
by parallel threads while the previous batch is written, resumable: a rerun skips the rows already stored):

2. Each row's image (local path relative to the input file, ``file://`` URI, or ``http(s)://`` URL) is read,
   checked with Pillow and put into the :class:`~kg.store.blobs.BlobStore` under its sha256 (see
   :mod:`kg.store.blobs`); the graph only holds the hash and the URI, never the bytes.
3. The evidence id is a hash of (image sha256, caption, source): the same image with another caption is
   another ``Evidence`` node.  Existing nodes are never modified (the first import wins).
4. The caption goes through the :class:`~kg.text.linker.Linker`: asserted mentions become
   ``(:Evidence)-[:SHOWS {matched, field, start, end, uncertain}]->(:Phenotype)`` (hedged ones with
   ``uncertain: true``), negated ones ``(:Evidence)-[:RULES_OUT {matched, field, start, end, uncertain}]->``.
   ``start``/``end`` are character offsets in the caption, ``field`` says whether the lexicon *name* or a
   *synonym* matched.  Only links the graph does not hold yet are written, so re-importing a file writes
   nothing at all, while an import interrupted between nodes and links is completed by running it again.

The row reader and the image/blob-store names are re-exported here, so ``from kg.ingest.evidence import X`` keeps
working for all of them.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from kg.ids import PHENOTYPIC_ABNORMALITY
from kg.ingest.evidence_batches import ImportReport, StreamReport, evidence_id, write_missing_links
from kg.ingest.evidence_rows import ALIASES, FIELDS, FORMATS, EvidenceRow, RowError, read_evidence_rows
from kg.ingest.evidence_stream import import_stream
from kg.store import queries as Q
from kg.store.blobs import (
    HTTP_TIMEOUT_S,
    IMAGE_FORMATS,
    MAX_IMAGE_BYTES,
    MAX_IMAGE_PIXELS,
    MAX_IMAGE_SIDE,
    BlobStore,
    ImageError,
    ImageInfo,
    LocalPaths,
    StoredImage,
    fetch_url,
    inspect_image,
    load_image,
)
from kg.store.graph import Graph
from kg.text.linker import Linker, TermLabels

__all__ = [
    "ALIASES",
    "FIELDS",
    "FORMATS",
    "HTTP_TIMEOUT_S",
    "IMAGE_FORMATS",
    "MAX_IMAGE_BYTES",
    "MAX_IMAGE_PIXELS",
    "MAX_IMAGE_SIDE",
    "BlobStore",
    "EvidenceRow",
    "ImageError",
    "ImageInfo",
    "ImportReport",
    "LocalPaths",
    "RowError",
    "StoredImage",
    "StreamReport",
    "evidence_id",
    "fetch_url",
    "import_evidence",
    "inspect_image",
    "linker_from_graph",
    "load_image",
    "read_evidence_rows",
    "write_missing_links",
]


def linker_from_graph(graph: Graph, *, branch: str = PHENOTYPIC_ABNORMALITY) -> Linker:
    """A linker over the live phenotypes of ``branch`` (names and synonyms), as the graph holds them."""
    rows = graph.read(Q.TERM_LABELS, branch=branch)
    return Linker(TermLabels(r["id"], r["name"] or "", tuple(r["synonyms"] or ())) for r in rows)


def _count_lines(path: Path) -> int:
    with open(path, "rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))


def import_evidence(graph: Graph, path: Path, linker: Linker, store: BlobStore, *,
                    progress: bool = True) -> StreamReport:
    """Import an evidence file, streamed (see :mod:`kg.ingest.evidence_stream`); bad records are reported in
    ``errors`` and skipped.

    Raises :class:`SourceFormatError` (before writing anything) when the file as a whole cannot be read.
    """
    path = Path(path)
    rows = read_evidence_rows(path)
    first = next(rows, None)  # a file that cannot be read at all fails here, before anything is written
    items = rows if first is None else itertools.chain([first], rows)
    total = _count_lines(path) if progress else None
    return import_stream(graph, items, store, path=path, base_dir=path.resolve().parent, linker=linker,
                         progress=progress, total=total)

