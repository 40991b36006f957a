"""benchmarks/curve.py scores each snapshot as the evaluate stage does."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from barseg.data.formats import load_records
from barseg.infer.runtimes import load_predictor
from barseg.metrics.evaluation import PRECISION_BASED
from barseg.metrics.sets import EvalSet
from tests.conftest import REPO, labelled_photos


def test_a_recall_only_set_gets_no_precision_in_the_curve(tiny_checkpoint: Path, tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("curve", REPO / "benchmarks/curve.py")
    assert spec is not None and spec.loader is not None
    curve = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(curve)
    coco = labelled_photos(tmp_path / "photos", ["a.jpg", "b.jpg"])
    sets = [EvalSet("labelled", coco=coco), EvalSet("qr_only", coco=coco, recall_only=True)]
    figures = curve.snapshot_figures(load_predictor(tiny_checkpoint, "torch", 0.5), load_records(coco), sets, 0.5)
    assert set(figures) == {"test", "labelled", "qr_only"}
    assert "precision@0.5" in figures["labelled"] and "segm_AP50" in figures["labelled"]
    assert not any(k.startswith(PRECISION_BASED) for k in figures["qr_only"])
    assert figures["qr_only"]["recall@0.5"] == figures["labelled"]["recall@0.5"]
