"""Attribute sampling for the phenotype knowledge encoder (PhenoLIP stage 1, seed 004 §4.1).

Each phenotype contributes textual *attributes*: its name, its definition, each synonym and one relational
sentence "X is a child phenotype of Y" per parent (and, when asked, mention-style paraphrases of grouping-term
labels such as "cutaneous abnormalities" for *Abnormality of the skin*, :mod:`models.train.paraphrase`). A positive
pair is two different attributes of the same phenotype; the other pairs of a batch serve as in-batch negatives.

False negatives are kept out in two layers:

1. :class:`ConflictFreeBatchSampler` never places two phenotypes in one batch when they share an attribute
   string (compared ignoring case, whitespace runs and end punctuation) or when one is a direct parent of
   the other.
2. :func:`false_negative_mask` flags any remaining pair of batch items whose texts are equal, so the loss can
   drop them from the negatives (second line of defence, e.g. for hand-built batches).

Everything is seeded: the pairs and the batches of epoch ``e`` depend only on ``(seed, e)``, so a run resumed
at ``(epoch, batch)`` sees exactly the batches the uninterrupted run would have seen.

Phenotypes with a single attribute (only a name: no definition, synonym or parent, e.g. the ontology root)
are skipped by default (``single_attribute="skip"``); ``"template"`` pairs the name with
``"the phenotype <name>"`` instead, which keeps such terms in the negatives at the cost of a trivial positive.

This module does not import torch at import time (``kg`` may import it); :func:`false_negative_mask` imports
torch lazily.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from kg.errors import ValidationError
from models.train.paraphrase import paraphrases_of_labels
from models.types import PhenotypeAttributes

if TYPE_CHECKING:
    import torch

__all__ = [
    "ATTRIBUTE_KINDS",
    "Attribute",
    "AttributeKind",
    "AttributePairSampler",
    "ConflictFreeBatchSampler",
    "KnowledgePairBatches",
    "PositivePair",
    "SingleAttributePolicy",
    "attributes_of",
    "check_kind_weights",
    "false_negative_mask",
    "normalize_text",
    "relation_text",
]

AttributeKind = Literal["name", "definition", "synonym", "relation", "paraphrase", "template"]
SingleAttributePolicy = Literal["skip", "template"]
ATTRIBUTE_KINDS: tuple[AttributeKind, ...] = ("name", "definition", "synonym", "relation", "paraphrase", "template")

RELATION_TEMPLATE = "{child} is a child phenotype of {parent}"
SINGLE_TEMPLATE = "the phenotype {name}"

# Independent random streams derived from (seed, epoch, stream).
_STREAM_PAIRS = 1
_STREAM_BATCHES = 2


def normalize_text(text: str) -> str:
    """Key used to compare attribute strings: case, runs of whitespace and end punctuation are ignored."""
    return " ".join(text.casefold().split()).strip(" .,;:")


def relation_text(child: str, parent: str) -> str:
    """The relational attribute sentence for an is-a edge."""
    return RELATION_TEMPLATE.format(child=child, parent=parent)


@dataclass(frozen=True, slots=True)
class Attribute:
    """One textual attribute of a phenotype."""

    kind: AttributeKind
    text: str


@dataclass(frozen=True, slots=True)
class PositivePair:
    """Two different attributes of the same phenotype."""

    phenotype_id: str
    anchor: Attribute
    positive: Attribute


def attributes_of(p: PhenotypeAttributes, *, paraphrase: bool = False) -> tuple[Attribute, ...]:
    """Distinct attributes of ``p`` (name first), deduplicated by :func:`normalize_text`, empties dropped.

    ``paraphrase``: add mention-style paraphrases of grouping-term labels (:mod:`models.train.paraphrase`).
    """
    candidates: list[Attribute] = [Attribute("name", p.name)]
    if p.definition:
        candidates.append(Attribute("definition", p.definition))
    candidates.extend(Attribute("synonym", s) for s in p.synonyms)
    candidates.extend(Attribute("relation", relation_text(p.name, parent)) for parent in p.parents if parent)
    if paraphrase:
        candidates.extend(Attribute("paraphrase", s) for s in paraphrases_of_labels((p.name, *p.synonyms)))
    seen: set[str] = set()
    out: list[Attribute] = []
    for a in candidates:
        key = normalize_text(a.text)
        if key and key not in seen:
            seen.add(key)
            out.append(a)
    return tuple(out)


def _rng(seed: int, epoch: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch, stream])


def check_kind_weights(weights: Mapping[str, float] | None) -> dict[str, float] | None:
    """Validate per-kind sampling weights: known kinds, finite and >= 0 (missing kinds weigh 1)."""
    if weights is None:
        return None
    out: dict[str, float] = {}
    for kind, value in weights.items():
        if kind not in ATTRIBUTE_KINDS:
            raise ValidationError(f"unknown attribute kind {kind!r} (known: {', '.join(ATTRIBUTE_KINDS)})")
        w = float(value)
        if not np.isfinite(w) or w < 0:
            raise ValidationError(f"the weight of {kind!r} must be a finite number >= 0, not {value!r}")
        out[kind] = w
    return out


class AttributePairSampler:
    """Draws one positive pair per phenotype per epoch.

    With probability ``name_anchor_prob`` one side of the pair is the phenotype's name (the text that
    downstream mention-normalisation retrieves); otherwise both attributes are drawn without replacement.
    The other side (or both) is drawn uniformly, or in proportion to ``kind_weights`` (e.g.
    ``{"synonym": 3, "relation": 0.5}``: kinds not named weigh 1; a phenotype whose candidates all weigh 0
    falls back to uniform). The order of the two sides is random (the loss is symmetric anyway).
    """

    def __init__(
        self,
        phenotypes: Sequence[PhenotypeAttributes],
        *,
        seed: int = 0,
        single_attribute: SingleAttributePolicy = "skip",
        name_anchor_prob: float = 0.5,
        kind_weights: Mapping[str, float] | None = None,
        paraphrase: bool = False,
    ) -> None:
        if single_attribute not in ("skip", "template"):
            raise ValidationError(f"single_attribute must be 'skip' or 'template', not {single_attribute!r}")
        if not 0.0 <= name_anchor_prob <= 1.0:
            raise ValidationError("name_anchor_prob must lie in [0, 1]")
        self.seed = int(seed)
        self.name_anchor_prob = float(name_anchor_prob)
        self.kind_weights = check_kind_weights(kind_weights)
        kept: list[PhenotypeAttributes] = []
        attrs: list[tuple[Attribute, ...]] = []
        for p in phenotypes:
            a = attributes_of(p, paraphrase=paraphrase)
            if len(a) < 2:
                if single_attribute == "skip" or not a:
                    continue
                a = (a[0], Attribute("template", SINGLE_TEMPLATE.format(name=p.name)))
            kept.append(p)
            attrs.append(a)
        self.phenotypes: tuple[PhenotypeAttributes, ...] = tuple(kept)
        self.attributes: tuple[tuple[Attribute, ...], ...] = tuple(attrs)
        self._weights: tuple[np.ndarray, ...] | None = None
        if self.kind_weights is not None:
            kw = self.kind_weights
            self._weights = tuple(np.array([kw.get(a.kind, 1.0) for a in group], dtype=np.float64)
                                  for group in attrs)

    def __len__(self) -> int:
        return len(self.phenotypes)

    def pairs(self, epoch: int) -> list[PositivePair]:
        """The positive pair of every eligible phenotype for ``epoch`` (index-aligned with ``phenotypes``)."""
        rng = _rng(self.seed, epoch, _STREAM_PAIRS)
        out: list[PositivePair] = []
        for index, (p, attrs) in enumerate(zip(self.phenotypes, self.attributes, strict=True)):
            n = len(attrs)
            use_name = rng.random() < self.name_anchor_prob
            if self._weights is None:
                if use_name:
                    i, j = 0, 1 + int(rng.integers(n - 1))
                else:
                    i, j = (int(x) for x in rng.choice(n, size=2, replace=False))
            else:
                w = self._weights[index]
                if use_name:
                    i, j = 0, 1 + int(rng.choice(n - 1, p=_probabilities(w[1:])))
                else:
                    both = rng.choice(n, size=2, replace=False, p=_probabilities(w, at_least=2))
                    i, j = int(both[0]), int(both[1])
            if rng.random() < 0.5:
                i, j = j, i
            out.append(PositivePair(p.id, attrs[i], attrs[j]))
        return out


def _probabilities(weights: np.ndarray, at_least: int = 1) -> np.ndarray:
    """Normalised weights; uniform when fewer than ``at_least`` of them are positive."""
    if int((weights > 0).sum()) < at_least:
        return np.full(len(weights), 1.0 / len(weights))
    return weights / weights.sum()


class ConflictFreeBatchSampler:
    """Shuffles phenotypes per epoch and packs them into batches without false-negative conflicts.

    Two phenotypes *conflict* when they share any attribute string (normalised) or one lists the other in
    ``parent_ids``. Packing is first-fit over the open batches in a seeded random order; a batch is emitted
    when full, and leftover partial batches at the end of the epoch are emitted in creation order (or dropped
    with ``drop_last``). Yields lists of indices into ``phenotypes``.
    """

    def __init__(
        self,
        phenotypes: Sequence[PhenotypeAttributes],
        batch_size: int,
        *,
        seed: int = 0,
        drop_last: bool = False,
        attributes: Sequence[Sequence[Attribute]] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValidationError("batch_size must be >= 1")
        self.phenotypes = tuple(phenotypes)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.epoch = 0
        attrs = attributes if attributes is not None else [attributes_of(p) for p in self.phenotypes]
        if len(attrs) != len(self.phenotypes):
            raise ValueError("attributes must be index-aligned with phenotypes")
        self._keys: tuple[frozenset[str], ...] = tuple(
            frozenset(normalize_text(a.text) for a in group) for group in attrs
        )
        self._parents: tuple[frozenset[str], ...] = tuple(
            frozenset(p.parent_ids) - {p.id} for p in self.phenotypes
        )

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch that ``__iter__`` yields."""
        self.epoch = int(epoch)

    def conflicts(self, i: int, j: int) -> bool:
        """Whether phenotypes ``i`` and ``j`` must not share a batch."""
        pi, pj = self.phenotypes[i], self.phenotypes[j]
        if not self._keys[i].isdisjoint(self._keys[j]):
            return True
        return pj.id in self._parents[i] or pi.id in self._parents[j]

    def batches(self, epoch: int) -> list[list[int]]:
        """All batches of ``epoch`` (deterministic in ``(seed, epoch)``)."""
        order = _rng(self.seed, epoch, _STREAM_BATCHES).permutation(len(self.phenotypes))
        done: list[list[int]] = []
        # open batch: (members, attribute keys, member ids, parent ids of members)
        open_: list[tuple[list[int], set[str], set[str], set[str]]] = []
        for raw in order:
            i = int(raw)
            keys, pid, parents = self._keys[i], self.phenotypes[i].id, self._parents[i]
            for slot, (members, bkeys, bids, bparents) in enumerate(open_):
                if keys.isdisjoint(bkeys) and pid not in bparents and parents.isdisjoint(bids):
                    members.append(i)
                    bkeys.update(keys)
                    bids.add(pid)
                    bparents.update(parents)
                    if len(members) == self.batch_size:
                        done.append(members)
                        del open_[slot]
                    break
            else:
                if self.batch_size == 1:
                    done.append([i])
                else:
                    open_.append(([i], set(keys), {pid}, set(parents)))
        if not self.drop_last:
            done.extend(members for members, *_ in open_)
        return done

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches(self.epoch))

    def __len__(self) -> int:
        return len(self.batches(self.epoch))


