"""Phenotype vectors in the graph, kept in step with the text encoder: the service behind ``phenokg kg embed``,
``phenokg serve`` (after its build) and the re-embedding that follows activating a knowledge encoder."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from kg.repo.embeddings import EmbedReport
    from kg.store.graph import Graph

log = logging.getLogger(__name__)


def ensure_embeddings(graph: Graph, encoder: str | Path | None = None, *, batch_size: int | None = None,
                      progress: bool = True, force: bool = False, quantize: bool = False,
                      vector_index: bool = True, backend: str | None = None,
                      onnx_cache: Path | None = None) -> EmbedReport:
    """Compute the phenotype vectors that are missing or stale (no-op, without loading the model, when none).

    ``encoder``: a text-encoder directory; default ``$PHENOKG_TEXT_ENCODER``, else the active knowledge
    encoder of the model registry, else the packaged MiniLM. ``backend``: ``auto`` | ``onnx`` | ``torch``
    (``None``: ``$PHENOKG_EMBED_BACKEND``, else ``auto``). ``onnx_cache``: where ONNX exports are kept (the
    caller's ``settings.onnx_cache_dir``; ``None``: read from the environment). ``phenokg serve`` calls it after
    its build.
    """
    from kg.repo.embeddings import EmbedReport, EncoderMeta, embed_graph, embedding_meta, stale_terms
    from models.embeddings import encoder_info, resolve_encoder_path

    path = resolve_encoder_path(encoder)
    if path is None:
        path = active_knowledge_encoder(graph)
    info = encoder_info(path, quantized=quantize)
    meta = EncoderMeta(info.name, info.path, info.sha256, info.fingerprint, info.quantized)
    if not force:
        total, stale = stale_terms(graph, info.fingerprint)
        if total == 0:  # an empty graph: nothing to embed, no model to load
            return EmbedReport(encoder=info.name, fingerprint=info.fingerprint, up_to_date=True)
        current = embedding_meta(graph)
        if stale == 0 and current is not None and current.get("fingerprint") == info.fingerprint:
            return embed_graph(graph, _no_encode, meta, progress=False, vector_index=vector_index)
    from models.embeddings import TextEmbedder

    embedder = TextEmbedder.load(path, quantize=quantize, backend=backend, cache_dir=onnx_cache)

    def encode(texts: Sequence[str], progress: bool) -> np.ndarray:
        return embedder.encode(texts, batch_size=batch_size, progress=progress, desc="embedding phenotypes")

    report = embed_graph(graph, encode, meta, force=force, progress=progress, vector_index=vector_index)
    report.backend = embedder.backend
    return report


def active_knowledge_encoder(graph: Graph) -> Path | None:
    """The text-encoder directory of the active knowledge encoder, if one is active and on this machine."""
    from kg.repo.registry import active_model
    from models.registry import knowledge_encoder_dir

    active = active_model(graph, "knowledge-encoder")
    if active is None:
        return None
    path = knowledge_encoder_dir(active.path)
    if not path.is_dir():
        log.warning("the active knowledge encoder %s is missing (%s); using the packaged MiniLM", active.id, path)
        return None
    return path


def _no_encode(texts: Sequence[str], progress: bool) -> Any:
    raise AssertionError("nothing should need embedding")  # pragma: no cover
