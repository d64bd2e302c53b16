// Lookups that are not by primary id: alternative ids, obsolete flags, disease source, image hash.
CREATE INDEX phenotype_alt_ids IF NOT EXISTS FOR (n:Phenotype) ON (n.alt_ids);
CREATE INDEX phenotype_obsolete IF NOT EXISTS FOR (n:Phenotype) ON (n.obsolete);
CREATE INDEX disease_source IF NOT EXISTS FOR (n:Disease) ON (n.source);
CREATE INDEX evidence_sha256 IF NOT EXISTS FOR (n:Evidence) ON (n.sha256);
CREATE INDEX model_version_kind IF NOT EXISTS FOR (n:ModelVersion) ON (n.kind);
