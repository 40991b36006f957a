"""The service under sustained load and abuse, with BentoML's adaptive batching and without.

    python -m benchmarks.load [--bento TAG] [--clients 16] [--seconds 60] [--bad-every 4] [--out metrics/load.json]
    python -m benchmarks.load --url http://127.0.0.1:3000 [...]   # a server already running

Without ``--url`` it serves the packaged Bento (default: the tag in ``models/bento.json``) on
127.0.0.1, once with ``BARSEG_BATCHING=1`` and once with ``=0``. Each run warms up (BentoML's
dispatcher first fits its latency model on about a dozen single calls), then ``--clients``
clients post back to back for ``--seconds``: real photos from the registry of evaluation sets
(``params.yaml`` ``evaluate.extra_sets``; the synthetic test split where none is present), and
every ``--bad-every``-th request one case of the bad-input matrix the service tests use
(``tests/serve/conftest.py``; hence ``-m`` from the repository root). It reports requests/s, p50/p99 latency of the good requests
answered, answers by status for good and bad requests, the good requests that failed (any
answer but 200, apart from 503: BentoML's documented shedding of a request that would wait
longer than ``serve.max_latency_ms``), images per model call, and the peak RSS of the server
and all its workers, sampled every 0.25 s. Then a probe: a 6000 x 6000 photo with
``confidence_threshold`` 0 and at the floor, its answer, seconds and the server's RSS growth.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import re
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import psutil
from tests.serve.conftest import BadRequest, bad_requests

from barseg.data.formats import load_records
from barseg.metrics.sets import evaluation_sets
from barseg.params import load_section
from barseg.serve.package import settings_from_params
from barseg.serve.server import serving

WARMUP_REQUESTS = 12  # BentoML's dispatcher fits its latency model on about this many single calls
SHED = 503  # BentoML's answer to a request that would wait past max_latency_ms: documented load shedding
BATCH_METRIC = re.compile(r'^bentoml_service_adaptive_batch_size_(sum|count)\{[^}]*method_name="detect"[^}]*\} (\S+)$')
BIG_SIDE = 6000


@dataclass(frozen=True)
class Photo:
    name: str
    data: bytes


def real_photos(count: int, test: Path = Path("data/processed/test.json")) -> list[Photo]:
    """Up to ``count`` photos spread over the registry's COCO sets, or the synthetic test split."""
    sets, skipped = evaluation_sets(load_section("evaluate").extra_sets)
    print("\n".join(skipped))
    paths = [[r.path for r in load_records(s.coco)] for s in sets if s.coco is not None]
    if not paths:
        paths = [[r.path for r in load_records(test)]]
    spread = [p for group in itertools.zip_longest(*paths) for p in group if p is not None][:count]
    return [Photo(p.name, p.read_bytes()) for p in spread]


def batch_totals(url: str) -> tuple[float, float]:
    """(images, model calls) so far, from BentoML's adaptive batch size histogram."""
    totals = {"sum": 0.0, "count": 0.0}
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        match = BATCH_METRIC.match(line)
        if match:
            totals[match[1]] += float(match[2])
    return totals["sum"], totals["count"]


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants (the server and its workers)."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


@contextmanager
def rss_peak(pid: int | None) -> Iterator[dict[str, int]]:
    """``{"before", "peak"}`` bytes of the server tree, sampled every 0.25 s while inside."""
    sample = {"before": tree_rss(pid) if pid else 0, "peak": 0}
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.25):
            sample["peak"] = max(sample["peak"], tree_rss(pid) if pid else 0)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield sample
    finally:
        done.set()
        watcher.join()


@dataclass
class Tally:
    good_latencies: list[float] = field(default_factory=list)
    good: Counter[int] = field(default_factory=Counter)
    bad: Counter[int] = field(default_factory=Counter)
    bad_unexpected: Counter[str] = field(default_factory=Counter)  # case name: answered other than its status


