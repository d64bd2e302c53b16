"""Talking to the graph database: the Bolt driver, the embedded server, the dialect, migrations, Cypher."""
