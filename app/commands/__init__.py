"""CLI commands that live with their feature; each module exposes ``register(app: typer.Typer)``."""
