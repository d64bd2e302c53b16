"""The image → phenotype retrieval service behind ``POST /retrieval/image`` (``app.state.retrieval``).

What it serves: the active ``clip`` model version of the registry (:func:`kg.repo.registry.active_model`), or,
when none is active, the model directory named by ``PHENOKG_CLIP_MODEL``; with neither, requests get a 503.
The model is loaded **once**, on the GPU when there is one (else the CPU), with its grounding (vocabulary,
prompt embeddings and calibration, stored with the model by the training job) and every evidence image of the
graph present in the blob store, labelled by its ``SHOWS`` / ``RULES_OUT`` links (:class:`models.serving.ClipIndex`).
Activation is a swap: the job already embedded the vocabulary and its own evidence; only evidence imported
since is embedded at load.

Requests are decoded and resized in the server's thread pool, then queued on a
:class:`models.batching.MicroBatcher`: concurrent images run through the image tower as one batch (at most
``PHENOKG_RETRIEVAL_MAX_BATCH``, after at most ``PHENOKG_RETRIEVAL_BATCH_WAIT_MS``).

Swapping models: :meth:`RetrievalService.refresh` loads the model now active next to the one being served and
then replaces one reference; a request holds the served state it started with, so requests in flight finish on
the old model and none fails. ``refresh`` runs when a model is activated through the API, and in the background
when a request sees (checked at most every ``check_every`` seconds) that another process activated another
version or that the graph was rebuilt.

``scope=all`` (every phenotypic abnormality, an extrapolation) needs the prompts of the whole ontology embedded
with the served model: that runs once per model in the background (cached on disk); until it is done such
requests get a 503 with ``Retry-After``. Answers are assembled in :mod:`app.services.retrieval_answer`.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from PIL import Image

from app.core.config import AppSettings
from app.core.errors import ProblemError
from app.services.uploads import UploadError, decode_upload
from kg.analysis.snapshot import GraphSnapshot
from kg.ids import PHENOTYPIC_ABNORMALITY
from kg.repo.registry import active_model, list_models
from kg.repo.snapshots import SnapshotCache
from kg.repo.training_views import count_evidence, iter_evidence_items
from kg.store.graph import Graph

__all__ = ["NO_MODEL", "EvidenceInfo", "RetrievalService", "ServedModel"]

log = logging.getLogger(__name__)

NO_MODEL: Final = "no active image–text model; train one (phenokg train clip) and activate it"
KIND: Final = "clip"


@dataclass(frozen=True)
class ServedModel:
    """Which model answers: registry id (or the directory name for ``PHENOKG_CLIP_MODEL``), path, active."""

    id: str
    path: str
    active: bool

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": KIND, "active": self.active}


@dataclass
class _State:
    """Everything one served model answers with (never mutated once served)."""

    model: ServedModel
    index: Any  # models.serving.ClipIndex (torch is imported lazily)
    stamp: str | None
    evidence: dict[str, EvidenceInfo]
    evidence_count: int  # Evidence nodes in the graph when loaded: an import since reloads (new images only)
    whole: _WholeOntology = field(default_factory=lambda: _WholeOntology())


@dataclass(frozen=True)
class EvidenceInfo:
    """What an answer shows of an evidence image."""

    caption: str
    shows: list[str]
    rules_out: list[str]
    finding: str | None


@dataclass
class _WholeOntology:
    """``scope=all``: every phenotypic abnormality's prompt embedded with the served model (filled once, in the
    background)."""

    ids: list[str] = field(default_factory=list)
    embeddings: Any = None
    thread: threading.Thread | None = None
    error: str | None = None


@dataclass(frozen=True)
class _Query:
    state: _State
    image: Any  # torch.Tensor [C, H, W], prepared for state.index
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
        from models.serving import ClipIndex, EvidenceInput

        snapshot = self.cache.get()
        view = snapshot.view
        count = count_evidence(self.graph)
        inputs: list[EvidenceInput] = []
        evidence: dict[str, EvidenceInfo] = {}
        for e in iter_evidence_items(self.graph, blob_root=self.settings.blob_dir):  # page by page
            evidence[e["id"]] = EvidenceInfo(str(e["caption"] or ""), list(e["shows"]), list(e["rules_out"]),
                                             str((e.get("extra") or {}).get("finding") or "") or None)
            if e["blob_path"] and Path(e["blob_path"]).is_file():
                inputs.append(EvidenceInput(e["id"], str(e["sha256"] or ""), str(e["blob_path"]), tuple(e["shows"]),
                                            tuple(e["rules_out"]), *_finding_sets(snapshot, e)))
        started = time.perf_counter()
        index = ClipIndex.load(model.path, inputs, lambda t: view.ancestors(t, include_self=False),
                               lambda t: view.names.get(t, t), study=self.settings.retrieval_study)
        log.info("retrieval: model %s on %s (%d phenotypes, %d evidence images, %s embedded now) in %.1f s",
                 model.id, index.device, len(index.vocabulary.ids), len(index.evidence_ids),
                 index.info.get("evidence_embedded_at_load"), time.perf_counter() - started)
        return _State(model, index, snapshot.stamp, evidence, count)

    def refresh(self) -> None:
        """Re-read which model should serve and load it beside the current one, then swap; a failed load
        keeps the current model (the error is logged and kept in ``last_error``)."""
        with self._load_lock:
            self._reload_locked()

    def swap(self, wait_s: float) -> bool:
        """:meth:`refresh` in a thread of its own, waited for at most ``wait_s`` seconds (an activation answers
        quickly; requests keep the current model until the new one is loaded). True when the swap is done."""
        worker = threading.Thread(target=self.refresh, daemon=True, name="phenokg-retrieval-activate")
        worker.start()
        worker.join(wait_s)
        return not worker.is_alive()

    def warm(self) -> None:
        """Load the model now (start-up, first request), unless one is already served. With none to serve but a
        ``clip`` version registered, the model stack is imported all the same, so that activating it is a load,
        not seconds of imports; with none registered it is not (torch, timm and transformers hold ≈ 500 MB):
        the first activation or retrieval request then imports it."""
        with self._load_lock:
            if self._state is None:
                self._reload_locked()
            if self._state is None and self._any_registered():
                import models.serving  # noqa: F401  (torch, timm, transformers)

    def _any_registered(self) -> bool:
        try:
            return bool(list_models(self.graph, KIND))
        except Exception:  # the graph is unreachable for a moment: import, as before
            log.warning("retrieval: could not list the registered image–text models", exc_info=True)
            return True

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
            return (self._wanted() != state.model or self.cache.get().stamp != state.stamp
                    or count_evidence(self.graph) != state.evidence_count)
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
    def prepare(self, data: bytes, declared_type: str | None, *, evidence: int) -> _Query:
        """Decode and check the upload (``UploadError`` → 413/415/422 problem), resized for the served model."""
        from models.images import to_image_tensor

        try:
            image = decode_upload(data, declared_type=declared_type, max_bytes=self.settings.retrieval_max_bytes,
                                  max_pixels=self.settings.retrieval_max_pixels)
        except UploadError as exc:
            raise ProblemError(exc.status, exc.title, exc.detail) from exc
        state = self.current()
        index = state.index
        with image:
            tensor = index.prepare(to_image_tensor(_plain_mode(image), index.image_size))
        return _Query(state, tensor, evidence)

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
            n_ev = max(queries[i].evidence for i in positions)
            results = state.index.search([queries[i].image for i in positions], evidence=n_ev)
            for i, result in zip(positions, results, strict=True):
                out[i] = result
        return out

    def whole_ontology(self, state: _State) -> tuple[list[str], Any]:
        """``scope=all``: the ids and prompt embeddings of every phenotypic abnormality for the served model;
        raises a 503 (with ``Retry-After``) while they are being embedded in the background."""
        whole = state.whole
        if whole.embeddings is not None:
            return whole.ids, whole.embeddings
        with self._spawn_lock:
            if whole.thread is None or (whole.error is not None and not whole.thread.is_alive()):
                whole.error = None
                whole.thread = threading.Thread(target=self._embed_whole, args=(state,), daemon=True,
                                                name="phenokg-retrieval-ontology")
                whole.thread.start()
        if whole.error is not None:
            raise ProblemError(503, "Service Unavailable", f"embedding the ontology failed: {whole.error}",
                               headers={"Retry-After": "30"})
        raise ProblemError(503, "Service Unavailable",
                           "scope=all needs every phenotype's prompt embedded with this model; that is running now "
                           "(once per model, a few minutes on a CPU): retry later, or use scope=model",
                           headers={"Retry-After": "30"})

    def _embed_whole(self, state: _State) -> None:
        from models.prompts import phenotype_prompt

        try:
            view = self.cache.get().view
            terms = sorted((t, n) for t, n in view.names.items()
                           if t != PHENOTYPIC_ABNORMALITY and view.in_phenotypic_abnormality(t))
            texts = [phenotype_prompt(n, self.settings.retrieval_study) for _, n in terms]
            emb = state.index.text_embeddings(texts, self._text_cache(state.model))
            state.whole.ids = [t for t, _ in terms]
            state.whole.embeddings = emb
        except Exception as exc:  # reported to the next scope=all request
            state.whole.error = f"{type(exc).__name__}: {exc}"
            log.exception("retrieval: embedding the whole ontology failed")

    def close(self) -> None:
        self.batcher.close()


def _finding_sets(snapshot: GraphSnapshot, item: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The typical and excluded phenotypes (aspect P) of the finding an evidence item's dataset labels it with."""
    finding = (item.get("extra") or {}).get("finding")
    if not finding:
        return (), ()
    typical = tuple(a.phenotype for a in snapshot.typical.get(str(finding), ()) if (a.aspect or "P") == "P")
    return typical, tuple(snapshot.excluded.get(str(finding), ()))


def _plain_mode(image: Image.Image) -> Image.Image:
    """16-bit and float greys scaled to 8 bits (``to_image_tensor`` expects 8-bit values)."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        import numpy as np

        arr = np.asarray(image, dtype=np.float64)
        low, high = float(arr.min()), float(arr.max())
        scaled = np.zeros_like(arr) if high <= low else (arr - low) / (high - low)
        return Image.fromarray((scaled * 255).round().astype(np.uint8))
    return image
