"""The paired-comparison benchmark's corpus readers and statistics (benchmarks/knowledge_encoder_compare.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.knowledge_encoder_compare import accuracy, mrr, paired, read_corpus


def test_gsc_file_and_ann_directory_read_the_same_mentions(tmp_path: Path) -> None:
    tsv = tmp_path / "gold.tsv"
    tsv.write_text("123\nCleft lip and seizures.\n0\t9\tCleft lip\tHP:0410030\n14\t22\tseizures\tHP:0001250\n\n"
                   "AB-7\nShort stature.\n0\t13\tShort stature\tHP:0004322\n", encoding="utf-8")
    (tmp_path / "dir" / "ann").mkdir(parents=True)
    (tmp_path / "dir" / "ann" / "123").write_text("0\t9\tCleft lip\tHP:0410030\n14\t22\tseizures\tHP:0001250\n",
                                                  encoding="utf-8")
    (tmp_path / "dir" / "ann" / "AB-7").write_text("0\t13\tShort stature\tHP:0004322\n", encoding="utf-8")
    from_file, from_dir = read_corpus("f", tsv), read_corpus("d", tmp_path / "dir")
    assert from_file.mentions == from_dir.mentions == [
        ("Cleft lip", "HP:0410030"), ("seizures", "HP:0001250"), ("Short stature", "HP:0004322")]
    assert from_file.docs == from_dir.docs == ["123", "123", "AB-7"]


def test_bad_corpus_lines_name_the_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("1\ntext\n0\t4\ttext\tOMIM:1\n", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"bad\.tsv:3: expected an HP id"):
        read_corpus("bad", bad)
    empty = tmp_path / "empty.tsv"
    empty.write_text("1\nno mentions here\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="no mention lines"):
        read_corpus("empty", empty)


def test_paired_counts_wins_and_losses_and_brackets_the_change() -> None:
    base = [1, 1, 3, 7, 2, None, 1, 9]
    other = [1, 2, 1, 1, 9, 4, 1, 8]
    docs = ["a", "a", "b", "b", "c", "c", "d", "d"]
    at1 = paired(base, other, docs, 1, rounds=200, seed=0)
    assert (at1["wins"], at1["losses"]) == (2, 1)
    assert at1["delta"] == pytest.approx(1 / 7)
    assert at1["ci_low"] <= at1["delta"] <= at1["ci_high"]
    assert paired(base, base, docs, 5, rounds=50, seed=0) == {
        "wins": 0, "losses": 0, "delta": 0.0, "mcnemar_p": 1.0, "ci_low": 0.0, "ci_high": 0.0}
    assert accuracy(base, 1) == pytest.approx(3 / 7) and mrr([1, 2, None]) == pytest.approx(0.75)
