"""``phenokg annotate FILE...``: phenotype mentions with negation, one JSON line per file."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from app.cli.support import graph_connection

app = typer.Typer()


@app.command()
def annotate(files: Annotated[list[Path], typer.Argument(help="Text files to annotate.")]) -> None:
    """Find phenotype mentions (with negation) in text files: one JSON line per file."""
    from kg.ingest.evidence import linker_from_graph

    with graph_connection() as graph:
        linker = linker_from_graph(graph)
    failed = 0
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            failed += 1
            typer.echo(f"phenokg: error: {path}: {exc}", err=True)
            continue
        mentions = [m.to_dict() for m in linker.annotate(text)]
        sys.stdout.write(json.dumps({"file": str(path), "mentions": mentions}, ensure_ascii=False) + "\n")
    if failed:
        raise typer.Exit(2)
