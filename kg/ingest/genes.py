"""Parse HPO's ``genes_to_phenotype.txt`` into the genes associated with each disease.

The file (shipped with ``phenotype.hpoa`` in the same release) has one row per gene × phenotype × disease;
only the gene ↔ disease pairs are kept here (the phenotypes are the HPOA's). Columns::

    ncbi_gene_id  gene_symbol  hpo_id  hpo_name  frequency  disease_id
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from kg.errors import SourceFormatError

HEADER = ("ncbi_gene_id", "gene_symbol", "hpo_id", "hpo_name", "frequency", "disease_id")


def parse_disease_genes(path: Path) -> dict[str, list[str]]:
    """Disease id → its gene symbols (sorted, each once). Raises :class:`SourceFormatError` with the line."""
    genes: dict[str, set[str]] = defaultdict(set)
    with Path(path).open(encoding="utf-8") as handle:
        first = handle.readline().rstrip("\n").split("\t")
        if tuple(first[:len(HEADER)]) != HEADER:
            raise SourceFormatError(path, 1, f"expected the header {' '.join(HEADER)}, got {' '.join(first)!r}")
        for n, line in enumerate(handle, start=2):
            if not line.strip():
                continue
            cols = line.rstrip("\n").split("\t")
            if len(cols) < len(HEADER):
                raise SourceFormatError(path, n, f"expected {len(HEADER)} tab-separated columns, got {len(cols)}")
            gene_id, symbol, disease = cols[0].strip(), cols[1].strip(), cols[5].strip()
            if not gene_id.isdigit() or not symbol:
                raise SourceFormatError(path, n, f"not an NCBI gene id and symbol: {gene_id!r} {symbol!r}")
            if ":" not in disease:
                raise SourceFormatError(path, n, f"not a disease id: {disease!r}")
            genes[disease].add(symbol)
    return {d: sorted(s) for d, s in genes.items()}
