"""Stage evaluate: the trained model on the test split and the extra sets (params: evaluate),
and beside it the weights training started from (``model.init_weights``), when there are some."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from barseg.infer.predictor import Predictor
from barseg.infer.runtimes import load_predictor
from barseg.infer.torch_runtime import TorchPredictor
from barseg.metrics.evaluation import HEADLINE, compare_reports, evaluate_source
from barseg.metrics.sets import evaluation_sets, photos_trained_on, training_digests
from barseg.model.factory import build_model
from barseg.params import load_section


def evaluate_model(
    predictor: Predictor, sources: list[dict[str, Any]], cfg: DictConfig, plots: Path | None, label: str
) -> dict[str, Any]:
    report = {}
    for source in sources:
        m = report[source["name"]] = evaluate_source(
            predictor, threshold=cfg.threshold, plots_dir=plots, overlays=cfg.overlays, **source
        )
        print(f"evaluate: {label}: {source['name']}: " + ", ".join(f"{k} {m[k]:.3f}" for k in HEADLINE if k in m))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True, help="COCO test split")
    parser.add_argument("--train", type=Path, required=True, help="COCO training split: extra sets must not be in it")
    parser.add_argument("--out", type=Path, required=True, help="metrics JSON, one entry per set")
    parser.add_argument("--init-out", type=Path, required=True, help="the same for model.init_weights ({} if none)")
    parser.add_argument("--plots", type=Path, required=True, help="PR curves and worst-case overlays")
    args = parser.parse_args()
    cfg = load_section("evaluate")
    sources = [{"name": "test", "coco": args.test, "decode": cfg.decode and cfg.decode_test, "verify": cfg.verify}]
    extra_sets, skipped = evaluation_sets(cfg.extra_sets)
    for message in skipped:
        print(f"evaluate: extra set {message}")
    sources += [{"decode": cfg.decode, "verify": cfg.verify, **vars(extra)} for extra in extra_sets]
    model_cfg = load_section("model")
    # Built as training built it (a state dict, checkpoint or release; checked before the long part).
    start = TorchPredictor(build_model(model_cfg), cfg.threshold) if model_cfg.init_weights else None
    trained_on = training_digests(args.train)
    in_training = {extra.name: photos_trained_on(extra, trained_on) for extra in extra_sets}
    report = evaluate_model(load_predictor(args.model, threshold=cfg.threshold), sources, cfg, args.plots, "trained")
    for name, (shared, total) in in_training.items():
        if shared:  # e.g. a real set also listed in data.sources: kept, but marked
            report[name]["photos_in_training"] = shared
            print(f"evaluate: {name}: {shared} of its {total} photos are training photos: not a measurement")
    baseline = evaluate_model(start, sources, cfg, None, "init_weights") if start else {}
    for row in compare_reports(report, baseline):
        flag = "  WORSE than init_weights" if row.worse else ""
        print(f"evaluate: {row.set_name} {row.key}: trained {row.model:.3f}, init_weights {row.baseline:.3f}{flag}")
    for path, data in ((args.out, report), (args.init_out, baseline)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    main()
