"""Side by side with what users would pick instead, on every real set, scored by our metrics.

    python benchmarks/compare.py [--model models/model.onnx] [--peers NAME ...] [--max-images 100]
                                 [--timing-images 30] [--out metrics/compare.json]

For our pipeline (ONNX Runtime, the ``Predictor`` the service uses, decoding on, at
``evaluate.threshold``) and for each peer, on every set of the registry (``params.yaml``
``evaluate.extra_sets``; at most ``--max-images`` photos per set, evenly spread): recall and
precision at box IoU >= 0.5, one-to-one (precision left out on recall-only sets), and the
one-to-one decode rate of docs/design.md §6, all by ``barseg.metrics.boxes``; then ms/image p50 with
2 threads (all photos) and 1 thread (``--timing-images`` photos), image decoding included for
everyone. Threads are limited where a peer lets them be (OpenCV, ONNX Runtime sessions,
``OMP_NUM_THREADS``); zxing-cpp and zbar run on one thread anyway; codarascan keeps its own
small pools.

Peers run in their own virtual environments under ``.cache/peers/`` (they conflict with each
other and are not the project's dependencies), created here on first use with the exact
versions of ``PEERS``, through ``benchmarks/peer_worker.py``. A peer that fails to install, or
crashes on a photo, is reported as such in the table and the JSON, never dropped. Writes
``metrics/compare.json`` and ``metrics/compare.md`` (the table the README shows).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from barseg.data.formats import load_records
from barseg.data.images import read_image
from barseg.infer.runtimes import load_predictor
from barseg.metrics.boxes import BoxTally, Found, found_in, read_decode_rate
from barseg.metrics.decoding import expected_texts, load_decode_truth
from barseg.metrics.evaluation import has_texts
from barseg.metrics.sets import EvalSet, evaluation_sets
from barseg.params import load_section

WORKER = Path(__file__).with_name("peer_worker.py")
PEER_HOME = Path(".cache/peers")
STARTUP_SECONDS = 120  # a worker's allowance to load its peer ...
PHOTO_SECONDS = 60  # ... and per photo: still busy after that, it is stopped as hung


@dataclass(frozen=True)
class Peer:
    """A reader or detector as ``peer_worker.py`` runs it, in the venv of ``packages``."""

    name: str
    venv: str
    packages: tuple[str, ...]
    decodes: bool = True  # False: a detector alone, scored on boxes only


BASE = ("numpy==2.4.6", "pillow==12.3.0")
PEERS = (
    Peer("zxing-cpp", "zxing-cpp", ("zxing-cpp==3.1.1", *BASE)),
    Peer("opencv", "opencv", ("opencv-contrib-python-headless==5.1.0.95", *BASE)),
    Peer("pyzbar", "pyzbar", ("pyzbar==0.1.9", *BASE)),  # needs Debian's libzbar0: apt-get install libzbar0
    Peer("arbez-detector", "arbez", ("arbez==0.2.1", *BASE), decodes=False),
    Peer("arbez", "arbez", ("arbez==0.2.1", *BASE)),
    Peer("codarascan-fast", "codarascan", ("codarascan==0.2.1", *BASE)),
    Peer("codarascan-robust", "codarascan", ("codarascan==0.2.1", *BASE)),
)


@dataclass
class Run:
    """What one reader reported: codes per photo, seconds per photo, and the photos it failed on."""

    found: dict[Path, list[Found]] = field(default_factory=dict)
    seconds: dict[Path, float] = field(default_factory=dict)
    failed: dict[Path, str] = field(default_factory=dict)
    error: str | None = None  # the reader could not run at all (install failed, library missing)


def ensure_venv(peer: Peer) -> Path:
    """The peer's python, its venv created with the pinned packages on first use."""
    home = PEER_HOME / peer.venv
    python = home / "bin" / "python"
    stamp = home / "installed.txt"
    wanted = "\n".join(peer.packages)
    if stamp.is_file() and stamp.read_text() == wanted:
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(home)], check=True, capture_output=True)
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", *peer.packages], capture_output=True, text=True, timeout=1800
    )
    if done.returncode:
        raise RuntimeError(f"pip install {' '.join(peer.packages)} failed: {done.stderr.strip()[-400:]}")
    stamp.write_text(wanted)
    return python


