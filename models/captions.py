"""Set-theory captions with controllable knowledge granularity (seed 000), and set-based comparisons.

For a disease (or imaging finding) ``d`` with typical set ``T(d)`` and excluded set ``E(d)``:

* ``coarse``: the disease only ("Chest radiograph consistent with pneumonia.");
* ``medium``: ``d`` + ``T(d)`` ("Findings of pneumonia: consolidation and pulmonary opacity.");
* ``fine``: ``d`` + ``T(d)`` + "no evidence of" ``E(d)``.

Each granularity has several radiology-report-like templates; :func:`caption` picks one with a seeded RNG,
:func:`prompt_ensemble` fills all of them (for zero-shot prompt ensembles). :func:`compare` states what set
operations between two diseases imply: ``T(a) ∩ E(b)`` favours ``a`` over ``b``, ``T(a) ∖ T(b)`` is
typical of ``a`` only, ``T(a) ∩ T(b)`` is shared.

Consistency guarantee: a caption never states a phenotype as both present and absent. Before rendering,
:func:`clean_sets` removes duplicates (same id or same name, case-insensitively) and **drops from both sets**
every phenotype that appears in both (by id or by name), plus any excluded phenotype named like the disease
itself, and emits a :class:`CaptionDataWarning` naming them. Typical entries named like the disease are
dropped silently (they restate the disease). Dropping rather than raising keeps training running on imperfect
curation while making the problem visible; a phenotype that is both expected and excluded carries no usable
signal either way.

No torch (standard library and numpy only), so ``kg`` may import it.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np

from kg.errors import ValidationError
from models.types import DiseaseSets

__all__ = [
    "COARSE_TEMPLATES",
    "FINE_TEMPLATES",
    "MEDIUM_TEMPLATES",
    "TEMPLATES",
    "Caption",
    "CaptionDataWarning",
    "CleanSets",
    "Comparison",
    "Granularity",
    "build_caption",
    "caption",
    "clean_sets",
    "compare",
    "join_items",
    "prompt_ensemble",
]

Granularity = Literal["coarse", "medium", "fine"]
GRANULARITIES: tuple[Granularity, ...] = ("coarse", "medium", "fine")

# Fields: {disease} / {Disease} (sentence-initial), {study} / {Study}, {typical}, {excluded}.
# Lists are joined with "and" for findings present and with "or" after a negation.
COARSE_TEMPLATES: tuple[str, ...] = (
    "{Study} consistent with {disease}.",
    "Findings compatible with {disease}.",
    "Impression: {disease}.",
    "{Study} demonstrating {disease}.",
    "Appearances are suggestive of {disease}.",
)
MEDIUM_TEMPLATES: tuple[str, ...] = (
    "Findings of {disease}: {typical}.",
    "{Study} consistent with {disease}, showing {typical}.",
    "{Typical}, in keeping with {disease}.",
    "There is {typical}. Impression: {disease}.",
    "{Disease} with {typical}.",
)
FINE_TEMPLATES: tuple[str, ...] = (
    "Findings of {disease}: {typical}; no evidence of {excluded}.",
    "{Study} consistent with {disease}, showing {typical}. No evidence of {excluded}.",
    "{Typical}, in keeping with {disease}. There is no {excluded}.",
    "There is {typical}. No {excluded} is seen. Impression: {disease}.",
    "{Disease} with {typical}, without {excluded}.",
)
# Fine templates used when T(d) is empty after cleaning (the caption still states d and the exclusions).
FINE_NO_TYPICAL_TEMPLATES: tuple[str, ...] = (
    "Findings of {disease}; no evidence of {excluded}.",
    "{Study} consistent with {disease}. No evidence of {excluded}.",
    "Appearances are suggestive of {disease}. There is no {excluded}.",
    "No {excluded} is seen. Impression: {disease}.",
    "{Disease}, without {excluded}.",
)
TEMPLATES: dict[Granularity, tuple[str, ...]] = {
    "coarse": COARSE_TEMPLATES,
    "medium": MEDIUM_TEMPLATES,
    "fine": FINE_TEMPLATES,
}


class CaptionDataWarning(UserWarning):
    """A disease's typical and excluded sets contradict each other; the offending phenotypes were dropped."""


