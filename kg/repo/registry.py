"""Model registry, graph side: ``(:ModelVersion)`` nodes (no torch).

A trained model is a directory on disk (see :mod:`models.registry`); the graph records where it is and what
made it::

    (:ModelVersion {id, kind, path, created_at, config, metrics, data_hash, seed, code_version, active,
                    activated_at})

``config`` and ``metrics`` are JSON strings (property maps of any depth survive both servers that way).
Exactly one version per ``kind`` is active after :func:`activate_model`, which deactivates the others and
activates the chosen one in **one transaction**, so a reader never sees two active versions of a kind (and
sees none only before the first activation). The API swaps to a newly activated model by polling
:func:`active_model` (one indexed lookup).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import neo4j
from neo4j.exceptions import ConstraintError, ServiceUnavailable, SessionExpired

from kg.errors import GraphUnavailableError, NotFoundError, ValidationError
from kg.store import queries as Q
from kg.store.graph import Graph

__all__ = [
    "KINDS",
    "ModelVersion",
    "activate_model",
    "active_model",
    "get_model",
    "list_models",
    "register_model",
    "update_metrics",
]

#: Kinds phenokg trains; others are accepted too (a user's own model kinds), if they match ``_KIND_RE``.
KINDS: Final = ("knowledge-encoder", "clip")
_KIND_RE: Final = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
_ID_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class ModelVersion:
    """One registered model. ``config`` / ``metrics`` are dicts here, JSON strings in the graph."""

    id: str
    kind: str
    path: str
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    data_hash: str = ""
    seed: int | None = None
    code_version: str = ""
    created_at: str = ""
    active: bool = False
    activated_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (config and metrics as objects)."""
        return {"id": self.id, "kind": self.kind, "path": self.path, "created_at": self.created_at,
                "active": self.active, "activated_at": self.activated_at, "data_hash": self.data_hash,
                "seed": self.seed, "code_version": self.code_version, "config": self.config,
                "metrics": self.metrics}

    @classmethod
    def from_node(cls, props: dict[str, Any]) -> ModelVersion:
        """From a ``m {.*}`` projection."""
        return cls(
            id=str(props["id"]), kind=str(props.get("kind") or ""), path=str(props.get("path") or ""),
            config=_loads(props.get("config")), metrics=_loads(props.get("metrics")),
            data_hash=str(props.get("data_hash") or ""),
            seed=int(props["seed"]) if props.get("seed") is not None else None,
            code_version=str(props.get("code_version") or ""), created_at=str(props.get("created_at") or ""),
            active=bool(props.get("active")), activated_at=props.get("activated_at"),
        )


def _loads(value: Any) -> dict[str, Any]:
    if not value:
        return {}
    if isinstance(value, dict):
        return value
    try:
        data = json.loads(str(value))
    except json.JSONDecodeError:
        return {"_unparsed": str(value)}
    return data if isinstance(data, dict) else {"value": data}


def _dumps(value: dict[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, allow_nan=True)


def _unavailable(graph: Graph, exc: Exception) -> GraphUnavailableError:
    return GraphUnavailableError(f"the graph database at {graph.uri} is not reachable: {exc}")


def register_model(graph: Graph, model: ModelVersion, *, activate: bool = False) -> ModelVersion:
    """Record ``model`` (inactive); with ``activate``, then make it the active one of its kind.

    Raises :class:`kg.errors.ValidationError` for a malformed id or kind, or an id already registered.
    """
    if not _ID_RE.match(model.id):
        raise ValidationError(f"invalid model id {model.id!r} (letters, digits, '.', '_', ':', '-'; ≤128)")
    if not _KIND_RE.match(model.kind):
        raise ValidationError(f"invalid model kind {model.kind!r} (lower-case letters, digits, '-', '_')")
    params: dict[str, Any] = {
        "id": model.id, "kind": model.kind, "path": model.path, "created_at": model.created_at or _now(),
        "config": _dumps(model.config), "metrics": _dumps(model.metrics), "data_hash": model.data_hash,
        "seed": model.seed, "code_version": model.code_version,
    }

    def work(tx: neo4j.ManagedTransaction) -> dict[str, Any]:
        if int(tx.run(Q.MODEL_VERSION_EXISTS, id=model.id).single(strict=True)["n"]):
            raise ValidationError(f"model version {model.id!r} is already registered")
        record = tx.run(Q.MODEL_VERSION_CREATE, params).single(strict=True)
        created: dict[str, Any] = record["model"]
        return created

    try:
        with graph.session() as session:
            node = session.execute_write(work)
    except ConstraintError as exc:
        raise ValidationError(f"model version {model.id!r} is already registered") from exc
    except (ServiceUnavailable, SessionExpired) as exc:
        raise _unavailable(graph, exc) from exc
    registered = ModelVersion.from_node(node)
    return activate_model(graph, registered.id) if activate else registered


def get_model(graph: Graph, model_id: str) -> ModelVersion:
    """The model version ``model_id``; :class:`kg.errors.NotFoundError` if there is none."""
    rows = graph.read(Q.MODEL_VERSION_GET, id=model_id)
    if not rows:
        raise NotFoundError(f"no model version {model_id!r}")
    return ModelVersion.from_node(rows[0]["model"])


def list_models(graph: Graph, kind: str | None = None) -> list[ModelVersion]:
    """Registered versions (of ``kind``), newest first."""
    rows = graph.read(Q.MODEL_VERSION_LIST, kind=kind)
    nodes = rows[0]["models"] if rows else []
    models = [ModelVersion.from_node(n) for n in nodes]
    return sorted(models, key=lambda m: (m.created_at, m.id), reverse=True)


def active_model(graph: Graph, kind: str) -> ModelVersion | None:
    """The active version of ``kind``, or ``None``."""
    rows = graph.read(Q.MODEL_VERSION_ACTIVE, kind=kind)
    nodes = rows[0]["models"] if rows else []
    if not nodes:
        return None
    # Only one can be active (activate_model is one transaction); be tolerant of hand edits anyway.
    return max((ModelVersion.from_node(n) for n in nodes), key=lambda m: (m.activated_at or "", m.id))


def activate_model(graph: Graph, model_id: str) -> ModelVersion:
    """Make ``model_id`` the only active version of its kind, in one transaction."""
    now = _now()

    def work(tx: neo4j.ManagedTransaction) -> dict[str, Any]:
        found = tx.run(Q.MODEL_VERSION_GET, id=model_id).single()
        if found is None:
            raise NotFoundError(f"no model version {model_id!r}")
        kind = found["model"]["kind"]
        record = tx.run(Q.MODEL_VERSION_ACTIVATE, kind=kind, id=model_id, now=now).single(strict=True)
        activated: dict[str, Any] = next(m for m in record["models"] if m["id"] == model_id)
        return activated

    try:
        with graph.session() as session:
            node = session.execute_write(work)
    except (ServiceUnavailable, SessionExpired) as exc:
        raise _unavailable(graph, exc) from exc
    return ModelVersion.from_node(node)


def update_metrics(graph: Graph, model_id: str, metrics: dict[str, Any]) -> ModelVersion:
    """Replace the recorded metrics of ``model_id`` (e.g. after a later evaluation)."""
    rows = graph.write(Q.MODEL_VERSION_UPDATE_METRICS, id=model_id, metrics=_dumps(metrics))
    if not rows:
        raise NotFoundError(f"no model version {model_id!r}")
    return ModelVersion.from_node(rows[0]["model"])
