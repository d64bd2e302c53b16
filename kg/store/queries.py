"""Every Cypher statement phenokg runs, as named constants. All values arrive as parameters."""

from __future__ import annotations

from typing import Final, LiteralString

# ---- build: diff-based sync --------------------------------------------------------------------
# A build reads what the graph holds, compares it with the parsed sources, and writes only the
# difference: CREATE with properties inline (far cheaper on ArcadeDB than CREATE-then-SET), SET for
# changed items, DELETE for vanished ones. Property keys are fixed here, never taken from input.
PHENOTYPE_KEYS: Final = ("id", "name", "definition", "synonyms", "synonym_scopes", "xrefs", "comment",
                         "obsolete", "alt_ids", "replaced_by", "consider", "retired", "depth", "ic",
                         "annotation_count", "branches", "is_leaf", "release", "content_hash")
DISEASE_KEYS: Final = ("id", "name", "source", "genes", "chexpert", "rationale", "hpo", "content_hash")
ANNOTATION_KEYS: Final = ("aspect", "source_rows", "frequency", "frequencies", "onsets", "sexes", "modifiers",
                          "evidence", "references", "negated", "rationale", "content_hash")


def _inline(keys: tuple[str, ...]) -> str:
    return ", ".join(f"{k}: r.{k}" for k in keys)


def _q(text: str) -> LiteralString:
    return text  # mypy treats LiteralString as str; the text is built from constants only


# Reads return one collected list (per-record overhead in the driver dwarfs the data for 10⁵ rows) and
# only each item's content_hash: comparing hashes instead of property maps keeps a no-op rebuild cheap.
READ_PHENOTYPES: Final = _q("MATCH (n:Phenotype) RETURN collect([n.id, n.content_hash]) AS rows")
CREATE_PHENOTYPES: Final = _q(f"UNWIND $rows AS r CREATE (:Phenotype {{{_inline(PHENOTYPE_KEYS)}}})")
UPDATE_PHENOTYPES: Final = _q("UNWIND $rows AS r MATCH (n:Phenotype {id: r.id}) SET n = r.props")
# Terms missing from the new release: deleted, unless evidence points at them (then kept, retired).
DELETE_PHENOTYPES: Final = _q(
    "UNWIND $rows AS r MATCH (n:Phenotype {id: r.id}) "
    "WHERE NOT EXISTS { MATCH (:Evidence)-->(n) } DETACH DELETE n"
)
RETIRE_PHENOTYPES: Final = _q(
    "UNWIND $rows AS r MATCH (n:Phenotype {id: r.id}) SET n.obsolete = true, n.retired = true"
)
READ_DISEASES: Final = _q("MATCH (n:Disease) WHERE n.source IN $sources RETURN collect([n.id, n.content_hash]) AS rows")
CREATE_DISEASES: Final = _q(f"UNWIND $rows AS r CREATE (:Disease {{{_inline(DISEASE_KEYS)}}})")
UPDATE_DISEASES: Final = _q("UNWIND $rows AS r MATCH (n:Disease {id: r.id}) SET n = r.props")
DELETE_DISEASES: Final = _q("UNWIND $rows AS r MATCH (n:Disease {id: r.id}) DETACH DELETE n")