RngLike = int | random.Random | np.random.Generator | None


def _as_random(rng_or_seed: RngLike) -> random.Random | np.random.Generator:
    """``int`` → ``random.Random(seed)``; ``None`` → unseeded; an RNG is used (and advanced) as is."""
    if rng_or_seed is None or isinstance(rng_or_seed, int):
        return random.Random(rng_or_seed)
    return rng_or_seed


def _randbelow(rng: random.Random | np.random.Generator, n: int) -> int:
    if isinstance(rng, random.Random):
        return rng.randrange(n)
    return int(rng.integers(0, n))


def _sample_sorted(rng: random.Random | np.random.Generator, n: int, k: int) -> list[int]:
    """``k`` distinct indices out of ``range(n)``, in increasing order (keeps the curated order)."""
    pool = list(range(n))
    chosen: list[int] = []
    for _ in range(k):
        chosen.append(pool.pop(_randbelow(rng, len(pool))))
    return sorted(chosen)


def _key(name: str) -> str:
    return " ".join(name.casefold().split())


# Head nouns that follow an eponym ("Marfan syndrome", "Brushfield spots", "Sprengel anomaly"), and the
# adjective endings that mark a generic first word before them ("Nephrotic syndrome", "Metabolic disease").
_EPONYM_HEADS: Final = frozenset({
    "syndrome", "disease", "anomaly", "malformation", "deformity", "sign", "phenomenon", "sequence", "spots",
    "nodules", "bones", "ring", "pupil", "dystrophy", "palsy", "tumor", "tumour", "sarcoma", "lymphoma"})
_ADJECTIVE_ENDINGS: Final = ("ic", "al", "ous", "ary", "ive", "ar", "ac", "oid", "ed", "ing")
# Organs and other common nouns that name a generic disease before a head noun ("Lung disease", "Heart disease").
_GENERIC_NOUNS: Final = frozenset({
    "lung", "heart", "kidney", "liver", "bone", "skin", "eye", "brain", "muscle", "blood", "bowel", "thyroid",
    "joint", "ear", "nail", "hair", "tooth", "teeth", "lens", "valve", "vessel", "artery", "vein", "spine", "hip",
    "knee", "chest", "breast", "nerve", "storage", "prion", "motor", "neuron", "airway", "gum", "salt", "iron"})


def _is_proper(first: str, rest: list[str]) -> bool:
    """Whether a name's capitalised first word is a proper noun (an eponym) rather than sentence case."""
    if sum(c.isupper() for c in first) > 1 or first[:1].isdigit():
        return True  # an acronym (CHARGE, 22q11.2) or CamelCase (McCune-Albright)
    if "'" in first or "’" in first:
        return True  # a possessive: Down's syndrome
    if "-" in first and all(part[:1].isupper() for part in first.split("-") if part):
        return True  # Ehlers-Danlos, Charcot-Marie-Tooth
    if not first[:1].isupper():
        return False
    if rest and len(rest[0]) > 1 and rest[0][:1].isupper() and rest[0][1:].islower():
        return True  # a two-word name: Pierre Robin sequence, Treacher Collins syndrome
    if first.casefold().endswith(_ADJECTIVE_ENDINGS) or first.casefold() in _GENERIC_NOUNS:
        return False
    for word in (w.casefold().strip(",;:") for w in rest):  # past adjectives: Duchenne muscular dystrophy
        if word in _EPONYM_HEADS:
            return True
        if not word.endswith(_ADJECTIVE_ENDINGS):
            return False
    return False


