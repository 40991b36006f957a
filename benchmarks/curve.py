"""Accuracy against training time: evaluate every checkpoint the train stage kept.

    python benchmarks/curve.py [--checkpoints models/checkpoints] [--final models/model.ckpt] [--test-images 100]
                               [--weights served|live] [--every STEPS]

For each ``stepNNNNNN.ckpt`` and the final ``models/model.ckpt``: minutes of training to reach
it (``--seconds-per-step``, as the train stage's progress bar reported it), then
recall/precision@0.5, segm AP50 and detection rate on the test split and on every extra set
of ``params.yaml``'s ``evaluate`` section that is present. Prints a table and writes
``metrics/curve.json``. A run with ``train.ema_decay`` snapshots the average (``served``) and the
raw weights it averages (``--weights live``): both curves of one run compare the EMA at equal time.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from barseg.data.formats import ImageRecord, load_records
from barseg.infer.predictor import Predictor
from barseg.infer.runtimes import load_predictor
from barseg.metrics.evaluation import evaluate_set, evaluate_source
from barseg.metrics.sets import EvalSet, evaluation_sets
from barseg.params import load_section

KEYS = ("recall@0.5", "precision@0.5", "segm_AP50", "detection_rate")


def trained_steps(checkpoint: Path) -> int:
    """The optimiser steps behind a Lightning checkpoint."""
    return int(torch.load(checkpoint, map_location="cpu", weights_only=True)["global_step"])


def snapshot_figures(
    predictor: Predictor, test: list[ImageRecord], extra_sets: list[EvalSet], threshold: float
) -> dict[str, dict[str, float]]:
    """One snapshot's KEYS on the test subset and on every COCO set of the registry, as the
    evaluate stage defines them (a recall-only set has no precision), decoding left out."""
    figures = {"test": evaluate_set(predictor, test, "test", threshold, None)}
    for extra in extra_sets:
        if extra.coco is not None:  # decode_truth-only sets have no masks to score
            figures[extra.name] = evaluate_source(
                predictor, extra.name, threshold, coco=extra.coco, decode=False, recall_only=extra.recall_only
            )
    return {name: {k: round(m[k], 3) for k in KEYS if k in m} for name, m in figures.items()}


def live_weights(snapshot: Path, scratch: Path) -> Path:
    """A copy of an EMA run's snapshot that serves its raw (not averaged) weights."""
    checkpoint = torch.load(snapshot, map_location="cpu", weights_only=True)
    if "live_state_dict" not in checkpoint:
        raise SystemExit(f"{snapshot}: no live_state_dict (only snapshots of a train.ema_decay run carry one)")
    checkpoint["state_dict"] = checkpoint.pop("live_state_dict")
    path = scratch / snapshot.name
    torch.save(checkpoint, path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", type=Path, default=Path("models/checkpoints"))
    parser.add_argument("--final", type=Path, default=Path("models/model.ckpt"), help="the train stage's output")
    parser.add_argument("--test", type=Path, default=Path("data/processed/test.json"))
    parser.add_argument("--test-images", type=int, default=100, help="evenly spread subset of the test split")
    parser.add_argument(
        "--seconds-per-step", type=float, default=float("nan"), help="training speed, for the minutes column"
    )
    parser.add_argument(
        "--weights", choices=("served", "live"), default="served", help="live: an EMA run's raw weights"
    )
    parser.add_argument(
        "--every", type=int, default=0, help="only the snapshots at multiples of this many steps (and the final model)"
    )
    parser.add_argument("--out", type=Path, default=Path("metrics/curve.json"))
    args = parser.parse_args()
    cfg = load_section("evaluate")
    test = load_records(args.test)
    test = test[:: max(1, len(test) // args.test_images)][: args.test_images]
    extra_sets, skipped = evaluation_sets(cfg.extra_sets)
    print("\n".join(skipped))
    checkpoints = sorted(args.checkpoints.glob("step*.ckpt"))
    if args.weights == "served" and args.final.is_file():  # the final model holds the average only
        checkpoints.append(args.final)
    by_step = {trained_steps(c): c for c in checkpoints}  # the final model may equal the last step checkpoint
    if args.every:  # a long run keeps a snapshot every few minutes: evaluating all of them takes hours
        by_step = {s: c for s, c in by_step.items() if s % args.every == 0 or c == args.final}
    rows = []
    with tempfile.TemporaryDirectory(prefix="barseg-curve-") as scratch:
        for step, checkpoint in sorted(by_step.items()):
            if args.weights == "live":
                checkpoint = live_weights(checkpoint, Path(scratch))
            predictor = load_predictor(checkpoint, "torch", cfg.threshold)
            row: dict[str, object] = {"step": step, "minutes": round(step * args.seconds_per_step / 60, 1)}
            row.update(snapshot_figures(predictor, test, extra_sets, cfg.threshold))
            rows.append(row)
            print(json.dumps(row), flush=True)
    args.out.write_text(json.dumps(rows, indent=1) + "\n")
    names = [n for n in rows[0] if n not in ("step", "minutes")] if rows else []
    header = "step  min  " + "  ".join(f"{name[:22]:>22}" for name in names)
    print(header + "\n" + " " * 11 + "  ".join(f"{'R / P / AP50 / DR':>22}" for _ in names))
    for row in rows:
        cells = "  ".join(
            f"{'/'.join(f'{row[n][k]:.2f}' if k in row[n] else '-' for k in KEYS):>22}"  # type: ignore[index,operator]
            for n in names
        )
        print(f"{row['step']:>5} {row['minutes']:>4}  {cells}")


if __name__ == "__main__":
    main()
