"""The PneumoniaMNIST demonstration, shortened (``--quick``): full HPO build with the chest X-ray pack, 96 real
images per split imported as evidence, the untrained model and a linear probe, three 3-step trainings
(coarse / medium / fine captions), table and plot. Checks the pipeline end to end, not the figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT, SHARED

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = REPO_ROOT
NPZ = SHARED / "data" / "pneumoniamnist.npz"


@pytest.mark.skipif(not NPZ.is_file(), reason=f"{NPZ} is not on this machine")
def test_quick_demo(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NEO4J_URI"}
    env.update({"PHENOKG_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
    out_dir = tmp_path / "out"
    proc = subprocess.run([sys.executable, "benchmarks/pneumonia_demo.py", "--quick", "--out-dir", str(out_dir)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads((out_dir / "pneumonia_demo.json").read_text())
    assert result["import"]["per_split"] == {"train": 96, "val": 96, "test": 96}
    assert result["import"]["errors"] == 0 and result["import"]["links_shows"] > 0
    untrained = result["untrained"]["metrics"]
    assert set(untrained["zero_shot"]) == {"coarse", "medium", "fine"}
    assert untrained["zero_shot"]["fine"]["n"] == 96 and 0 <= untrained["linear_probe"]["accuracy"] <= 1
    assert sorted(result["trained"]) == ["coarse/0", "fine/0", "medium/0"]
    for run in result["trained"].values():
        assert run["train"]["steps"] == 3 and set(run["eval"]["zero_shot"]) == {"coarse", "medium", "fine"}
        assert run["eval"]["phenotype_retrieval"]["images_with_phenotypes"] > 0
    table = (out_dir / "pneumonia_demo_table.md").read_text().splitlines()
    assert len(table) == 2 + 1 + 3 + 1 and table[-1].startswith("| linear probe")
    png = (out_dir / "pneumonia_demo.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
