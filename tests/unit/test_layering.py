"""The import contracts of pyproject.toml ([tool.importlinter]) hold, all of them: app -> models -> kg; kg's
folders depend downwards (ingest | repo -> text -> analysis -> store -> leaf modules); no torch in kg; kg.text /
kg.analysis never reach the database layer; the modules of kg.analysis.ranking import downwards only; the models
library never imports models.train (every library module is named in that contract); app by role
(cli -> main -> api -> services -> schemas -> core)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO_ROOT

ROOT = REPO_ROOT


def test_import_contracts_are_kept() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    assert f"{len(contracts['contracts'])} kept, 0 broken" in result.stdout


def test_every_models_library_module_is_under_the_trainer_contract() -> None:
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contract = next(c for c in config["tool"]["importlinter"]["contracts"]
                    if c.get("forbidden_modules") == ["models.train"])
    library = {f"models.{p.stem}" for p in (ROOT / "models").glob("*.py") if p.stem != "__init__"}
    library |= {f"models.{p.name}" for p in (ROOT / "models").iterdir()
                if p.is_dir() and p.name not in ("train", "__pycache__") and (p / "__init__.py").is_file()}
    assert library == set(contract["source_modules"])
