"""OMIM ↔ Orphanet entries that describe the same disease, for pooling their annotations.

HPO annotates many diseases twice: an OMIM entry (often with few phenotypes and no frequencies) and an
Orphanet entry (with frequencies, curated separately). Tools that rank on both use MONDO's equivalences; the
HPO release alone has the names and the genes (``genes_to_phenotype.txt``), so a pair is accepted when

* the names are the same (case and punctuation aside), or
* they share a gene and their names share at least ``min_name_overlap`` of their words (Jaccard, common words
  such as *syndrome* or *type* left out), or
* a gene has exactly one OMIM and one Orphanet disease, and each of the two has no other gene,

and only **one-to-one**: an OMIM entry with two candidates (an Orphanet group over a phenotypic series, say)
or an Orphanet entry claimed by two OMIM entries is left alone, since pooling a group into one member of a
series would make the members look alike rather than tell them apart.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import replace

from kg.analysis.snapshot import Annotation

STOP_WORDS = frozenset({"syndrome", "disease", "type", "of", "the", "and", "with"})
MIN_NAME_OVERLAP = 0.3


def normalized_name(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", name.lower()).strip()


def name_words(name: str) -> frozenset[str]:
    return frozenset(normalized_name(name).split()) - STOP_WORDS


def _overlap(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def equivalent_diseases(names: Mapping[str, str], genes: Mapping[str, Sequence[str]],
                        min_name_overlap: float = MIN_NAME_OVERLAP) -> dict[str, str]:
    """OMIM id → the Orphanet id of the same disease (one-to-one pairs only), over the ids of ``names``."""
    omim = [d for d in names if d.startswith("OMIM:")]
    orpha = [d for d in names if d.startswith("ORPHA:")]
    candidates: dict[str, set[str]] = defaultdict(set)
    by_name: dict[str, list[str]] = defaultdict(list)
    for o in orpha:
        by_name[normalized_name(names[o])].append(o)
    for d in omim:
        candidates[d].update(by_name.get(normalized_name(names[d]), ()))
    omim_of_gene: dict[str, set[str]] = defaultdict(set)
    orpha_of_gene: dict[str, set[str]] = defaultdict(set)
    for d in omim + orpha:
        for g in genes.get(d, ()):
            (omim_of_gene if d.startswith("OMIM:") else orpha_of_gene)[g].add(d)
    words = {d: name_words(names[d]) for d in omim + orpha}
    for g, om in omim_of_gene.items():
        orp = orpha_of_gene.get(g, set())
        if len(om) == 1 and len(orp) == 1:
            d, o = next(iter(om)), next(iter(orp))
            if len(genes[d]) == 1 and len(genes[o]) == 1:
                candidates[d].add(o)
        for d in om:
            candidates[d].update(o for o in orp if _overlap(words[d], words[o]) >= min_name_overlap)
    claimed: dict[str, int] = defaultdict(int)
    for found in candidates.values():
        for o in found:
            claimed[o] += 1
    return {d: next(iter(found)) for d, found in sorted(candidates.items())
            if len(found) == 1 and claimed[next(iter(found))] == 1}


def same_name_pairs(names: Mapping[str, str], taken: Mapping[str, str]) -> dict[str, str]:
    """OMIM id → the Orphanet id of the same (normalised) name, where exactly one OMIM and one Orphanet entry
    bear that name and neither is paired in ``taken`` already (OMIM → Orphanet).

    Stricter on names, looser on genes than :func:`equivalent_diseases`: "Marfan syndrome" (OMIM:154700,
    ORPHA:558) is not pooled there, since FBN1 and the word *Marfan* also point to "Neonatal Marfan syndrome",
    but it is the same disease. For showing one result row per disease, not for pooling annotations.
    """
    by_name: dict[str, list[str]] = defaultdict(list)
    for d, name in names.items():
        if d.startswith(("OMIM:", "ORPHA:")):
            by_name[normalized_name(name)].append(d)
    paired = set(taken) | set(taken.values())
    out: dict[str, str] = {}
    for ids in by_name.values():
        omim = [d for d in ids if d.startswith("OMIM:")]
        orpha = [d for d in ids if d.startswith("ORPHA:")]
        if len(omim) == 1 and len(orpha) == 1 and not {omim[0], orpha[0]} & paired:
            out[omim[0]] = orpha[0]
    return dict(sorted(out.items()))


def pool_annotations(typical: Mapping[str, Sequence[Annotation]], excluded: Mapping[str, Sequence[str]],
                     pairs: Mapping[str, str]) -> tuple[dict[str, Sequence[Annotation]], dict[str, Sequence[str]]]:
    """Typical and excluded sets with each OMIM entry of ``pairs`` given its Orphanet twin's annotations too.

    The union of the typical sets (an annotation both list, same phenotype and aspect, keeps OMIM's, with
    the Orphanet frequency where OMIM states none), and the union of the excluded sets less anything the
    pooled typical set holds. The Orphanet entries themselves are left as they are."""
    pooled_typical: dict[str, Sequence[Annotation]] = dict(typical)  # the unpooled entries are shared, not copied
    pooled_excluded: dict[str, Sequence[str]] = dict(excluded)
    for d, o in pairs.items():
        own = list(typical.get(d, ()))
        where = {(a.phenotype, a.aspect): i for i, a in enumerate(own)}
        for a in typical.get(o, ()):
            i = where.get((a.phenotype, a.aspect))
            if i is None:
                where[(a.phenotype, a.aspect)] = len(own)
                own.append(a)
            elif own[i].frequency is None and a.frequency is not None:
                own[i] = replace(own[i], frequency=a.frequency)
        pooled_typical[d] = own
        listed = {a.phenotype for a in own}
        pooled_excluded[d] = sorted((set(excluded.get(d, ())) | set(excluded.get(o, ()))) - listed)
    return pooled_typical, pooled_excluded
