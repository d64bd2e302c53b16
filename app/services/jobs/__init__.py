"""Training jobs: config models, the manager that submits them to a local Ray head and syncs their state into the
graph, and the Ray client and head."""
