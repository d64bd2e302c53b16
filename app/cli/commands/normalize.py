"""``phenokg normalize FILE`` (mentions → HPO ids, JSONL out) and ``phenokg kg embed`` (phenotype vectors).

``phenokg normalize FILE``: one mention per line in (``-`` = stdin), one JSON line per input line out, in
order: ``{"line": N, "mention": "…", "candidates": [{"id", "name", "score", "field", "matched", "source"}, …]}``.
Empty lines give ``"candidates": []``. Input is processed in chunks of 1,000 lines, so any length streams; a
progress bar goes to stderr. Semantic matching uses the phenotype vectors in the graph and the encoder that
made them; without them (or with ``--lexical``) the matching is lexical and stderr says so once.

``phenokg kg embed [--encoder PATH] [--batch-size N] [--force]``: embed every live phenotype's name and
synonyms whose vectors are missing or stale (only the changed terms after a rebuild; everything after an
encoder change) with a progress bar, write them to the graph and keep the vector index. ``phenokg serve``
calls :func:`app.services.embeddings.ensure_embeddings` after the build, so the first start computes them once.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Annotated, Any

import typer

from app.cli.support import graph_connection, settings
from app.services.embeddings import ensure_embeddings
from kg.config import EMBED_BACKENDS
from kg.errors import ValidationError

CHUNK = 1000


def _lines(file: str) -> Iterator[str]:
    if file == "-":
        for line in sys.stdin:
            yield line.rstrip("\r\n")
        return
    with Path(file).open(encoding="utf-8") as handle:
        for line in handle:
            yield line.rstrip("\r\n")


def _count_lines(file: str) -> int | None:
    if file == "-":
        return None
    with Path(file).open("rb") as fh:
        return sum(1 for _ in fh)



app = typer.Typer()

@app.command("normalize")
def normalize(
    file: Annotated[str, typer.Argument(help="Text file, one mention per line; '-' for stdin.")],
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, max=50, help="Candidates per mention.")] = 5,
    lexical: Annotated[bool, typer.Option("--lexical", help="Lexical matching only (no vectors).")] = False,
    encoder: Annotated[str | None, typer.Option(
        help="Text encoder directory for the mentions (default: the one that made the graph's vectors).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Map free-text mentions (one per line) to ranked HPO ids: one JSON line out per input line, in order."""
    from tqdm import tqdm

    from kg.analysis.normalize import Normalizer, prepare_mention
    from kg.analysis.search import LexicalIndex, Searcher
    from kg.repo.embeddings import embedding_meta, load_semantic_index
    from kg.repo.snapshots import load_snapshot

    if file != "-" and not Path(file).is_file():
        raise FileNotFoundError(f"{file}: no such file")
    total = _count_lines(file)
    with graph_connection() as graph:
        snapshot = load_snapshot(graph)
        index = None if lexical else load_semantic_index(graph, snapshot.terms)
        meta = embedding_meta(graph) or {}
    lexical_index = LexicalIndex.from_snapshot(snapshot)
    embedder = None
    if index is not None and index.term_ids:
        embedder = _query_encoder(encoder, meta, index.fingerprint)
    elif not lexical:
        typer.echo("phenokg: note: no phenotype vectors in the graph (run `phenokg kg embed`); "
                   "matching lexically", err=True)
    searcher = Searcher(lexical_index, index if embedder is not None else None)
    normalizer = Normalizer(searcher)
    bar = tqdm(total=total, unit="line", file=sys.stderr, disable=quiet, desc="normalizing",
               dynamic_ncols=True, mininterval=0.5)
    lines = _lines(file)
    number = 0
    try:
        while True:
            chunk = list(islice(lines, CHUNK))
            if not chunk:
                break
            vectors = None
            if embedder is not None:
                vectors = embedder.encode([prepare_mention(m) or " " for m in chunk])
            results = normalizer.normalize(chunk, vectors, top_k=top_k)
            for mention, candidates in zip(chunk, results, strict=True):
                number += 1
                out = {"line": number, "mention": mention, "candidates": [
                    {"id": c.id, "name": c.name, "score": c.score, "field": c.field, "matched": c.matched,
                     "source": c.source} for c in candidates]}
                sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
            sys.stdout.flush()
            bar.update(len(chunk))
    except UnicodeDecodeError as exc:
        raise ValidationError(f"{file}: line {number + 1}: not UTF-8 text ({exc.reason})") from exc
    finally:
        bar.close()

def kg_embed(
    encoder: Annotated[str | None, typer.Option(
        help="Text encoder directory (default: $PHENOKG_TEXT_ENCODER, else the active knowledge encoder, "
             "else the packaged all-MiniLM-L6-v2).")
    ] = None,
    batch_size: Annotated[int | None, typer.Option(
        "--batch-size", min=1, max=4096, help="Texts per batch (default: 64 on ONNX Runtime, 256 on PyTorch).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Re-embed every term, not only missing/stale ones.")
                     ] = False,
    int8: Annotated[bool, typer.Option("--int8", help="int8 vectors from ONNX Runtime (CPU; about twice as "
                                                      "fast as fp32, slightly different vectors).")] = False,
    backend: Annotated[str | None, typer.Option(
        help="auto | onnx | torch (default: $PHENOKG_EMBED_BACKEND, else auto = ONNX Runtime on a CPU).")
    ] = None,
    no_vector_index: Annotated[bool, typer.Option(
        "--no-vector-index", help="Do not write the name vector list property / DB vector index.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Compute phenotype embeddings (names + synonyms) for search and normalisation; store them in the graph."""
    if backend is not None and backend.strip().lower() not in EMBED_BACKENDS:
        raise typer.BadParameter(f"{backend!r}: choose one of {', '.join(EMBED_BACKENDS)}",
                                 param_hint="--backend")
    with graph_connection() as graph:
        report = ensure_embeddings(graph, encoder, batch_size=batch_size, progress=not quiet, force=force,
                                   quantize=int8, vector_index=not no_vector_index, backend=backend,
                                   onnx_cache=settings().onnx_cache_dir)
    typer.echo(json.dumps(report.as_dict(), indent=2))


def _query_encoder(encoder: str | None, meta: dict[str, Any], fingerprint: str) -> Any:
    """The encoder that made the graph's vectors: ``--encoder``, $PHENOKG_TEXT_ENCODER, the recorded path, or
    the packaged MiniLM — whichever matches the stored fingerprint. Raises ValueError when none does."""
    from models.embeddings import ENCODER_ENV, TextEmbedder, encoder_info, resolve_encoder_path

    quantized = bool(meta.get("quantized"))
    candidates: list[Path | None] = []
    explicit = resolve_encoder_path(encoder)
    if explicit is not None:
        candidates.append(explicit)
    else:
        recorded = meta.get("encoder_path")
        if recorded and Path(str(recorded)).is_dir():
            candidates.append(Path(str(recorded)))
        candidates.append(None)
    for path in dict.fromkeys(candidates):
        if encoder_info(path, quantized=quantized).fingerprint == fingerprint:
            return TextEmbedder.load(path, quantize=quantized, cache_dir=settings().onnx_cache_dir)
    raise ValidationError(f"the graph's phenotype vectors were made by {meta.get('encoder')} "
                          f"(fingerprint {fingerprint}); pass that encoder with --encoder or {ENCODER_ENV}, "
                          "re-embed with `phenokg kg embed`, or use --lexical")
