"""The per-snapshot indexes the API serves from, built once per graph build stamp and shared by every route
(one instance per app, created in the lifespan, handed to routes by :data:`app.api.deps.ServicesDep`)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from app.schemas.terms import DiseaseRelation, PhenotypeDisease
from app.services.memory import release_freed_memory
from app.services.search import SearchService
from kg.analysis.hierarchy import descendants
from kg.analysis.ranking import RankingIndex
from kg.analysis.semsim import SemSimIndex
from kg.analysis.snapshot import GraphSnapshot
from kg.repo.diseases import NameIndex, PhenotypeDiseases
from kg.repo.evidence_lists import EvidenceIndex
from kg.repo.snapshots import SnapshotCache
from kg.text.annotate import LINKER_KEY, linker_from_snapshot
from kg.text.linker import Linker

log = logging.getLogger(__name__)


class DiseaseIndex:
    """Per-snapshot: phenotype → diseases (both relations), the name index, and a memo of sorted answers."""

    MAX_ENTRIES = 256

    def __init__(self, snapshot: GraphSnapshot) -> None:
        self.snapshot = snapshot
        self.by_phenotype = PhenotypeDiseases.from_snapshot(snapshot)
        self.names = NameIndex((d.id, d.name, d.source) for d in snapshot.diseases.values())
        self._by_upper = {d.upper(): d for d in snapshot.diseases}
        self._memo: dict[tuple[str, DiseaseRelation, bool], list[PhenotypeDisease]] = {}
        self._lock = threading.Lock()

    def canonical(self, disease_id: str) -> str:
        """The stored id for ``disease_id`` compared case-insensitively (``omim:154700`` → ``OMIM:154700``)."""
        return disease_id if disease_id in self.snapshot.diseases else self._by_upper.get(disease_id.upper(),
                                                                                          disease_id)

    def for_phenotype(self, term_id: str, relation: DiseaseRelation,
                      include_descendants: bool) -> list[PhenotypeDisease]:
        key = (term_id, relation, include_descendants)
        found = self._memo.get(key)
        if found is not None:
            return found
        phenotypes = [term_id]
        if include_descendants:
            phenotypes += sorted(descendants(self.snapshot.view, term_id))
        rows = self.by_phenotype.diseases(phenotypes, relation)
        diseases = self.snapshot.diseases
        found = []
        for did, (frequency, via) in rows.items():
            info = diseases.get(did)
            found.append(PhenotypeDisease(id=did, name=info.name if info else "", source=info.source if info else "",
                                          relation=relation, frequency=frequency, phenotypes=via))
        found.sort(key=lambda r: (-(r.frequency if r.frequency is not None else -1.0), r.id))
        with self._lock:
            if len(self._memo) >= self.MAX_ENTRIES:
                self._memo.clear()
            self._memo[key] = found
        return found


@dataclass
class Services:
    """The app's read services over the current snapshot of ``cache``."""

    cache: SnapshotCache
    search: SearchService
    _evidence: EvidenceIndex | None = field(default=None, init=False, repr=False)

    def evidence(self) -> EvidenceIndex:
        """Each phenotype's evidence list (order, filters, counts), kept per process and checked per request."""
        if self._evidence is None:
            self._evidence = EvidenceIndex(self.cache.graph)
        return self._evidence

    def semsim(self) -> SemSimIndex:
        """Term similarity (Resnik / Lin / JC) over the current snapshot."""
        return self.cache.derived("semsim", SemSimIndex.from_snapshot)

    def ranking(self) -> RankingIndex:
        """Disease ranking over the current snapshot (~2 s to build for the full HPO), sharing :meth:`semsim`."""
        return self.cache.derived("ranking", lambda snapshot: RankingIndex.from_snapshot(
            snapshot, sem=self.cache.derived("semsim", SemSimIndex.from_snapshot, snapshot)))

    def image_ranking(self, sources: tuple[str, ...]) -> RankingIndex:
        """Ranking over the diseases of ``sources`` only, for image-derived findings (the likelihood background
        is those candidates; absences carry no clinical-suspicion ascertainment)."""
        from kg.analysis.ranking import LikelihoodParams

        return self.cache.derived(f"ranking.image:{','.join(sources)}", lambda snapshot: RankingIndex.from_snapshot(
            snapshot, sem=self.cache.derived("semsim", SemSimIndex.from_snapshot, snapshot), sources=sources,
            likelihood=LikelihoodParams(ascertainment=1.0)))

    def linker(self) -> Linker:
        """The text → phenotype linker of the current snapshot."""
        return self.cache.derived(LINKER_KEY, linker_from_snapshot)

    def diseases(self) -> DiseaseIndex:
        """Phenotype → diseases and disease names of the current snapshot."""
        return self.cache.derived("api.diseases.index", DiseaseIndex)

    def warm(self, extra: tuple[Callable[[], object], ...] = ()) -> None:
        """Build every index now (call in a background thread at start-up) so first requests do not wait."""
        for step in (self.linker, self.ranking, self.diseases, self.search.warm, *extra):
            try:
                step()
            except Exception:  # warming is an optimisation; the request path reports real errors
                log.exception("warming an index failed")
        release_freed_memory()  # the loads' transient peak, kept mapped by glibc otherwise