# Plain structural edges (no properties) between phenotypes.
STRUCTURAL_EDGES: Final = ("IS_A", "REPLACED_BY", "CONSIDER")
READ_STRUCTURAL: Final = {
    t: _q(f"MATCH (a:Phenotype)-[:{t}]->(b:Phenotype) RETURN collect([a.id, b.id]) AS rows")
    for t in STRUCTURAL_EDGES
}
CREATE_STRUCTURAL: Final = {
    t: _q(f"UNWIND $rows AS r MATCH (a:Phenotype {{id: r.source}}) MATCH (b:Phenotype {{id: r.target}}) "
          f"CREATE (a)-[:{t}]->(b)")
    for t in STRUCTURAL_EDGES
}
DELETE_STRUCTURAL: Final = {
    t: _q(f"UNWIND $rows AS r MATCH (:Phenotype {{id: r.source}})-[e:{t}]->(:Phenotype {{id: r.target}}) "
          "DELETE e")
    for t in STRUCTURAL_EDGES
}
# Disease → phenotype annotation edges (typical and excluded sets).
ANNOTATION_EDGES: Final = ("HAS_PHENOTYPE", "EXCLUDES")
READ_ANNOTATIONS: Final = {
    t: _q(f"MATCH (d:Disease)-[e:{t}]->(p:Phenotype) WHERE d.source IN $sources "
          "RETURN collect([d.id, p.id, e.content_hash]) AS rows")
    for t in ANNOTATION_EDGES
}
CREATE_ANNOTATIONS: Final = {
    t: _q(f"UNWIND $rows AS r MATCH (d:Disease {{id: r.source}}) MATCH (p:Phenotype {{id: r.target}}) "
          f"CREATE (d)-[:{t} {{{_inline(ANNOTATION_KEYS)}}}]->(p)")
    for t in ANNOTATION_EDGES
}
UPDATE_ANNOTATIONS: Final = {
    t: _q(f"UNWIND $rows AS r MATCH (:Disease {{id: r.source}})-[e:{t}]->(:Phenotype {{id: r.target}}) "
          "SET e = r.props")
    for t in ANNOTATION_EDGES
}
DELETE_ANNOTATIONS: Final = {
    t: _q(f"UNWIND $rows AS r MATCH (:Disease {{id: r.source}})-[e:{t}]->(:Phenotype {{id: r.target}}) "
          "DELETE e")
    for t in ANNOTATION_EDGES
}

# ---- provenance and build stamp -----------------------------------------------------------------
UPSERT_RELEASE: Final[LiteralString] = """
MERGE (r:OntologyRelease {key: $key})
SET r += $props
"""
SET_BUILD_META: Final[LiteralString] = """
MERGE (m:GraphMeta {key: 'build'})
SET m += $props
"""
GET_BUILD_META: Final[LiteralString] = "MATCH (m:GraphMeta {key: 'build'}) RETURN m {.*} AS meta"
CURRENT_RELEASE: Final[LiteralString] = """
MATCH (m:GraphMeta {key: 'build'})
MATCH (r:OntologyRelease {key: m.release_key})
RETURN r {.*} AS release
"""

# ---- counts -------------------------------------------------------------------------------------
COUNT_NODES: Final[dict[str, LiteralString]] = {
    "phenotypes": "MATCH (p:Phenotype) WHERE p.obsolete = false RETURN count(p) AS n",
    "obsolete_phenotypes": "MATCH (p:Phenotype) WHERE p.obsolete = true RETURN count(p) AS n",
    "diseases": "MATCH (d:Disease) RETURN count(d) AS n",
    "evidence": "MATCH (e:Evidence) RETURN count(e) AS n",
}
COUNT_EDGES: Final[dict[str, LiteralString]] = {
    "is_a": "MATCH ()-[e:IS_A]->() RETURN count(e) AS n",
    "replaced_by": "MATCH ()-[e:REPLACED_BY]->() RETURN count(e) AS n",
    "has_phenotype": "MATCH ()-[e:HAS_PHENOTYPE]->() RETURN count(e) AS n",
    "excludes": "MATCH ()-[e:EXCLUDES]->() RETURN count(e) AS n",
    "shows": "MATCH ()-[e:SHOWS]->() RETURN count(e) AS n",
    "rules_out": "MATCH ()-[e:RULES_OUT]->() RETURN count(e) AS n",
}
COUNT_PHENOTYPES_ANY: Final[LiteralString] = "MATCH (p:Phenotype) RETURN count(p) AS n"

