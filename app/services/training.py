"""Training use cases shared by the CLI and the job manager: the data a run trains on, read from the graph, the
text model a run starts from, and the registry record of a finished run's directory. Nothing here prints."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from kg.errors import ValidationError

if TYPE_CHECKING:
    from kg.repo.registry import ModelVersion
    from kg.store.graph import Graph
    from models.train.clip_run import ClipData

__all__ = ["KNOWLEDGE_KIND", "NO_ACTIVE_ENCODER", "knowledge_views", "load_clip_data", "model_version_from_dir",
           "resolve_text_model"]

KNOWLEDGE_KIND: Final = "knowledge-encoder"
NO_ACTIVE_ENCODER: Final = "packaged all-MiniLM-L6-v2 (no active knowledge encoder)"


def knowledge_views(graph: Graph, branch: str | None) -> tuple[list[dict[str, Any]], dict[str, str], dict[str, Any]]:
    """The knowledge encoder's training data: phenotype views of ``branch``, id redirects, provenance."""
    from kg.ingest.build import build_meta, current_release
    from kg.repo.training_views import id_redirects, phenotype_attributes

    views = phenotype_attributes(graph, branch=branch)
    redirects = id_redirects(graph)
    meta = build_meta(graph) or {}
    release = current_release(graph) or {}
    info = {"graph_stamp": meta.get("stamp"), "hpo_release": release.get("version"), "branch": branch,
            "graph": graph.uri}
    return [dict(v) for v in views], redirects, info


def resolve_text_model(graph: Graph, text_model: str) -> tuple[str | None, str]:
    """``(directory or None for the packaged MiniLM, description)`` for ``--text-model``."""
    from kg.errors import NotFoundError
    from kg.repo.registry import active_model, get_model
    from models.registry import knowledge_encoder_dir

    if text_model == "packaged":
        return None, "packaged all-MiniLM-L6-v2"
    if text_model == "active":
        active = active_model(graph, KNOWLEDGE_KIND)
        if active is None:
            return None, NO_ACTIVE_ENCODER
        return str(knowledge_encoder_dir(active.path)), f"knowledge encoder {active.id}"
    path = Path(text_model).expanduser()
    if path.is_dir():
        return str(knowledge_encoder_dir(path)), str(path)
    try:
        version = get_model(graph, text_model)
    except NotFoundError as exc:
        raise ValidationError(f"--text-model {text_model!r}: not a directory, 'active', 'packaged' or a registered "
                              "model id") from exc
    return str(knowledge_encoder_dir(version.path)), f"{version.kind} {version.id}"


def load_clip_data(graph: Graph, source: str | None, split: str | None, blob_root: Path) -> ClipData:
    """Evidence of ``source`` / ``split`` with its findings' disease sets, phenotype names and their in-domain
    ancestors (image paths in the blob store at ``blob_root``)."""
    from kg.ingest.build import build_meta
    from kg.repo.training_views import disease_sets, domain_ancestors, evidence_items, phenotype_names
    from models.train.clip_run import ClipData
    from models.views import to_disease_sets

    items = evidence_items(graph, blob_root=blob_root, source=source, split=split)
    views: list[dict[str, Any]] = [dict(v) for v in items]
    if not views:
        raise ValidationError(f"no evidence for source={source!r} split={split!r}: import it first "
                              "(`phenokg evidence import-npz` or `phenokg evidence import`)")
    findings = sorted({str(v["extra"]["finding"]) for v in views if (v.get("extra") or {}).get("finding")})
    found = disease_sets(graph, ids=findings) if findings else []
    diseases = {d.id: d for d in to_disease_sets(found)}
    linked = {p for v in views for key in ("shows", "rules_out") for p in v.get(key) or ()}
    linked |= {p for d in diseases.values() for p, _ in (*d.typical, *d.excluded)}
    ancestors, _ = domain_ancestors(graph, linked)
    info = {"source": source, "split": split, "graph_stamp": (build_meta(graph) or {}).get("stamp")}
    return ClipData(views, diseases, phenotype_names(graph, linked), info, ancestors,
                    {d["id"]: d["source"] for d in found})


def model_version_from_dir(directory: Path) -> ModelVersion:
    """The :class:`ModelVersion` a model directory written by a training run describes (its config.json gives
    the id, kind, data hash, seed and code version); ``ValueError`` when it is not a phenokg training run."""
    from kg.repo.registry import ModelVersion
    from models.registry import read_model_dir

    model_dir = read_model_dir(directory)
    cfg = model_dir.config
    missing = [k for k in ("kind", "model_id") if not cfg.get(k)]
    if missing:
        raise ValidationError(f"{model_dir.path / 'config.json'}: no {' or '.join(missing)} "
                              "(not a phenokg training run)")
    seed = cfg.get("seed")
    return ModelVersion(
        id=str(cfg["model_id"]), kind=str(cfg["kind"]), path=str(model_dir.path.resolve()), config=cfg,
        metrics=model_dir.metrics, data_hash=str(cfg.get("data_hash") or ""),
        seed=int(seed) if isinstance(seed, int) else None, code_version=str(cfg.get("code_version") or ""),
        created_at=str(cfg.get("created_at") or ""),
    )
