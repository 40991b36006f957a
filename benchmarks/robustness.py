"""Robustness to noise and distortions: our pipeline and zxing-cpp on the same corrupted photos.

    python benchmarks/robustness.py [--model models/model.onnx] [--images-per-set 10] [--seed 0]
                                    [--out metrics/robustness.json] [--chart docs/robustness.png]
                                    [--no-verify]

Takes ``--images-per-set`` photos, evenly spread, from every COCO set of the registry
(``params.yaml`` ``evaluate.extra_sets``) and corrupts each with every corruption of
``barseg.metrics.corruptions`` at severities 1-3 (seeded per photo and corruption, the same
draw at every level, so levels differ only in strength;
geometric ones move the labels with the pixels). On the clean and each corrupted photo it runs
our pipeline (the ``Predictor`` the service uses, decoding on, reads as evidence unless
``--no-verify``, at ``evaluate.threshold``) and
zxing-cpp alone on the whole photo, and scores both with ``barseg.metrics.boxes``: recall and
precision at box IoU >= 0.5 (precision left out on recall-only sets) and the decode rate on
the sets with texts. Writes the figures per set and over all sets (``--out``), a flat table
for ``dvc plots`` (``*_plot.json`` beside it) and a chart with one curve per corruption.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
import zlib
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from barseg.data.formats import ImageRecord, load_records
from barseg.data.images import read_image
from barseg.infer.decode import read_codes
from barseg.infer.predictor import Predictor
from barseg.infer.runtimes import load_predictor
from barseg.metrics.boxes import BoxTally, Found, found_in, read_decode_rate
from barseg.metrics.corruptions import CORRUPTIONS, SEVERITIES, Polygons, corrupt
from barseg.metrics.decoding import expected_texts
from barseg.metrics.evaluation import has_texts
from barseg.metrics.sets import EvalSet, evaluation_sets
from barseg.params import load_section

READERS = ("barseg", "zxing-cpp")


def outlines(record: ImageRecord) -> Polygons:
    """One outline per labelled code: its polygon, else its box's corners."""
    out = []
    for instance in record.instances:
        if instance.polygons:
            out.append(np.concatenate(instance.polygons).astype(np.float32))
        else:
            x0, y0, x1, y1 = instance.box()
            out.append(np.float32([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]))
    return out


def boxes_of(polygons: Polygons, shape: tuple[int, ...]) -> list[tuple[float, float, float, float]]:
    h, w = shape[:2]
    out = []
    for p in polygons:
        x0, y0 = np.clip(p.min(axis=0), 0, [w, h])
        x1, y1 = np.clip(p.max(axis=0), 0, [w, h])
        out.append((float(x0), float(y0), float(x1), float(y1)))
    return out


def read(reader: str, predictor: Predictor, image: np.ndarray, threshold: float, verify: bool) -> list[Found]:
    if reader == "barseg":
        (prediction,) = predictor.predict([image], threshold, decode=True, verify=verify)
        return found_in(prediction, threshold)
    return [Found.from_corners(r.corners, text=r.text) for r in read_codes(image)]


def seed_of(*parts: object) -> int:
    return zlib.crc32("/".join(map(str, parts)).encode())


def run_set(
    eval_set: EvalSet, records: list[ImageRecord], predictor: Predictor, threshold: float, seed: int, verify: bool
) -> dict[tuple[str, str, int], dict[str, Any]]:
    """(reader, corruption, severity) -> tally and reads; severity 0 is the clean photo,
    shared by every corruption."""
    results: dict[tuple[str, str, int], dict[str, Any]] = defaultdict(lambda: {"tally": BoxTally(), "found": {}})
    for record in records:
        photo, polygons = read_image(record.path), outlines(record)
        variants = itertools.chain(  # corrupted one at a time, not all held at once
            [("clean", 0, photo, polygons)],
            (
                (
                    name,
                    severity,
                    *corrupt(photo, polygons, name, severity, seed_of(seed, eval_set.name, record.path.name, name)),
                )
                for name in CORRUPTIONS
                for severity in SEVERITIES
            ),
        )
        for name, severity, image, moved in variants:
            truths = boxes_of(moved, image.shape)
            for reader in READERS:
                found = read(reader, predictor, image, threshold, verify)
                results[(reader, name, severity)]["tally"].add(truths, found)
                results[(reader, name, severity)]["found"][record.path] = found
    return results


def figures(eval_set: EvalSet, records: list[ImageRecord], result: dict[str, Any]) -> dict[str, Any]:
    """One set's figures and the counts behind them (pooling sums the counts)."""
    tally: BoxTally = result["tally"]
    texts = expected_texts(records) if has_texts(records) else None
    expected = sum(len(t) for t in texts.values()) if texts else 0
    rate = read_decode_rate(texts, result["found"]) if texts else None
    return {
        **ratios(tally.matched, tally.truths, None if eval_set.recall_only else tally.found, rate),
        "codes": tally.truths,
        "found": None if eval_set.recall_only else tally.found,
        "matched": tally.matched,
        "texts": expected,
        "decoded": round(rate * expected) if rate is not None else 0,
    }


