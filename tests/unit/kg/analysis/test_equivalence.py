"""OMIM ↔ Orphanet equivalence and annotation pooling (no database), and the genes file parser."""

from __future__ import annotations

from pathlib import Path

import pytest

from kg.analysis.equivalence import equivalent_diseases, name_words, pool_annotations, same_name_pairs
from kg.analysis.ranking import RankingIndex, RankingParams
from kg.analysis.snapshot import Annotation, DiseaseInfo
from kg.errors import SourceFormatError
from kg.ingest.genes import parse_disease_genes
from tests.helpers import FIXTURES as FIXTURES_DIR
from tests.unit.kg.analysis.ranking.test_ranking import A1A, A2, B1, B2, snapshot


def test_same_name_pairs_ignoring_case_and_punctuation() -> None:
    names = {"OMIM:1": "KBG syndrome", "ORPHA:1": "KBG Syndrome", "ORPHA:2": "Other disease"}
    assert equivalent_diseases(names, {}) == {"OMIM:1": "ORPHA:1"}


def test_shared_gene_with_overlapping_names_pairs() -> None:
    names = {"OMIM:1": "Glass syndrome", "ORPHA:1": "SATB2-associated syndrome",
             "OMIM:2": "Cardiomyopathy, dilated, 1A", "ORPHA:2": "Familial dilated cardiomyopathy"}
    genes = {"OMIM:1": ["SATB2"], "ORPHA:1": ["SATB2", "X"], "OMIM:2": ["LMNA"], "ORPHA:2": ["LMNA", "TTN"]}
    # Glass / SATB2: a shared gene but no common word (and SATB2-associated has two genes): not paired;
    # dilated cardiomyopathy: a shared gene and {cardiomyopathy, dilated} shared of {cardiomyopathy, dilated, 1a,
    # familial}: paired
    assert equivalent_diseases(names, genes) == {"OMIM:2": "ORPHA:2"}
    assert name_words("Cardiomyopathy, dilated, 1A") == {"cardiomyopathy", "dilated", "1a"}


def test_a_gene_with_one_disease_on_each_side_pairs_them() -> None:
    names = {"OMIM:1": "Glass syndrome", "ORPHA:1": "SATB2-associated syndrome"}
    assert equivalent_diseases(names, {"OMIM:1": ["SATB2"], "ORPHA:1": ["SATB2"]}) == {"OMIM:1": "ORPHA:1"}
    # ... but not when either has another gene as well
    assert equivalent_diseases(names, {"OMIM:1": ["SATB2"], "ORPHA:1": ["SATB2", "X"]}) == {}


def test_only_one_to_one_pairs_are_kept() -> None:
    series = {"OMIM:1": "Retinitis pigmentosa 1", "OMIM:2": "Retinitis pigmentosa 2", "ORPHA:9": "Retinitis pigmentosa"}
    genes = {"OMIM:1": ["RP1"], "OMIM:2": ["RP2"], "ORPHA:9": ["RP1", "RP2"]}
    assert equivalent_diseases(series, genes) == {}  # the Orphanet group is claimed by two series members
    two = {"OMIM:1": "Same name", "ORPHA:1": "Same name", "ORPHA:2": "Same name"}
    assert equivalent_diseases(two, {}) == {}  # two candidates for one OMIM entry


def test_pooling_unions_sets_and_fills_missing_frequencies() -> None:
    typical = {"OMIM:1": [Annotation("HP:1", None, "P"), Annotation("HP:2", 0.5, "P")],
               "ORPHA:1": [Annotation("HP:1", 0.9, "P"), Annotation("HP:3", 0.2, "P")]}
    excluded = {"OMIM:1": ["HP:7"], "ORPHA:1": ["HP:8", "HP:2"]}
    t, e = pool_annotations(typical, excluded, {"OMIM:1": "ORPHA:1"})
    assert t["OMIM:1"] == [Annotation("HP:1", 0.9, "P"), Annotation("HP:2", 0.5, "P"), Annotation("HP:3", 0.2, "P")]
    assert e["OMIM:1"] == ["HP:7", "HP:8"]  # HP:2 is typical of the pooled entry: not excluded
    assert t["ORPHA:1"] == typical["ORPHA:1"] and e["ORPHA:1"] == excluded["ORPHA:1"]  # the twin is unchanged


