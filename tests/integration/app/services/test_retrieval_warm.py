"""Start-up memory: the API's retrieval warm-up imports the image model stack (torch, timm, transformers: ~400 MB
resident) only when a ``clip`` model is registered, so that activating one is a swap; with none it stays out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kg.config import GraphSettings
from kg.repo.registry import ModelVersion, register_model
from kg.store.graph import Graph
from kg.store.migrations import migrate
from tests.helpers import REPO_ROOT

pytestmark = pytest.mark.integration

WARM = """
import json, sys
from app.core.config import AppSettings
from app.services.retrieval import RetrievalService
from kg.repo.snapshots import SnapshotCache
from kg.store.graph import connect

settings = AppSettings()
graph = connect(settings, start_embedded=False)
service = RetrievalService(graph, SnapshotCache(graph), settings)
try:
    service.warm()
    print(json.dumps({"serving": "models.serving" in sys.modules, "torch": "torch" in sys.modules,
                      "error": service.last_error}))
finally:
    service.close()
    graph.close()
"""


def _warm_in_a_fresh_process(settings: GraphSettings) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k not in ("PHENOKG_CLIP_MODEL", "NEO4J_URI")}
    env["PHENOKG_HOME"] = str(settings.home)
    if settings.neo4j_uri:
        env["NEO4J_URI"] = settings.neo4j_uri
    out = subprocess.run([sys.executable, "-c", WARM], env=env, cwd=str(REPO_ROOT), capture_output=True, text=True,
                         check=True, timeout=600)
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_the_image_stack_is_imported_at_warm_up_only_with_a_registered_clip_model(
        empty_graph: Graph, graph_settings: GraphSettings, tmp_path: Path) -> None:
    migrate(empty_graph)
    assert _warm_in_a_fresh_process(graph_settings) == {"serving": False, "torch": False, "error": None}
    register_model(empty_graph, ModelVersion(id="clip-warm-test", kind="clip", path=str(tmp_path / "clip")))
    warmed = _warm_in_a_fresh_process(graph_settings)
    assert warmed["serving"] is True and warmed["torch"] is True
    assert warmed["error"] is None  # registered, not active: nothing to load, only the imports
