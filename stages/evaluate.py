"""Stage evaluate: the trained model on the test split and the extra sets (params: evaluate)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from barseg.data.dataset import load_records
from barseg.infer.runtimes import load_predictor
from barseg.metrics.evaluation import evaluate_set
from barseg.params import load_section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True, help="COCO test split")
    parser.add_argument("--out", type=Path, required=True, help="metrics JSON, one entry per set")
    parser.add_argument("--plots", type=Path, required=True, help="PR curves and worst-case overlays")
    args = parser.parse_args()
    cfg = load_section("evaluate")
    predictor = load_predictor(args.model, threshold=cfg.threshold)
    sets = {"test": load_records(args.test)}
    for extra in cfg.extra_sets:
        coco = Path(extra.coco)
        if coco.is_file():
            sets[extra.name] = load_records(coco)
        else:
            print(f"evaluate: extra set '{extra.name}' skipped: {coco} not found")
    report = {}
    for name, records in sets.items():
        report[name] = evaluate_set(predictor, records, name, cfg.threshold, args.plots, cfg.overlays)
        m = report[name]
        print(
            f"evaluate: {name}: recall@0.5 {m['recall@0.5']:.3f} precision@0.5 {m['precision@0.5']:.3f} segm_AP50 {m['segm_AP50']:.3f} detection_rate {m['detection_rate']:.3f} ({m['ms_per_image_p50']:.0f} ms/img)"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
