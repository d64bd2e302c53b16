"""Held-out quality of image → phenotype retrieval through the service (issue 19): PneumoniaMNIST test images
posted to ``POST /retrieval/image`` of a real uvicorn server whose model was trained through ``POST /jobs``.

Run from the repository root::

    .venv/bin/python benchmarks/retrieval_quality.py                       # temporary home, train, evaluate
    .venv/bin/python benchmarks/retrieval_quality.py --home H --model ID   # a built home and a registered model
    .venv/bin/python benchmarks/retrieval_quality.py --json out.json --markdown out.md

1. **Home**: ``--home`` reuses a built ``PHENOKG_HOME`` (its embedded database started if it is not running);
   otherwise a temporary one gets ``phenokg db start``, ``phenokg kg build`` and ``phenokg evidence import-npz``
   of ``../shared/data/pneumoniamnist.npz`` (train and val only: the test split never enters the graph).
2. **Model**: ``uvicorn app.main:create_app --factory`` on 127.0.0.1; a ``clip`` job is submitted to ``POST /jobs``
   (fine captions, 64 px, 8 epochs, augmentation, frozen text tower: the recipe with the lowest grounding log
   loss on the val split of those tried; ``--epochs`` etc. override, ``--model ID`` skips
   training), followed on ``GET /jobs/{id}`` and activated with ``POST /models/{id}/activate`` (timed).
3. **Queries**: every test image (a PNG made in memory) to ``POST /retrieval/image?k=100&findings=5&evidence=9``,
   one at a time (client-side latency), then 20 synthetic non-X-ray images (noise, gradients, checkerboards).
4. **Metrics**: top finding accuracy (``findings[0]``), AUROC and ECE of the *Pneumonia* (HP:0002090)
   probability, top-5 phenotype precision against the finding's defining and typical ids closed upwards, ECE over
   every (image, phenotype) pair with a known truth (present: that closure; absent: the finding's excluded ids and
   their descendants), answers outside the vocabulary, the in-domain share, latency.
5. **Baselines**, same model directory loaded in-process, same test images: the majority finding of each answer's
   9 nearest evidence images; a logistic-regression probe on the model's image embeddings of the train split (and
   :func:`models.train.clip_eval.linear_probe` on the image tower's pooled features); the plain prompts
   "Chest radiograph showing pneumonia." vs "… no finding." (and the pack's fine prompt ensembles).

Progress goes to stderr; the Markdown table, the machine line, the command and the model to stdout (and
``--markdown``); every figure and a few full answers to ``--json``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

import httpx
import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import free_port, load_average, machine_line, percentile, progress, stop_child
from _retrieval_metrics import (
    FINDINGS,
    PNEUMONIA,
    accuracy,
    auroc,
    build_truth,
    ece,
    evaluate,
    non_xray_images,
    probability_of,
    report,
)

ROOT = Path(__file__).resolve().parents[1]
NPZ = ROOT.parent / "shared" / "data" / "pneumoniamnist.npz"
DATASET: Final = "pneumoniamnist"
PROMPTS: Final = {0: "Chest radiograph showing no finding.", 1: "Chest radiograph showing pneumonia."}
QUERY: Final = {"k": 100, "findings": 5, "evidence": 9}
TERMINAL: Final = ("succeeded", "failed", "cancelled")

say = progress("retrieval_quality")


class ServiceError(RuntimeError):
    """A request the service answered with an unexpected status (request, status and body kept)."""


def _env(home: Path) -> dict[str, str]:
    drop = ("PHENOKG_BOLT_PORT", "PHENOKG_HTTP_PORT", "PHENOKG_CLIP_MODEL")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEO4J_") and k not in drop}
    env.update({"PHENOKG_HOME": str(home), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
    return env


def phenokg(home: Path, *args: str, timeout: float = 1800) -> str:
    say("$ phenokg " + " ".join(args))
    out = subprocess.run([sys.executable, "-m", "app.cli.main", *args], env=_env(home), cwd=ROOT, capture_output=True,
                         text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"phenokg {' '.join(args)} failed ({out.returncode}): {out.stderr.strip()[-2000:]}")
    return out.stdout


def prepare_home(home: Path, build: bool) -> bool:
    """Start the embedded database unless it runs (True: this script started it); build and import if asked."""
    status = subprocess.run([sys.executable, "-m", "app.cli.main", "db", "status", "--json"], env=_env(home), cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    started = status.returncode != 0 or not json.loads(status.stdout or "{}").get("running")
    if started:
        phenokg(home, "db", "start")
    if build:
        phenokg(home, "kg", "build", "--quiet")
        labels = ",".join(f"{k}={v}" for k, v in FINDINGS.items())
        out = phenokg(home, "evidence", "import-npz", str(NPZ), "--labels", labels, "--license", "CC BY 4.0",
                      "--dataset", DATASET, "--quiet")
        say(f"imported: {out.strip()[-400:]}")
    return started


def call(client: httpx.Client, method: str, path: str, expected: int, **kwargs: Any) -> Any:
    """One request; anything but ``expected`` raises :class:`ServiceError` with the request, status and body."""
    r = client.request(method, path, **kwargs)
    if r.status_code != expected:
        raise ServiceError(f"{method} {r.request.url} answered {r.status_code} (expected {expected}): "
                           f"{r.text[:3000]}")
    return r.json()


class Api:
    """``uvicorn app.main:create_app --factory`` on a free loopback port with ``PHENOKG_HOME`` set."""

    def __init__(self, home: Path, log: Path) -> None:
        self.home, self.url = home, f"http://127.0.0.1:{free_port()}"
        self._log = log.open("wb")
        cmd = [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory", "--host", "127.0.0.1",
               "--port", self.url.rsplit(":", 1)[1], "--log-level", "warning"]
        say(f"starting the API on {self.url}; log {log}")
        self.proc = subprocess.Popen(cmd, env=_env(home), cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT)

    def client(self, timeout: float = 600) -> httpx.Client:
        """Wait for ``GET /health`` 200, then a client with the write token (``PHENOKG_API_TOKEN`` or the home's)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the API exited with {self.proc.returncode}; see {self._log.name}")
            try:
                if httpx.get(f"{self.url}/health", timeout=10).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the API was not healthy within {timeout:.0f} s; see {self._log.name}")
            time.sleep(0.5)
        token = os.environ.get("PHENOKG_API_TOKEN") or (self.home / "api-token").read_text(encoding="utf-8").strip()
        return httpx.Client(base_url=self.url, timeout=300, headers={"Authorization": f"Bearer {token}"})

    def stop(self, failed: bool = False) -> None:
        stop_child(self.proc, say, timeout=60)
        self._log.close()
        if failed:
            lines = Path(self._log.name).read_text(encoding="utf-8", errors="replace").splitlines()
            say("the API's log ends:\n" + "\n".join(lines[-40:]))


def train(client: httpx.Client, config: dict[str, Any], timeout: float) -> tuple[str, dict[str, Any]]:
    """Submit a clip job, follow it with a progress bar, return ``(model id, final job)``."""
    job = call(client, "POST", "/jobs", 202, json={"kind": "clip", "config": config})
    say(f"job {job['id']} submitted: {json.dumps(config)}")
    deadline = time.monotonic() + timeout
    try:
        with tqdm(total=100, desc="training job", unit="%", file=sys.stderr, mininterval=1) as bar:
            while job["status"] not in TERMINAL:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"job {job['id']} did not finish within {timeout:.0f} s")
                time.sleep(2)
                job = call(client, "GET", f"/jobs/{job['id']}", 200)
                bar.update(round(100 * job["progress"]) - bar.n)
                loss = job["metrics"].get("loss", job["metrics"].get("total"))
                bar.set_postfix_str(f"{job['status']} step {job['step']}/{job['total_steps']}"
                                    + (f" loss {loss:.3f}" if loss is not None else ""))
    except BaseException:
        if job["status"] not in TERMINAL:
            client.post(f"/jobs/{job['id']}/cancel")
        raise
    if job["status"] != "succeeded" or not job["model_version"]:
        raise ServiceError(f"job {job['id']} {job['status']}: {job['error']}\n" + "\n".join(job["log_tail"][-30:]))
    return str(job["model_version"]), job


