"""ONNX export of a training checkpoint, its parity check against PyTorch, timings and the
optional int8 variant (ONNX Runtime static quantisation)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from pycocotools import mask as mask_utils
from torchvision.ops import poolers

from barseg.infer.detections import RawDetections
from barseg.infer.network import INPUT_NAME, OUTPUT_NAMES, THRESHOLD_NAME, NetworkInput, prepare_input
from barseg.infer.onnx_runtime import SPEC_KEY, OnnxPredictor
from barseg.infer.predictor import Predictor, binary_mask, crop_rle
from barseg.infer.torch_runtime import DetectorCore, TorchPredictor, input_spec, load_checkpoint_model
from barseg.metrics.matching import box_iou_matrix, greedy_match


def merge_levels_by_gather(levels: torch.Tensor, unmerged: list[torch.Tensor]) -> torch.Tensor:
    """The per-level RoIAlign results back in RoI order with one Gather. torchvision's traced
    version scatters every level into a full (RoIs, C, 7, 7) tensor, one ScatterElements per
    level, ~8 ms per image on 2 cores; here only the RoI positions (a few hundred ints) are
    scattered. Same values exactly (parity-checked); no TopK, which TensorRT needs constant."""
    order = torch.cat([torch.where(levels == level)[0] for level in range(len(unmerged))])
    position = torch.zeros_like(order).scatter(0, order, torch.arange(order.numel(), device=order.device))
    return torch.cat(unmerged)[position]


@contextmanager
def fast_level_merge() -> Iterator[None]:
    """Trace MultiScaleRoIAlign with ``merge_levels_by_gather`` (its ONNX-only merge step)."""
    original = poolers._onnx_merge_levels
    poolers._onnx_merge_levels = merge_levels_by_gather
    try:
        yield
    finally:
        poolers._onnx_merge_levels = original


def export_onnx(checkpoint: Path, out: Path, sample: np.ndarray, opset: int = 17, fixed_size: bool = False) -> Path:
    """Trace the checkpoint's ``DetectorCore`` on ``sample`` (a real photo: a blank one may
    give no detections and trace degenerate branches) and write a checked ONNX file
    carrying its input spec."""
    model = load_checkpoint_model(checkpoint)
    spec = input_spec(model, fixed_size)
    core = DetectorCore(model).eval()
    batch, _ = prepare_input(sample, spec)
    dynamic = {name: {0: "detections"} for name in OUTPUT_NAMES}
    if not fixed_size:
        dynamic[INPUT_NAME] = {2: "height", 3: "width"}
    out.parent.mkdir(parents=True, exist_ok=True)
    with torch.inference_mode(False), torch.no_grad(), fast_level_merge():
        torch.onnx.export(
            core,
            (torch.from_numpy(batch), torch.tensor(0.05)),
            str(out),
            dynamo=False,  # the dynamo exporter cannot trace torchvision's detection models
            opset_version=opset,
            input_names=[INPUT_NAME, THRESHOLD_NAME],
            output_names=list(OUTPUT_NAMES),
            dynamic_axes=dynamic,
            do_constant_folding=True,
        )
    graph = onnx.load(str(out))
    onnx.helper.set_model_props(graph, {SPEC_KEY: spec.to_json()})
    onnx.checker.check_model(graph, full_check=True)
    onnx.save(graph, str(out))
    return out


@dataclass
class ParityReport:
    images: int
    reference_detections: int
    matched: int
    min_box_iou: float
    max_score_delta: float
    min_mask_iou: float
    failures: list[str]

    @property
    def passed(self) -> bool:
        return not self.failures


def compare_raw(
    name: str, ref: RawDetections, got: RawDetections, score: float, box_iou: float, delta: float, mask_iou: float
) -> tuple[list[tuple[float, float, float]], list[str]]:
    """Match ``got`` to ``ref`` one-to-one by box IoU (reference detections at or above
    ``score``, by falling score); (box IoU, |score delta|, mask IoU) per pair and the
    failures. A reference detection within ``delta`` of the score cut may be missing: the
    other runtime may put it a hair below the cut."""
    keep_ref = np.flatnonzero(ref.scores >= score)
    keep_got = np.flatnonzero(got.scores >= score - delta)
    ious = box_iou_matrix(ref.boxes[keep_ref].tolist(), got.boxes[keep_got].tolist())
    matches = greedy_match(ious, ref.scores[keep_ref].tolist(), box_iou)
    pairs, failures = [], []
    matched = {row for row, _, _ in matches}
    for row, i in enumerate(keep_ref):
        if row not in matched and ref.scores[i] >= score + delta:
            failures.append(f"{name}: reference detection {i} (score {ref.scores[i]:.4f}) has no match")
    for row, c, iou in matches:
        i, j = keep_ref[row], keep_got[c]
        a, b = binary_mask(ref, i), binary_mask(got, j)
        empty = not a.values.any() and not b.values.any()
        m_iou = 1.0 if empty else float(mask_utils.iou([crop_rle(a)], [crop_rle(b)], [0])[0, 0])
        d = abs(float(ref.scores[i]) - float(got.scores[j]))
        pairs.append((iou, d, m_iou))
        if d > delta or m_iou < mask_iou:
            failures.append(f"{name}: detection {i}: |score delta| {d:.2g}, mask IoU {m_iou:.4f}")
    used = {c for _, c, _ in matches}
    extra = [j for c, j in enumerate(keep_got) if c not in used and got.scores[j] >= score + delta]
    failures += [f"{name}: extra detection (score {got.scores[j]:.4f}) not in the reference" for j in extra]
    return pairs, failures


def stage_tolerance(cfg: Any) -> dict[str, float]:
    """``check_parity``'s tolerances from the ``export`` params section (``parity_*``)."""
    return {
        "score": cfg.parity_score,
        "box_iou": cfg.parity_box_iou,
        "delta": cfg.parity_score_delta,
        "mask_iou": cfg.parity_mask_iou,
    }


