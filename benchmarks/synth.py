"""Synthetic data benchmark: generation speed, and code-size statistics next to real photos.

    python benchmarks/synth.py --count 500 [--real ../shared/data/real]

Prints images/second for the configured workers, then, for the synthetic sample and each
real COCO set found, the distribution of code sizes measured as real photos are used in
training: short side of each code's rotated box after scaling the image's long side to 512,
and the code's share of the image area.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from barseg.data.formats import ImageRecord, iter_source
from barseg.data.synth import generate
from barseg.params import load_section

TRAIN_SIDE = 512


def code_sizes(records: list[ImageRecord]) -> tuple[np.ndarray, np.ndarray]:
    short, share = [], []
    for rec in records:
        scale = TRAIN_SIDE / max(rec.width, rec.height)
        for inst in rec.instances:
            if inst.polygons is not None:
                points = np.concatenate(inst.polygons).astype(np.float32)
            else:
                x0, y0, x1, y1 = inst.box()
                points = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)
            (_, _), (w, h), _ = cv2.minAreaRect(points)
            short.append(min(w, h) * scale)
            share.append(inst.mask_area(rec.height, rec.width) / (rec.width * rec.height))
    return np.asarray(short), np.asarray(share)


def describe(name: str, records: list[ImageRecord]) -> str:
    short, share = code_sizes(records)
    if not len(short):
        return f"{name:<28} no codes"
    per_image = np.mean([len(r.instances) for r in records])
    q = np.percentile(short, [10, 50, 90])
    return (
        f"{name:<28} {len(records):>5} img {len(short):>6} codes {per_image:5.1f}/img | short side @512 "
        f"p10 {q[0]:5.1f} p50 {q[1]:5.1f} p90 {q[2]:6.1f} px, <20 px {np.mean(short < 20):4.0%}, "
        f"<40 px {np.mean(short < 40):4.0%} | median area {np.median(share):6.2%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--real", type=Path, default=Path("../shared/data/real"))
    args = parser.parse_args()
    params = load_section("synth")
    params.count = args.count
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        codes = generate(params, Path(tmp))
        seconds = time.perf_counter() - start
        print(
            f"generate: {args.count} images, {codes} codes in {seconds:.1f} s = {args.count / seconds:.1f} images/s ({params.workers} workers)"
        )
        print(
            f"default count {load_section('synth').count}: about {load_section('synth').count / (args.count / seconds):.0f} s"
        )
        synthetic = [r.record for r in iter_source(Path(tmp)) if r.record]
        print(describe("synthetic", synthetic))
    for coco in sorted(args.real.glob("*/annotations.json")):
        real = [r.record for r in iter_source(coco) if r.record]
        print(describe(coco.parent.name, real))


if __name__ == "__main__":
    main()
