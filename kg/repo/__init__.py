"""Graph records read and written by feature: snapshots, diseases, model registry, embeddings, training views,
training jobs."""
