"""In-memory view of the ontology DAG (networkx): closure, depth, information content, id resolution.

Built from parsed rows at import time, and reusable by hot read paths that rebuild it from the graph.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import networkx as nx

from kg.errors import ValidationError
from kg.ids import PHENOTYPIC_ABNORMALITY, ROOT_ID
from kg.terms import TermRow


@dataclass
class OntologyView:
    """Edges point child → parent (``IS_A``). Holds live terms only; ``redirects`` maps old ids."""

    dag: nx.DiGraph
    names: dict[str, str]
    redirects: dict[str, str] = field(default_factory=dict)
    obsolete_without_replacement: set[str] = field(default_factory=set)
    _ancestors: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)
    depth: dict[str, int] = field(default_factory=dict)
    ic: dict[str, float] = field(default_factory=dict)
    annotation_count: dict[str, int] = field(default_factory=dict)
    annotated_diseases: int = 0

    @classmethod
    def from_rows(cls, terms: Iterable[TermRow]) -> OntologyView:
        dag: nx.DiGraph = nx.DiGraph()
        names: dict[str, str] = {}
        replaced: dict[str, str] = {}
        orphans: set[str] = set()
        alt: dict[str, str] = {}
        for term in terms:
            if term.obsolete:
                if term.replaced_by:
                    replaced[term.id] = term.replaced_by
                else:
                    orphans.add(term.id)
                continue
            names[term.id] = term.name
            dag.add_node(term.id)
            for parent in term.parents:
                dag.add_edge(term.id, parent)
            for a in term.alt_ids:
                alt[a] = term.id
        redirects = dict(alt)
        for old, new in replaced.items():
            seen = {old}
            while new in replaced and new not in seen:  # follow replacement chains
                seen.add(new)
                new = replaced[new]
            redirects[old] = alt.get(new, new)
        view = cls(dag=dag, names=names, redirects=redirects, obsolete_without_replacement=orphans)
        view._compute_closure()
        view._compute_depth()
        return view

    # ---- structure ----------------------------------------------------------------------------
    def _compute_closure(self) -> None:
        if not nx.is_directed_acyclic_graph(self.dag):
            cycle = nx.find_cycle(self.dag)
            raise ValidationError(f"the IS_A hierarchy has a cycle: {cycle}")
        closure: dict[str, frozenset[str]] = {}
        for node in reversed(list(nx.topological_sort(self.dag))):  # parents before children
            acc = {node}
            for parent in self.dag.successors(node):
                acc |= closure[parent]
            closure[node] = frozenset(acc)
        self._ancestors = closure

    def _compute_depth(self) -> None:
        if ROOT_ID not in self.dag:
            self.depth = {n: 0 for n in self.dag}
            return
        lengths = nx.single_source_shortest_path_length(self.dag.reverse(copy=False), ROOT_ID)
        self.depth = {n: int(lengths.get(n, 0)) for n in self.dag}

    def ancestors(self, term_id: str, *, include_self: bool = True) -> frozenset[str]:
        found = self._ancestors.get(term_id, frozenset())
        return found if include_self else found - {term_id}

    def parents(self, term_id: str) -> list[str]:
        return sorted(self.dag.successors(term_id)) if term_id in self.dag else []

    def children(self, term_id: str) -> list[str]:
        return sorted(self.dag.predecessors(term_id)) if term_id in self.dag else []

    def is_leaf(self, term_id: str) -> bool:
        return term_id in self.dag and self.dag.in_degree(term_id) == 0

    def branches(self, term_id: str) -> list[str]:
        """Top-level branches (children of the root) the term belongs to, e.g. HP:0000118."""
        tops = set(self.children(ROOT_ID))
        return sorted(self.ancestors(term_id) & tops)

    def in_phenotypic_abnormality(self, term_id: str) -> bool:
        return PHENOTYPIC_ABNORMALITY in self.ancestors(term_id)

    def resolve(self, term_id: str) -> str | None:
        """Current id for a live, alternative or replaced id; None if unknown or obsolete without a successor."""
        if term_id in self.names:
            return term_id
        return self.redirects.get(term_id)

    # ---- information content ------------------------------------------------------------------
    def compute_ic(self, annotations: Iterable[tuple[str, str]]) -> None:
        """IC(t) = -ln(n(t) / N): n(t) diseases annotated with t or a descendant, N annotated diseases.

        Terms no disease uses get the IC of a term used by one disease (the most specific value seen),
        so that they are never less informative than annotated terms.
        """
        per_disease: dict[str, set[str]] = {}
        for disease, term in annotations:
            current = self.resolve(term)
            if current is not None:
                per_disease.setdefault(disease, set()).update(self.ancestors(current))
        counts: Counter[str] = Counter()
        for closure in per_disease.values():
            counts.update(closure)
        total = len(per_disease)
        self.annotated_diseases = total
        self.annotation_count = {t: counts.get(t, 0) for t in self.names}
        ceiling = math.log(total) if total else 0.0
        self.ic = {t: (-math.log(n / total) if n else ceiling) for t, n in self.annotation_count.items()}
