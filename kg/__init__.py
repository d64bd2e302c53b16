"""The graph layer (no torch). Folders depend downwards only (import-linter checks it):

- ``ingest/`` parses HPO, annotations, the chest X-ray pack and image–caption evidence and writes them;
- ``repo/`` reads and writes records by feature (snapshots, diseases, evidence, models, jobs, training views);
- ``text/`` links free text to phenotypes, with negation;
- ``analysis/`` works on the in-memory snapshot: hierarchy, similarity, ranking, search, normalisation;
- ``store/`` runs the server (embedded or Neo4j), the driver, queries, migrations and the blob store;
- leaf modules every folder may use: ``ids`` (HPO ids), ``terms`` (``TermRow``), ``tokens`` (word keys),
  ``errors``, ``config``, ``timing``.
"""

__version__ = "0.1.0"
