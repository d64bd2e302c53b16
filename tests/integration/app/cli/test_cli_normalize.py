"""`phenokg kg embed` and `phenokg normalize FILE`, run as real subprocesses against a real embedded server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import FIXTURES as FIXTURES_DIR

pytestmark = pytest.mark.integration
FIXTURES = FIXTURES_DIR
PHENOKG = [sys.executable, "-m", "app.cli.main"]


def run(home: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k not in ("NEO4J_URI", "PHENOKG_TEXT_ENCODER")}
    full_env.update({"PHENOKG_HOME": str(home), "HF_HUB_OFFLINE": "1", **(env or {})})
    return subprocess.run([*PHENOKG, *args], capture_output=True, text=True, env=full_env, timeout=timeout,
                          input=stdin)


@pytest.fixture(scope="module")
def embedded_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("cli-normalize-home")
    out = run(home, "kg", "build", "--obo", str(FIXTURES / "mini.obo"), "--hpoa", str(FIXTURES / "mini.hpoa"),
              "--no-pack", "--quiet")
    assert out.returncode == 0, out.stderr
    embed = run(home, "kg", "embed", "--batch-size", "8")
    assert embed.returncode == 0, embed.stderr
    report = json.loads(embed.stdout)
    assert report["terms"] == 13 and report["embedded_terms"] == 13 and report["dim"] == 384
    assert "embedding phenotypes" in embed.stderr  # the progress bar
    assert report["backend"] == "onnx-fp32"  # the CPU default; the export is kept in the home's cache
    assert len(list((home / "cache" / "onnx").glob("text-encoder-*-fp32.onnx"))) == 1
    return home


def test_embed_with_an_unknown_backend_is_a_usage_error(embedded_home: Path) -> None:
    out = run(embedded_home, "kg", "embed", "--backend", "tensorrt", "-q")
    assert out.returncode == 2 and "choose one of auto, onnx, torch" in out.stderr
    assert json.loads(run(embedded_home, "kg", "embed", "-q").stdout)["up_to_date"] is True  # nothing lost


def test_embed_again_is_a_no_op(embedded_home: Path) -> None:
    again = run(embedded_home, "kg", "embed", "-q")
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["up_to_date"] is True and report["embedded_terms"] == 0


def test_normalize_file_one_line_per_input_line(embedded_home: Path, tmp_path: Path) -> None:
    mentions = ["Enlarged heart", "", "seizures", "Pneumonias", "big heart", "' OR 1=1 --", "Ödem 心脏"]
    src = tmp_path / "mentions.txt"
    src.write_text("\n".join(mentions) + "\n", encoding="utf-8")
    out = run(embedded_home, "normalize", str(src), "--top-k", "3")
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [line["line"] for line in lines] == list(range(1, len(mentions) + 1))
    assert [line["mention"] for line in lines] == mentions
    assert lines[1]["candidates"] == []
    tops = [line["candidates"][0]["id"] if line["candidates"] else None for line in lines[:5]]
    assert tops == ["HP:0001640", None, "HP:0001250", "HP:0002090", "HP:0001640"]
    first = lines[0]["candidates"][0]
    assert {"id", "name", "score"} <= first.keys() and 0 < first["score"] <= 1
    assert all(len(line["candidates"]) <= 3 for line in lines)
    assert "normalizing" in out.stderr  # progress bar on stderr, never on stdout


def test_normalize_stdin_and_lexical(embedded_home: Path) -> None:
    out = run(embedded_home, "normalize", "-", "--lexical", "-q", stdin="Fluid around lungs\r\nHP:0002279\n")
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [line["candidates"][0]["id"] for line in lines] == ["HP:0002202", "HP:0001250"]
    assert lines[0]["mention"] == "Fluid around lungs"


def test_normalize_missing_file_is_one_clear_error(embedded_home: Path, tmp_path: Path) -> None:
    out = run(embedded_home, "normalize", str(tmp_path / "missing.txt"))
    assert out.returncode == 2
    assert "missing.txt" in out.stderr and "Traceback" not in out.stderr


def test_normalize_without_embeddings_is_lexical(tmp_path: Path) -> None:
    home = tmp_path / "home"
    built = run(home, "kg", "build", "--obo", str(FIXTURES / "mini.obo"), "--hpoa", str(FIXTURES / "mini.hpoa"),
                "--no-pack", "--quiet")
    assert built.returncode == 0, built.stderr
    out = run(home, "normalize", "-", "-q", stdin="Seizures\n")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["candidates"][0]["id"] == "HP:0001250"
    assert "phenokg kg embed" in out.stderr