# ---- reads used by the CLI, linker and API ------------------------------------------------------
TERM_LABELS: Final[LiteralString] = """
MATCH (p:Phenotype)
WHERE p.obsolete = false AND $branch IN p.branches
RETURN p.id AS id, p.name AS name, p.synonyms AS synonyms
ORDER BY id
"""
GET_PHENOTYPE: Final[LiteralString] = "MATCH (p:Phenotype {id: $id}) RETURN p {.*} AS term"
FIND_BY_ALT_ID: Final[LiteralString] = """
MATCH (p:Phenotype) WHERE $id IN p.alt_ids AND p.obsolete = false RETURN p {.*} AS term
"""
ALL_PHENOTYPE_IDS: Final[LiteralString] = """
MATCH (p:Phenotype) RETURN p.id AS id, p.obsolete AS obsolete, p.replaced_by AS replaced_by, p.alt_ids AS alt_ids
"""

# ---- evidence -----------------------------------------------------------------------------------
UPSERT_EVIDENCE: Final[LiteralString] = """
UNWIND $rows AS r
MERGE (e:Evidence {id: r.id})
ON CREATE SET e += r.props, e.created_at = $now
RETURN count(*) AS n
"""
EXISTING_EVIDENCE: Final[LiteralString] = "MATCH (e:Evidence) WHERE e.id IN $ids RETURN e.id AS id"
# The evidence already stored for a batch of image URIs: a streamed import skips the rows found here without
# reading their images again (the lookup uses the evidence_image_uri index of migration V0003).
EVIDENCE_BY_IMAGE_URI: Final[LiteralString] = """
UNWIND $uris AS uri
MATCH (e:Evidence {image_uri: uri})
RETURN collect([e.image_uri, e.caption, e.source, e.id, e.license]) AS rows
"""
# Present ids among $ids, as one collected list (imports check them in chunks of ~1,000).
EVIDENCE_IDS_PRESENT: Final[LiteralString] = """
UNWIND $ids AS id
MATCH (e:Evidence {id: id})
RETURN collect(e.id) AS ids
"""
# Keys (evidence, phenotype, start, end) of the caption links the graph already holds for $ids: an
# import writes only the missing ones, so re-importing a file writes nothing.
EVIDENCE_LINK_KEYS: Final[dict[str, LiteralString]] = {
    "SHOWS": """
UNWIND $ids AS id
MATCH (e:Evidence {id: id})-[s:SHOWS]->(p:Phenotype)
RETURN collect([e.id, p.id, s.start, s.end]) AS rows
""",
    "RULES_OUT": """
UNWIND $ids AS id
MATCH (e:Evidence {id: id})-[s:RULES_OUT]->(p:Phenotype)
RETURN collect([e.id, p.id, s.start, s.end]) AS rows
""",
}
# start/end are character offsets in the caption; field: "name" or "synonym" (what the linker matched);
# uncertain: a hedged mention ("possible cardiomegaly"; "no definite pneumothorax" on RULES_OUT).
LINK_SHOWS: Final[LiteralString] = """
UNWIND $rows AS r
MATCH (e:Evidence {id: r.evidence})
MATCH (p:Phenotype {id: r.phenotype})
MERGE (e)-[s:SHOWS {start: r.start, end: r.end}]->(p)
ON CREATE SET s.matched = r.matched, s.field = r.field, s.uncertain = r.uncertain
"""
LINK_RULES_OUT: Final[LiteralString] = """
UNWIND $rows AS r
MATCH (e:Evidence {id: r.evidence})
MATCH (p:Phenotype {id: r.phenotype})
MERGE (e)-[s:RULES_OUT {start: r.start, end: r.end}]->(p)
ON CREATE SET s.matched = r.matched, s.field = r.field, s.uncertain = r.uncertain
"""
# Links of evidence nodes created in this import (they have none yet, so no MERGE is needed).
CREATE_LINKS: Final[dict[str, LiteralString]] = {
    "SHOWS": """
UNWIND $rows AS r
MATCH (e:Evidence {id: r.evidence})
MATCH (p:Phenotype {id: r.phenotype})
CREATE (e)-[:SHOWS {start: r.start, end: r.end, matched: r.matched, field: r.field, uncertain: r.uncertain}]->(p)
""",
    "RULES_OUT": """
UNWIND $rows AS r
MATCH (e:Evidence {id: r.evidence})
MATCH (p:Phenotype {id: r.phenotype})
CREATE (e)-[:RULES_OUT {start: r.start, end: r.end, matched: r.matched, field: r.field, uncertain: r.uncertain}]->(p)
""",
}
# The stored image of one evidence node (GET /evidence/{id}/image).
EVIDENCE_IMAGE: Final[LiteralString] = """
MATCH (e:Evidence {id: $id})
RETURN e.sha256 AS sha256, e.image_format AS format
"""