def worker_answers(stdout: str) -> tuple[bool, dict[str, dict[str, Any]]]:
    """Whether the worker got ready, and its answers by photo path; other output is ignored."""
    ready, answers = False, {}
    for line in stdout.splitlines():
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(message, dict):
            ready = ready or message.get("ready") is True
            if isinstance(message.get("path"), str):
                answers[message["path"]] = message
    return ready, answers


def run_peer(peer: Peer, paths: list[Path], threads: int) -> Run:
    """The worker over ``paths``. A peer that cannot start is an error of the peer; a crash
    or a hang costs the photo it was on, and the rest run in a fresh worker."""
    run = Run()
    try:
        python = ensure_venv(peer)
    except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
        run.error = f"install: {exc}"
        return run
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads)}
    todo = list(paths)
    while todo:
        command = [str(python), str(WORKER), peer.name, "--threads", str(threads)]
        feed = "\n".join(str(p) for p in todo)
        try:
            done = subprocess.run(
                command,
                input=feed,
                capture_output=True,
                text=True,
                env=env,
                timeout=STARTUP_SECONDS + PHOTO_SECONDS * len(todo),
            )
            stdout, stderr, status = done.stdout, done.stderr, f"exit {done.returncode}"
        except subprocess.TimeoutExpired as exc:
            stdout, stderr, status = _text(exc.stdout), _text(exc.stderr), "timed out"
        ready, answers = worker_answers(stdout)
        if not ready:
            run.error = f"could not start ({status}): {stderr.strip()[-300:]}"
            return run
        for path in todo:
            answer = answers.get(str(path))
            if answer is None:
                continue
            if answer.get("error"):
                run.failed[path] = answer["error"]
                continue
            codes = answer.get("codes", [])
            run.found[path] = [Found.from_corners(c["corners"], c.get("score", 1.0), c.get("text")) for c in codes]
            run.seconds[path] = answer["seconds"]
        left = [p for p in todo if str(p) not in answers]
        if left and status == "exit 0":  # finished without answering them: nothing to retry
            run.failed.update({p: "the worker gave no answer" for p in left})
            break
        if left:  # answers are flushed in order: it died or hung on the first unanswered photo
            run.failed[left[0]] = f"worker {status}: {stderr.strip()[-200:]}"
            left = left[1:]
        todo = left
    return run


def _text(output: bytes | str | None) -> str:
    return output.decode(errors="replace") if isinstance(output, bytes) else output or ""


def run_ours(model: Path, paths: list[Path], threshold: float, threads: int) -> Run:
    predictor = load_predictor(model, threshold=threshold, threads=threads)
    run = Run()
    predictor.predict([read_image(paths[0])], threshold, decode=True)  # warm-up
    for path in paths:
        start = time.perf_counter()
        (prediction,) = predictor.predict([read_image(path)], threshold, decode=True)
        run.seconds[path] = time.perf_counter() - start
        run.found[path] = found_in(prediction, threshold)
    return run


@dataclass(frozen=True)
class SetTruth:
    """What one set lets us score: boxes (COCO) and/or expected texts."""

    eval_set: EvalSet
    boxes: dict[Path, list[tuple[float, float, float, float]]]
    texts: dict[Path, list[str]] | None

    @property
    def paths(self) -> list[Path]:
        return sorted(set(self.boxes) | set(self.texts or {}))


