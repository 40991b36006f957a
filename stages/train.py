"""Stage train: fit Mask R-CNN on the processed splits (params: model, train)."""

from __future__ import annotations

import argparse
from pathlib import Path

from barseg.model.training import fit
from barseg.params import load_section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train", type=Path, required=True, help="COCO training split")
    parser.add_argument("--val", type=Path, required=True, help="COCO validation split")
    parser.add_argument("--checkpoints", type=Path, required=True, help="periodic + last checkpoints (resume)")
    parser.add_argument("--out", type=Path, required=True, help="final weights-only Lightning checkpoint")
    parser.add_argument("--metrics", type=Path, required=True, help="dvclive folder")
    args = parser.parse_args()
    fit(load_section("model"), load_section("train"), args.train, args.val, args.checkpoints, args.out, args.metrics)


if __name__ == "__main__":
    main()
