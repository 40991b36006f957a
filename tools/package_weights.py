"""Serve released (or any) weights without training: export them to ONNX and package a Bento.

    python tools/package_weights.py [--weights weights/<file>.pt] [--out models/released]
    bentoml serve "$(python -c 'import json; print(json.load(open("models/released/bento.json"))["tag"])')"

(``make serve-released`` runs both.) The export traces the network on synthetic scene 0 of
``params.yaml``'s ``synth`` section (no data needed) and checks the ONNX model against the
weights on the first ``export.parity_images`` scenes (the ``export`` section's tolerances);
packaging uses the ``serve`` section, exactly as the ``export_onnx`` and ``package`` stages do
for the pipeline's own model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from barseg.data.images import decode_image
from barseg.data.synth import render
from barseg.export.onnx import check_parity, export_onnx, stage_tolerance
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
    cfg, synth = load_section("export"), load_section("synth")
    scenes = [(f"synthetic scene {i}", decode_image(render(synth, i)[0], None)) for i in range(int(cfg.parity_images))]
    onnx = export_onnx(weights, args.out / "model.onnx", scenes[0][1], int(cfg.opset))
    parity = check_parity(TorchPredictor(weights), OnnxPredictor(onnx), scenes, **stage_tolerance(cfg))
    if not parity.passed:
        raise SystemExit(f"{onnx}: does not match {weights}: {parity.failures[:3]}")
    name, settings = settings_from_params(load_section("serve"))
    report = package(name, settings, [onnx], args.out / "bento.json", args.out / "barcode_segmenter.bento")
    print(
        f"{weights} -> {onnx} (parity ok on {parity.images} scenes: {parity.matched} detections) -> Bento {report['tag']}; serve with `{report['serve']}`"
    )


if __name__ == "__main__":
    main()
