"""Diff-based writes: compare what the graph holds with what a build wants, write only the difference."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, LiteralString

from tqdm import tqdm

from kg.store.graph import Graph

BATCH = 1000


@dataclass
class Diff:
    create: list[dict[str, Any]] = field(default_factory=list)
    update: list[dict[str, Any]] = field(default_factory=list)
    delete: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        return {"created": len(self.create), "updated": len(self.update), "deleted": len(self.delete)}


def clean(props: Mapping[str, Any]) -> dict[str, Any]:
    """Drop None values (the graph stores no nulls) and add ``content_hash`` over what is left."""
    kept = {k: v for k, v in props.items() if v is not None and k != "content_hash"}
    canonical = json.dumps(kept, sort_keys=True, separators=(",", ":"), default=str)
    kept["content_hash"] = hashlib.sha1(canonical.encode()).hexdigest()[:16]
    return kept


def diff_items(existing: Mapping[Any, str | None], wanted: Mapping[Any, Mapping[str, Any]],
               key_fields: tuple[str, ...], all_keys: tuple[str, ...]) -> Diff:
    """Compare ``existing`` (key → content hash) with ``wanted`` (key → props made by :func:`clean`).

    Items are keyed by a tuple (or a single id); ``all_keys`` are the property keys CREATE sets inline.
    """
    diff = Diff()
    for key, props in wanted.items():
        key_values = key if isinstance(key, tuple) else (key,)
        ident = dict(zip(key_fields, key_values, strict=True))
        if key not in existing:
            diff.create.append({**ident, **{k: props.get(k) for k in all_keys if k not in ident}})
        elif existing[key] != props.get("content_hash"):
            diff.update.append({**ident, "props": dict(props)})
    for key in existing.keys() - wanted.keys():
        key_values = key if isinstance(key, tuple) else (key,)
        diff.delete.append(dict(zip(key_fields, key_values, strict=True)))
    return diff


def apply(graph: Graph, name: str, diff: Diff, create: LiteralString | None, update: LiteralString | None,
          delete: LiteralString | None, *, progress: bool = True) -> None:
    total = len(diff.create) + len(diff.update) + len(diff.delete)
    with tqdm(total=total, desc=f"{name:<16}", unit="row", disable=not progress or total == 0,
              dynamic_ncols=True, mininterval=0.5) as bar:
        for rows, query in ((diff.delete, delete), (diff.create, create), (diff.update, update)):
            if rows and query is not None:
                graph.write_batches(query, rows, BATCH, progress=bar)
