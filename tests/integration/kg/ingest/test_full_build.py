"""The whole shipped HPO release, loaded into its own embedded server: counts reconcile with the sources."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kg.analysis.ranking import RankingIndex
from kg.config import GraphSettings
from kg.ingest.build import build
from kg.ingest.genes import parse_disease_genes
from kg.ingest.hpoa import parse_hpoa
from kg.ingest.obo import parse_obo, shipped_file
from kg.ingest.xray_pack import load_pack
from kg.repo.snapshots import load_snapshot
from kg.store.graph import Graph
from tests.helpers import running_graph

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def full_graph(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Graph]:
    home: Path = tmp_path_factory.mktemp("full-build")
    with running_graph(GraphSettings(PHENOKG_HOME=str(home))) as graph:  # type: ignore[call-arg]
        yield graph


def test_full_build_counts_match_sources(full_graph: Graph) -> None:
    release, terms = parse_obo()
    _, rows = parse_hpoa()
    pack = load_pack()
    report = build(full_graph, progress=False)
    live = sum(1 for t in terms if not t.obsolete)
    assert (release.version, live) == ("2025-01-16", 19_034)
    counts = report.counts
    assert counts["phenotypes"] == live
    assert counts["obsolete_phenotypes"] == len(terms) - live == 450
    assert counts["is_a"] == sum(len(t.parents) for t in terms) == 23_392
    hpoa_diseases = {r.disease_id for r in rows}
    assert len(hpoa_diseases) == 12_687
    assert counts["diseases"] == len(hpoa_diseases) + len(pack.findings)
    # every annotation row is represented exactly once across the folded edges
    folded = full_graph.read("MATCH (d:Disease)-[e:HAS_PHENOTYPE|EXCLUDES]->() WHERE d.source <> 'CXR_PACK' "
                             "RETURN sum(e.source_rows) AS n")
    assert folded == [{"n": len(rows)}] and len(rows) == 271_702
    excluded_rows = full_graph.read("MATCH (d:Disease)-[e:EXCLUDES]->() WHERE d.source <> 'CXR_PACK' "
                                    "RETURN sum(e.source_rows) AS n, count(DISTINCT d) AS diseases")
    assert excluded_rows[0]["n"] == sum(1 for r in rows if r.excluded)
    not_rows = full_graph.read("MATCH (d:Disease)-[e:EXCLUDES]->() WHERE e.negated = true "
                               "RETURN count(DISTINCT d) AS n")
    assert not_rows == [{"n": len({r.disease_id for r in rows if r.negated})}] == [{"n": 342}]
    # alternative ids of the release all resolve
    alt_total = full_graph.read("MATCH (p:Phenotype) WHERE p.obsolete = false RETURN sum(size(p.alt_ids)) AS n")
    assert alt_total == [{"n": sum(len(t.alt_ids) for t in terms if not t.obsolete)}]

    # the genes of every disease the annotations have, from the same release's genes_to_phenotype.txt
    genes = parse_disease_genes(shipped_file("genes_to_phenotype.txt"))
    with_genes = full_graph.read("MATCH (d:Disease) WHERE d.genes IS NOT NULL RETURN count(d) AS n")
    assert with_genes == [{"n": len(hpoa_diseases & genes.keys())}]
    assert full_graph.read("MATCH (d:Disease {id: 'OMIM:148050'}) RETURN d.genes AS g") == [{"g": ["ANKRD11"]}]

    # ranking pools an OMIM entry with its Orphanet twin, read back from the graph
    index = RankingIndex.from_snapshot(load_snapshot(full_graph))
    assert index.pooled_from["OMIM:176670"] == "ORPHA:740"  # Hutchinson-Gilford progeria syndrome
    assert index.pooled_from["OMIM:148050"] == "ORPHA:2332"  # KBG syndrome
    assert 1_000 < len(index.pooled_from) < 2_000

    # a second build changes nothing and yields identical counts
    again = build(full_graph, progress=False)
    assert again.counts == counts
    assert all(v == {"created": 0, "updated": 0, "deleted": 0} for v in again.changes.values())
