"""The ``barseg`` command: ``predict`` and ``evaluate`` through the same Predictor as the
pipeline and the service."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
from tqdm import tqdm

from barseg.data.formats import IMAGE_SUFFIXES
from barseg.data.images import read_image
from barseg.infer.overlay import draw_detections
from barseg.infer.runtimes import RUNTIMES, load_predictor
from barseg.metrics.evaluation import evaluate_source
from barseg.weights import MANIFEST, default_release, weights_dir

TRAINED = Path("models/model.ckpt")


def _images(paths: list[Path]) -> list[Path]:
    """Files as given; folders expanded to their images (sorted)."""
    out = []
    for path in paths:
        if path.is_dir():
            out += sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            out.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
    return out


def overlay_name(path: Path, taken: set[str]) -> str:
    """``<stem>.png``, numbered when another image (``a/x.jpg`` and ``b/x.jpg``, ``x.jpg`` and
    ``x.png``) already took it, so no overlay overwrites another."""
    name, n = f"{path.stem}.png", 1
    while name in taken:
        name, n = f"{path.stem}_{n}.png", n + 1
    taken.add(name)
    return name


def default_model() -> Path:
    """The released weights when this checkout has them (checked), else the pipeline's model."""
    if (weights_dir() / MANIFEST).is_file():
        path = default_release()  # load_predictor checks its SHA-256
        print(f"barseg: using the released weights {path}; --model picks another", file=sys.stderr)
        return path
    if TRAINED.is_file():
        print(f"barseg: using {TRAINED}, the pipeline's model; --model picks another", file=sys.stderr)
        return TRAINED
    raise FileNotFoundError(
        f"no model: no released weights in {weights_dir()} and no {TRAINED}; run `make repro` or pass --model"
    )


def predict(args: argparse.Namespace) -> None:
    predictor = load_predictor(args.model or default_model(), args.runtime, args.threshold)
    paths = _images(args.images)
    results = {}
    written: set[str] = set()
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    for path in tqdm(paths, desc="predict", unit="img", disable=len(paths) < 2, file=sys.stderr):
        image = read_image(path)
        (prediction,) = predictor.predict([image], decode=args.decode, verify=args.verify)
        results[str(path)] = prediction.to_json()
        if args.out:
            overlay = draw_detections(image, prediction.detections)
            name = overlay_name(path, written)
            cv2.imwrite(str(args.out / name), cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR))
    json.dump(results, sys.stdout, indent=2)
    sys.stdout.write("\n")


def evaluate(args: argparse.Namespace) -> None:
    predictor = load_predictor(args.model or default_model(), args.runtime, args.threshold)
    name = (args.coco or args.decode_truth).parent.name
    metrics = evaluate_source(
        predictor,
        name,
        args.threshold,
        args.coco,
        args.decode_truth,
        args.plots,
        decode=args.decode,
        images=args.images,
        recall_only=args.recall_only,
        verify=args.verify,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(metrics, indent=2) + "\n")
    json.dump(metrics, sys.stdout, indent=2)
    sys.stdout.write("\n")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="barseg", description=__doc__)
    sub = root.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--model",
        type=Path,
        help="checkpoint (.ckpt, .pt), .onnx or TensorRT .engine; default: the released weights, else models/model.ckpt",
    )
    common.add_argument("--runtime", choices=RUNTIMES, default=None, help="default: from the model file's type")
    common.add_argument("--threshold", type=float, default=0.5, help="score cut, 0..1")
    common.add_argument(
        "--verify",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="with --decode: a detection's score counts whether it read (--no-verify: the network's alone)",
    )

    p = sub.add_parser("predict", parents=[common], help="detections of images or folders as JSON on stdout")
    p.add_argument("images", type=Path, nargs="+")
    p.add_argument("--out", type=Path, help="folder for overlay PNGs")
    p.add_argument("--decode", action=argparse.BooleanOptionalAction, default=True, help="read each barcode")
    p.set_defaults(func=predict)

    e = sub.add_parser("evaluate", parents=[common], help="metrics of a labelled COCO set")
    e.add_argument("--coco", type=Path, help="COCO annotations JSON (segmentation metrics)")
    e.add_argument("--decode-truth", type=Path, help="decode_truth.json: decode_rate over its images")
    e.add_argument("--decode", action=argparse.BooleanOptionalAction, default=True, help="score decode_rate")
    e.add_argument("--images", type=Path, help="image folder (default: images/ beside the JSON, else its folder)")
    e.add_argument(
        "--recall-only",
        action="store_true",
        help="only some codes are labelled (e.g. only the QR codes): leave out figures that count false alarms",
    )
    e.add_argument("--out", type=Path, required=True, help="metrics JSON")
    e.add_argument("--plots", type=Path, help="folder for the PR curve and worst-case overlays")
    e.set_defaults(func=evaluate)
    return root


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if not 0.0 <= args.threshold <= 1.0:
        parser().error(f"--threshold must be within [0, 1], got {args.threshold}")
    if args.command == "evaluate" and not (args.coco or args.decode_truth):
        parser().error("evaluate needs --coco, --decode-truth or both")
    try:
        args.func(args)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:  # bad input or setup: one clear line, no traceback
        print(f"barseg: error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
