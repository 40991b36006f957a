"""Decode benchmark: one-to-one decode rate (docs/design.md §6) on the real photo sets.

    python benchmarks/decode.py [--real ../shared/data/real] [--model models/model.ckpt] [--limit N]

Per set, the decode rate of (a) zxing-cpp alone on the whole photo, (b) our decoding on the
labelled outlines (oracle segmentation: what decoding adds when segmentation is perfect;
COCO sets only), (c) the full pipeline (the model's masks, then our decoding) and (d) the
union of (c) and (a), with the time each takes per image (image decoding included; the
pipeline's includes the network). ArTe-Lab is scored twice: on the texts of its
39 boxed codes (COCO) and on its 122-image decode truth. A set absent on disk is skipped.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from barseg.data.formats import ImageRecord, Instance, load_records
from barseg.data.images import read_image
from barseg.data.symbology import comparison_key
from barseg.infer.decode import decode_detections, detection_from_polygon, read_codes
from barseg.infer.predictor import Predictor
from barseg.metrics.decoding import decode_rate, expected_texts, load_decode_truth

COCO_SETS = ("dynamsoft_challenging", "dynamsoft_skewed_datamatrix", "artelab")
TRUTH_SETS = ("artelab", "zxing_blackbox")


@dataclass
class Row:
    name: str
    expected: dict[Path, list[str]]
    records: dict[Path, ImageRecord] | None = None  # labelled outlines, for the oracle column


@dataclass
class Reader:
    """One way of reading an image, its reads cached per path (sets share images)."""

    read: Callable[[Path], list[str]]
    cache: dict[Path, list[str]] = field(default_factory=dict)
    seconds: dict[Path, float] = field(default_factory=dict)

    def __call__(self, path: Path) -> list[str]:
        if path not in self.cache:
            start = time.perf_counter()
            self.cache[path] = self.read(path)
            self.seconds[path] = time.perf_counter() - start
        return self.cache[path]

    def ms_per_image(self, paths: list[Path]) -> float:
        return 1000 * float(np.mean([self.seconds[p] for p in paths]))


def outline(instance: Instance) -> np.ndarray:
    """A labelled code's outline: its largest polygon ring, else its box."""
    if instance.polygons is not None:
        return max(instance.polygons, key=len)
    x0, y0, x1, y1 = instance.box()
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])


def union(a: list[str], b: list[str]) -> list[str]:
    """Both readers' texts, one-to-one: a text two codes hold counts as often as the reader
    that saw it more often read it."""
    extra = Counter(comparison_key(t) for t in b) - Counter(comparison_key(t) for t in a)
    return a + list(extra.elements())


def rows(real: Path, limit: int | None) -> list[Row]:
    out = []
    for name in COCO_SETS:
        coco = real / name / "annotations.json"
        if not coco.is_file():
            print(f"skip {name}: no {coco}")
            continue
        records = load_records(coco)[:limit]
        label = f"{name} (boxes)" if name in TRUTH_SETS else name
        out.append(Row(label, expected_texts(records), {r.path: r for r in records}))
    for name in TRUTH_SETS:
        truth = real / name / "decode_truth.json"
        if not truth.is_file():
            print(f"skip {name}: no {truth}")
            continue
        expected = dict(list(load_decode_truth(truth).items())[:limit])
        out.append(Row(f"{name} (decode truth)" if name in COCO_SETS else name, expected))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=Path, default=Path("../shared/data/real"))
    parser.add_argument("--model", type=Path, default=Path("models/model.ckpt"))
    parser.add_argument("--limit", type=int, default=None, help="first N images of each set")
    parser.add_argument("--threads", type=int, default=None, help="torch threads for the model")
    args = parser.parse_args()

    table = rows(args.real, args.limit)
    if not table:
        print(f"no real sets under {args.real}")
        return
    whole = Reader(lambda p: [r.text for r in read_codes(read_image(p))])
    records = {path: rec for row in table if row.records for path, rec in row.records.items()}

    def oracle_read(path: Path) -> list[str]:
        detections = [detection_from_polygon(outline(inst)) for inst in records[path].instances]
        decode_detections(read_image(path), detections)
        return [d.text for d in detections if d.text is not None]

    oracle = Reader(oracle_read)
    predictor: Predictor | None = None
    if args.model.is_file():
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        from barseg.infer.runtimes import load_predictor

        predictor = load_predictor(args.model, threshold=0.5)
    else:
        print(f"skip pipeline: no model at {args.model}")

    def pipeline_read(path: Path) -> list[str]:
        assert predictor is not None
        (prediction,) = predictor.predict([read_image(path)], decode=True)
        return [d.text for d in prediction.detections if d.text is not None]

    pipeline = Reader(pipeline_read)

    print(
        f"{'set':<32}{'images':>7}{'codes':>7} | decode rate: {'zxing':>6}{'oracle':>8}{'pipeline':>9}{'union':>7}"
        f" | ms/img: {'zxing':>6}{'oracle':>8}{'pipeline':>9}",
        flush=True,
    )
    if predictor is not None:  # the first call allocates: keep it out of the timings
        predictor.predict([read_image(next(iter(table[0].expected)))])
    for row in table:
        paths = list(row.expected)
        rates: list[float | None] = [decode_rate(row.expected, {p: whole(p) for p in paths}), None, None, None]
        times: list[float | None] = [whole.ms_per_image(paths), None, None]
        if row.records is not None:
            rates[1] = decode_rate(row.expected, {p: oracle(p) for p in paths})
            times[1] = oracle.ms_per_image(paths)
        if predictor is not None:
            rates[2] = decode_rate(row.expected, {p: pipeline(p) for p in paths})
            rates[3] = decode_rate(row.expected, {p: union(pipeline(p), whole(p)) for p in paths})
            times[2] = pipeline.ms_per_image(paths)
        r = ["-" if v is None else f"{v:.3f}" for v in rates]
        t = ["-" if v is None else f"{v:.0f}" for v in times]
        codes = sum(len(texts) for texts in row.expected.values())
        print(
            f"{row.name:<32}{len(paths):>7}{codes:>7} | {'':>12} {r[0]:>6}{r[1]:>8}{r[2]:>9}{r[3]:>7}"
            f" | {'':>7} {t[0]:>6}{t[1]:>8}{t[2]:>9}",
            flush=True,
        )


if __name__ == "__main__":
    main()
