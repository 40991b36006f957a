"""Stage preprocess: merge validated sources into COCO train/val/test (params: data)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from barseg.data.split import SplitFractions, process
from barseg.data.validate import sources_from_params
from barseg.params import load_section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--problems", type=Path, required=True, help="validate's problem list (files to exclude)")
    parser.add_argument("--out", type=Path, required=True, help="folder for {train,val,test}.json and images/")
    args = parser.parse_args()
    params = load_section("data")
    excluded = set(json.loads(args.problems.read_text())["excluded"])
    counts = process(
        sources_from_params(params.sources),
        excluded,
        args.out,
        SplitFractions(**params.split),
        params.max_side,
        int(params.jpeg_quality),
    )
    for split, c in counts.items():
        print(f"preprocess: {split}: {c['images']} images, {c['instances']} barcodes")


if __name__ == "__main__":
    main()