def _lower_first(text: str) -> str:
    """Lower-case the first letter for mid-sentence use when the name is a generic phrase ("Pneumonia",
    "Aortic root aneurysm", "Chest radiograph"); names that start with a proper noun or an acronym are kept as
    the ontology spells them ("Marfan syndrome", "Ehlers-Danlos syndrome", "CHARGE syndrome")."""
    text = " ".join(text.split())
    if not text:
        return text
    first, *rest = text.split(" ")
    if _is_proper(first, rest):
        return text
    return text[0].lower() + text[1:]


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def join_items(items: Sequence[str], conjunction: str = "and") -> str:
    """``a``; ``a and b``; ``a, b, and c`` (serial comma), with ``conjunction`` ("and" / "or")."""
    items = [i for i in items if i]
    if not items:
        return ""
    if len(items) == 1:
        return items[0]
    if len(items) == 2:
        return f"{items[0]} {conjunction} {items[1]}"
    return f"{', '.join(items[:-1])}, {conjunction} {items[-1]}"


@dataclass(frozen=True, slots=True)
class CleanSets:
    """Typical and excluded sets after :func:`clean_sets`, disjoint by id and by name."""

    typical: tuple[tuple[str, str], ...]
    excluded: tuple[tuple[str, str], ...]
    dropped: tuple[tuple[str, str], ...]