def png(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def query_all(client: httpx.Client, images: list[bytes], desc: str) -> tuple[list[dict[str, Any]], list[float]]:
    """Post each image (sequentially); the answers and client-side latencies (ms)."""
    answers, latencies = [], []
    for i, data in enumerate(tqdm(images, desc=desc, unit="image", file=sys.stderr, mininterval=1)):
        t0 = time.perf_counter()
        answer = call(client, "POST", "/retrieval/image", 200, params=QUERY,
                      files={"file": (f"{desc}-{i}.png", data, "image/png")})
        latencies.append((time.perf_counter() - t0) * 1000.0)
        answers.append(answer)
    return answers, latencies


def disease_sets(client: httpx.Client, finding: str) -> Any:
    """The finding's sets as training sees them (aspect P; most frequent first, then name)."""
    from models.types import DiseaseSets

    d = call(client, "GET", f"/diseases/{finding}", 200)

    def ordered(rows: list[dict[str, Any]]) -> tuple[tuple[str, str], ...]:
        rows = [r for r in rows if (r.get("aspect") or "P") == "P"]
        rows.sort(key=lambda r: (-(r["frequency"] if r["frequency"] is not None else -1.0),
                                 str(r["name"] or r["id"]).casefold(), r["id"]))
        return tuple((r["id"], str(r["name"] or r["id"])) for r in rows)

    return DiseaseSets(d["id"], d["name"], ordered(d["typical"]), ordered(d["excluded"]))


def baselines(model_path: str, train_images: np.ndarray, train_labels: np.ndarray, test_images: np.ndarray,
              test_labels: np.ndarray, classes: dict[int, Any]) -> dict[str, Any]:
    """Probe and zero-shot baselines with the served model directory loaded in-process."""
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from models.clip_files import load_clip_model, model_image_size
    from models.images import to_image_tensor
    from models.serving import encode_texts
    from models.train.clip_eval import linear_probe, zero_shot_accuracy

    say(f"baselines: loading {model_path} in-process")
    model, size = load_clip_model(model_path, "cpu"), model_image_size(model_path)
    channels = int(model.image_encoder.mean.shape[1])

    def tensors(arrays: np.ndarray) -> torch.Tensor:
        return torch.stack([to_image_tensor(a, size) for a in arrays]).expand(-1, channels, -1, -1).contiguous()

    with torch.no_grad():
        x_train, x_test = tensors(train_images), tensors(test_images)
        emb_train = torch.cat([model.encode_image(x_train[i:i + 256]) for i in range(0, len(x_train), 256)])
        emb_test = torch.cat([model.encode_image(x_test[i:i + 256]) for i in range(0, len(x_test), 256)])
        text = encode_texts(model, [PROMPTS[0], PROMPTS[1]], "cpu")
        sims = (emb_test @ text.T).numpy()
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000, random_state=0))
    clf.fit(emb_train.numpy(), train_labels)
    probe_p = clf.predict_proba(emb_test.numpy())[:, 1]
    y = test_labels.tolist()
    truth = [FINDINGS[int(v)] for v in y]
    say("baselines: pooled-feature linear probe and fine prompt ensembles")
    pooled = linear_probe(model.image_encoder, x_train, train_labels.tolist(), x_test, y)
    fine = zero_shot_accuracy(model, x_test, y, classes, granularity="fine")
    zs_score = sims[:, 1] - sims[:, 0]
    return {
        "probe": {"accuracy": accuracy([FINDINGS[int(p >= 0.5)] for p in probe_p], truth),
                  "auroc": auroc(probe_p.tolist(), y), "ece": ece(probe_p.tolist(), y), "train_n": len(train_labels)},
        "zero_shot": {"accuracy": accuracy([FINDINGS[int(s > 0)] for s in zs_score], truth),
                      "auroc": auroc(zs_score.tolist(), y), "prompts": PROMPTS},
        "pooled_probe": pooled, "zero_shot_fine_ensembles": fine, "image_size": size,
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, help="an already built PHENOKG_HOME (default: build a temporary one)")
    ap.add_argument("--keep-home", action="store_true", help="keep the temporary home (its path is printed)")
    ap.add_argument("--model", help="a registered clip model id: skip training")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--no-augment", dest="augment", action="store_false",
                    help="train without the affine / exposure jitter (augment is the recipe chosen on val)")
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--captions", default="fine")
    ap.add_argument("--text-layers", type=int, default=0, help="text_trainable_layers")
    ap.add_argument("--eval-split", default="val")
    ap.add_argument("--job-config", default="{}", help="more POST /jobs config keys, as a JSON object")
    ap.add_argument("--train-timeout", type=float, default=3600)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--markdown", type=Path)
    args = ap.parse_args(argv)
    config = {"source": DATASET, "captions": args.captions, "image_size": args.image_size, "epochs": args.epochs,
              "batch_size": args.batch_size, "lr": args.lr, "text_trainable_layers": args.text_layers,
              "eval_split": args.eval_split, "augment": args.augment, **json.loads(args.job_config)}
    import torch

    from kg.ingest.xray_pack import load_pack

    machine = f"{machine_line()}, torch {torch.__version__} (load average at start {load_average()})"
    temp = Path(tempfile.mkdtemp(prefix="rq-"))
    home = args.home or temp / "home"
    data = np.load(NPZ)
    test_images, test_labels = data["test_images"], data["test_labels"].reshape(-1)
    pack = load_pack()
    result: dict[str, Any] = {"command": shlex.join([".venv/bin/python", "benchmarks/retrieval_quality.py", *argv]),
                              "machine": machine, "config": None if args.model else config, "query": QUERY}
    started_db = False
    try:
        started_db = prepare_home(home, build=args.home is None)
        api = Api(home, temp / "api.log")
        try:
            client = api.client()
            if args.model:
                model_id = args.model
            else:
                t0 = time.perf_counter()
                model_id, result["job"] = train(client, config, args.train_timeout)
                result["train_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            call(client, "POST", f"/models/{model_id}/activate", 200)
            result["activation_s"] = time.perf_counter() - t0
            say(f"activated {model_id} in {result['activation_s']:.2f} s")
            warm = [png(a) for a in data["train_images"][:3]]
            first, _ = query_all(client, warm, "warm-up")
            if first[0]["model"]["id"] != model_id:
                raise ServiceError(f"after activating {model_id} the answer came from {first[0]['model']}")
            result["model"], result["device"] = first[0]["model"], first[0]["device"]
            model_path = call(client, "GET", f"/models/{model_id}", 200)["path"]
            answers, latencies = query_all(client, [png(a) for a in test_images], "test")
            ood_kinds, ood_png = zip(*non_xray_images(), strict=True)
            ood, _ = query_all(client, list(ood_png), "non-x-ray")
            wanted = {h["id"] for a in answers for h in a["phenotypes"]}
            for f in FINDINGS.values():
                wanted |= {*pack.finding(f).hpo, *pack.finding(f).typical_ids}
            ancestors = {t: frozenset(i["id"] for i in call(client, "GET", f"/terms/{t}/ancestors", 200,
                                                            params={"limit": 1000})["items"]) for t in sorted(wanted)}
            classes = {k: disease_sets(client, f) for k, f in FINDINGS.items()}
        except BaseException:
            api.stop(failed=True)
            raise
        api.stop()
        truths = {f: build_truth([*pack.finding(f).hpo, *pack.finding(f).typical_ids], pack.finding(f).excluded_ids,
                                 lambda t: ancestors.get(t, frozenset())) for f in FINDINGS.values()}
        result["service"] = evaluate(answers, test_labels, truths, ancestors)
        result["latency_ms"] = {"p50": percentile(latencies, 0.5), "p95": percentile(latencies, 0.95),
                                "n": len(latencies)}
        result["ood"] = {"n": len(ood), "out_of_domain": float(np.mean([not a["in_domain"] for a in ood])),
                         "by_kind": {k: [a["in_domain"] for a, kk in zip(ood, ood_kinds, strict=True) if kk == k]
                                     for k in dict.fromkeys(ood_kinds)},
                         "domain_similarity": [a.get("domain_similarity") for a in ood]}
        result["baselines"] = baselines(model_path, data["train_images"], data["train_labels"].reshape(-1),
                                        test_images, test_labels, classes)
        result["examples"] = [answers[i] for c in FINDINGS for i in np.flatnonzero(test_labels == c)[:3]]
        result["per_image"] = [{"label": int(y), "top": a["findings"][0]["id"] if a["findings"] else None,
                                "p_pneumonia": probability_of(a["phenotypes"], PNEUMONIA), "in_domain": a["in_domain"],
                                "domain_similarity": a.get("domain_similarity"), "ms": round(ms, 1),
                                "probability": a["findings"][0]["probability"] if a["findings"] else None}
                               for a, y, ms in zip(answers, test_labels, latencies, strict=True)]
        text = report(result)
        print(text)
        if args.markdown:
            args.markdown.write_text(text + "\n", encoding="utf-8")
        if args.json:
            args.json.write_text(json.dumps(result, indent=1, default=str) + "\n", encoding="utf-8")
        return 0
    finally:
        if started_db:
            try:
                phenokg(home, "db", "stop", timeout=120)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                say(f"stopping the database failed: {exc}")
        if args.keep_home and args.home is None:
            say(f"kept the home {home}")
        else:
            shutil.rmtree(temp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
