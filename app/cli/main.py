"""The ``phenokg`` command line: one Typer app composed of the command modules in :mod:`app.cli.commands`.

Heavy imports happen inside commands so ``phenokg --help`` stays fast. Expected failures (bad input,
database down: the project's errors, see :mod:`app.cli.support`) print one clear message to stderr and exit
non-zero, mapped once here in :func:`main`; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import logging
import os
import sys

import typer

from app.cli.commands import annotate, clip, db, evidence, graph, normalize, rank, serve, training
from app.cli.support import exit_code, message

app = typer.Typer(help="phenokg: a phenotype knowledge-graph service.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
for module in (serve, db, graph, annotate, evidence, normalize, rank, training, clip):
    app.add_typer(module.app)


def main() -> None:
    # torch's OpenMP threads spin while idle by default, which starves the graph server on small machines.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # The driver logs every lost connection; a command reports a database that went away in its one error line.
    for name in ("neo4j.io", "neo4j.pool"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        app()
    except Exception as exc:
        code = exit_code(exc)
        if code is None:
            raise
        typer.echo(f"phenokg: error: {message(exc)}", err=True)
        sys.exit(code)


if __name__ == "__main__":
    main()
