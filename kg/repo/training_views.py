"""Graph → training views: plain dicts that ``models`` turns into its dataclasses (no torch, no ``models``).

Three views, each read with a handful of collected queries (one row per query: the driver's per-record cost
dwarfs the data for 10⁴–10⁵ items) and joined in Python:

* :func:`phenotype_attributes`: one :class:`PhenotypeView` per live phenotype of a branch (default
  *Phenotypic abnormality*, HP:0000118): name, definition, synonyms, parent names and ids (live IS_A parents;
  a parent outside the branch, e.g. the root, still counts). ``models.views.to_attributes`` converts them to
  :class:`models.types.PhenotypeAttributes`.
* :func:`disease_sets`: one :class:`DiseaseView` per disease (or chest X-ray finding) with its typical set
  ``T(d)`` (``HAS_PHENOTYPE``) and excluded set ``E(d)`` (``EXCLUDES``) as ``(hpo_id, name)`` pairs, most
  frequent first (frequency descending, then name). Only ``aspects`` rows count (default ``P``: phenotypic
  abnormalities, not inheritance or onset rows).
* :func:`evidence_items`: one :class:`EvidenceView` per image–caption pair: image sha256 (and its blob path
  when a blob store root is given), caption, and the phenotype ids the caption shows (certain and hedged
  apart) and rules out, and the record's extra fields (``extra``: dataset, split, label, finding, … as the
  import file gave them). ``source`` / ``split`` select a dataset and one of its splits.

:func:`id_redirects` maps every id the graph knows (current, alternative, obsolete with a replacement) to
the current id, for gold standards written against older releases.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final, TypedDict

from kg.ids import PHENOTYPIC_ABNORMALITY
from kg.store import queries as Q
from kg.store.graph import Graph

__all__ = [
    "PHENOTYPIC_ABNORMALITY",
    "DiseaseView",
    "EvidenceView",
    "PhenotypeView",
    "disease_sets",
    "domain_ancestors",
    "evidence_items",
    "id_redirects",
    "phenotype_attributes",
    "phenotype_names",
]



class PhenotypeView(TypedDict):
    """Textual attributes of one live phenotype (mirrors ``models.types.PhenotypeAttributes``)."""

    id: str
    name: str
    definition: str | None
    synonyms: list[str]
    parents: list[str]
    parent_ids: list[str]


class DiseaseView(TypedDict):
    """A disease with its typical and excluded sets (mirrors ``models.types.DiseaseSets``, plus ``source``)."""

    id: str
    name: str
    source: str
    typical: list[tuple[str, str]]
    excluded: list[tuple[str, str]]


class EvidenceView(TypedDict):
    """One image–caption pair and the phenotypes its caption links to."""

    id: str
    sha256: str
    image_uri: str | None
    blob_path: str | None
    caption: str
    source: str | None
    license: str | None
    shows: list[str]
    uncertain: list[str]
    rules_out: list[str]
    extra: dict[str, Any]


def _rows(graph: Graph, query: Any, **params: Any) -> list[Any]:
    records = graph.read(query, **params)
    if not records:
        return []
    return list(records[0].get("rows") or [])


def _strings(value: Any) -> list[str]:
    return [str(v) for v in (value or ()) if v is not None and str(v).strip()]


def phenotype_attributes(graph: Graph, *, branch: str | None = PHENOTYPIC_ABNORMALITY) -> list[PhenotypeView]:
    """Live phenotypes of ``branch`` (``None``: every live term) with their attributes, sorted by id."""
    terms: dict[str, tuple[str, str | None, list[str], list[str]]] = {}
    for tid, name, definition, synonyms, branches in _rows(graph, Q.TRAINING_PHENOTYPES):
        if tid is None or not name:
            continue
        terms[str(tid)] = (str(name), str(definition) if definition else None, _strings(synonyms),
                           _strings(branches))
    parents: dict[str, list[str]] = {}
    for child, parent in _rows(graph, Q.TRAINING_IS_A):
        if child in terms and parent in terms:
            parents.setdefault(str(child), []).append(str(parent))
    out: list[PhenotypeView] = []
    for tid in sorted(terms):
        name, definition, synonyms, branches = terms[tid]
        if branch is not None and branch not in branches and tid != branch:
            continue
        parent_ids = sorted(set(parents.get(tid, ())))
        out.append(PhenotypeView(id=tid, name=name, definition=definition, synonyms=synonyms,
                                 parents=[terms[p][0] for p in parent_ids], parent_ids=parent_ids))
    return out


def id_redirects(graph: Graph) -> dict[str, str]:
    """``{any known id: current id}``: live ids map to themselves, alternative ids to their term, obsolete
    ids to their replacement (followed transitively). Obsolete ids without a live replacement are absent."""
    live: set[str] = set()
    replaced: dict[str, str] = {}
    alt: dict[str, str] = {}
    for tid, obsolete, alt_ids, replaced_by in _rows(graph, Q.TRAINING_ID_REDIRECTS):
        tid = str(tid)
        if obsolete:
            if replaced_by:
                replaced[tid] = str(replaced_by)
        else:
            live.add(tid)
            for a in _strings(alt_ids):
                alt.setdefault(a, tid)
    out: dict[str, str] = {t: t for t in live}
    for a, t in alt.items():
        out.setdefault(a, t)
    for old in replaced:
        seen = {old}
        target: str | None = replaced[old]
        while target is not None and target not in live:
            target = alt.get(target) or replaced.get(target)
            if target in seen:
                target = None
            elif target is not None:
                seen.add(target)
        if target is not None:
            out.setdefault(old, target)
    return out


def _ordered(pairs: Iterable[tuple[str, str, float | None]]) -> list[tuple[str, str]]:
    """Most frequent first (unknown frequency last), then name; one entry per phenotype id."""
    best: dict[str, tuple[str, float | None]] = {}
    for pid, name, freq in pairs:
        prev = best.get(pid)
        if prev is None or (freq is not None and (prev[1] is None or freq > prev[1])):
            best[pid] = (name, freq)
    ranked = sorted(best.items(), key=lambda kv: (-(kv[1][1] if kv[1][1] is not None else -1.0),
                                                  kv[1][0].casefold(), kv[0]))
    return [(pid, name) for pid, (name, _) in ranked]


def disease_sets(graph: Graph, source: str | None = None, *, ids: Sequence[str] | None = None,
                 aspects: Sequence[str] | None = ("P",)) -> list[DiseaseView]:
    """Diseases with typical and excluded sets, sorted by id.

    ``source``: only diseases of that source (``OMIM``, ``ORPHA``, ``DECIPHER``, ``CXR_PACK``); ``ids``: only
    these diseases (unknown ids are simply absent from the result); ``aspects``: annotation aspects that
    count (``None``: all). Edges without an aspect count as ``P``.
    """
    params: dict[str, Any] = {"source": source, "ids": list(ids) if ids is not None else None}
    allowed = set(aspects) if aspects is not None else None
    diseases = {str(d): (str(name or d), str(src or "")) for d, name, src in _rows(graph, Q.TRAINING_DISEASES,
                                                                                    **params)}
    sets: dict[str, dict[str, list[tuple[str, str, float | None]]]] = {}
    for key, query in (("typical", Q.TRAINING_TYPICAL), ("excluded", Q.TRAINING_EXCLUDED)):
        for d, pid, pname, aspect, freq in _rows(graph, query, **params):
            if allowed is not None and (aspect or "P") not in allowed:
                continue
            entry = (str(pid), str(pname or pid), float(freq) if freq is not None else None)
            sets.setdefault(str(d), {}).setdefault(key, []).append(entry)
    out: list[DiseaseView] = []
    for did in sorted(diseases):
        name, src = diseases[did]
        s = sets.get(did, {})
        out.append(DiseaseView(id=did, name=name, source=src, typical=_ordered(s.get("typical", ())),
                               excluded=_ordered(s.get("excluded", ()))))
    return out


def _extra(value: Any) -> dict[str, Any]:
    if not value:
        return {}
    try:
        data = json.loads(str(value))
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


_HEX: Final = "0123456789abcdef"
_PER_RANGE: Final = 100_000  # evidence items per read at most (ArcadeDB refuses in-heap collects past 500,000)


def _id_ranges(total: int) -> list[tuple[str | None, str | None]]:
    """Ranges of evidence ids (``ev:`` + hex digits), in order, each holding about ``total / 16^d`` items: ids
    below ``ev:0``, 16 (or 256, …) hex prefix ranges, ids from ``ev:g`` on (ids made elsewhere)."""
    digits = 1
    while total / 16 ** digits > _PER_RANGE:
        digits += 1
    prefixes = [""]
    for _ in range(digits):
        prefixes = [p + c for p in prefixes for c in _HEX]
    bounds: list[str] = [f"ev:{p}" for p in prefixes] + ["ev:g"]
    return [(None, bounds[0]), *itertools.pairwise(bounds), (bounds[-1], None)]


def iter_evidence_items(graph: Graph, *, blob_root: Path | None = None, source: str | None = None,
                        split: str | None = None) -> Iterator[EvidenceView]:
    """Every evidence item (of ``source``; of ``split`` per its extra field) with its linked phenotype ids
    (sorted), by id, read one id range at a time (at most ~100,000 items each), so that 500,000 items stream in
    bounded memory; ArcadeDB sorts no more than one range (an ``ORDER BY … LIMIT`` page over 520K items took
    seconds each). ``blob_root``: the :class:`kg.store.blobs.BlobStore` root, to fill ``blob_path`` (the file may
    be missing on this machine)."""
    from kg.store.blobs import BlobStore

    store = BlobStore(blob_root) if blob_root is not None else None
    total = int(graph.read(Q.COUNT_NODES["evidence"])[0]["n"])
    for lo, hi in _id_ranges(total):
        rows = sorted(_rows(graph, Q.TRAINING_EVIDENCE_RANGE, lo=lo, hi=hi, source=source), key=lambda r: str(r[0]))
        if not rows:
            continue
        links: dict[str, dict[str, set[str]]] = {}
        for e, relation, pid, uncertain in _rows(graph, Q.TRAINING_EVIDENCE_LINKS, ids=[r[0] for r in rows]):
            kind = "rules_out" if relation == "RULES_OUT" else "uncertain" if uncertain else "shows"
            links.setdefault(str(e), {}).setdefault(kind, set()).add(str(pid))
        for eid, sha, uri, caption, src, license_, extra_json in rows:
            extra = _extra(extra_json)
            if split is not None and str(extra.get("split")) != split:
                continue
            eid = str(eid)
            blob_path: str | None = None
            if store is not None and sha:
                try:
                    blob_path = str(store.path(str(sha)))
                except ValueError:
                    blob_path = None
            lk = links.get(eid, {})
            shows = lk.get("shows", set())
            yield EvidenceView(
                id=eid, sha256=str(sha or ""), image_uri=str(uri) if uri else None, blob_path=blob_path,
                caption=str(caption or ""), source=str(src) if src else None,
                license=str(license_) if license_ else None, shows=sorted(shows),
                uncertain=sorted(lk.get("uncertain", set()) - shows), rules_out=sorted(lk.get("rules_out", set())),
                extra=extra,
            )


def evidence_items(graph: Graph, *, blob_root: Path | None = None, source: str | None = None,
                   split: str | None = None) -> list[EvidenceView]:
    """:func:`iter_evidence_items` as a list."""
    return list(iter_evidence_items(graph, blob_root=blob_root, source=source, split=split))


def count_evidence(graph: Graph) -> int:
    """How many ``Evidence`` nodes the graph holds (a served model reloads its evidence when this changes)."""
    return int(graph.read(Q.COUNT_NODES["evidence"])[0]["n"])


def phenotype_names(graph: Graph, ids: Iterable[str]) -> dict[str, str]:
    """Names of the given phenotype ids (ids the graph lacks are left out)."""
    wanted = sorted(set(ids))
    return {str(i): str(n) for i, n in _rows(graph, Q.TRAINING_TERM_NAMES, ids=wanted)} if wanted else {}


def domain_ancestors(graph: Graph, ids: Iterable[str]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Each phenotype's proper ancestors inside its domain, i.e. below the organ-system terms that are children
    of *Phenotypic abnormality* (those, the root and *Phenotypic abnormality* itself are left out), sorted; and
    the ancestors' names."""
    wanted = sorted(set(ids))
    out: dict[str, list[str]] = {i: [] for i in wanted}
    names: dict[str, str] = {}
    if not wanted:
        return out, names
    for pid, aid, aname, organ_system in _rows(graph, Q.TRAINING_TERM_ANCESTORS, ids=wanted,
                                               top=PHENOTYPIC_ABNORMALITY):
        if organ_system or str(aid) in (PHENOTYPIC_ABNORMALITY, "HP:0000001"):
            continue
        out[str(pid)].append(str(aid))
        names[str(aid)] = str(aname or aid)
    return {k: sorted(set(v)) for k, v in out.items()}, names

