"""Knowledge-encoder run on plain data (models.train.knowledge_run, models.train.knowledge_eval, models.views):
no DB."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
from torch import Tensor

from models.train.knowledge import KnowledgeTrainConfig
from models.train.knowledge_eval import evaluate_normalisation, normalisation_ranks, read_gold_mentions
from models.train.knowledge_run import run_knowledge_training
from models.types import PhenotypeAttributes
from models.views import (
    read_views_file,
    split_held_out,
    to_attributes,
    to_disease_sets,
    write_views_file,
)
from tests.unit.models.train.test_models_knowledge import synthetic_phenotypes

VOCAB = ["heart", "big", "lung", "fluid", "fit", "seizure", "enlarged", "cardiomegaly"]


class BagOfWords:
    """Deterministic stand-in encoder: word counts over VOCAB."""

    def encode(self, texts: Sequence[str], batch_size: int = 0) -> Tensor:
        rows = [[float(w in t.lower().split()) + 1e-3 * i for i, w in enumerate(VOCAB)] for t in texts]
        return torch.tensor(rows)


def test_evaluate_normalisation_best_label_and_redirects() -> None:
    gallery = [("HP:1", ["Cardiomegaly", "big heart"]), ("HP:2", ["Pleural fluid"]), ("HP:3", ["Seizure", "fit"])]
    mentions = [("big heart", "HP:1"), ("fit", "HP:OLD3"), ("fluid", "HP:2"), ("gout", "HP:9")]
    res = evaluate_normalisation(BagOfWords(), gallery, mentions, redirects={"HP:OLD3": "HP:3"})
    assert res["n_mentions"] == 4 and res["n_evaluated"] == 3 and res["n_gold_not_in_gallery"] == 1
    assert res["acc@1"] == 1.0 and res["acc@5"] == 1.0
    assert res["gallery_terms"] == 3 and res["gallery_labels"] == 5
    wrong = evaluate_normalisation(BagOfWords(), gallery, [("big heart", "HP:2")])
    assert wrong["acc@1"] == 0.0 and wrong["acc@5"] == 1.0  # 3 terms: always within the top 5


def test_normalisation_ranks_are_one_based_with_ties_in_gallery_order() -> None:
    gallery = [("HP:1", ["Cardiomegaly", "big heart"]), ("HP:2", ["Pleural fluid"]), ("HP:3", ["Seizure", "fit"]),
               ("HP:4", ["fit"])]  # HP:3 and HP:4 tie on "fit"
    mentions = [("big heart", "HP:1"), ("fit", "HP:3"), ("fit", "HP:4"), ("big heart", "HP:2"), ("gout", "HP:9")]
    ranks = normalisation_ranks(BagOfWords(), gallery, mentions)
    assert ranks[:3] == [1, 1, 2] and ranks[3] is not None and ranks[3] > 1 and ranks[4] is None
    assert normalisation_ranks(BagOfWords(), gallery, []) == []


def test_read_gold_mentions(tmp_path: Path) -> None:
    path = tmp_path / "g.tsv"
    path.write_text("123\nSome text.\n0\t4\tSome\tHP:0000001\n\n124\nMore.\n0\t4\tMore\tHP:0000002\n",
                    encoding="utf-8")
    assert read_gold_mentions(path) == [("Some", "HP:0000001"), ("More", "HP:0000002")]
    path.write_text("1\nx\n0\t1\tx\tOMIM:1\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"g\.tsv:3"):
        read_gold_mentions(path)


def test_views_conversion_and_split() -> None:
    attrs = to_attributes([{"id": "HP:1", "name": "A", "definition": None, "synonyms": ["a1"], "parents": [],
                            "parent_ids": []}])
    assert attrs == [PhenotypeAttributes("HP:1", "A", None, ("a1",))]
    sets = to_disease_sets([{"id": "D:1", "name": "D", "typical": [["HP:1", "A"]], "excluded": []}])
    assert sets[0].typical == (("HP:1", "A"),) and sets[0].excluded == ()
    phenos = synthetic_phenotypes()
    train, held = split_held_out(phenos, 0.2, seed=0)
    assert len(held) == round(0.2 * 36) and len(train) == 36 - len(held)
    assert split_held_out(phenos, 0.2, seed=1)[1] != held
    assert split_held_out(list(reversed(phenos)), 0.2, seed=0)[1] == list(reversed(held))  # order-free choice
    with pytest.raises(ValueError):
        split_held_out(phenos, 1.0)


@pytest.mark.parametrize("name", ["views.json", "views.json.gz"])
def test_views_file_round_trip(tmp_path: Path, name: str) -> None:
    rows = [{"id": "HP:1", "name": "Cardiomegaly", "definition": "Big heart.", "synonyms": ["big heart"],
             "parents": ["Abnormal heart"], "parent_ids": ["HP:0"]},
            {"id": "HP:2", "name": "Seizure", "definition": None, "synonyms": [], "parents": [], "parent_ids": []}]
    path = write_views_file(tmp_path / name, rows, {"HP:OLD": "HP:1"}, {"hpo_release": "2025-01-16"})
    attributes, redirects, info = read_views_file(path)
    assert attributes == to_attributes(rows)
    assert redirects == {"HP:OLD": "HP:1"} and info == {"hpo_release": "2025-01-16"}


def test_views_file_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    for text, message in (("{", "not valid JSON"), ('{"format": "other"}', "not a phenokg views file"),
                          ('{"format": "phenokg-training-views/1", "phenotypes": {}}', "must be a list"),
                          ('{"format": "phenokg-training-views/1", "phenotypes": [{"id": "HP:1"}]}',
                           "phenotype #1 needs an 'id' and a 'name'")):
        bad.write_text(text, encoding="utf-8")
        with pytest.raises(ValueError, match=message) as info:
            read_views_file(bad)
        assert str(bad) in str(info.value)
    (tmp_path / "plain.gz").write_text("not gzip", encoding="utf-8")
    with pytest.raises(ValueError, match="unreadable views file"):
        read_views_file(tmp_path / "plain.gz")
    with pytest.raises(FileNotFoundError):
        read_views_file(tmp_path / "missing.json")


def test_run_knowledge_training_writes_a_model_directory(tiny_bert_dir: Path, tmp_path: Path) -> None:
    config = KnowledgeTrainConfig(model_path=str(tiny_bert_dir), seed=2, batch_size=8, lr=1e-3, max_steps=2,
                                  max_length=32)
    mentions = [("enlarged heart", "HP:9999999"), ("lung cyst", "HP:OLD")]
    out = tmp_path / "run"
    result = run_knowledge_training(synthetic_phenotypes(), config, out, held_out_fraction=0.25,
                                    mentions=mentions, redirects={"HP:OLD": "HP:0010004"},
                                    data_info={"graph_stamp": "s1"}, progress=False)
    assert result.model_id.startswith("knowledge-encoder-")
    cfg = json.loads((out / "config.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    assert cfg["data"] == {"phenotypes": 36, "train_phenotypes": 27, "held_out_phenotypes": 9, "graph_stamp": "s1"}
    assert metrics["data_hash"] == cfg["data_hash"] == result.data_hash and metrics["seed"] == 2
    held = [p for p in synthetic_phenotypes() if p.id in set(result.held_out_ids)]
    assert len(held) == 9 and cfg["held_out_ids"] == result.held_out_ids
    for label in ("trained", "base"):
        ev = metrics["eval"][label]
        assert ev["attribute_retrieval"]["n_queries"] == sum(1 + len(p.synonyms) for p in held)
        assert ev["attribute_retrieval"]["gallery_size"] == 36
        assert ev["normalisation"]["n_evaluated"] == 1  # HP:9999999 is not a synthetic id
    assert (out / "encoder" / "model.safetensors").is_file()
    # same data, same seed → same hash and split; another directory must not hold a run
    with pytest.raises(ValueError, match="already holds a training run"):
        run_knowledge_training(synthetic_phenotypes(), config, out, held_out_fraction=0.25, progress=False)
    with pytest.raises(ValueError, match="training data changed"):
        run_knowledge_training(synthetic_phenotypes()[:-1], config, out, held_out_fraction=0.25, resume=True,
                               progress=False)
