"""Serve released (or any) weights without training: export them to ONNX and package a Bento.

    python tools/package_weights.py [--weights weights/<file>.pt] [--out models/released]
    bentoml serve "$(python -c 'import json; print(json.load(open("models/released/bento.json"))["tag"])')"

(``make serve-released`` runs both.) The export traces the network on synthetic scene 0 of
``params.yaml``'s ``synth`` section (no data needed) and checks the ONNX model against the
weights on it (the ``export`` section's parity tolerances); packaging uses the ``serve``
section, exactly as the ``export_onnx`` and ``package`` stages do for the pipeline's own model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from barseg.data.synth import render
from barseg.export.onnx import check_parity, export_onnx
from barseg.infer.onnx_runtime import OnnxPredictor
from barseg.infer.torch_runtime import TorchPredictor
from barseg.params import load_section
from barseg.serve.package import package, settings_from_params
from barseg.weights import is_released, released_weights, verified


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, help="default: the released weights (SHA-256 checked)")
    parser.add_argument("--out", type=Path, default=Path("models/released"))
    args = parser.parse_args()
    weights = args.weights or released_weights()
    if is_released(weights):
        verified(weights)
    jpeg, _ = render(load_section("synth"), 0)
    sample = cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    cfg = load_section("export")
    onnx = export_onnx(weights, args.out / "model.onnx", sample, int(cfg.opset))
    parity = check_parity(
        TorchPredictor(weights),
        OnnxPredictor(onnx),
        [("synthetic scene 0", sample)],
        cfg.parity_score,
        cfg.parity_box_iou,
        cfg.parity_score_delta,
        cfg.parity_mask_iou,
    )
    if not parity.passed:
        raise SystemExit(f"{onnx}: does not match {weights}: {parity.failures[:3]}")
    name, settings = settings_from_params(load_section("serve"))
    report = package(name, settings, [onnx], args.out / "bento.json", args.out / "barcode_segmenter.bento")
    print(f"{weights} -> {onnx} -> Bento {report['tag']}; serve with `{report['serve']}`")


if __name__ == "__main__":
    main()
