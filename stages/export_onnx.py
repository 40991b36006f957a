"""Stage export_onnx: checkpoint → ONNX, parity with PyTorch (the stage fails without it),
ms/image of both, and the optional int8 variant with its accuracy delta (params: export)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from barseg.data.formats import load_records
from barseg.data.images import read_image
from barseg.export.onnx import export_onnx, parity_and_timing, quantize_int8
from barseg.infer.onnx_runtime import OnnxPredictor
from barseg.metrics.evaluation import evaluate_set
from barseg.params import load_section

# The headline figures but decoding: quantisation is compared on the (undecoded) test split.
INT8_COMPARED = ("recall@0.5", "precision@0.5", "segm_AP50", "detection_rate", "ms_per_image_p50")


def export_report(args: argparse.Namespace, cfg: Any, threshold: float) -> dict[str, Any]:
    val = load_records(args.val)
    parity_images = [(Path(r.path).name, read_image(r.path)) for r in val[: cfg.parity_images]]
    timing = [read_image(r.path) for r in val[: cfg.timing_images]]
    export_onnx(args.model, args.out, parity_images[0][1], cfg.opset, cfg.fixed_size)
    parity, timings = parity_and_timing(args.model, args.out, parity_images, timing, cfg)
    report: dict[str, Any] = {
        "onnx_mb": round(args.out.stat().st_size / 2**20, 2),
        "fixed_size": cfg.fixed_size,
        "parity": {**vars(parity), "passed": parity.passed},
        "ms_per_image": timings,
        "speedup_onnxruntime_vs_torchvision_eager": round(
            timings["torchvision_eager"]["ms_per_image_p50"] / timings["onnxruntime"]["ms_per_image_p50"], 2
        ),
        "speedup_onnxruntime_vs_torch": round(
            timings["torch"]["ms_per_image_p50"] / timings["onnxruntime"]["ms_per_image_p50"], 2
        ),
    }
    args.quantized.mkdir(parents=True, exist_ok=True)
    if not cfg.int8:
        (args.quantized / "README.md").write_text("int8 variant off (params.yaml export.int8: false)\n")
        return report
    if cfg.calibration_images < 1:
        raise ValueError(f"params.yaml export.calibration_images: must be at least 1, got {cfg.calibration_images}")
    calibration = [read_image(r.path) for r in val[len(val) - cfg.calibration_images :]]
    int8 = quantize_int8(args.out, args.quantized / "model.int8.onnx", calibration)
    test = load_records(args.test)
    fp32_m = evaluate_set(OnnxPredictor(args.out, threshold, cfg.threads), test, "test", threshold, None)
    int8_m = evaluate_set(OnnxPredictor(int8, threshold, cfg.threads), test, "test", threshold, None)
    report["int8"] = {
        "onnx_mb": round(int8.stat().st_size / 2**20, 2),
        "test_fp32": {k: fp32_m[k] for k in INT8_COMPARED},
        "test_int8": {k: int8_m[k] for k in INT8_COMPARED},
        "delta": {k: int8_m[k] - fp32_m[k] for k in INT8_COMPARED},
    }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, required=True, help="training checkpoint")
    parser.add_argument("--val", type=Path, required=True, help="COCO split: parity, timing and calibration images")
    parser.add_argument("--test", type=Path, required=True, help="COCO split for the int8 accuracy delta")
    parser.add_argument("--out", type=Path, required=True, help="the fp32 ONNX model")
    parser.add_argument("--quantized", type=Path, required=True, help="folder for the int8 model")
    parser.add_argument("--metrics", type=Path, required=True)
    args = parser.parse_args()
    cfg = load_section("export")
    report = export_report(args, cfg, load_section("evaluate").threshold)
    args.metrics.parent.mkdir(parents=True, exist_ok=True)
    args.metrics.write_text(json.dumps(report, indent=2) + "\n")
    t = report["ms_per_image"]
    print(
        f"export_onnx: {report['onnx_mb']} MB; ms/image p50: torchvision eager {t['torchvision_eager']['ms_per_image_p50']:.0f}, "
        f"torch {t['torch']['ms_per_image_p50']:.0f}, onnxruntime {t['onnxruntime']['ms_per_image_p50']:.0f}"
    )
    parity = report["parity"]
    if not parity["passed"]:
        print(f"export_onnx: parity FAILED ({len(parity['failures'])} problems):", file=sys.stderr)
        print("\n".join(f"  {f}" for f in parity["failures"]), file=sys.stderr)
        sys.exit(1)
    print(
        f"export_onnx: parity ok on {parity['images']} images: {parity['matched']} detections, min box IoU "
        f"{parity['min_box_iou']:.5f}, max |score delta| {parity['max_score_delta']:.2g}, min mask IoU {parity['min_mask_iou']:.4f}"
    )


if __name__ == "__main__":
    main()