def set_truth(eval_set: EvalSet, max_images: int) -> SetTruth:
    boxes: dict[Path, list[tuple[float, float, float, float]]] = {}
    texts: dict[Path, list[str]] | None = None
    if eval_set.coco is not None:
        records = load_records(eval_set.coco)
        boxes = {r.path: [i.box() for i in r.instances] for r in records}
        texts = expected_texts(records) if has_texts(records) else None
    if eval_set.decode_truth is not None:
        texts = load_decode_truth(eval_set.decode_truth)  # the fuller truth of the two
    paths = sorted(set(boxes) | set(texts or {}))
    keep = set(paths[:: max(1, -(-len(paths) // max_images))][:max_images])
    return SetTruth(
        eval_set,
        {p: b for p, b in boxes.items() if p in keep},
        {p: t for p, t in texts.items() if p in keep} if texts is not None else None,
    )


def rounded(value: float) -> float | None:
    """Three decimals; None for a figure with nothing to count (precision of no reports)."""
    return None if value != value else round(value, 3)


def score(truth: SetTruth, run: Run, decodes: bool) -> dict[str, Any]:
    if run.error:
        return {"error": run.error}
    tally = BoxTally()
    for path, boxes in truth.boxes.items():
        tally.add(boxes, run.found.get(path, []))
    out: dict[str, Any] = {}
    if truth.boxes:
        out["recall"] = rounded(tally.recall)
        out["precision"] = None if truth.eval_set.recall_only else rounded(tally.precision)
    if truth.texts is not None and decodes:
        out["decode_rate"] = round(read_decode_rate(truth.texts, run.found), 3)
    failed = [p for p in truth.paths if p in run.failed]
    if failed:
        out["failed_photos"] = len(failed)
        out["first_failure"] = f"{failed[0].name}: {run.failed[failed[0]]}"
    return out


def p50_ms(run: Run) -> float | None:
    return round(float(np.percentile(list(run.seconds.values()), 50)) * 1000, 1) if run.seconds else None


def table(results: dict[str, Any], set_names: list[str]) -> str:
    """Markdown: one row per reader, per set 'recall / precision / decode', then timings."""
    head = "| reader | " + " | ".join(set_names) + " | ms/img p50 (1 thr) | ms/img p50 (2 thr) |"
    lines = [head, "|" + "---|" * (len(set_names) + 3)]
    for reader, r in results.items():
        if r.get("error"):
            lines.append(f"| {reader} | " + " | ".join("—" for _ in set_names) + f" | {r['error'][:80]} | |")
            continue
        cells = []
        for name in set_names:
            f = r["sets"][name]
            parts = ["-" if f.get(k) is None else f"{f[k]:.3f}" for k in ("recall", "precision", "decode_rate")]
            cell = " / ".join(parts)
            if f.get("failed_photos"):
                cell += f" ({f['failed_photos']} failed)"
            cells.append(cell)
        lines.append(f"| {reader} | " + " | ".join(cells) + f" | {r['ms_1_thread']} | {r['ms_2_threads']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/model.onnx"))
    parser.add_argument("--peers", nargs="*", default=[p.name for p in PEERS], help="peers to run (default: all)")
    parser.add_argument("--max-images", type=int, default=100, help="photos per set at most, evenly spread")
    parser.add_argument("--timing-images", type=int, default=30, help="photos timed with 1 thread")
    parser.add_argument("--out", type=Path, default=Path("metrics/compare.json"))
    args = parser.parse_args()
    threshold = float(load_section("evaluate").threshold)
    sets, skipped = evaluation_sets(load_section("evaluate").extra_sets)
    print("\n".join(skipped))
    truths = [set_truth(s, args.max_images) for s in sets]
    paths = sorted({p for t in truths for p in t.paths})
    timed = paths[:: max(1, len(paths) // args.timing_images)][: args.timing_images]
    print(f"{len(paths)} photos in {len(truths)} sets; {len(timed)} timed with 1 thread", flush=True)
    readers: list[tuple[str, bool, Any]] = [("barseg (ours)", True, None)]
    readers += [(p.name, p.decodes, p) for p in PEERS if p.name in args.peers]
    results: dict[str, Any] = {}
    for name, decodes, peer in readers:
        start = time.perf_counter()
        if peer is None:
            run, single = run_ours(args.model, paths, threshold, 2), run_ours(args.model, timed, threshold, 1)
        else:
            run = run_peer(peer, paths, 2)
            single = run_peer(peer, timed, 1) if not run.error else run
        results[name] = {
            "error": run.error,
            "sets": {t.eval_set.name: score(t, run, decodes) for t in truths},
            "ms_1_thread": p50_ms(single),
            "ms_2_threads": p50_ms(run),
            "failed_photos": len(run.failed),
        }
        print(f"{name}: {json.dumps(results[name])} ({time.perf_counter() - start:.0f} s)", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"threshold": threshold, "max_images": args.max_images, "readers": results}, indent=1)
    )
    markdown = table(results, [t.eval_set.name for t in truths])
    args.out.with_suffix(".md").write_text(
        "Each set: recall / precision (box IoU >= 0.5) / decode rate; '-' where the set or the reader has none.\n\n"
        + markdown
    )
    print("\n" + markdown)


if __name__ == "__main__":
    main()