async def load(
    url: str,
    photos: list[Photo],
    bad: list[BadRequest],
    clients: int,
    seconds: float,
    bad_every: int,
    requests: int | None = None,
) -> Tally:
    """``clients`` concurrent clients posting back to back until ``seconds`` have passed (or
    ``requests`` were sent); every ``bad_every``-th request is a bad one (0: none)."""
    tally = Tally()
    deadline = time.perf_counter() + seconds
    counter = itertools.count()
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as http:

        async def client() -> None:
            while time.perf_counter() < deadline:
                n = next(counter)
                if requests is not None and n >= requests:
                    return
                if bad_every and bad and n % bad_every == bad_every - 1:
                    case = bad[(n // bad_every) % len(bad)]
                    response = await http.post("/predict", **case.request)
                    tally.bad[response.status_code] += 1
                    if response.status_code != case.status:
                        tally.bad_unexpected[case.name] += 1
                    continue
                photo = photos[n % len(photos)]
                start = time.perf_counter()
                response = await http.post("/predict", files={"image": (photo.name, photo.data)})
                tally.good[response.status_code] += 1
                if response.status_code == 200:
                    tally.good_latencies.append(time.perf_counter() - start)

        await asyncio.gather(*(client() for _ in range(clients)))
    return tally


def measure(
    url: str, pid: int | None, photos: list[Photo], bad: list[BadRequest], clients: int, seconds: float, bad_every: int
) -> dict[str, Any]:
    asyncio.run(load(url, photos, [], clients, seconds, 0, requests=WARMUP_REQUESTS + 2 * clients))
    images_before, calls_before = batch_totals(url)
    start = time.perf_counter()
    with rss_peak(pid) as rss:
        tally = asyncio.run(load(url, photos, bad, clients, seconds, bad_every))
    elapsed = time.perf_counter() - start
    images, calls = batch_totals(url)
    ms = np.asarray(tally.good_latencies) * 1000
    return {
        "good_per_s": round(len(ms) / elapsed, 2),
        "requests_per_s": round((sum(tally.good.values()) + sum(tally.bad.values())) / elapsed, 2),
        "p50_ms": round(float(np.percentile(ms, 50)), 1) if len(ms) else None,
        "p99_ms": round(float(np.percentile(ms, 99)), 1) if len(ms) else None,
        "good_by_status": {str(k): v for k, v in sorted(tally.good.items())},
        "good_failed": sum(v for k, v in tally.good.items() if k not in (200, SHED)),
        "bad_by_status": {str(k): v for k, v in sorted(tally.bad.items())},
        "bad_answered_otherwise": dict(tally.bad_unexpected),
        "images_per_call": round((images - images_before) / (calls - calls_before), 2)
        if calls > calls_before
        else None,
        "peak_rss_mb": round(rss["peak"] / 2**20),
    }


def big_photo(photo: Photo) -> bytes:
    """``photo`` stretched to BIG_SIDE x BIG_SIDE, as a JPEG."""
    image = cv2.imdecode(np.frombuffer(photo.data, np.uint8), cv2.IMREAD_COLOR)
    big = cv2.resize(image, (BIG_SIDE, BIG_SIDE), interpolation=cv2.INTER_LINEAR)
    ok, encoded = cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return encoded.tobytes()


def probe_big_photo(url: str, pid: int | None, data: bytes, min_threshold: float) -> dict[str, Any]:
    """One request at a time: threshold 0 (below the floor) and at the floor, decoding on."""
    out = {}
    for threshold in ("0", str(min_threshold)):
        with rss_peak(pid) as rss:
            start = time.perf_counter()
            response = httpx.post(
                f"{url}/predict",
                files={"image": ("big.jpg", data), "confidence_threshold": (None, threshold), "decode": (None, "true")},
                timeout=300,
            )
            seconds = time.perf_counter() - start
        body = response.json()
        out[f"threshold {threshold}"] = {
            "status": response.status_code,
            "seconds": round(seconds, 2),
            "rss_growth_mb": round(max(0, rss["peak"] - rss["before"]) / 2**20),
            "detections": body.get("num_detections") if isinstance(body, dict) else None,
            "error": body.get("error") if isinstance(body, dict) else None,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="measure this running server instead of starting the Bento (no RSS figures)")
    parser.add_argument("--bento", help="Bento tag to serve; default: the tag in models/bento.json")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--bad-every", type=int, default=4, help="every Nth request is a bad one; 0: none")
    parser.add_argument("--photos", type=int, default=24, help="real photos to cycle through")
    parser.add_argument("--modes", nargs="+", default=["batching", "no batching"], choices=["batching", "no batching"])
    parser.add_argument("--out", type=Path, help="also write the results here as JSON")
    args = parser.parse_args()
    photos = real_photos(args.photos)
    _, settings = settings_from_params(load_section("serve"))
    jpeg = next((p for p in photos if p.data[:2] == b"\xff\xd8"), photos[0])
    bad = bad_requests(jpeg.data, settings)
    big = big_photo(jpeg)
    print(f"{len(photos)} photos ({sum(len(p.data) for p in photos) / 1e6:.1f} MB), {len(bad)} bad-input cases")
    results: dict[str, Any] = {}
    if args.url:
        url = args.url.rstrip("/")
        results["as served"] = measure(url, None, photos, bad, args.clients, args.seconds, args.bad_every)
        results["as served"]["big photo"] = probe_big_photo(url, None, big, settings.min_threshold)
    else:
        bento = args.bento or json.loads(Path("models/bento.json").read_text())["tag"]
        with tempfile.TemporaryDirectory() as logs:
            for mode in args.modes:
                flag = "1" if mode == "batching" else "0"
                with serving(bento, Path(logs) / f"serve-{flag}.log", env={"BARSEG_BATCHING": flag}) as server:
                    results[mode] = measure(
                        server.url, server.pid, photos, bad, args.clients, args.seconds, args.bad_every
                    )
                    results[mode]["big photo"] = probe_big_photo(server.url, server.pid, big, settings.min_threshold)
                print(f"{mode}: {json.dumps(results[mode])}", flush=True)
    print(f"\n{args.clients} clients, {args.seconds:.0f} s each, every {args.bad_every}th request bad")
    print(
        f"{'mode':<12} {'good/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'img/call':>8} {'RSS MB':>7}  good failed  good  bad"
    )
    for mode, r in results.items():
        print(
            f"{mode:<12} {r['good_per_s']:>7} {r['p50_ms'] or '-':>8} {r['p99_ms'] or '-':>8} "
            f"{r['images_per_call'] or '-':>8} {r['peak_rss_mb']:>7}  {r['good_failed']:>11}  "
            f"{r['good_by_status']}  {r['bad_by_status']}"
        )
        for threshold, probe in r["big photo"].items():
            print(f"  {BIG_SIDE}x{BIG_SIDE}, {threshold}: {probe}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
