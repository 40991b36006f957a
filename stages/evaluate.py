"""Stage evaluate: the trained model on the test split and the extra sets (params: evaluate)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from barseg.infer.runtimes import load_predictor
from barseg.metrics.evaluation import evaluate_source
from barseg.metrics.sets import evaluation_sets
from barseg.params import load_section

HEADLINE = ("recall@0.5", "precision@0.5", "segm_AP50", "detection_rate", "decode_rate", "ms_per_image_p50")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True, help="COCO test split")
    parser.add_argument("--out", type=Path, required=True, help="metrics JSON, one entry per set")
    parser.add_argument("--plots", type=Path, required=True, help="PR curves and worst-case overlays")
    args = parser.parse_args()
    cfg = load_section("evaluate")
    predictor = load_predictor(args.model, threshold=cfg.threshold)
    sources = [{"name": "test", "coco": args.test, "decode": cfg.decode and cfg.decode_test}]
    extra_sets, skipped = evaluation_sets(cfg.extra_sets)
    for message in skipped:
        print(f"evaluate: extra set {message}")
    for extra in extra_sets:
        sources.append({"decode": cfg.decode, **vars(extra)})
    report = {}
    for source in sources:
        m = report[source["name"]] = evaluate_source(
            predictor, threshold=cfg.threshold, plots_dir=args.plots, overlays=cfg.overlays, **source
        )
        print(f"evaluate: {source['name']}: " + ", ".join(f"{k} {m[k]:.3f}" for k in HEADLINE if k in m))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