def clean_sets(d: DiseaseSets, *, warn: bool = True) -> CleanSets:
    """Deduplicate ``T(d)`` and ``E(d)`` and make them disjoint (by id and by normalised name).

    Any phenotype present in both sets is dropped from both; excluded entries named like the disease are
    dropped too; typical entries named like the disease are dropped silently. Warns with
    :class:`CaptionDataWarning` when something contradictory was dropped.
    """
    disease_key = _key(d.name)

    def dedupe(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        seen_ids: set[str] = set()
        seen_names: set[str] = set()
        out: list[tuple[str, str]] = []
        for pid, name in pairs:
            k = _key(name)
            if not k or pid in seen_ids or k in seen_names:
                continue
            seen_ids.add(pid)
            seen_names.add(k)
            out.append((pid, name))
        return out

    typical = dedupe(d.typical)
    excluded = dedupe(d.excluded)
    t_ids = {pid for pid, _ in typical}
    t_names = {_key(n) for _, n in typical}
    e_ids = {pid for pid, _ in excluded}
    e_names = {_key(n) for _, n in excluded}

    def contradictory(pid: str, name: str, ids: set[str], names: set[str]) -> bool:
        return pid in ids or _key(name) in names

    dropped: list[tuple[str, str]] = []
    new_typical: list[tuple[str, str]] = []
    for pid, name in typical:
        if _key(name) == disease_key:
            continue
        if contradictory(pid, name, e_ids, e_names):
            dropped.append((pid, name))
        else:
            new_typical.append((pid, name))
    new_excluded: list[tuple[str, str]] = []
    for pid, name in excluded:
        if _key(name) == disease_key or contradictory(pid, name, t_ids, t_names):
            dropped.append((pid, name))
        else:
            new_excluded.append((pid, name))
    if dropped and warn:
        listed = ", ".join(f"{pid} {name!r}" for pid, name in dropped)
        warnings.warn(
            f"{d.id} {d.name!r}: phenotypes both typical and excluded (or excluding the disease itself) "
            f"were dropped from the caption: {listed}",
            CaptionDataWarning,
            stacklevel=2,
        )
    return CleanSets(tuple(new_typical), tuple(new_excluded), tuple(dropped))


@dataclass(frozen=True, slots=True)
class Caption:
    """A rendered caption with what it asserts.

    ``present`` / ``absent`` are the phenotype ``(id, name)`` pairs stated as seen / not seen (always
    disjoint); ``absent_span`` is the ``[start, end)`` character range of the rendered excluded list in
    ``text`` (None when nothing is stated absent).
    """

    text: str
    granularity: Granularity
    template: str
    present: tuple[tuple[str, str], ...]
    absent: tuple[tuple[str, str], ...]
    absent_span: tuple[int, int] | None


def _effective_granularity(granularity: Granularity, sets: CleanSets) -> Granularity:
    if granularity == "medium" and not sets.typical:
        return "coarse"
    if granularity == "fine" and not sets.excluded:
        return "medium" if sets.typical else "coarse"
    return granularity


def _templates_for(granularity: Granularity, sets: CleanSets) -> tuple[str, ...]:
    if granularity == "fine" and not sets.typical:
        return FINE_NO_TYPICAL_TEMPLATES
    return TEMPLATES[granularity]


def _render(
    d: DiseaseSets,
    granularity: Granularity,
    template: str,
    typical: Sequence[tuple[str, str]],
    excluded: Sequence[tuple[str, str]],
    study: str,
) -> Caption:
    typical_text = join_items([_lower_first(n) for _, n in typical], "and")
    excluded_text = join_items([_lower_first(n) for _, n in excluded], "or")
    disease = _lower_first(d.name)
    study_l = _lower_first(study)
    fields = {
        "disease": disease,
        "Disease": _upper_first(disease),
        "study": study_l,
        "Study": _upper_first(study_l),
        "typical": typical_text,
        "Typical": _upper_first(typical_text),
        "excluded": excluded_text,
    }
    text = template.format(**fields)
    span: tuple[int, int] | None = None
    if "{excluded}" in template and excluded:
        start = len(template.split("{excluded}", 1)[0].format(**fields))
        span = (start, start + len(excluded_text))
    present = tuple(typical) if ("{typical}" in template or "{Typical}" in template) else ()
    absent = tuple(excluded) if "{excluded}" in template else ()
    return Caption(text, granularity, template, present, absent, span)


def build_caption(
    d: DiseaseSets,
    granularity: Granularity,
    rng_or_seed: RngLike = 0,
    template: str | None = None,
    *,
    max_items: int | None = None,
    study: str = "chest radiograph",
    warn: bool = True,
) -> Caption:
    """Like :func:`caption` but returns the structured :class:`Caption`.

    When a requested granularity has nothing to add (medium with empty ``T(d)``, fine with empty ``E(d)``),
    the next coarser granularity's templates are used. A custom ``template`` is used verbatim (fields as in
    :data:`TEMPLATES`); a field the template lacks is simply not stated.
    """
    if granularity not in GRANULARITIES:
        raise ValidationError(f"granularity must be one of {GRANULARITIES}, not {granularity!r}")
    rng = _as_random(rng_or_seed)
    sets = clean_sets(d, warn=warn)
    effective = _effective_granularity(granularity, sets)
    if template is None:
        options = _templates_for(effective, sets)
        template = options[_randbelow(rng, len(options))]
    typical: Sequence[tuple[str, str]] = sets.typical if effective in ("medium", "fine") else ()
    excluded: Sequence[tuple[str, str]] = sets.excluded if effective == "fine" else ()
    if max_items is not None:
        if max_items < 1:
            raise ValidationError("max_items must be >= 1")
        if len(typical) > max_items:
            typical = [typical[i] for i in _sample_sorted(rng, len(typical), max_items)]
        if len(excluded) > max_items:
            excluded = [excluded[i] for i in _sample_sorted(rng, len(excluded), max_items)]
    return _render(d, granularity, template, typical, excluded, study)


def caption(
    d: DiseaseSets,
    granularity: Granularity,
    rng_or_seed: RngLike = 0,
    template: str | None = None,
    *,
    max_items: int | None = None,
    study: str = "chest radiograph",
    warn: bool = True,
) -> str:
    """A caption for ``d`` at ``granularity``, template chosen with ``rng_or_seed``.

    ``rng_or_seed`` is an int seed, a :class:`random.Random` or a :class:`numpy.random.Generator` (advanced
    in place); ``None`` draws from an unseeded RNG. ``max_items`` randomly keeps at most that many entries
    of each list (curated order kept).
    """
    return build_caption(
        d, granularity, rng_or_seed, template, max_items=max_items, study=study, warn=warn
    ).text


def prompt_ensemble(
    d: DiseaseSets,
    granularity: Granularity = "coarse",
    *,
    study: str = "chest radiograph",
    warn: bool = True,
) -> list[str]:
    """Every template of ``granularity`` filled deterministically (all items, curated order)."""
    sets = clean_sets(d, warn=warn)
    effective = _effective_granularity(granularity, sets)
    typical = sets.typical if effective in ("medium", "fine") else ()
    excluded = sets.excluded if effective == "fine" else ()
    return [
        _render(d, granularity, t, typical, excluded, study).text for t in _templates_for(effective, sets)
    ]


ComparisonKind = Literal["favours_a", "favours_b", "only_a", "only_b", "shared"]


@dataclass(frozen=True, slots=True)
class Comparison:
    """One statement derived from a set operation between diseases ``a`` and ``b``."""

    kind: ComparisonKind
    items: tuple[tuple[str, str], ...]
    text: str


def compare(a: DiseaseSets, b: DiseaseSets, *, warn: bool = True) -> list[Comparison]:
    """Statements from set operations on the cleaned sets of ``a`` and ``b`` (ids compared).

    * ``favours_a``: ``T(a) ∩ E(b)``: "Consolidation favours pneumonia over pneumothorax."
    * ``favours_b``: ``T(b) ∩ E(a)``.
    * ``only_a`` / ``only_b``: ``T(a) ∖ T(b)`` / ``T(b) ∖ T(a)``: "X and Y are typical of a but not of b."
    * ``shared``: ``T(a) ∩ T(b)``: "Both a and b typically show X."

    Empty operations yield no statement; items keep the curated order of the first set.
    """
    sa, sb = clean_sets(a, warn=warn), clean_sets(b, warn=warn)
    na, nb = _lower_first(a.name), _lower_first(b.name)

    def inter(x: Sequence[tuple[str, str]], y: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
        ids = {pid for pid, _ in y}
        return tuple(p for p in x if p[0] in ids)

    def minus(x: Sequence[tuple[str, str]], y: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
        ids = {pid for pid, _ in y}
        return tuple(p for p in x if p[0] not in ids)

    def names(items: Sequence[tuple[str, str]]) -> str:
        return join_items([_lower_first(n) for _, n in items], "and")

    def subject(items: Sequence[tuple[str, str]]) -> str:
        return _upper_first(names(items))

    out: list[Comparison] = []
    favours: list[tuple[ComparisonKind, tuple[tuple[str, str], ...], str, str]] = [
        ("favours_a", inter(sa.typical, sb.excluded), na, nb),
        ("favours_b", inter(sb.typical, sa.excluded), nb, na),
    ]
    for kind, items, fav, other in favours:
        if items:
            verb = "favours" if len(items) == 1 else "favour"
            out.append(Comparison(kind, items, f"{subject(items)} {verb} {fav} over {other}."))
    distinct: list[tuple[ComparisonKind, tuple[tuple[str, str], ...], str, str]] = [
        ("only_a", minus(sa.typical, sb.typical), na, nb),
        ("only_b", minus(sb.typical, sa.typical), nb, na),
    ]
    for kind, items, own, other in distinct:
        if items:
            verb = "is" if len(items) == 1 else "are"
            out.append(
                Comparison(kind, items, f"{subject(items)} {verb} typical of {own} but not of {other}.")
            )
    shared = inter(sa.typical, sb.typical)
    if shared:
        out.append(Comparison("shared", shared, f"Both {na} and {nb} typically show {names(shared)}."))
    return out
