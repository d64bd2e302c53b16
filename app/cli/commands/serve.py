"""``phenokg serve``: the API on the graph (embedded server started, graph built on first start)."""

from __future__ import annotations

import json
import signal
from types import FrameType
from typing import Annotated

import typer

from app.cli.support import settings

app = typer.Typer()


class _Terminated(BaseException):
    """SIGTERM arrived: leave through ``finally`` (uvicorn re-raises the SIGTERM it shut down on)."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the cleanup short
    raise _Terminated


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    build_if_empty: Annotated[bool, typer.Option("--build/--no-build",
                                                 help="Build the graph first if it is empty.")] = True,
) -> None:
    """Serve the API (starting the embedded graph server and building the graph on first start)."""
    import uvicorn

    from app.main import create_app
    from kg.ingest.build import build, is_empty
    from kg.store.graph import connect
    from kg.store.migrations import migrate

    config = settings()
    signal.signal(signal.SIGTERM, _on_sigterm)
    terminated = False
    graph = connect(config, restart=True)  # owns an embedded server it starts (restarted when it dies; stopped below)
    try:
        applied = migrate(graph)
        if applied:
            typer.echo(f"applied {len(applied)} migration(s)", err=True)
        if build_if_empty and is_empty(graph):
            typer.echo("the graph is empty: building it from the HPO release (one-time, about a minute)", err=True)
            report = build(graph)
            typer.echo(f"built HPO {report.release}: {json.dumps(report.counts)}", err=True)
        from app.services.embeddings import ensure_embeddings

        # only missing or stale terms: a quick no-op when up to date
        emb = ensure_embeddings(graph, onnx_cache=config.onnx_cache_dir)
        if not emb.up_to_date:
            typer.echo(f"embedded {emb.embedded_strings} phenotype names/synonyms ({emb.encoder})", err=True)
        uvicorn.run(create_app(config, graph=graph), host=host, port=port, log_level="info")
    except _Terminated:
        terminated = True
    finally:
        graph.close()
    if terminated:  # after the cleanup, end as SIGTERM ends a process
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.raise_signal(signal.SIGTERM)
