"""The image → phenotype retrieval service behind ``POST /retrieval/image`` (``app.state.retrieval``).

What it serves: the active ``clip`` model version of the registry (:func:`kg.repo.registry.active_model`), or,
when none is active, the model directory named by ``PHENOKG_CLIP_MODEL``; with neither, requests get a 503.
The model is loaded **once**, on the GPU when there is one (else the CPU), with the text embeddings of every
live phenotype under *Phenotypic abnormality* (cached on disk per model, keyed by the exact texts) and the image
embeddings of every evidence image present in the blob store (:class:`models.serving.ClipIndex`).

Requests are decoded and resized in the server's thread pool, then queued on a
:class:`models.batching.MicroBatcher`: concurrent images run through the image tower as one batch (at most
``PHENOKG_RETRIEVAL_MAX_BATCH``, after at most ``PHENOKG_RETRIEVAL_BATCH_WAIT_MS``).

Swapping models: :meth:`RetrievalService.refresh` loads the model now active next to the one being served and
then replaces one reference; a request holds the served state it started with, so requests in flight finish on
the old model and none fails. ``refresh`` runs when a model is activated through the API, and in the background
when a request sees (checked at most every ``check_every`` seconds) that another process activated another
version or that the graph was rebuilt.

Diseases: a top phenotype *supports* disease ``d`` when it or one of its ancestors is in ``d``'s typical set
(an image showing a more specific finding still shows the general one), and *contradicts* ``d`` when it or an
ancestor is in ``d``'s excluded set. A disease's score is the sum of the supporting phenotypes' weights minus
the contradicting ones', a phenotype's weight being its softmax probability renormalised over the top ``k``.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from PIL import Image

from app.config import AppSettings
from app.problems import ProblemError
from app.uploads import UploadError, decode_upload
from kg.analysis.snapshot import GraphSnapshot
from kg.repo.registry import active_model
from kg.repo.snapshots import SnapshotCache
from kg.repo.training_views import evidence_items
from kg.store.graph import Graph

__all__ = ["NO_MODEL", "DiseaseHit", "RetrievalService", "ServedModel"]

log = logging.getLogger(__name__)

NO_MODEL: Final = "no active image–text model; train one (phenokg train clip) and activate it"
PHENOTYPIC_ABNORMALITY: Final = "HP:0000118"
KIND: Final = "clip"


@dataclass(frozen=True)
class ServedModel:
    """Which model answers: registry id (or the directory name for ``PHENOKG_CLIP_MODEL``), path, active."""

    id: str
    path: str
    active: bool

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": KIND, "active": self.active}


@dataclass(frozen=True)
class DiseaseSupport:
    """Per snapshot: phenotype → diseases whose typical / excluded set holds it (aspect P only)."""

    typical: dict[str, tuple[str, ...]]
    excluded: dict[str, tuple[str, ...]]

    @classmethod
    def from_snapshot(cls, snapshot: GraphSnapshot) -> DiseaseSupport:
        typical: dict[str, set[str]] = defaultdict(set)
        for disease, rows in snapshot.typical.items():
            for a in rows:
                if (a.aspect or "P") == "P":
                    typical[a.phenotype].add(disease)
        excluded: dict[str, set[str]] = defaultdict(set)
        for disease, phenotypes in snapshot.excluded.items():
            for p in phenotypes:
                excluded[p].add(disease)
        return cls({p: tuple(sorted(d)) for p, d in typical.items()},
                   {p: tuple(sorted(d)) for p, d in excluded.items()})


@dataclass(frozen=True)
class DiseaseHit:
    id: str
    name: str
    source: str
    score: float
    supported_by: list[str]
    contradicted_by: list[str]


@dataclass
class _State:
    """Everything one served model answers with (never mutated once served)."""

    model: ServedModel
    index: Any  # models.serving.ClipIndex (torch is imported lazily)
    stamp: str | None
    evidence: dict[str, tuple[str, list[str]]]  # id → caption, shown phenotypes


@dataclass(frozen=True)
class _Query:
    state: _State
    image: Any  # torch.Tensor [C, H, W], prepared for state.index
    k: int
    evidence: int


class RetrievalService:
    """Thread-safe: any number of request threads call :meth:`prepare` / :meth:`submit`; :meth:`refresh` may
    run at any time from any thread (loads are serialised)."""

    def __init__(self, graph: Graph, cache: SnapshotCache, settings: AppSettings, *,
                 check_every: float = 2.0) -> None:
        from models.batching import MicroBatcher

        self.graph, self.cache, self.settings = graph, cache, settings
        self.check_every = check_every
        self._state: _State | None = None
        self._load_lock = threading.Lock()  # one load at a time
        self._spawn_lock = threading.Lock()  # guards _background (never held while loading)
        self._checked = 0.0
        self._background: threading.Thread | None = None
        self.last_error: str | None = None
        self.batcher: MicroBatcher[_Query, Any] = MicroBatcher(
            self._run_batch, max_batch=settings.retrieval_max_batch,
            max_wait_s=settings.retrieval_batch_wait_ms / 1000.0, name="phenokg-retrieval")

    # ------------------------------------------------------------------------------------------ models
    def _wanted(self) -> ServedModel | None:
        version = active_model(self.graph, KIND)
        if version is not None:
            return ServedModel(version.id, version.path, True)
        if self.settings.clip_model is not None:
            path = Path(self.settings.clip_model).expanduser()
            return ServedModel(path.name or str(path), str(path), False)
        return None

    def _text_cache(self, model: ServedModel) -> Path:
        key = model.id if model.active else hashlib.sha256(model.path.encode("utf-8")).hexdigest()[:16]
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in key)
        return self.settings.home / "cache" / "retrieval" / f"{safe}-phenotypes.npz"

    def _load(self, model: ServedModel) -> _State:
        from models.serving import ClipIndex

        snapshot = self.cache.get()
        view = snapshot.view
        phenotypes = sorted((t, name) for t, name in view.names.items()
                            if t != PHENOTYPIC_ABNORMALITY and view.in_phenotypic_abnormality(t))
        items = evidence_items(self.graph, blob_root=self.settings.blob_dir)
        files = [(e["id"], e["blob_path"]) for e in items if e["blob_path"] and Path(e["blob_path"]).is_file()]
        started = time.perf_counter()
        index = ClipIndex.load(model.path, phenotypes, files, study=self.settings.retrieval_study,
                               text_cache=self._text_cache(model))
        log.info("retrieval: model %s on %s (%d phenotypes, %d evidence images) in %.1f s", model.id,
                 index.device, len(index.phenotype_ids), len(index.evidence_ids), time.perf_counter() - started)
        evidence = {e["id"]: (e["caption"], list(e["shows"])) for e in items}
        return _State(model, index, snapshot.stamp, evidence)

    def refresh(self) -> None:
        """Re-read which model should serve and load it beside the current one, then swap; a failed load
        keeps the current model (the error is logged and kept in ``last_error``)."""
        with self._load_lock:
            self._reload_locked()

    def warm(self) -> None:
        """Load the model now (start-up, first request), unless one is already served."""
        with self._load_lock:
            if self._state is None:
                self._reload_locked()

    def _reload_locked(self) -> None:
        self._checked = time.monotonic()
        try:
            wanted = self._wanted()
            if wanted is None:
                self._state, self.last_error = None, None
                return
            self._state, self.last_error = self._load(wanted), None
        except Exception as exc:  # reported to requests as a 503 while nothing serves
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("retrieval: loading the image–text model failed")

    def _stale(self, state: _State) -> bool:
        try:
            return self._wanted() != state.model or self.cache.get().stamp != state.stamp
        except Exception:  # the graph is unreachable for a moment: keep serving what is loaded
            log.warning("retrieval: could not check for a newly activated model", exc_info=True)
            return False

    def _refresh_in_background(self) -> None:
        with self._spawn_lock:
            if self._background is not None and self._background.is_alive():
                return
            self._background = threading.Thread(target=self.refresh, daemon=True, name="phenokg-retrieval-swap")
            self._background.start()

    def current(self) -> _State:
        """The state new requests use; loads on first use; raises a 503 problem when no model can serve."""
        state = self._state
        if state is None:
            self.warm()
            state = self._state
            if state is None:
                detail = NO_MODEL if self.last_error is None else \
                    f"the image–text model could not be loaded: {self.last_error}"
                raise ProblemError(503, "Service Unavailable", detail)
            return state
        if time.monotonic() - self._checked >= self.check_every:
            self._checked = time.monotonic()
            if self._stale(state):
                self._refresh_in_background()
        return state

    # ----------------------------------------------------------------------------------------- requests
    def prepare(self, data: bytes, declared_type: str | None, *, k: int, evidence: int) -> _Query:
        """Decode and check the upload (``UploadError`` → 413/415/422 problem), resized for the served model."""
        from models.train.clip_data import to_image_tensor

        try:
            image = decode_upload(data, declared_type=declared_type, max_bytes=self.settings.retrieval_max_bytes,
                                  max_pixels=self.settings.retrieval_max_pixels)
        except UploadError as exc:
            raise ProblemError(exc.status, exc.title, exc.detail) from exc
        state = self.current()
        index = state.index
        with image:
            tensor = index.prepare(to_image_tensor(_plain_mode(image), index.image_size))
        return _Query(state, tensor, k, evidence)

    def submit(self, query: _Query) -> Any:
        """Queue a prepared query; the future's result is a :class:`models.serving.ImageResult`."""
        return self.batcher.submit(query)

    def _run_batch(self, queries: list[_Query]) -> list[Any]:
        groups: dict[int, list[int]] = defaultdict(list)  # id(state) → positions: a swap may split a batch
        for i, q in enumerate(queries):
            groups[id(q.state)].append(i)
        out: list[Any] = [None] * len(queries)
        for positions in groups.values():
            state = queries[positions[0]].state
            k = max(queries[i].k for i in positions)
            n_ev = max(queries[i].evidence for i in positions)
            results = state.index.search([queries[i].image for i in positions], k=k, evidence=n_ev)
            for i, result in zip(positions, results, strict=True):
                out[i] = result
        return out

    def diseases(self, hits: Sequence[Any], limit: int) -> list[DiseaseHit]:
        """Diseases supported or contradicted by the top phenotypes (module doc), best score first."""
        if limit <= 0 or not hits:
            return []
        snapshot = self.cache.get()
        support = self.cache.derived("retrieval-disease-support", DiseaseSupport.from_snapshot)
        total = sum(h.probability for h in hits) or 1.0
        score: dict[str, float] = defaultdict(float)
        supported: dict[str, list[str]] = defaultdict(list)
        contradicted: dict[str, list[str]] = defaultdict(list)
        for h in hits:
            weight = h.probability / total if total else 1.0 / len(hits)
            lineage = snapshot.view.ancestors(h.id)
            for disease in {d for t in lineage for d in support.typical.get(t, ())}:
                score[disease] += weight
                supported[disease].append(h.id)
            for disease in {d for t in lineage for d in support.excluded.get(t, ())}:
                score[disease] -= weight
                contradicted[disease].append(h.id)
        ranked = sorted(score, key=lambda d: (-score[d], -len(supported[d]), d))[:limit]
        out = []
        for d in ranked:
            info = snapshot.diseases.get(d)
            out.append(DiseaseHit(d, info.name if info else d, info.source if info else "", round(score[d], 6),
                                  supported[d], contradicted[d]))
        return out

    def close(self) -> None:
        self.batcher.close()


def _plain_mode(image: Image.Image) -> Image.Image:
    """16-bit and float greys scaled to 8 bits (``to_image_tensor`` expects 8-bit values)."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        import numpy as np

        arr = np.asarray(image, dtype=np.float64)
        low, high = float(arr.min()), float(arr.max())
        scaled = np.zeros_like(arr) if high <= low else (arr - low) / (high - low)
        return Image.fromarray((scaled * 255).round().astype(np.uint8))
    return image
