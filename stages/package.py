"""Stage package: the ONNX model (and TensorRT engine) as a BentoML model and Bento, exported
to an archive (params: serve)."""

from __future__ import annotations

import argparse
from pathlib import Path

from barseg.params import load_section
from barseg.serve.package import model_files, package, settings_from_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--onnx", type=Path, required=True)
    parser.add_argument("--trt", type=Path, required=True, help="build_trt's folder: model.engine or SKIPPED.md")
    parser.add_argument("--out", type=Path, required=True, help="JSON naming the Bento and model tags")
    parser.add_argument("--archive", type=Path, required=True, help="`bentoml export` of the Bento")
    args = parser.parse_args()
    name, settings = settings_from_params(load_section("serve"))
    report = package(name, settings, model_files(args.onnx, args.trt), args.out, args.archive)
    print(f"package: Bento {report['tag']} (model {report['model_tag']}: {', '.join(report['model_files'])})")
    print(f"package: {args.archive} ({args.archive.stat().st_size / 1e6:.1f} MB); serve with `{report['serve']}`")


if __name__ == "__main__":
    main()
