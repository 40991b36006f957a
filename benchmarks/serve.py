"""Throughput of the served model, with BentoML's adaptive batching and without.

    python benchmarks/serve.py [--bento TAG] [--image PHOTO] [--clients 8] [--seconds 30]
    python benchmarks/serve.py --url http://127.0.0.1:3000 [...]   # a server already running

Without ``--url`` it serves the Bento (default: the tag in ``models/bento.json``) twice on a
free port, with ``BARSEG_BATCHING=1`` and ``=0``. Each run warms up (BentoML's dispatcher
first fits its latency model on about a dozen single calls), then ``--clients`` clients post
the photo to ``/predict`` back to back for ``--seconds``. Reports requests/s, p50/p95
latency of the answered requests, refusals by status (BentoML answers 503 when a request
would wait longer than ``serve.max_latency_ms``) and the mean number of images per model
call (BentoML's ``bentoml_service_adaptive_batch_size`` on ``/metrics``; without batching
every call is one image and BentoML records none).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from barseg.serve.server import serving

WARMUP_REQUESTS = 12  # BentoML's dispatcher fits its latency model on about this many single calls
BATCH_METRIC = re.compile(r'^bentoml_service_adaptive_batch_size_(sum|count)\{[^}]*method_name="detect"[^}]*\} (\S+)$')


def default_image(test: Path = Path("data/processed/test.json")) -> Path:
    """The first test-split photo with a barcode."""
    coco = json.loads(test.read_text())
    annotated = {a["image_id"] for a in coco["annotations"]}
    first = next(img for img in coco["images"] if img["id"] in annotated)
    return test.parent / "images" / first["file_name"]


def batch_totals(url: str) -> tuple[float, float]:
    """(images, model calls) so far, from BentoML's adaptive batch size histogram."""
    totals = {"sum": 0.0, "count": 0.0}
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        match = BATCH_METRIC.match(line)
        if match:
            totals[match[1]] += float(match[2])
    return totals["sum"], totals["count"]


async def load(
    url: str, photo: bytes, name: str, clients: int, seconds: float, requests: int | None = None
) -> tuple[list[float], Counter[int]]:
    """``clients`` concurrent clients posting back to back until ``seconds`` have passed (or
    ``requests`` were sent): the latency of each answered request (s), the count of every
    status."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    deadline = time.perf_counter() + seconds
    sent = 0
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as http:

        async def client() -> None:
            nonlocal sent
            while time.perf_counter() < deadline and (requests is None or sent < requests):
                sent += 1
                start = time.perf_counter()
                response = await http.post("/predict", files={"image": (name, photo)})
                statuses[response.status_code] += 1
                if response.status_code == 200:
                    latencies.append(time.perf_counter() - start)

        await asyncio.gather(*(client() for _ in range(clients)))
    return latencies, statuses


def measure(url: str, photo: bytes, name: str, clients: int, seconds: float) -> dict[str, Any]:
    asyncio.run(load(url, photo, name, clients, seconds, requests=WARMUP_REQUESTS + 2 * clients))
    images_before, calls_before = batch_totals(url)
    start = time.perf_counter()
    latencies, statuses = asyncio.run(load(url, photo, name, clients, seconds))
    elapsed = time.perf_counter() - start
    images, calls = batch_totals(url)
    ms = np.asarray(latencies) * 1000
    return {
        "requests_per_s": round(len(latencies) / elapsed, 2),
        "answered": len(latencies),
        "refused": {str(k): v for k, v in sorted(statuses.items()) if k != 200},
        "p50_ms": round(float(np.percentile(ms, 50)), 1) if len(ms) else None,
        "p95_ms": round(float(np.percentile(ms, 95)), 1) if len(ms) else None,
        "images_per_call": round((images - images_before) / (calls - calls_before), 2)
        if calls > calls_before
        else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="measure this running server instead of starting the Bento")
    parser.add_argument("--bento", help="Bento tag to serve; default: the tag in models/bento.json")
    parser.add_argument("--image", type=Path, help="photo to post; default: the first test photo with a barcode")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--out", type=Path, help="also write the results here as JSON")
    args = parser.parse_args()
    image = args.image or default_image()
    photo = image.read_bytes()
    results: dict[str, dict[str, Any]] = {}
    if args.url:
        results["as served"] = measure(args.url.rstrip("/"), photo, image.name, args.clients, args.seconds)
    else:
        bento = args.bento or json.loads(Path("models/bento.json").read_text())["tag"]
        with tempfile.TemporaryDirectory() as logs:
            for mode, flag in (("batching", "1"), ("no batching", "0")):
                log = Path(logs) / f"serve-{flag}.log"
                with serving(bento, log, env={"BARSEG_BATCHING": flag}) as url:
                    results[mode] = measure(url, photo, image.name, args.clients, args.seconds)
                print(f"{mode}: {json.dumps(results[mode])}", flush=True)
    print(f"\n{image} ({len(photo) / 1e3:.0f} kB), {args.clients} clients, {args.seconds:.0f} s each")
    print(f"{'mode':<12} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'img/call':>8}  refused")
    for mode, r in results.items():
        print(
            f"{mode:<12} {r['requests_per_s']:>7} {r['p50_ms'] or '-':>8} {r['p95_ms'] or '-':>8} "
            f"{r['images_per_call'] or '-':>8}  {r['refused'] or '-'}"
        )
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