def ratios(matched: int, codes: int, found: int | None, decode_rate: float | None) -> dict[str, float | None]:
    return {
        "recall": round(matched / codes, 3) if codes else None,
        "precision": round(matched / found, 3) if found else None,  # None: recall-only set, or nothing found
        "decode_rate": None if decode_rate is None else round(decode_rate, 3),
    }


def pooled(per_set: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    """Over all sets, from the summed counts; precision over the sets that have it."""
    sets = list(per_set.values())
    codes, matched = sum(f["codes"] for f in sets), sum(f["matched"] for f in sets)
    precise = [f for f in sets if f["found"] is not None]
    found, found_matched = sum(f["found"] for f in precise), sum(f["matched"] for f in precise)
    texts, decoded = sum(f["texts"] for f in sets), sum(f["decoded"] for f in sets)
    return {
        "recall": round(matched / codes, 3) if codes else None,
        "precision": round(found_matched / found, 3) if found else None,
        "decode_rate": round(decoded / texts, 3) if texts else None,
    }


def chart(rows: list[dict[str, Any]], path: Path) -> None:
    """Recall, precision and decode rate (columns) against severity, per reader (rows), one
    curve per corruption; severity 0 is the clean photo."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = ("recall", "precision", "decode_rate")
    fig, axes = plt.subplots(len(READERS), len(keys), figsize=(15, 8), sharex=True, sharey=True)
    clean = {(r["reader"], k): r[k] for r in rows if r["corruption"] == "clean" for k in keys}
    for i, reader in enumerate(READERS):
        for j, key in enumerate(keys):
            ax = axes[i][j]
            for name in CORRUPTIONS:
                points = [(0, clean[(reader, key)])] + [
                    (r["severity"], r[key]) for r in rows if (r["reader"], r["corruption"]) == (reader, name)
                ]
                if any(v is None for _, v in points):
                    continue
                ax.plot([s for s, _ in points], [v for _, v in points], marker="o", label=name)
            ax.set_title(f"{reader}: {key.replace('_', ' ')}")
            ax.set_xticks([0, *SEVERITIES])
            ax.set_ylim(0, 1)
            ax.grid(alpha=0.3)
            if i == len(READERS) - 1:
                ax.set_xlabel("severity (0: clean)")
    axes[0][-1].legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/model.onnx"))
    parser.add_argument("--images-per-set", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("metrics/robustness.json"))
    parser.add_argument("--chart", type=Path, default=Path("docs/robustness.png"))
    parser.add_argument(
        "--verify", action=argparse.BooleanOptionalAction, default=True, help="reads re-score our detections"
    )
    args = parser.parse_args()
    threshold = float(load_section("evaluate").threshold)
    predictor = load_predictor(args.model, threshold=threshold, threads=args.threads)
    sets, skipped = evaluation_sets(load_section("evaluate").extra_sets)
    print("\n".join(skipped))
    per_key: dict[tuple[str, str, int], dict[str, dict[str, float | None]]] = defaultdict(dict)
    start = time.perf_counter()
    for eval_set in sets:
        if eval_set.coco is None:
            continue
        records = load_records(eval_set.coco)
        records = records[:: max(1, len(records) // args.images_per_set)][: args.images_per_set]
        for key, result in run_set(eval_set, records, predictor, threshold, args.seed, args.verify).items():
            per_key[key][eval_set.name] = figures(eval_set, records, result)
        print(f"{eval_set.name}: {len(records)} photos, {time.perf_counter() - start:.0f} s so far", flush=True)
    rows = [
        {"reader": reader, "corruption": name, "severity": severity, **pooled(by_set), "sets": by_set}
        for (reader, name, severity), by_set in sorted(per_key.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2]))
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"images_per_set": args.images_per_set, "seed": args.seed, "rows": rows}, indent=1))
    flat = [{k: v for k, v in r.items() if k != "sets"} for r in rows]
    args.out.with_name(args.out.stem + "_plot.json").write_text(json.dumps(flat, indent=1) + "\n")
    chart(rows, args.chart)
    print(f"\n{'corruption':<14} sev  " + "  ".join(f"{r:>22}" for r in READERS))
    print(" " * 20 + "  ".join(f"{'recall / prec / decode':>22}" for _ in READERS))
    for name in ("clean", *CORRUPTIONS):
        for severity in (0,) if name == "clean" else SEVERITIES:
            cells = []
            for reader in READERS:
                r = next(r for r in flat if (r["reader"], r["corruption"], r["severity"]) == (reader, name, severity))
                cells.append(
                    " / ".join("-" if r[k] is None else f"{r[k]:.2f}" for k in ("recall", "precision", "decode_rate"))
                )
            print(f"{name:<14} {severity:>3}  " + "  ".join(f"{c:>22}" for c in cells))
    print(f"\n{args.out}, {args.chart}: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
