"""Image → phenotype answers grounded in the evidence graph, within the model's own vocabulary.

A trained image–text model learned a small **vocabulary**: the phenotypes its training evidence shows or rules
out and those of its findings' typical / excluded sets (the *direct* terms, which are scored), plus their
ancestors up to a domain root (recorded, so that a curator sees the model's reach). For a query image each
direct phenotype ``p`` gets two signals:

* **label transfer** from the ``k`` nearest evidence images (cosine similarity of the image embeddings):
  ``share(p) = (Σ_j w_j [j shows p] + α π_p) / (Σ_j w_j [j is labelled for p] + α)``, with ``w`` the softmax of
  the neighbours' similarities at temperature ``τ`` and ``π_p`` the rate at which labelled training evidence
  shows ``p``. An evidence image *shows* ``p`` when it ``SHOWS`` ``p`` or a term below it and *rules it out*
  when it ``RULES_OUT`` ``p`` or a term above it (showing wins a conflict).
* **image–text contrast**: the image's similarity to ``p``'s prompt ("… showing p.") minus its similarity to
  ``p``'s absence prompt ("… No evidence of p.", as the fine captions word excluded sets), standardised per
  phenotype over the training images (``z``), so that one scale fits every phenotype. (The raw similarity to
  one prompt shifts with the image distribution; the contrast, like a two-prompt zero-shot, holds up.)

They are combined by a logistic model, ``P(p) = σ(a · logit(share) + b · z + c)``, fitted on the validation
split (its images queried against the training evidence only) when the model is trained, together with ``k``
and ``τ``. An image whose nearest reference image, in the generic features of :mod:`models.domain`, is less
similar than the validation images' were (their 1 % quantile) is **out of domain**. Everything here is plain
tensors: no graph, no HTTP.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "GROUNDING_ARRAYS",
    "GROUNDING_FILE",
    "Grounding",
    "GroundingParams",
    "ImageGrounding",
    "Vocabulary",
    "domain_roots",
    "label_matrix",
    "transfer_features",
]

GROUNDING_FILE: Final = "grounding.json"
GROUNDING_ARRAYS: Final = "grounding.npz"
FORMAT: Final = "phenokg-grounding/2"
#: Ancestors at or above these never join a vocabulary: the root, "Phenotypic abnormality" (domain roots are
#: the organ-system terms right below it, see :func:`domain_roots`).
TOP_TERMS: Final = frozenset({"HP:0000001", "HP:0000118"})
_EPS: Final = 1e-4


def domain_roots(parents: Mapping[str, Sequence[str]]) -> frozenset[str]:
    """The organ-system terms (children of *Phenotypic abnormality*) among ``parents``' keys."""
    return frozenset(t for t, ps in parents.items() if "HP:0000118" in ps)


@dataclass
class Vocabulary:
    """What a model learned. ``ids`` / ``names``: the direct (scored) terms, in column order; ``ancestors``:
    each direct term's ancestors inside the domain (below *Phenotypic abnormality*); ``findings``: the
    findings / diseases of the training data and ``sources`` their sources (e.g. ``CXR_PACK``)."""

    ids: list[str]
    names: list[str]
    ancestors: dict[str, list[str]] = field(default_factory=dict)
    findings: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.column = {t: i for i, t in enumerate(self.ids)}

    @property
    def all_ids(self) -> set[str]:
        """Direct terms and their in-domain ancestors."""
        return set(self.ids) | {a for anc in self.ancestors.values() for a in anc}

    def to_dict(self) -> dict[str, Any]:
        return {"ids": self.ids, "names": self.names, "ancestors": self.ancestors, "findings": self.findings,
                "sources": self.sources}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Vocabulary:
        ancestors = {k: list(v) for k, v in (data.get("ancestors") or {}).items()}
        return cls(list(data["ids"]), list(data["names"]), ancestors, list(data.get("findings") or []),
                   list(data.get("sources") or []))


