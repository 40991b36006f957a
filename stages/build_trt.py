"""Stage build_trt: the ONNX model → TensorRT engine, or SKIPPED.md saying why not (params: trt)."""

from __future__ import annotations

import argparse
from pathlib import Path

from barseg.export.trt import SKIPPED_NAME, SURGERED_NAME, build
from barseg.params import load_section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--onnx", type=Path, required=True, help="the exported model (dynamic or fixed-size)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the engine or SKIPPED.md")
    args = parser.parse_args()
    result = build(args.onnx, args.out, load_section("trt"))
    if result.surgery is not None:
        s = result.surgery
        print(
            f"build_trt: surgered graph {args.out / SURGERED_NAME}: input 1x3x{s.side}x{s.side}, "
            f"{s.ifs_inlined} If inlined, {s.nodes_before} -> {s.nodes_after} nodes"
        )
    if result.engine is None:
        print(f"build_trt: engine skipped: {result.reason} (see {args.out / SKIPPED_NAME})")
    else:
        print(f"build_trt: {result.engine}: {result.reason}")


if __name__ == "__main__":
    main()
