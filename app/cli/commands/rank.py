"""``phenokg rank FILE``: rank diseases for many cases, JSONL in, JSONL out (in order).

Each input line is one case: ``{"present": [...], "absent": [...]}`` or a clinical note ``{"text": "..."}``
(or both; ``absent`` optional; an ``id`` of any JSON type is echoed back; ``sources``, ``limit``, ``method`` and
``group`` may override the command-line options per case). ``phenokg rank --text NOTE.txt`` ranks one note
file. Results are one row per disease (an OMIM entry and its Orphanet twin are one row with
``equivalent_ids``) unless ``--no-group``; ``--limit`` counts rows of the one ranked list that mixes every
source, not per source. Each output line is ``{"line": N, ["id": …,] "results": [{"id", "name", "score"
[, "equivalent_ids", "score_from"]}, …], "unknown": [...], "redirected": {...} [, "mentions": [...]]}`` — or
``{"line": N, "error": "…"}`` for a bad case, which is also reported on stderr as ``FILE:N: message``; the
other cases go on, and the exit code is then 2. Blank lines are skipped. ``-`` reads stdin.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from app.cli.support import graph_connection
from kg.errors import ValidationError

if TYPE_CHECKING:
    from kg.analysis.ranking import RankingIndex
    from kg.text.linker import Linker

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
              explain: bool, method: str = "likelihood", *, group: bool = True,
              linker: Callable[[], Linker] | None = None, names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """One case line → its output object (raises ValueError / pydantic errors for a bad case); ``linker``
    links a case's ``text`` (called only for such a case), ``names`` names the terms of explanations."""
    from app.schemas.ranking import RankRequest
    from app.services.differential import explanation_out, mentions_out, rank_differential

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
    obj.setdefault("group", group)
    request = RankRequest.model_validate(obj)
    differential = rank_differential(index, request, linker or _no_linker)
    ranked, note = differential.ranked, differential.note
    results: list[dict[str, Any]] = []
    for r in ranked.results:
        item: dict[str, Any] = {"id": r.id, "name": r.name, "score": r.score}
        if r.pooled_with is not None:
            item["pooled_with"] = r.pooled_with
        if r.equivalents:
            item["equivalent_ids"] = [{"id": q.id, "name": q.name, "source": q.source, "score": q.score}
                                      for q in r.equivalents]
        if r.score_from is not None:
            item["score_from"] = r.score_from
        if r.explanation is not None:
            item["explanation"] = explanation_out(names or {}, r.explanation, note).model_dump(exclude_none=True)
        results.append(item)
    out: dict[str, Any] = {}
    if case_id is not None:
        out["id"] = case_id
    out.update({"results": results, "unknown": ranked.unknown, "redirected": ranked.redirected})
    if note is not None:
        out["present"], out["absent"] = ranked.present.ids, ranked.absent.ids
        out["mentions"] = [m.model_dump() for m in mentions_out(note)]
    return out


def _no_linker() -> Linker:
    raise ValidationError("this command cannot link text")


def _lines(file: str) -> Iterator[str]:
    if file == "-":
        yield from sys.stdin
        return
    with Path(file).open(encoding="utf-8") as handle:
        yield from handle



app = typer.Typer()

@app.command("rank")
def rank(
    file: Annotated[str | None, typer.Argument(
        help="JSONL file, one case per line: {\"present\": [...], \"absent\": [...]} or {\"text\": \"...\"}; "
             "'-' for stdin.")] = None,
    text: Annotated[Path | None, typer.Option(
        "--text", help="Rank one clinical note read from this file (instead of FILE).")] = None,
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
    group: Annotated[bool, typer.Option("--group/--no-group", help="One row per disease (an OMIM entry and its "
                                        "Orphanet twin together, the default) or every entry its own row.")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Rank diseases for each case of a JSONL file: one JSON line out per case, in order.

    The --limit best diseases are taken from one list that mixes all sources; --source restricts it."""
    from tqdm import tqdm

    from kg.analysis.ranking import METHODS, RankingIndex

    if method not in METHODS:
        raise typer.BadParameter(f"{method!r} is not one of {', '.join(METHODS)}", param_hint="--method")
    from kg.repo.snapshots import load_snapshot
    from kg.text.annotate import linker_from_snapshot

    if (file is None) == (text is None):
        raise typer.BadParameter("give a JSONL FILE or --text NOTE, one of them", param_hint="FILE / --text")
    if text is not None:
        if not text.is_file():
            raise FileNotFoundError(f"{text}: no such file")
        lines = [json.dumps({"id": str(text), "text": text.read_text(encoding="utf-8")})]
        name = str(text)
    else:
        assert file is not None
        if file != "-" and not Path(file).is_file():
            raise FileNotFoundError(f"{file}: no such file")
        lines = list(_lines(file))
        name = "<stdin>" if file == "-" else file
    sources = [s.upper() for s in source] if source else None
    with graph_connection() as graph:
        snapshot = load_snapshot(graph)
    index = RankingIndex.from_snapshot(snapshot)
    linker = functools.cache(lambda: linker_from_snapshot(snapshot))
    cases = [(n, raw) for n, raw in enumerate(lines, start=1) if raw.strip()]
    failed = 0
    bar = tqdm(total=len(cases), unit="case", file=sys.stderr, disable=quiet or len(cases) < PROGRESS_FROM)
    for n, raw in cases:
        try:
            out: dict[str, Any] = {"line": n, **rank_case(index, raw, sources, limit, explain, method, group=group,
                                                          linker=linker, names=snapshot.view.names)}
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


