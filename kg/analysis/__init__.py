"""Computation over the in-memory view of the graph: ontology, hierarchy, similarity, ranking, search (no
database access)."""
