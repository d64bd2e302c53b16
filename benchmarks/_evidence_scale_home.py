"""The evidence scale benchmark's homes and database (``benchmarks/evidence_scale.py``): the phenokg CLI on a
home, copying the base home, starting and stopping its embedded database, graph counts and disk sizes.

Imported by ``benchmarks/evidence_scale.py``, which puts ``benchmarks/`` on ``sys.path``."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import evidence_scale_data as gen
from _common import cli_env, progress

ROOT = Path(__file__).resolve().parents[1]
TOP_CANDIDATES = 5
say = progress("evidence_scale")


def phenokg(home: Path, *args: str, timeout: float = 3600, show: bool = False) -> str:
    """Run the CLI on ``home``; ``show``: its stderr (progress bars) goes to ours."""
    cmd = [sys.executable, "-m", "app.cli.main", *args]
    say(f"$ PHENOKG_HOME={home} phenokg " + " ".join(args))
    out = subprocess.run(cmd, env=cli_env(home), cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=None if show else subprocess.PIPE, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"phenokg {' '.join(args)} failed ({out.returncode}): {(out.stderr or '').strip()[-2000:]}")
    return out.stdout


def db_state(home: Path) -> dict[str, Any] | None:
    """The running embedded database of ``home`` (its state file), or None."""
    from kg.store.embedded import pid_alive

    path = home / "db" / "server.json"
    with contextlib.suppress(OSError, ValueError):
        state = json.loads(path.read_text())
        if pid_alive(int(state["pid"])):
            return dict(state)
    return None


def db_start(home: Path) -> int:
    """Start the embedded database of ``home`` unless it runs; its JVM pid."""
    if db_state(home) is None:
        phenokg(home, "db", "start", timeout=300)
    state = db_state(home)
    if state is None:
        raise RuntimeError(f"the database of {home} did not start (see {home}/db/server.log)")
    return int(state["pid"])


def db_stop(home: Path) -> None:
    """Stop the embedded database of ``home`` if it runs."""
    if db_state(home) is not None:
        phenokg(home, "db", "stop", timeout=300)


def disk_bytes(path: Path) -> dict[str, int]:
    """Allocated bytes (``du``) and file count under ``path``."""
    total = files = 0
    if path.exists():
        for folder, _, names in os.walk(path):
            for name in names:
                with contextlib.suppress(OSError):
                    total += os.lstat(os.path.join(folder, name)).st_blocks * 512
                    files += 1
    return {"bytes": total, "files": files}


def ensure_base_home(base: Path) -> None:
    """Build the full HPO in ``base`` (``phenokg kg build``) unless it holds a graph."""
    if (base / "db" / "databases").is_dir() and any((base / "db" / "databases").iterdir()):
        return
    say(f"{base} holds no graph: building the full HPO there (phenokg kg build, a few minutes)")
    base.mkdir(parents=True, exist_ok=True)
    try:
        phenokg(base, "kg", "build", show=True)
    finally:
        db_stop(base)


def copy_home(base: Path, target: Path) -> None:
    """A fresh copy of ``base`` (its database stopped) at ``target``."""
    if db_state(base) is not None:
        raise SystemExit(f"the database of {base} is running: stop it (PHENOKG_HOME={base} phenokg db stop) so "
                         "its files can be copied consistently")
    if target.exists():
        db_stop(target)
        shutil.rmtree(target)
    say(f"copying {base} to {target}")
    shutil.copytree(base, target, symlinks=True, ignore=shutil.ignore_patterns("server.json"))


@contextlib.contextmanager
def graph_of(home: Path) -> Iterator[Any]:
    """A driver to the running database of ``home`` (never starts one)."""
    from kg.config import GraphSettings
    from kg.store.graph import open_graph

    with open_graph(GraphSettings(**_home_setting(home)), start_embedded=False) as graph:
        yield graph


# Evidence ids are "ev:" + 32 hex digits: 16 id ranges keep each aggregation under ArcadeDB's in-heap limit of
# 500,000 elements per operation (one count(DISTINCT) over 520K ids exceeds it).
_ID_RANGES = [(f"ev:{a}", f"ev:{b}") for a, b in zip("0123456789abcdef", "123456789abcdefg", strict=True)]


def graph_counts(home: Path, *, duplicates: bool = False) -> dict[str, Any]:
    """Evidence nodes, distinct ids, SHOWS and RULES_OUT edges; ``duplicates``: also repeated (evidence, phenotype)
    edges. Distinct ids and repeated edges are counted per id range."""
    with graph_of(home) as graph:
        out: dict[str, Any] = {"evidence": int(graph.read("MATCH (e:Evidence) RETURN count(e) AS n")[0]["n"])}
        out["evidence_ids"] = sum(int(graph.read(
            "MATCH (e:Evidence) WHERE e.id >= $lo AND e.id < $hi RETURN count(DISTINCT e.id) AS n",
            lo=lo, hi=hi)[0]["n"]) for lo, hi in _ID_RANGES)
        for rel in ("SHOWS", "RULES_OUT"):
            out[rel.lower()] = int(graph.read(f"MATCH (:Evidence)-[r:{rel}]->(:Phenotype) RETURN count(r) AS n")[0]
                                   ["n"])
        if duplicates:
            out["repeated_edges"] = sum(int(graph.read(
                "MATCH (e:Evidence)-[r:SHOWS|RULES_OUT]->(p:Phenotype) WHERE e.id >= $lo AND e.id < $hi "
                "WITH e, p, type(r) AS t, count(r) AS c WHERE c > 1 RETURN count(*) AS n", lo=lo, hi=hi)[0]["n"])
                for lo, hi in _ID_RANGES)
    return out


def top_phenotype(home: Path, data: Path) -> dict[str, Any]:
    """The phenotype with the most linked evidence (both relations) among the generator's ``TOP_CANDIDATES``
    heaviest ones: anchored counts, milliseconds each, where one aggregation over every link of a 520K graph
    would scan about a million edges."""
    candidates = [p.id for p in gen.load_phenotypes(data)[:TOP_CANDIDATES]]
    with graph_of(home) as graph:
        rows = graph.read("UNWIND $ids AS id MATCH (p:Phenotype {id: id}) "
                          "RETURN p.id AS id, p.name AS name, COUNT { (p)<-[:SHOWS]-() } AS shows, "
                          "COUNT { (p)<-[:RULES_OUT]-() } AS rules_out", ids=candidates)
    found = [{"id": r["id"], "name": r["name"], "shows": int(r["shows"]), "rules_out": int(r["rules_out"]),
              "items": int(r["shows"]) + int(r["rules_out"])} for r in rows]
    return max(found, key=lambda r: (r["items"], r["id"])) if found else {}


def top_phenotype_started(home: Path, data: Path) -> dict[str, Any]:
    """:func:`top_phenotype`, starting the database of ``home`` first."""
    db_start(home)
    return top_phenotype(home, data)


def _home_setting(home: Path) -> dict[str, Any]:
    """``GraphSettings`` keyword arguments naming ``home`` (settings are read by their aliases only)."""
    return {"PHENOKG_HOME": str(home)}