def check_parity(
    reference: Predictor,
    candidate: Predictor,
    images: list[tuple[str, np.ndarray]],
    score: float,
    box_iou: float,
    delta: float,
    mask_iou: float,
) -> ParityReport:
    pairs, failures, total = [], [], 0
    for name, image in images:
        (ref,) = reference.raw([reference.prepare(image)], score)
        (got,) = candidate.raw([candidate.prepare(image)], score)
        total += int((ref.scores >= score).sum())
        p, f = compare_raw(name, ref, got, score, box_iou, delta, mask_iou)
        pairs += p
        failures += f
    return ParityReport(
        images=len(images),
        reference_detections=total,
        matched=len(pairs),
        min_box_iou=min((p[0] for p in pairs), default=1.0),
        max_score_delta=max((p[1] for p in pairs), default=0.0),
        min_mask_iou=min((p[2] for p in pairs), default=1.0),
        failures=failures,
    )


def time_predictor(predictor: Predictor, images: list[np.ndarray], repeats: int = 1) -> dict[str, float]:
    """ms/image through ``Predictor.predict`` (batch 1, after one warm-up call), p50/p95."""
    predictor.predict(images[:1])
    times = []
    for _ in range(repeats):
        for image in images:
            start = time.perf_counter()
            predictor.predict([image])
            times.append((time.perf_counter() - start) * 1000)
    return {"ms_per_image_p50": float(np.percentile(times, 50)), "ms_per_image_p95": float(np.percentile(times, 95))}


def eager_torchvision_ms(checkpoint: Path, images: list[np.ndarray]) -> dict[str, float]:
    """ms/image of torchvision's own eager Mask R-CNN call (its transform and full-image mask
    pasting included): the baseline the issue's speed target refers to."""
    model = load_checkpoint_model(checkpoint)

    class Eager(Predictor):
        def prepare(self, image: np.ndarray) -> NetworkInput:
            return NetworkInput(image, 1.0, image.shape[:2])  # torchvision resizes inside

        @torch.inference_mode()
        def raw(self, inputs: list[NetworkInput], score_threshold: float) -> list[RawDetections]:
            model([torch.from_numpy(i.pixels).permute(2, 0, 1).float().div(255) for i in inputs])
            return [RawDetections(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 28, 28)), i.photo_shape) for i in inputs]

    return time_predictor(Eager(), images)


def parity_and_timing(
    checkpoint: Path, onnx_path: Path, parity_images: list[tuple[str, np.ndarray]], timing: list[np.ndarray], cfg: Any
) -> tuple[ParityReport, dict[str, Any]]:
    torch_predictor = TorchPredictor(checkpoint)
    onnx_predictor = OnnxPredictor(onnx_path, threads=cfg.threads)
    report = check_parity(torch_predictor, onnx_predictor, parity_images, **stage_tolerance(cfg))
    timings = {
        "torchvision_eager": eager_torchvision_ms(checkpoint, timing),
        "torch": time_predictor(torch_predictor, timing),
        "onnxruntime": time_predictor(onnx_predictor, timing),
    }
    return report, timings


def quantize_int8(onnx_in: Path, onnx_out: Path, calibration: list[np.ndarray]) -> Path:
    """Static int8 quantisation (QDQ, per-channel weights) of the convolutions, calibrated on
    ``calibration`` photos prepared exactly as at inference. The detection heads' Gemm/RoIAlign
    stay float: they are a small share of the time and the most sensitive to rounding."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    spec = OnnxPredictor(onnx_in).spec

    class Photos(CalibrationDataReader):
        def __init__(self) -> None:
            self.images = iter(calibration)

        def get_next(self) -> dict[str, np.ndarray] | None:
            image = next(self.images, None)
            if image is None:
                return None
            # A low cut, so the mask head sees many detections and is calibrated too.
            return {INPUT_NAME: prepare_input(image, spec)[0], THRESHOLD_NAME: np.array(0.05, np.float32)}

    onnx_out.parent.mkdir(parents=True, exist_ok=True)
    quantize_static(
        str(onnx_in),
        str(onnx_out),
        Photos(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        op_types_to_quantize=["Conv"],
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )
    graph = onnx.load(str(onnx_out))
    onnx.helper.set_model_props(graph, {SPEC_KEY: spec.to_json()})
    onnx.save(graph, str(onnx_out))
    return onnx_out
