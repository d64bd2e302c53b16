"""``phenokg evidence import FILE`` (image–caption rows), ``import-npz`` (labelled image arrays), ``import-chexpert``
(CheXpert-style label CSVs) and ``import-reports`` (image + report sets such as MIMIC-CXR or Open-i)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from app.cli.commands import clip as clip_commands
from app.cli.support import graph_connection, note, settings

if TYPE_CHECKING:
    from kg.ingest.evidence_stream import StreamReport

app = typer.Typer()
evidence_app = typer.Typer(help="Image–caption evidence.", no_args_is_help=True)
evidence_app.add_typer(clip_commands.evidence_app)
app.add_typer(evidence_app, name="evidence")


@evidence_app.command("import")
def evidence_import(
    file: Annotated[Path, typer.Argument(help="CSV / TSV / JSONL with image, caption, source, license.")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Import image–caption evidence: images stored once by sha256, captions linked to phenotypes.

    Streamed in batches (any file size); a rerun after an interruption skips what is stored and goes on."""
    from kg.ingest.evidence import BlobStore, import_evidence, linker_from_graph

    config = settings()
    with graph_connection(migrated=True) as graph:
        report = import_evidence(graph, file, linker_from_graph(graph), BlobStore(config.blob_dir),
                                 progress=not quiet)
    _print_stream_report(report)


SPLIT_HELP = "Split stored on every row (e.g. train, val); default: the file's 'split' column, if any."
SPLIT_COLUMN_HELP = "Column holding each row's split (default: 'split')."
IMAGE_ROOT_HELP = "Folder the image paths are relative to (default: the file's folder)."


def _print_stream_report(report: StreamReport) -> None:
    for error in report.errors:
        note(f"skipped {error}")
    if report.skipped:
        note(f"{report.skipped} row(s) already imported by an earlier run: skipped without reading their images")
    typer.echo(json.dumps(report.summary()))


@evidence_app.command("import-chexpert")
def evidence_import_chexpert(
    file: Annotated[Path, typer.Argument(help="CheXpert-style CSV: Path plus finding columns (1, 0, -1, blank).")],
    license: Annotated[str, typer.Option(help="License of the images, e.g. 'Stanford CheXpert RUA'.")],
    source: Annotated[str, typer.Option(help="Evidence source (dataset) name.")] = "chexpert",
    image_root: Annotated[Path | None, typer.Option(help=IMAGE_ROOT_HELP)] = None,
    split: Annotated[str | None, typer.Option(help=SPLIT_HELP)] = None,
    split_column: Annotated[str | None, typer.Option(help=SPLIT_COLUMN_HELP)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Import CheXpert-style labels: 1 → SHOWS, -1 → uncertain SHOWS, 0 → RULES_OUT the pack's HPO ids.

    Resumable: rows an earlier run imported are skipped without reading their images."""
    from kg.ingest.chexpert import import_chexpert
    from kg.store.blobs import BlobStore

    with graph_connection(migrated=True) as graph:
        report = import_chexpert(graph, file, BlobStore(settings().blob_dir), license=license, source=source,
                                 image_root=image_root, split=split, split_column=split_column, progress=not quiet)
    _print_stream_report(report)


@evidence_app.command("import-reports")
def evidence_import_reports(
    file: Annotated[Path, typer.Argument(help="CSV / TSV / JSONL: image path plus findings / impression (or "
                                              "report) text.")],
    license: Annotated[str, typer.Option(help="License of the images, e.g. 'PhysioNet Credentialed Health Data "
                                              "License 1.5.0'.")],
    source: Annotated[str | None, typer.Option(help="Evidence source (dataset) name (default: file stem).")] = None,
    image_root: Annotated[Path | None, typer.Option(help=IMAGE_ROOT_HELP)] = None,
    split: Annotated[str | None, typer.Option(help=SPLIT_HELP)] = None,
    split_column: Annotated[str | None, typer.Option(help=SPLIT_COLUMN_HELP)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Import image + report pairs (MIMIC-CXR, Open-i): the report is the caption, linked with negation.

    Resumable: rows an earlier run imported are skipped without reading their images."""
    from kg.ingest.evidence import linker_from_graph
    from kg.ingest.reports import import_reports
    from kg.store.blobs import BlobStore

    with graph_connection(migrated=True) as graph:
        report = import_reports(graph, file, linker_from_graph(graph), BlobStore(settings().blob_dir),
                                license=license, source=source, image_root=image_root, split=split,
                                split_column=split_column, progress=not quiet)
    _print_stream_report(report)
