"""One trained model under inference-time variants, on the real sets of the registry.

    python benchmarks/inference.py [--model models/model.ckpt] [--sets dynamsoft_skewed_datamatrix ...] \
        --variant base --variant nms=0.6 --variant nms=0.7,proposals=400 --variant shrink=linear --variant size=768

A variant is comma-separated knobs of the PyTorch runtime: ``nms`` (the box head's NMS IoU),
``proposals`` (RPN proposals kept after NMS at test time; pre-NMS raised to it if lower), and
``shrink`` (``area``, the default, or ``linear``: how a photo larger than the network input is
reduced — ``linear`` is what inference did before it matched training's area averaging), and
``size`` (the network input's side in px instead of the model's ``min_size``/``max_size``: small
codes keep more pixels in a larger input; the network is convolutional, trained at 512 with
zoom augmentation).
Nothing is retrained: a knob that wins is adopted in ``params.yaml`` with the next training
run. Prints recall / precision / detection rate (score 0.5, one-to-one at mask IoU 0.5) and
ms per image, per set and variant.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import cv2
import numpy as np

import barseg.infer.network as network
from barseg.data.formats import load_records
from barseg.infer.torch_runtime import TorchPredictor
from barseg.metrics.evaluation import evaluate_set
from barseg.metrics.sets import evaluation_sets
from barseg.params import load_section

KEYS = ("recall@0.5", "precision@0.5", "detection_rate", "ms_per_image_p50")
AREA_RESIZE = network.resize


def linear_resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    if (width, height) == (image.shape[1], image.shape[0]):
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)


def apply(predictor: TorchPredictor, variant: str) -> None:
    network.resize = AREA_RESIZE  # type: ignore[attr-defined]
    for knob in filter(None, variant.split(",")):
        if knob == "base":
            continue
        key, _, value = knob.partition("=")
        if key == "nms":
            predictor.core.roi_heads.nms_thresh = float(value)
        elif key == "proposals":
            rpn = predictor.core.rpn
            rpn._post_nms_top_n["testing"] = int(value)
            rpn._pre_nms_top_n["testing"] = max(rpn._pre_nms_top_n["testing"], int(value))  # never fewer in
        elif key == "shrink" and value in ("area", "linear"):
            network.resize = AREA_RESIZE if value == "area" else linear_resize  # type: ignore[attr-defined]
        elif key == "size":
            predictor.spec = dataclasses.replace(predictor.spec, min_size=int(value), max_size=int(value))
        else:
            raise SystemExit(
                f"--variant {variant}: unknown knob {knob!r} (nms=, proposals=, shrink=area|linear, size=)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/model.ckpt"))
    parser.add_argument("--sets", nargs="*", help="names from evaluate.extra_sets (default: every COCO set)")
    parser.add_argument("--variant", action="append", default=[], help="comma-separated knobs, or 'base'")
    args = parser.parse_args()
    cfg = load_section("evaluate")
    found, skipped = evaluation_sets(cfg.extra_sets)
    print("\n".join(skipped))
    sets = {s.name: load_records(s.coco) for s in found if s.coco and (not args.sets or s.name in args.sets)}
    print(f"{'set':<28} {'variant':<24} " + " ".join(f"{k:>16}" for k in KEYS))
    for variant in args.variant or ["base"]:
        predictor = TorchPredictor(args.model, threshold=cfg.threshold)  # no knob carries over
        apply(predictor, variant)
        for name, records in sets.items():
            m = evaluate_set(predictor, records, name, cfg.threshold, None)
            print(f"{name:<28} {variant:<24} " + " ".join(f"{m[k]:>16.3f}" for k in KEYS), flush=True)


if __name__ == "__main__":
    main()