def test_ranking_index_pools_an_omim_entry_with_its_orphanet_twin() -> None:
    twin = {"ORPHA:4": DiseaseInfo("ORPHA:4", "Disease one", "ORPHA")}  # same name as OMIM:1
    snap = snapshot(extra_typical={"ORPHA:4": [Annotation(B2, 0.9, "P")]}, extra_diseases=twin)
    pooled = RankingIndex.from_snapshot(snap)
    plain = RankingIndex.from_snapshot(snap, RankingParams(pool_equivalents=False))
    assert pooled.pooled_from == {"OMIM:1": "ORPHA:4"} and plain.pooled_from == {}
    row = pooled.position["OMIM:1"]
    cols = {pooled.sem.terms[c] for c in pooled.typical[row].indices}
    assert cols == {A1A, B1, B2}
    assert {plain.sem.terms[c] for c in plain.typical[row].indices} == {A1A, B1}
    ranked = {r.id: r for r in pooled.rank([B2], limit=50)}
    assert ranked["OMIM:1"].score > 0  # B2, the twin's phenotype, now counts for OMIM:1 too
    assert [m.typical for m in ranked["OMIM:1"].explanation.matched] == [B2]  # type: ignore[union-attr]
    assert ranked["OMIM:1"].pooled_with == "ORPHA:4" and ranked["ORPHA:4"].pooled_with is None
    assert "OMIM:1" not in [r.id for r in plain.rank([B2], limit=50) if r.score > 0]
    assert A2 in {pooled.sem.terms[c] for c in pooled.excluded[row].indices}  # OMIM:1's own exclusion kept


def test_parse_disease_genes(tmp_path: Path) -> None:
    genes = parse_disease_genes(FIXTURES_DIR / "mini_genes.txt")
    assert genes == {"OMIM:100001": ["LUNGA"], "ORPHA:200002": ["HRTB"], "OMIM:999999": ["OTHER"]}
    bad = tmp_path / "g.txt"
    bad.write_text("gene\tsymbol\n")
    with pytest.raises(SourceFormatError, match=r"g.txt:1: expected the header"):
        parse_disease_genes(bad)
    bad.write_text("ncbi_gene_id\tgene_symbol\thpo_id\thpo_name\tfrequency\tdisease_id\n1\tA\tHP:1\tx\t-\tOMIM:1\n"
                   "2\tB\tHP:1\n")
    with pytest.raises(SourceFormatError, match=r"g.txt:3: expected 6 tab-separated columns"):
        parse_disease_genes(bad)
    bad.write_text("ncbi_gene_id\tgene_symbol\thpo_id\thpo_name\tfrequency\tdisease_id\nx\tA\tHP:1\tx\t-\tOMIM:1\n")
    with pytest.raises(SourceFormatError, match=r"g.txt:2: not an NCBI gene id"):
        parse_disease_genes(bad)


def test_same_name_pairs_group_what_the_gene_rule_keeps_from_pooling() -> None:
    names = {"OMIM:154700": "Marfan syndrome", "ORPHA:558": "Marfan Syndrome", "ORPHA:284979": "Neonatal Marfan "
             "syndrome", "OMIM:1": "Twin A", "ORPHA:1": "Twin A", "ORPHA:2": "Twin A", "OMIM:3": "Kept",
             "ORPHA:3": "Kept", "DECIPHER:4": "Marfan syndrome"}
    genes = {d: ["FBN1"] for d in ("OMIM:154700", "ORPHA:558", "ORPHA:284979")}
    pooled = equivalent_diseases(names, genes)
    assert "OMIM:154700" not in pooled                        # two Orphanet candidates through FBN1: not pooled
    # the same name, one entry of each source: paired for display; "Twin A" has two Orphanet entries
    assert same_name_pairs(names, pooled) == {"OMIM:154700": "ORPHA:558"}
    assert same_name_pairs(names, {"OMIM:9": "ORPHA:558"}) == {"OMIM:3": "ORPHA:3"}  # already paired: left
