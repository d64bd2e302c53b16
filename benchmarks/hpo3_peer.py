"""The hpo3 peer for ``ranking_real_cases.py``: run with the interpreter of a venv that has ``hpo3`` installed.

hpo3 (Rust) installs a module named ``pyhpo``, so it lives in its own venv::

    python3.11 -m venv /tmp/hpo3 && /tmp/hpo3/bin/pip install hpo3==1.5.1

Reads one JSON object on stdin, ``{"data": DIR, "method": "resnik", "combine": "funSimAvg", "cases": [{"present":
[...], "gold": "OMIM:n"}, ...]}``, loads the ontology from ``DIR`` (the same hp.obo / phenotype.hpoa release as
phenokg), scores every OMIM disease for each case with ``HPOSet.similarity_scores`` (parallel Rust) and writes
``{"version": ..., "diseases": n, "load_s": s, "ranks": [rank or null, ...], "seconds": [...]}`` on stdout.
A rank is tie-aware (a disease tied with n others at the gold's score gets the mean rank of the tie); ``null``
means the gold disease or every present term is unknown to hpo3. Needs nothing from phenokg.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any


def main() -> None:
    import pyhpo
    from pyhpo import HPOSet, Ontology

    job: dict[str, Any] = json.load(sys.stdin)
    start = time.perf_counter()
    Ontology(job["data"], from_obo_file=True)
    load_s = time.perf_counter() - start
    diseases = list(Ontology.omim_diseases)
    position = {f"OMIM:{d.id}": i for i, d in enumerate(diseases)}
    sets = [d.hpo_set() for d in diseases]
    ranks: list[float | None] = []
    seconds: list[float] = []
    for case in job["cases"]:
        known = []
        for term in case["present"]:
            try:
                Ontology.get_hpo_object(term)
            except (KeyError, RuntimeError, ValueError):
                continue
            known.append(term)
        gold = position.get(case["gold"])
        if gold is None or not known:
            ranks.append(None)
            seconds.append(0.0)
            continue
        t = time.perf_counter()
        query = HPOSet.from_queries(known).replace_obsolete()
        scores = query.similarity_scores(sets, kind="omim", method=job.get("method", "resnik"),
                                         combine=job.get("combine", "funSimAvg"))
        seconds.append(time.perf_counter() - t)
        mine = scores[gold]
        higher = sum(1 for s in scores if s > mine)
        ties = sum(1 for s in scores if s == mine) - 1
        ranks.append(1.0 + higher + ties / 2.0)
    json.dump({"version": getattr(pyhpo, "__version__", "?"), "diseases": len(diseases), "load_s": load_s,
               "ranks": ranks, "seconds": seconds}, sys.stdout)


if __name__ == "__main__":
    main()
