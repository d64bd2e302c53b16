// Evidence at scale: an import checks which (image, caption) pairs of a batch are stored by image URI, and the
// evidence of a phenotype can be filtered by source.
CREATE INDEX evidence_image_uri IF NOT EXISTS FOR (n:Evidence) ON (n.image_uri);
CREATE INDEX evidence_source IF NOT EXISTS FOR (n:Evidence) ON (n.source);