# ---- in-memory snapshot for hot read paths (one collected row per query) -------------------------
SNAPSHOT_PHENOTYPES: Final[LiteralString] = """
MATCH (p:Phenotype)
RETURN collect([p.id, p.name, p.definition, p.synonyms, p.synonym_scopes, p.xrefs, p.comment, p.obsolete,
                p.alt_ids, p.replaced_by, p.consider, p.ic, p.depth, p.annotation_count]) AS rows
"""
SNAPSHOT_IS_A: Final[LiteralString] = "MATCH (a:Phenotype)-[:IS_A]->(b:Phenotype) RETURN collect([a.id, b.id]) AS rows"
SNAPSHOT_DISEASES: Final[LiteralString] = "MATCH (d:Disease) RETURN collect([d.id, d.name, d.source, d.genes]) AS rows"
SNAPSHOT_TYPICAL: Final[LiteralString] = """
MATCH (d:Disease)-[e:HAS_PHENOTYPE]->(p:Phenotype)
RETURN collect([d.id, p.id, e.frequency, e.aspect]) AS rows
"""
SNAPSHOT_EXCLUDED: Final[LiteralString] = """
MATCH (d:Disease)-[e:EXCLUDES]->(p:Phenotype) RETURN collect([d.id, p.id]) AS rows
"""
BUILD_STAMP: Final[LiteralString] = "MATCH (m:GraphMeta {key: 'build'}) RETURN m.stamp AS stamp"

