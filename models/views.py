"""Turn the graph's plain training views (:mod:`kg.repo.training_views`) into :mod:`models.types` dataclasses.

``kg`` returns dicts so that it never depends on ``models``; this module converts them and holds the seeded
held-out split used to evaluate the knowledge encoder on phenotypes it never trained on. It also reads and
writes a *views file* (``phenokg train export-views``): the phenotype view, the id redirects and provenance in
one JSON document (gzipped when the name ends in ``.gz``), so that a knowledge encoder can be trained on a
machine without the graph (``python -m models.train.knowledge_run --views FILE``). Standard library and numpy only
(no torch at import time).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Final, Literal

import numpy as np

from kg.errors import ValidationError
from models.types import DiseaseSets, PhenotypeAttributes

__all__ = ["VIEWS_FORMAT", "read_views_file", "split_held_out", "to_attributes", "to_disease_sets",
           "write_views_file"]

VIEWS_FORMAT: Final = "phenokg-training-views/1"


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in (value or ()) if v is not None)


def to_attributes(rows: Iterable[Mapping[str, Any]]) -> list[PhenotypeAttributes]:
    """``kg.repo.training_views.phenotype_attributes`` rows → :class:`PhenotypeAttributes` (order kept)."""
    return [
        PhenotypeAttributes(
            id=str(r["id"]),
            name=str(r["name"]),
            definition=str(r["definition"]) if r.get("definition") else None,
            synonyms=_strings(r.get("synonyms")),
            parents=_strings(r.get("parents")),
            parent_ids=_strings(r.get("parent_ids")),
        )
        for r in rows
    ]


def _pairs(value: Any) -> tuple[tuple[str, str], ...]:
    return tuple((str(p[0]), str(p[1])) for p in (value or ()))


def to_disease_sets(rows: Iterable[Mapping[str, Any]]) -> list[DiseaseSets]:
    """``kg.repo.training_views.disease_sets`` rows → :class:`DiseaseSets` (order kept)."""
    return [
        DiseaseSets(id=str(r["id"]), name=str(r["name"]), typical=_pairs(r.get("typical")),
                    excluded=_pairs(r.get("excluded")))
        for r in rows
    ]


def split_held_out(
    attributes: Sequence[PhenotypeAttributes], fraction: float, *, seed: int = 0
) -> tuple[list[PhenotypeAttributes], list[PhenotypeAttributes]]:
    """Seeded ``(train, held_out)`` split of phenotypes (input order kept in both lists).

    Only phenotypes with a definition or a synonym can be held out (the evaluation queries those attributes
    against names); ``round(fraction * eligible)`` of them are drawn with ``numpy.random.default_rng(seed)``
    over the eligible ids in sorted order, so the split depends on the seed and the set of ids only.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValidationError(f"held-out fraction must lie in [0, 1), not {fraction}")
    eligible = sorted(a.id for a in attributes if a.definition or a.synonyms)
    n = round(fraction * len(eligible))
    if fraction > 0 and n == 0 and eligible:
        n = 1
    rng = np.random.default_rng([int(seed), 0x5E1D])
    chosen = {eligible[int(i)] for i in rng.permutation(len(eligible))[:n]}
    train = [a for a in attributes if a.id not in chosen]
    held = [a for a in attributes if a.id in chosen]
    return train, held


def _open_text(path: Path, mode: Literal["r", "w"]) -> IO[str]:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt" if mode == "r" else "wt", encoding="utf-8")
    return path.open(mode, encoding="utf-8")


def write_views_file(path: str | Path, phenotypes: Sequence[Mapping[str, Any]], redirects: Mapping[str, str],
                     info: Mapping[str, Any]) -> Path:
    """Write the phenotype view rows, the id redirects and ``info`` (provenance) as one JSON document."""
    out = Path(path)
    doc = {"format": VIEWS_FORMAT, "info": dict(info), "redirects": dict(sorted(redirects.items())),
           "phenotypes": [dict(r) for r in phenotypes]}
    out.parent.mkdir(parents=True, exist_ok=True)
    with _open_text(out, "w") as fh:
        json.dump(doc, fh, ensure_ascii=False, separators=(",", ":"))
    return out


def read_views_file(path: str | Path) -> tuple[list[PhenotypeAttributes], dict[str, str], dict[str, Any]]:
    """``(attributes, redirects, info)`` of a views file; a malformed file raises ``ValueError`` naming it."""
    src = Path(path).expanduser()
    try:
        with _open_text(src, "r") as fh:
            doc = json.load(fh)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{src}: not valid JSON ({exc.msg}, line {exc.lineno})") from exc
    except (OSError, EOFError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValidationError(f"{src}: unreadable views file ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != VIEWS_FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise ValidationError(f"{src}: not a phenokg views file (format {found!r}, expected {VIEWS_FORMAT!r})")
    rows = doc.get("phenotypes")
    if not isinstance(rows, list):
        raise ValidationError(f"{src}: 'phenotypes' must be a list")
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not row.get("id") or not row.get("name"):
            raise ValidationError(f"{src}: phenotype #{i + 1} needs an 'id' and a 'name'")
    redirects = doc.get("redirects") or {}
    info = doc.get("info") or {}
    if not isinstance(redirects, dict) or not isinstance(info, dict):
        raise ValidationError(f"{src}: 'redirects' and 'info' must be objects")
    return to_attributes(rows), {str(k): str(v) for k, v in redirects.items()}, info