class KnowledgePairBatches:
    """Epoch-aware stream of conflict-free batches of positive pairs, with resumable position.

    Iteration yields ``(epoch, index_in_epoch, pairs)`` starting at the current position and advances it;
    :meth:`state_dict` / :meth:`load_state_dict` save and restore ``(seed, epoch, batch)``.
    Batches with fewer than ``min_batch`` pairs are skipped (a batch of one has no negatives).
    """

    def __init__(
        self,
        phenotypes: Sequence[PhenotypeAttributes],
        batch_size: int,
        *,
        seed: int = 0,
        single_attribute: SingleAttributePolicy = "skip",
        name_anchor_prob: float = 0.5,
        kind_weights: Mapping[str, float] | None = None,
        paraphrase: bool = False,
        drop_last: bool = False,
        min_batch: int = 2,
    ) -> None:
        self.pair_sampler = AttributePairSampler(
            phenotypes, seed=seed, single_attribute=single_attribute, name_anchor_prob=name_anchor_prob,
            kind_weights=kind_weights, paraphrase=paraphrase,
        )
        self.batch_sampler = ConflictFreeBatchSampler(
            self.pair_sampler.phenotypes,
            batch_size,
            seed=seed,
            drop_last=drop_last,
            attributes=self.pair_sampler.attributes,
        )
        self.seed = int(seed)
        self.min_batch = int(min_batch)
        self.epoch = 0
        self.batch = 0

    def epoch_batches(self, epoch: int) -> list[list[PositivePair]]:
        """All usable batches of pairs for ``epoch``."""
        pairs = self.pair_sampler.pairs(epoch)
        out = [[pairs[i] for i in b] for b in self.batch_sampler.batches(epoch)]
        return [b for b in out if len(b) >= self.min_batch]

    def batches_per_epoch(self, epochs: int) -> list[int]:
        """Number of usable batches in each of the first ``epochs`` epochs."""
        return [len(self.epoch_batches(e)) for e in range(epochs)]

    def iterate(self, epochs: int) -> Iterator[tuple[int, int, list[PositivePair]]]:
        """Yield batches from the current position up to the end of epoch ``epochs - 1``.

        Raises ``ValueError`` on an epoch without any usable batch (instead of spinning through epochs).
        """
        while self.epoch < epochs:
            batches = self.epoch_batches(self.epoch)
            if not batches:
                raise ValidationError(
                    f"epoch {self.epoch} has no batch of {self.min_batch} or more compatible phenotypes "
                    f"({len(self.pair_sampler)} usable phenotypes)"
                )
            while self.batch < len(batches):
                b = self.batch
                self.batch += 1
                yield self.epoch, b, batches[b]
            self.epoch += 1
            self.batch = 0

    def state_dict(self) -> dict[str, int]:
        """Position of the next batch to yield."""
        return {"seed": self.seed, "epoch": self.epoch, "batch": self.batch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a position saved by :meth:`state_dict` (the seed must match)."""
        if int(state["seed"]) != self.seed:
            raise ValidationError(f"sampler seed mismatch: checkpoint {state['seed']}, sampler {self.seed}")
        self.epoch = int(state["epoch"])
        self.batch = int(state["batch"])


def false_negative_mask(
    anchors: Sequence[str],
    positives: Sequence[str] | None = None,
    groups: Sequence[str] | None = None,
) -> torch.Tensor:
    """Boolean ``[N, N]`` mask of off-diagonal pairs that must not count as negatives.

    ``mask[i, j]`` (``i != j``) is True when a text of item ``i`` equals a text of item ``j`` (normalised,
    either side: anchor or positive), or when both items belong to the same ``groups`` entry (e.g. phenotype
    id). The mask is symmetric and its diagonal is always False. Pass it to the losses in
    :mod:`models.losses`.
    """
    import torch

    n = len(anchors)
    pos = anchors if positives is None else positives
    if len(pos) != n or (groups is not None and len(groups) != n):
        raise ValueError("anchors, positives and groups must have the same length")
    vocab: dict[str, int] = {}
    a = torch.tensor([vocab.setdefault(normalize_text(t), len(vocab)) for t in anchors], dtype=torch.long)
    p = torch.tensor([vocab.setdefault(normalize_text(t), len(vocab)) for t in pos], dtype=torch.long)
    mask = (a[:, None] == p[None, :]) | (a[:, None] == a[None, :]) | (p[:, None] == p[None, :])
    if groups is not None:
        gvocab: dict[str, int] = {}
        g = torch.tensor([gvocab.setdefault(x, len(gvocab)) for x in groups], dtype=torch.long)
        mask |= g[:, None] == g[None, :]
    mask = mask | mask.T
    mask.fill_diagonal_(False)
    return mask
