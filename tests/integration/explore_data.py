"""The mini fixture graph with a few evidence images, for the explorer's integration and e2e tests."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw

from kg.ingest.build import build
from kg.ingest.evidence import BlobStore, import_evidence, linker_from_graph
from kg.store.graph import Graph
from tests.helpers import FIXTURES, clear_graph

# Captions the linker links to mini-graph terms: pneumonia SHOWS twice, pleural effusion RULES_OUT once.
CAPTIONS = (
    "Chest radiograph shows pneumonia. No pleural effusion.",
    "Right lower lobe pneumonia.",
    "Enlarged heart.",
)
PNEUMONIA, EFFUSION, CARDIOMEGALY = "HP:0002090", "HP:0002202", "HP:0001640"


def png_bytes(shade: int) -> bytes:
    """A 96×96 grey PNG: a bright ellipse (a chest, roughly) on a dark ground."""
    img = Image.new("L", (96, 96), 20)
    ImageDraw.Draw(img).ellipse((18, 10, 78, 86), fill=shade)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def build_mini_with_evidence(graph: Graph, home: Path, work: Path) -> None:
    """Empty the graph, build the mini HPO fixture (with its genes), import three evidence images into
    ``home``'s blob store."""
    clear_graph(graph)
    build(graph, obo=FIXTURES / "mini.obo", hpoa=FIXTURES / "mini.hpoa", genes=FIXTURES / "mini_genes.txt",
          include_pack=False, progress=False)
    import_grey_images(graph, home, work, CAPTIONS, name="cxr", shade=lambda i: 120 + 50 * i)


def import_grey_images(graph: Graph, home: Path, work: Path, captions: list[str], *, name: str,
                       shade: Callable[[int], int], source: str = "explorer-test") -> None:
    """One grey chest-like image per caption (``shade(i)`` each, so distinct images) imported as evidence of
    ``source`` into the graph and ``home``'s blob store."""
    work.mkdir(parents=True, exist_ok=True)
    lines = ["image,caption,source,license"]
    for i, caption in enumerate(captions):
        (work / f"{name}{i}.png").write_bytes(png_bytes(shade(i)))
        lines.append(f'{name}{i}.png,"{caption}",{source},CC0')
    csv = work / f"{name}.csv"
    csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = import_evidence(graph, csv, linker_from_graph(graph), BlobStore(home / "blobs"), progress=False)
    assert not report.errors, report.errors