# =================================================================================================
# ---- training views and model registry (issue 5: kg/repo/training_views.py, kg/repo/registry.py) ----------
# =================================================================================================
# Training views read whole kinds at once: one collected row per query, joined in Python.
TRAINING_PHENOTYPES: Final[LiteralString] = """
MATCH (p:Phenotype) WHERE p.obsolete = false
RETURN collect([p.id, p.name, p.definition, p.synonyms, p.branches]) AS rows
"""
TRAINING_IS_A: Final[LiteralString] = """
MATCH (a:Phenotype)-[:IS_A]->(b:Phenotype)
WHERE a.obsolete = false AND b.obsolete = false
RETURN collect([a.id, b.id]) AS rows
"""
# Every id the graph knows, to map old ids (alternative, obsolete-with-replacement) to current ones.
TRAINING_ID_REDIRECTS: Final[LiteralString] = """
MATCH (p:Phenotype)
RETURN collect([p.id, p.obsolete, p.alt_ids, p.replaced_by]) AS rows
"""
# $source / $ids: null for all diseases.
TRAINING_DISEASES: Final[LiteralString] = """
MATCH (d:Disease)
WHERE ($source IS NULL OR d.source = $source) AND ($ids IS NULL OR d.id IN $ids)
RETURN collect([d.id, d.name, d.source]) AS rows
"""
TRAINING_TYPICAL: Final[LiteralString] = """
MATCH (d:Disease)-[e:HAS_PHENOTYPE]->(p:Phenotype)
WHERE ($source IS NULL OR d.source = $source) AND ($ids IS NULL OR d.id IN $ids)
RETURN collect([d.id, p.id, p.name, e.aspect, e.frequency]) AS rows
"""
TRAINING_EXCLUDED: Final[LiteralString] = """
MATCH (d:Disease)-[e:EXCLUDES]->(p:Phenotype)
WHERE ($source IS NULL OR d.source = $source) AND ($ids IS NULL OR d.id IN $ids)
RETURN collect([d.id, p.id, p.name, e.aspect, e.frequency]) AS rows
"""
# The evidence items of one id range (bounds may be null), then the links of a list of items.
TRAINING_EVIDENCE_RANGE: Final[LiteralString] = """
MATCH (e:Evidence)
WHERE ($lo IS NULL OR e.id >= $lo) AND ($hi IS NULL OR e.id < $hi) AND ($source IS NULL OR e.source = $source)
RETURN collect([e.id, e.sha256, e.image_uri, e.caption, e.source, e.license, e.extra]) AS rows
"""
TRAINING_EVIDENCE_LINKS: Final[LiteralString] = """
UNWIND $ids AS id
MATCH (e:Evidence {id: id})-[s]->(p:Phenotype)
WHERE type(s) IN ['SHOWS', 'RULES_OUT']
RETURN collect([id, type(s), p.id, s.uncertain]) AS rows
"""
TRAINING_TERM_NAMES: Final[LiteralString] = """
UNWIND $ids AS id
MATCH (p:Phenotype {id: id})
RETURN collect([p.id, p.name]) AS rows
"""
TRAINING_TERM_ANCESTORS: Final[LiteralString] = """
UNWIND $ids AS id
MATCH (p:Phenotype {id: id})-[:IS_A*1..]->(a:Phenotype)
WITH DISTINCT id, a
RETURN collect([id, a.id, a.name, EXISTS { MATCH (a)-[:IS_A]->(:Phenotype {id: $top}) }]) AS rows
"""

# Model registry: (:ModelVersion {id, kind, path, created_at, config, metrics, data_hash, seed, code_version,
# active, activated_at}); config and metrics are JSON strings. At most one active per kind.
MODEL_VERSION_EXISTS: Final[LiteralString] = "MATCH (m:ModelVersion {id: $id}) RETURN count(m) AS n"
MODEL_VERSION_CREATE: Final[LiteralString] = """
CREATE (m:ModelVersion {id: $id, kind: $kind, path: $path, created_at: $created_at, config: $config,
                        metrics: $metrics, data_hash: $data_hash, seed: $seed, code_version: $code_version,
                        active: false})
RETURN m {.*} AS model
"""
MODEL_VERSION_GET: Final[LiteralString] = "MATCH (m:ModelVersion {id: $id}) RETURN m {.*} AS model"
MODEL_VERSION_LIST: Final[LiteralString] = """
MATCH (m:ModelVersion) WHERE $kind IS NULL OR m.kind = $kind
RETURN collect(m {.*}) AS models
"""
MODEL_VERSION_ACTIVE: Final[LiteralString] = """
MATCH (m:ModelVersion {kind: $kind}) WHERE m.active = true
RETURN collect(m {.*}) AS models
"""
# One statement writes every version of the kind (active = whether it is $id), so concurrent activations
# conflict on the same nodes and serialise (row locks on Neo4j, MVCC conflict + retry on ArcadeDB) instead
# of each deactivating "the others" it saw and leaving two active (write skew).
MODEL_VERSION_ACTIVATE: Final[LiteralString] = """
MATCH (m:ModelVersion {kind: $kind})
SET m.active = (m.id = $id),
    m.activated_at = CASE WHEN m.id = $id THEN $now ELSE m.activated_at END
RETURN collect(m {.*}) AS models
"""
MODEL_VERSION_UPDATE_METRICS: Final[LiteralString] = """
MATCH (m:ModelVersion {id: $id})
SET m.metrics = $metrics
RETURN m {.*} AS model
"""
