"""``phenokg evidence import FILE`` (image–caption rows) and ``import-npz`` (labelled image arrays)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from app.cli_support import graph_connection, settings
from app.commands import clip as clip_commands

app = typer.Typer()
evidence_app = typer.Typer(help="Image–caption evidence.", no_args_is_help=True)
evidence_app.add_typer(clip_commands.evidence_app)
app.add_typer(evidence_app, name="evidence")


@evidence_app.command("import")
def evidence_import(
    file: Annotated[Path, typer.Argument(help="CSV / TSV / JSONL with image, caption, source, license.")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Import image–caption evidence: images stored once by sha256, captions linked to phenotypes."""
    from kg.ingest.evidence import BlobStore, import_evidence, linker_from_graph

    config = settings()
    with graph_connection() as graph:
        report = import_evidence(graph, file, linker_from_graph(graph), BlobStore(config.blob_dir),
                                 progress=not quiet)
    for error in report.errors:
        typer.echo(f"phenokg: skipped {error}", err=True)
    summary = {k: v for k, v in vars(report).items() if k != "errors"}
    summary["errors"] = len(report.errors)
    typer.echo(json.dumps(summary))
