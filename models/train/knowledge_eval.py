"""Evaluation of a knowledge encoder: attribute → term retrieval and text → phenotype normalisation.

* **Attribute → term** (seed 004 §4.1): :func:`models.train.knowledge.evaluate_attribute_retrieval` on held-out
  phenotypes: each definition / synonym retrieves the phenotype's name among all names (R@1, R@10).
* **Normalisation**: each gold mention of an annotated corpus (GSC+: ``start, end, text, HP id`` lines) is
  embedded and compared with every name and synonym of the candidate terms; a term scores its best label;
  acc@k = the gold id (mapped through alternative ids / replacements) among the top k terms. Mentions whose
  gold id is not a candidate term are counted apart (``n_gold_not_in_gallery``) and left out of the accuracy.

:class:`CachedEncoder` embeds every distinct string once, in length-sorted batches (little padding), so the
two evaluations share one pass over the ~45k HPO strings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from kg.errors import ValidationError
from models.encoders import TextEncoder
from models.train.knowledge import evaluate_attribute_retrieval
from models.types import PhenotypeAttributes

__all__ = [
    "CachedEncoder",
    "GoldMention",
    "evaluate_knowledge_encoder",
    "evaluate_normalisation",
    "normalisation_ranks",
    "read_gold_corpus",
    "read_gold_mentions",
]

GoldMention = tuple[str, str]  # (mention text, gold HPO id)


def _mention_lines(source: Path, lines: Sequence[str]) -> list[tuple[int, GoldMention]]:
    """``(line number, (text, HP id))`` of the mention lines (``start<TAB>end<TAB>text<TAB>HP:…``) of ``lines``."""
    out: list[tuple[int, GoldMention]] = []
    for lineno, line in enumerate(lines, start=1):
        parts = line.split("\t")
        if len(parts) < 4:
            continue
        mention, hpo = parts[2].strip(), parts[3].strip()
        if not hpo.startswith("HP:"):
            raise ValidationError(f"{source}:{lineno}: expected an HP id in column 4, got {hpo!r}")
        if mention:
            out.append((lineno, (mention, hpo)))
    return out


def read_gold_corpus(path: str | Path) -> tuple[list[str], list[GoldMention]]:
    """The document id of each mention and the ``(text, HP id)`` mentions of an annotated corpus.

    ``path``: a GSC+-style file (a document id line, a text line, the mention lines, a blank line between
    documents) or a PhenoBERT-style directory whose ``ann/<document>`` files hold mention lines.
    """
    p = Path(path)
    docs: list[str] = []
    mentions: list[GoldMention] = []
    if p.is_dir():
        for ann in sorted((p / "ann").iterdir()):
            found = _mention_lines(ann, ann.read_text(encoding="utf-8").splitlines())
            docs.extend(ann.name for _ in found)
            mentions.extend(m for _, m in found)
        return docs, mentions
    lines = p.read_text(encoding="utf-8").splitlines()
    doc_of_line: list[str] = []  # the document each line belongs to: an id line at the top or after a blank
    doc, expect_id = "", True
    for line in lines:
        if not line.strip():
            expect_id = True
        elif expect_id and len(line.split("\t")) < 4:
            doc, expect_id = line.strip(), False
        doc_of_line.append(doc)
    for lineno, mention in _mention_lines(p, lines):
        docs.append(doc_of_line[lineno - 1])
        mentions.append(mention)
    return docs, mentions


def read_gold_mentions(path: str | Path) -> list[GoldMention]:
    """``(text, HP id)`` of every mention of a corpus (see :func:`read_gold_corpus`)."""
    return read_gold_corpus(path)[1]


class CachedEncoder:
    """Wraps a :class:`TextEncoder`: ``encode`` returns cached unit vectors, computing missing ones in
    length-sorted batches (CPU float32 ``[N, dim]``, input order)."""

    def __init__(self, encoder: TextEncoder, *, batch_size: int = 128, progress: bool = False,
                 desc: str = "embedding") -> None:
        self.encoder = encoder
        self.batch_size = int(batch_size)
        self.progress = progress
        self.desc = desc
        self._cache: dict[str, Tensor] = {}

    def prefill(self, texts: Iterable[str]) -> None:
        """Embed every text not cached yet (one progress bar for the lot)."""
        missing = sorted({t for t in texts if t not in self._cache}, key=lambda t: (len(t), t))
        if not missing:
            return
        was_training = self.encoder.training
        self.encoder.eval()
        dev = self.encoder.device
        bar = tqdm(total=len(missing), disable=not self.progress, desc=self.desc, unit="text")
        try:
            with torch.inference_mode():
                for start in range(0, len(missing), self.batch_size):
                    chunk = missing[start:start + self.batch_size]
                    tokens = {k: v.to(dev) for k, v in self.encoder.tokenize(chunk).items()}
                    vecs = self.encoder(**tokens).float().cpu()
                    for text, vec in zip(chunk, vecs, strict=True):
                        self._cache[text] = vec.clone()
                    bar.update(len(chunk))
        finally:
            bar.close()
            self.encoder.train(was_training)

    def encode(self, texts: Sequence[str], batch_size: int = 0) -> Tensor:
        """Unit vectors of ``texts`` (``batch_size`` is accepted for interface compatibility)."""
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of strings, not a single string")
        self.prefill(texts)
        if not texts:
            return torch.zeros((0, self.encoder.dim), dtype=torch.float32)
        return torch.stack([self._cache[t] for t in texts])


def normalisation_ranks(
    encoder: Any,
    gallery: Sequence[tuple[str, Sequence[str]]],
    mentions: Sequence[GoldMention],
    *,
    redirects: Mapping[str, str] | None = None,
) -> list[int | None]:
    """1-based rank of each mention's gold term by nearest-neighbour search (a term scores its best label);
    ``None`` where the gold id (after ``redirects``) is not a gallery term. Equal scores keep gallery order."""
    term_ids = [tid for tid, _ in gallery]
    index = {tid: i for i, tid in enumerate(term_ids)}
    labels: list[str] = []
    owner: list[int] = []
    for i, (_, texts) in enumerate(gallery):
        for t in dict.fromkeys(x for x in texts if x):
            labels.append(t)
            owner.append(i)
    targets = [index.get(redirects.get(gold, gold) if redirects is not None else gold) for _, gold in mentions]
    kept = [i for i, target in enumerate(targets) if target is not None]
    ranks: list[int | None] = [None] * len(mentions)
    if not kept or not labels:
        return ranks
    lab = torch.nn.functional.normalize(encoder.encode(labels).float(), dim=-1)
    qry = torch.nn.functional.normalize(encoder.encode([mentions[i][0] for i in kept]).float(), dim=-1)
    sims = qry @ lab.T  # [Q, L]
    owner_t = torch.tensor(owner).unsqueeze(0).expand_as(sims)
    per_term = torch.full((len(kept), len(term_ids)), -2.0).scatter_reduce(1, owner_t, sims, reduce="amax")
    gold_index = torch.tensor([targets[i] for i in kept])
    gold_scores = per_term[torch.arange(len(kept)), gold_index].unsqueeze(1)
    earlier = torch.arange(len(term_ids)).unsqueeze(0) < gold_index.unsqueeze(1)
    above = ((per_term > gold_scores) | ((per_term == gold_scores) & earlier)).sum(dim=1)
    for row, i in enumerate(kept):
        ranks[i] = int(above[row]) + 1
    return ranks


def evaluate_normalisation(
    encoder: Any,
    gallery: Sequence[tuple[str, Sequence[str]]],
    mentions: Sequence[GoldMention],
    *,
    redirects: Mapping[str, str] | None = None,
    k: Sequence[int] = (1, 5),
) -> dict[str, float]:
    """acc@k of mention → term nearest-neighbour search (see :func:`normalisation_ranks`).

    ``gallery``: ``(term id, labels)``; ``redirects``: old id → current id for the gold ids.
    """
    n_labels = sum(len(dict.fromkeys(x for x in texts if x)) for _, texts in gallery)
    result: dict[str, float] = {"n_mentions": float(len(mentions)), "gallery_terms": float(len(gallery)),
                                "gallery_labels": float(n_labels)}
    ranks = [r for r in normalisation_ranks(encoder, gallery, mentions, redirects=redirects) if r is not None]
    result["n_evaluated"] = float(len(ranks))
    result["n_gold_not_in_gallery"] = float(len(mentions) - len(ranks))
    for kk in k:
        result[f"acc@{kk}"] = sum(r <= kk for r in ranks) / len(ranks) if ranks else float("nan")
    return result


def evaluate_knowledge_encoder(
    encoder: TextEncoder,
    held_out: Sequence[PhenotypeAttributes],
    *,
    distractors: Sequence[str] = (),
    gallery: Sequence[tuple[str, Sequence[str]]] = (),
    mentions: Sequence[GoldMention] = (),
    redirects: Mapping[str, str] | None = None,
    batch_size: int = 128,
    progress: bool = False,
    desc: str = "evaluating",
) -> dict[str, Any]:
    """Both evaluations with one embedding pass: ``{"attribute_retrieval": {...}, "normalisation": {...}}``
    (a part is absent when it has no data: no held-out phenotypes, or no gold mentions)."""
    cached = CachedEncoder(encoder, batch_size=batch_size, progress=progress, desc=desc)
    texts: list[str] = list(distractors)
    for p in held_out:
        texts.append(p.name)
        if p.definition:
            texts.append(p.definition)
        texts.extend(p.synonyms)
    for _, labels in gallery:
        texts.extend(labels)
    texts.extend(t for t, _ in mentions)
    cached.prefill(t for t in texts if t)
    out: dict[str, Any] = {}
    if held_out:
        out["attribute_retrieval"] = evaluate_attribute_retrieval(cached, held_out, (1, 10),
                                                                  distractors=distractors)
    if mentions and gallery:
        out["normalisation"] = evaluate_normalisation(cached, gallery, mentions, redirects=redirects)
    return out