def label_matrix(vocabulary: Vocabulary, shows: Sequence[Iterable[str]], rules_out: Sequence[Iterable[str]],
                 ancestors_of: Callable[[str], Iterable[str]],
                 implied: Sequence[tuple[Iterable[str], Iterable[str]]] | None = None) -> np.ndarray:
    """``[items, direct terms]`` int8: 1 the item shows the term (it links it or a term below it), −1 it rules
    it out (it rules out the term or one above it), 0 silent. ``ancestors_of(t)``: t's proper ancestors.

    ``implied``: per item, the ``(typical, excluded)`` sets of the finding its dataset labels it with. A caption
    names only some of them ("no evidence of" a sample of the excluded set), and silence is not absence, so
    the finding's sets fill in what the item's own links leave silent (its links win a conflict)."""
    out = np.zeros((len(shows), len(vocabulary.ids)), dtype=np.int8)
    column = vocabulary.column
    below_cache: dict[str, list[int]] = {}
    above_cache: dict[str, list[int]] = {}

    def below(t: str) -> list[int]:  # t itself and every direct term below it
        if t not in below_cache:
            below_cache[t] = [c for d, c in column.items() if d == t or t in vocabulary.ancestors.get(d, ())]
        return below_cache[t]

    def above(t: str) -> list[int]:  # t itself and every direct term above it
        if t not in above_cache:
            above_cache[t] = [column[a] for a in (t, *ancestors_of(t)) if a in column]
        return above_cache[t]

    for row, (pos, neg) in enumerate(zip(shows, rules_out, strict=True)):
        if implied is not None:
            typical, excluded = implied[row]
            for t in excluded:
                out[row, below(t)] = -1
            for t in typical:
                out[row, above(t)] = 1
            linked = np.zeros(len(vocabulary.ids), dtype=np.int8)
        else:
            linked = out[row]
        for t in neg:
            linked[below(t)] = -1
        for t in pos:  # shown wins over a rule-out
            linked[above(t)] = 1
        if implied is not None:
            out[row] = np.where(linked != 0, linked, out[row])
    return out


@dataclass
class GroundingParams:
    """The fitted constants (see the module docstring)."""

    k: int = 9
    tau: float = 0.05
    alpha: float = 1.0
    coef_share: float = 1.0
    coef_text: float = 0.0
    intercept: float = 0.0
    domain_threshold: float | None = None
    present_threshold: float = 0.5
    rule_out_threshold: float = 0.5
    calibrated: bool = False
    fit: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GroundingParams:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


Neighbours = tuple[Tensor, Tensor]
"""``(indices [B, k] into the evidence rows, similarities [B, k])``, best first: the nearest evidence of each query,
found by whoever holds the evidence (exactly, or by an approximate index at scale)."""


def nearest(query: Tensor, evidence: Tensor, k: int) -> Neighbours:
    """Exact nearest evidence rows of unit ``query`` embeddings (``evidence`` ``[E, D]``, unit rows)."""
    n = min(int(k), evidence.shape[0])
    if n == 0:
        empty = torch.zeros((query.shape[0], 0), dtype=torch.long, device=query.device)
        return empty, empty.float()
    top = (query @ evidence.T).topk(n, dim=1)
    return top.indices, top.values


