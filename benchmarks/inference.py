"""One trained model under inference-time variants, on the real sets of the registry.

    python benchmarks/inference.py [--model models/model.ckpt] [--sets dynamsoft_skewed_datamatrix ...] \
        --variant base --variant nms=0.6 --variant nms=0.7,proposals=400 --variant shrink=linear --variant size=768 \
        --variant also=1024,small=32 --variant verify --variant verify,read=100,unread=0.01

A variant is comma-separated knobs of the PyTorch runtime: ``nms`` (the box head's NMS IoU),
``proposals`` (RPN proposals kept after NMS at test time; pre-NMS raised to it if lower), and
``shrink`` (``area``, the default, or ``linear``: how a photo larger than the network input is
reduced — ``linear`` is what inference did before it matched training's area averaging), and
``size`` (the network input's side in px instead of the model's ``min_size``/``max_size``: small
codes keep more pixels in a larger input; the network is convolutional, trained at 512 with
zoom augmentation), and ``also`` with ``small`` (run the network a second time at input side
``also`` and add only its detections whose box is at most ``small`` px at the base input (32
by default) and that score at least ``also_score`` (0): the small codes a larger input finds,
without the false regions it grows on print; duplicates go the way of every nested detection,
in ``postprocess``). ``verify``: read every detection and re-score it by whether it read, as
evaluate and the service do with decoding on (README "Reading as evidence"), with the
likelihood ratios ``read`` and ``unread`` instead of ``barseg.infer.confidence``'s when given;
without ``verify`` the figures are the network's alone.
Nothing is retrained: a knob that wins is adopted in ``params.yaml`` with the next training
run. Prints recall / precision / detection rate (score 0.5, one-to-one at mask IoU 0.5), decode
rate (verify, sets whose codes carry texts) and ms per image, per set and variant.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import cv2
import numpy as np

import barseg.infer.confidence as confidence
import barseg.infer.network as network
from barseg.infer.detections import RawDetections
from barseg.infer.network import NetworkInput, fit_to_network
from barseg.infer.predictor import Predictor
from barseg.infer.torch_runtime import TorchPredictor
from barseg.metrics.evaluation import evaluate_source
from barseg.metrics.sets import evaluation_sets
from barseg.params import load_section

KEYS = ("recall@0.5", "precision@0.5", "detection_rate", "decode_rate", "ms_per_image_p50")
AREA_RESIZE = network.resize
RATIOS = {"read": confidence.READ_RATIO, "unread": confidence.UNREAD_RATIO}


def linear_resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    if (width, height) == (image.shape[1], image.shape[0]):
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)


class TwoSizes(Predictor):
    """``inner`` at its own input size, plus the small detections of a second pass at ``size``."""

    def __init__(self, inner: TorchPredictor, size: int, small_px: float, min_score: float) -> None:
        super().__init__(inner.threshold)
        self.inner, self.small_px, self.min_score = inner, small_px, min_score
        self.spec = inner.spec
        self.large_spec = dataclasses.replace(inner.spec, min_size=size, max_size=size)
        self.pending: list[NetworkInput] = []  # the large inputs of the photos prepared last

    def prepare(self, image: np.ndarray) -> NetworkInput:
        self.pending.append(fit_to_network(image, self.large_spec))
        return fit_to_network(image, self.spec)

    def raw(self, inputs: list[NetworkInput], score_threshold: float) -> list[RawDetections]:
        large, self.pending = self.pending, []
        merged = []
        for base, extra in zip(
            self.inner.raw(inputs, score_threshold), self.inner.raw(large, score_threshold), strict=True
        ):
            scale = self.spec.scale(*base.image_shape)
            sides = np.maximum(extra.boxes[:, 2] - extra.boxes[:, 0], extra.boxes[:, 3] - extra.boxes[:, 1]) * scale
            keep = (sides <= self.small_px) & (extra.scores >= self.min_score)
            merged.append(
                RawDetections(
                    np.concatenate([base.boxes, extra.boxes[keep]]),
                    np.concatenate([base.scores, extra.scores[keep]]),
                    np.concatenate([base.masks, extra.masks[keep]]),
                    base.image_shape,
                )
            )
        return merged


def apply(predictor: TorchPredictor, variant: str) -> tuple[Predictor, bool]:
    """The variant's predictor, and whether reads re-score its detections."""
    network.resize = AREA_RESIZE  # type: ignore[attr-defined]
    confidence.READ_RATIO, confidence.UNREAD_RATIO = RATIOS["read"], RATIOS["unread"]
    second_pass: dict[str, str] = {}  # also=, small=, also_score=: options of one TwoSizes
    verify = False
    for knob in filter(None, variant.split(",")):
        if knob == "base":
            continue
        key, _, value = knob.partition("=")
        if knob == "verify":
            verify = True
        elif key == "read":
            confidence.READ_RATIO = float(value)
        elif key == "unread":
            confidence.UNREAD_RATIO = float(value)
        elif key in ("also", "small", "also_score"):
            second_pass[key] = value
        elif key == "nms":
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
                f"--variant {variant}: unknown knob {knob!r} "
                "(nms=, proposals=, shrink=area|linear, size=, also=, small=, also_score=, verify, read=, unread=)"
            )
    if not second_pass:
        return predictor, verify
    if "also" not in second_pass:
        raise SystemExit(f"--variant {variant}: small= and also_score= apply to the second pass of also=")
    return TwoSizes(
        predictor,
        int(second_pass["also"]),
        float(second_pass.get("small", 32)),
        float(second_pass.get("also_score", 0)),
    ), verify


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/model.ckpt"))
    parser.add_argument("--sets", nargs="*", help="names from evaluate.extra_sets (default: every COCO set)")
    parser.add_argument("--variant", action="append", default=[], help="comma-separated knobs, or 'base'")
    args = parser.parse_args()
    cfg = load_section("evaluate")
    found, skipped = evaluation_sets(cfg.extra_sets)
    print("\n".join(skipped))
    sets = [s for s in found if s.coco and (not args.sets or s.name in args.sets)]
    print(f"{'set':<28} {'variant':<24} " + " ".join(f"{k:>16}" for k in KEYS))
    for variant in args.variant or ["base"]:
        predictor, verify = apply(TorchPredictor(args.model, threshold=cfg.threshold), variant)  # none carries over
        for s in sets:  # as the evaluate stage scores them: a recall-only set has no precision
            m = evaluate_source(
                predictor, s.name, cfg.threshold, coco=s.coco, decode=verify, recall_only=s.recall_only, verify=verify
            )
            cells = " ".join(f"{m[k]:>16.3f}" if k in m else f"{'-':>16}" for k in KEYS)
            print(f"{s.name:<28} {variant:<24} {cells}", flush=True)


if __name__ == "__main__":
    main()
