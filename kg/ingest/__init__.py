"""Source data into the graph: OBO / HPOA parsers, the diff-based build, evidence import, the blob store."""
