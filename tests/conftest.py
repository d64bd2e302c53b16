"""Shared fixtures. Integration tests run against the real embedded graph server, started once per session
in a fresh data directory on free ports; with NEO4J_URI set they use that server instead."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kg.config import GraphSettings
from kg.store.graph import Graph
from tests.helpers import clear_graph, running_graph


@pytest.fixture(scope="session")
def graph_settings(tmp_path_factory: pytest.TempPathFactory) -> GraphSettings:
    home = tmp_path_factory.mktemp("phenokg-home")
    env = {"PHENOKG_HOME": str(home)}
    if os.environ.get("NEO4J_URI"):
        env["NEO4J_URI"] = os.environ["NEO4J_URI"]
    return GraphSettings(**env)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def graph(graph_settings: GraphSettings) -> Iterator[Graph]:
    """One real graph server for the whole session (embedded ArcadeDB unless NEO4J_URI is set)."""
    with running_graph(graph_settings) as g:
        yield g


@pytest.fixture()
def empty_graph(graph: Graph) -> Iterator[Graph]:
    """The session graph, emptied before and after the test (migrations re-applied by whoever needs them)."""
    clear_graph(graph)
    yield graph
    clear_graph(graph)


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer BERT (hidden 32) saved as a plain Hugging Face directory with the packaged
    MiniLM tokenizer: a user-style checkpoint that trains fast on 2 CPU cores."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from models.encoders import packaged_text_model_path

    out = tmp_path_factory.mktemp("tiny_bert")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        cfg = BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                         max_position_embeddings=64)
        BertModel(cfg).save_pretrained(str(out))
    AutoTokenizer.from_pretrained(str(packaged_text_model_path())).save_pretrained(str(out))
    return out


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: Path) -> Path:
    """An untrained tiny image–text model directory (timm's test_efficientnet + ``tiny_bert_dir``, 16-d), as a
    training run writes it: what ``PHENOKG_CLIP_MODEL`` takes, so retrieval answers without training first."""
    import json

    from models.train.clip_run import untrained_model
    from models.train.clip_train import ClipTrainConfig

    out = tmp_path_factory.mktemp("tiny_clip")
    config = ClipTrainConfig(image_model="test_efficientnet", image_pretrained=False, text_model=str(tiny_bert_dir),
                             embed_dim=16, image_size=32, max_length=32)
    untrained_model(config, "cpu").save(out / "model")
    (out / "train_config.json").write_text(json.dumps(config.to_dict()), encoding="utf-8")
    return out