def transfer_features(query: Tensor, evidence: Tensor | None, labels: Tensor, *, k: int, tau: float, alpha: float,
                      prior: Tensor, neighbours: Neighbours | None = None
                      ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Label transfer for unit ``query`` embeddings ``[B, D]`` from ``evidence`` ``[E, D]`` with ``labels``
    ``[E, V]`` (1 / −1 / 0). Returns ``(share, rule_out_share, neighbour indices [B, k], their similarities,
    labelled weight [B, V], showing weight [B, V])``; shares are smoothed towards ``prior`` ``[V]``, the weights
    (softmax over the neighbours, summing to 1) are not. ``neighbours``: the ``k`` nearest rows found by the
    caller (``evidence`` is then not needed)."""
    if neighbours is None:
        if evidence is None:
            raise ValueError("transfer_features needs the evidence embeddings or the neighbours")
        neighbours = nearest(query, evidence, k)
    indices, values = neighbours[0][:, : int(k)], neighbours[1][:, : int(k)]
    b, v = query.shape[0], labels.shape[1]
    if indices.shape[1] == 0:
        empty = torch.zeros((b, 0), dtype=torch.long, device=query.device)
        zero = torch.zeros((b, v), device=query.device)
        return prior.expand(b, v).clone(), 1.0 - prior.expand(b, v), empty, empty.float(), zero, zero
    weights = torch.softmax(values / tau, dim=1)  # [B, k]
    lab = labels[indices].float()  # [B, k, V]
    pos = torch.einsum("bk,bkv->bv", weights, (lab > 0).float())
    neg = torch.einsum("bk,bkv->bv", weights, (lab < 0).float())
    share = (pos + alpha * prior) / (pos + neg + alpha)
    rule_out = (neg + alpha * (1.0 - prior)) / (pos + neg + alpha)
    return share, rule_out, indices, values, pos + neg, pos


def _logit(p: Tensor) -> Tensor:
    p = p.clamp(_EPS, 1.0 - _EPS)
    return torch.log(p) - torch.log1p(-p)


@dataclass(frozen=True)
class ImageGrounding:
    """One query image's grounded answer (arrays over the vocabulary's direct terms, in column order)."""

    probability: np.ndarray
    similarity: np.ndarray
    share: np.ndarray
    rule_out_share: np.ndarray
    labelled: np.ndarray
    shown: np.ndarray
    neighbours: list[int]
    neighbour_similarity: list[float]
    domain_similarity: float | None = None

    def raw_share(self, col: int) -> float | None:
        """The share of the labelled neighbours' weight that shows term ``col`` (unsmoothed; ``None`` when no
        neighbour is labelled for it)."""
        weight = float(self.labelled[col])
        return float(self.shown[col]) / weight if weight > 1e-9 else None

    @property
    def nearest_similarity(self) -> float | None:
        return self.neighbour_similarity[0] if self.neighbour_similarity else None


class Grounding:
    """A vocabulary, its prompt embeddings and the fitted parameters; :meth:`answer` scores query embeddings
    against an evidence set (embeddings + label matrix) the caller supplies."""

    def __init__(self, vocabulary: Vocabulary, params: GroundingParams, text_embeddings: Tensor,
                 absence_embeddings: Tensor, text_mean: Tensor, text_std: Tensor, prior: Tensor,
                 domain_reference: Tensor | None = None) -> None:
        self.domain_reference = domain_reference  # [R, 1280] half floats (models.domain), or None
        self.vocabulary = vocabulary
        self.params = params
        self.text_embeddings = text_embeddings
        self.absence_embeddings = absence_embeddings
        self.text_mean = text_mean
        self.text_std = text_std.clamp_min(1e-3)
        self.prior = prior.clamp(0.02, 0.98)

    def to(self, device: str | torch.device) -> Grounding:
        return Grounding(self.vocabulary, self.params, self.text_embeddings.to(device),
                         self.absence_embeddings.to(device), self.text_mean.to(device), self.text_std.to(device),
                         self.prior.to(device),
                         self.domain_reference.to(device) if self.domain_reference is not None else None)

    def contrast(self, query: Tensor) -> Tensor:
        """``[B, V]``: similarity to each phenotype's prompt minus similarity to its absence prompt."""
        return query @ self.text_embeddings.T - query @ self.absence_embeddings.T

    def features(self, query: Tensor, evidence: Tensor | None, labels: Tensor, *, k: int | None = None,
                 tau: float | None = None, neighbours: Neighbours | None = None
                 ) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]]:
        """``(logit share, z text, transfer outputs)`` for unit ``query`` embeddings."""
        p = self.params
        transfer = transfer_features(query, evidence, labels, k=k or p.k, tau=tau or p.tau, alpha=p.alpha,
                                     prior=self.prior, neighbours=neighbours)
        z = (self.contrast(query) - self.text_mean) / self.text_std
        return _logit(transfer[0]), z, transfer

    def answer(self, query: Tensor, evidence: Tensor | None, labels: Tensor,
               domain_similarity: Tensor | None = None, *, neighbours: Neighbours | None = None
               ) -> list[ImageGrounding]:
        """The grounded answer per query (``neighbours``: the caller's ``k`` nearest evidence rows, else exact
        search over ``evidence``)."""
        p = self.params
        share_logit, z, (share, rule_out, idx, vals, labelled, shown) = self.features(
            query, evidence, labels, neighbours=neighbours)
        prob = torch.sigmoid(p.coef_share * share_logit + p.coef_text * z + p.intercept)
        sim = query @ self.text_embeddings.T
        out = []
        for row in range(query.shape[0]):
            out.append(ImageGrounding(prob[row].cpu().numpy(), sim[row].cpu().numpy(), share[row].cpu().numpy(),
                                      rule_out[row].cpu().numpy(), labelled[row].cpu().numpy(),
                                      shown[row].cpu().numpy(),
                                      idx[row].cpu().tolist(), [float(x) for x in vals[row].cpu().tolist()],
                                      float(domain_similarity[row]) if domain_similarity is not None else None))
        return out

    # ------------------------------------------------------------------------------------------------ files
    def save(self, run_dir: str | Path, *, evidence_sha256: Sequence[str] = (),
             evidence_embeddings: Tensor | None = None, extra: Mapping[str, Any] | None = None) -> None:
        """Write ``grounding.json`` and ``grounding.npz`` (prompt embeddings and statistics; optionally the
        training evidence's image embeddings by content hash, so that serving need not embed them again)."""
        out = Path(run_dir)
        doc = {"format": FORMAT, "vocabulary": self.vocabulary.to_dict(), "params": asdict(self.params),
               **dict(extra or {})}
        arrays: dict[str, Any] = {"text_embeddings": self.text_embeddings.cpu().numpy().astype(np.float32),
                                  "absence_embeddings": self.absence_embeddings.cpu().numpy().astype(np.float32),
                                  "text_mean": self.text_mean.cpu().numpy(), "text_std": self.text_std.cpu().numpy(),
                                  "prior": self.prior.cpu().numpy()}
        if self.domain_reference is not None:
            arrays["domain_reference"] = self.domain_reference.cpu().numpy().astype(np.float16)
        if evidence_embeddings is not None:
            arrays["evidence_sha256"] = np.asarray(list(evidence_sha256), dtype=str)
            arrays["evidence_embeddings"] = evidence_embeddings.cpu().numpy().astype(np.float32)
        tmp = out / f".{GROUNDING_ARRAYS}.tmp.npz"
        np.savez(tmp, **arrays)
        tmp.replace(out / GROUNDING_ARRAYS)
        (out / GROUNDING_FILE).write_text(json.dumps(doc, indent=1, sort_keys=True, default=_json_default) + "\n",
                                          encoding="utf-8")

    @staticmethod
    def exists(run_dir: str | Path) -> bool:
        return (Path(run_dir) / GROUNDING_FILE).is_file() and (Path(run_dir) / GROUNDING_ARRAYS).is_file()

    @classmethod
    def load(cls, run_dir: str | Path) -> tuple[Grounding, dict[str, Tensor]]:
        """The grounding of a run directory and its stored evidence embeddings (``{sha256: embedding}``)."""
        root = Path(run_dir)
        doc = json.loads((root / GROUNDING_FILE).read_text(encoding="utf-8"))
        if doc.get("format") != FORMAT:
            raise ValueError(f"{root / GROUNDING_FILE}: not a {FORMAT} file")
        with np.load(root / GROUNDING_ARRAYS, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        grounding = cls(Vocabulary.from_dict(doc["vocabulary"]), GroundingParams.from_dict(doc["params"]),
                        torch.from_numpy(arrays["text_embeddings"]), torch.from_numpy(arrays["absence_embeddings"]),
                        torch.from_numpy(arrays["text_mean"]),
                        torch.from_numpy(arrays["text_std"]), torch.from_numpy(arrays["prior"]),
                        torch.from_numpy(arrays["domain_reference"]) if "domain_reference" in arrays else None)
        stored: dict[str, Tensor] = {}
        if "evidence_embeddings" in arrays:
            emb = torch.from_numpy(arrays["evidence_embeddings"])
            stored = {str(s): emb[i] for i, s in enumerate(arrays["evidence_sha256"].tolist())}
        return grounding, stored


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
