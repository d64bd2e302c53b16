"""``phenokg rank FILE``: rank diseases for many cases, JSONL in, JSONL out (in order).

Each input line is one case: ``{"present": [...], "absent": [...]}`` (``absent`` optional; an ``id`` of any
JSON type is echoed back; ``sources``, ``limit`` and ``method`` may override the command-line options per
case). ``--limit`` counts diseases of the one ranked list that mixes every source, not per source. Each
output line is ``{"line": N, ["id": …,] "results": [{"id", "name", "score"}, …], "unknown": [...],
"redirected": {...}}`` — or ``{"line": N, "error": "…"}`` for a bad case, which is also reported on stderr as
``FILE:N: message``; the other cases go on, and the exit code is then 2. Blank lines are skipped. ``-``
reads stdin.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from app.cli.support import graph_connection
from kg.errors import ValidationError

if TYPE_CHECKING:
    from kg.analysis.ranking import RankingIndex

PROGRESS_FROM = 20  # cases; fewer get no progress bar


def _error_text(exc: Exception) -> str:
    from pydantic import ValidationError as PydanticValidationError

    if isinstance(exc, PydanticValidationError):
        parts = []
        for e in exc.errors():
            loc = ".".join(str(x) for x in e.get("loc", ()))
            parts.append(f"{loc}: {e.get('msg', '')}" if loc else str(e.get("msg", "")))
        return "; ".join(parts)
    return str(exc)


def rank_case(index: RankingIndex, raw: str, sources: list[str] | None, limit: int,
              explain: bool, method: str = "likelihood") -> dict[str, Any]:
    """One case line → its output object (raises ValueError / pydantic errors for a bad case)."""
    from app.schemas.ranking import RankRequest

    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"not valid JSON ({exc.msg} at column {exc.colno})") from exc
    if not isinstance(obj, dict):
        raise ValidationError("a case must be a JSON object like {\"present\": [...], \"absent\": [...]}")
    case_id = obj.pop("id", None)
    obj.setdefault("limit", limit)
    if sources is not None:
        obj.setdefault("sources", sources)
    obj.setdefault("explain", explain)
    obj.setdefault("method", method)
    request = RankRequest.model_validate(obj)
    ranked = index.rank_query(request.present, request.absent, sources=request.sources, limit=request.limit,
                              explain=request.explain, method=request.method)
    results: list[dict[str, Any]] = []
    for r in ranked.results:
        item: dict[str, Any] = {"id": r.id, "name": r.name, "score": r.score}
        if r.pooled_with is not None:
            item["pooled_with"] = r.pooled_with
        if r.explanation is not None:
            from dataclasses import asdict

            item["explanation"] = asdict(r.explanation)
        results.append(item)
    out: dict[str, Any] = {}
    if case_id is not None:
        out["id"] = case_id
    out.update({"results": results, "unknown": ranked.unknown, "redirected": ranked.redirected})
    return out


def _lines(file: str) -> Iterator[str]:
    if file == "-":
        yield from sys.stdin
        return
    with Path(file).open(encoding="utf-8") as handle:
        yield from handle



app = typer.Typer()

@app.command("rank")
def rank(
    file: Annotated[str, typer.Argument(help="JSONL file, one case per line: {\"present\": [...], "
                                             "\"absent\": [...]}; '-' for stdin.")],
    source: Annotated[list[str] | None, typer.Option(
        "--source", "-s", help="Only diseases from this source (OMIM, ORPHA, DECIPHER, CXR_PACK); repeatable.")
    ] = None,
    limit: Annotated[int, typer.Option(help="Diseases per case, counted over the one list that mixes every "
                                            "source (OMIM, ORPHA, DECIPHER, CXR_PACK); use --source to rank "
                                            "within some sources only.")] = 10,
    method: Annotated[str, typer.Option(
        help="Score: 'likelihood' (per-term likelihood ratios, the default) or 'ic' (the earlier "
             "information-content score).")] = "likelihood",
    explain: Annotated[bool, typer.Option("--explain", help="Include each disease's explanation.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Rank diseases for each case of a JSONL file: one JSON line out per case, in order.

    The --limit best diseases are taken from one list that mixes all sources; --source restricts it."""
    from tqdm import tqdm

    from kg.analysis.ranking import METHODS, RankingIndex

    if method not in METHODS:
        raise typer.BadParameter(f"{method!r} is not one of {', '.join(METHODS)}", param_hint="--method")
    from kg.repo.snapshots import load_snapshot

    if file != "-" and not Path(file).is_file():
        raise FileNotFoundError(f"{file}: no such file")
    lines = list(_lines(file))
    sources = [s.upper() for s in source] if source else None
    with graph_connection() as graph:
        snapshot = load_snapshot(graph)
    index = RankingIndex.from_snapshot(snapshot)
    cases = [(n, raw) for n, raw in enumerate(lines, start=1) if raw.strip()]
    name = "<stdin>" if file == "-" else file
    failed = 0
    bar = tqdm(total=len(cases), unit="case", file=sys.stderr, disable=quiet or len(cases) < PROGRESS_FROM)
    for n, raw in cases:
        try:
            out: dict[str, Any] = {"line": n, **rank_case(index, raw, sources, limit, explain, method)}
        except (ValueError, TypeError) as exc:  # pydantic and kg ValidationErrors are ValueErrors
            failed += 1
            message = _error_text(exc)
            tqdm.write(f"phenokg: error: {name}:{n}: {message}", file=sys.stderr)
            out = {"line": n, "error": message}
        sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
        bar.update(1)
    bar.close()
    sys.stdout.flush()
    if failed:
        typer.echo(f"phenokg: {failed} of {len(cases)} case(s) failed", err=True)
        raise typer.Exit(2)


