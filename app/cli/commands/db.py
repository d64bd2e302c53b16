"""``phenokg db start | stop | status``: the embedded graph server in the background."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from app.cli.support import fail, settings

app = typer.Typer()
db_app = typer.Typer(help="Run the embedded graph server (ArcadeDB over Bolt).", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("start")
def db_start() -> None:
    """Start the embedded graph server in the background (it keeps running until `phenokg db stop`)."""
    from kg.store.embedded import EmbeddedServer

    config = settings()
    if not config.embedded:
        fail(f"NEO4J_URI is set ({config.neo4j_uri}): there is no embedded server to start", 2)
    server = EmbeddedServer(config)
    already = server.status()
    state = already or server.start(detached=True)
    word = "already running" if already else "started"
    typer.echo(f"embedded graph server {word}: pid {state.pid}, bolt {state.bolt_uri}, "
               f"http 127.0.0.1:{state.http_port}, data {server.root}")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded graph server cleanly."""
    from kg.store.embedded import EmbeddedServer

    stopped = EmbeddedServer(settings()).stop()
    typer.echo("embedded graph server stopped" if stopped else "embedded graph server was not running")


@db_app.command("status")
def db_status(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Show whether the embedded graph server runs, where, and how to connect."""
    from kg.store.embedded import EmbeddedServer

    config = settings()
    if not config.embedded:
        typer.echo(json.dumps({"mode": "external", "uri": config.neo4j_uri}) if as_json
                   else f"external graph server: {config.neo4j_uri}")
        return
    server = EmbeddedServer(config)
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
