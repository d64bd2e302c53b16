"""The ``phenokg`` subcommands, one module per feature; each exposes ``register(app: typer.Typer)``, called by
:mod:`app.cli.main`. Use cases the server shares live in :mod:`app.services`."""
