"""Evaluate a ``Predictor`` on a labelled set: the numbers of ``metrics/evaluate.json``.

The same ``Predictor`` (and so the same post-processing) the CLI and the service use runs
here, one image at a time after a warm-up. It runs at ``AP_SCORE_FLOOR`` (AP integrates over
scores), so ``ms_per_image`` includes masks a caller at the usual 0.5 cut does not pay for:
an upper bound of what a caller sees (``metrics/export.json`` times the 0.5 cut).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pycocotools import mask as mask_utils
from tqdm import tqdm

from barseg.data.formats import ImageRecord, load_records, rle_bytes, rle_str
from barseg.data.images import read_image
from barseg.infer.decode import decode_prediction
from barseg.infer.detections import Prediction
from barseg.infer.overlay import TRUTH_RGB, draw_detections, draw_polygons
from barseg.infer.predictor import Predictor
from barseg.metrics.coco import coco_ap
from barseg.metrics.decoding import decode_rate, expected_texts, load_decode_truth
from barseg.metrics.matching import box_iou_matrix, greedy_match, mask_iou_matrix, modified_iou

AP_SCORE_FLOOR = 0.05  # AP integrates over scores: keep low-confidence detections for it
PR_THRESHOLDS = [round(0.05 * i, 2) for i in range(1, 20)]


@dataclass
class ImageResult:
    record: ImageRecord
    prediction: Prediction  # every detection down to AP_SCORE_FLOOR, by falling score
    gt_rles: list[dict[str, Any]]
    reader_texts: list[str] = field(default_factory=list)  # whole-photo reads outside every kept detection
    ious: np.ndarray = field(init=False)  # (detections, ground truths) mask IoUs, once

    def __post_init__(self) -> None:
        masks = [d.mask for d in self.prediction.detections]
        if any(m is None for m in masks):
            raise ValueError("evaluation needs each detection's mask; the predictor returned none")
        self.ious = mask_iou_matrix(masks, self.gt_rles)  # type: ignore[arg-type]


def predict_records(
    predictor: Predictor,
    records: list[ImageRecord],
    desc: str,
    decode_threshold: float | None = None,
    verify: bool = False,
) -> list[ImageResult]:
    """Every detection down to ``AP_SCORE_FLOOR``. ``verify``: each is read and re-scored by
    whether it read, as the service does (so every figure counts the reads); else, with
    ``decode_threshold``, those at or above it are read. Either way a whole-photo read adds
    what the detections miss; the reader's extra codes count for ``decode_rate`` only,
    never for the masks."""
    results = []
    for i, record in enumerate(tqdm(records, desc=desc, unit="img", mininterval=2.0)):
        image = read_image(record.path)
        if i == 0:
            predictor.predict([image], threshold=AP_SCORE_FLOOR)  # warm-up: first call allocates
        (prediction,) = predictor.predict([image], threshold=AP_SCORE_FLOOR, decode=verify, verify=verify)
        if verify:
            extra = [d for d in prediction.detections if d.source == "reader"]
            prediction.detections = [d for d in prediction.detections if d.source != "reader"]
        elif decode_threshold is not None:
            extra, _ = decode_prediction(image, _kept(prediction, decode_threshold))
        else:
            extra = []
        gts = [rle_str(inst.to_rle(record.height, record.width)) for inst in record.instances]
        results.append(ImageResult(record, prediction, gts, [d.text for d in extra if d.text]))
    return results


def read_texts(results: list[ImageResult], threshold: float) -> dict[Path, list[str]]:
    return {r.record.path: [d.text for d in _kept(r.prediction, threshold) if d.text] + r.reader_texts for r in results}


def evaluate_decoding(
    predictor: Predictor, truth: dict[Path, list[str]], threshold: float, desc: str, verify: bool = True
) -> dict[str, Any]:
    """``decode_rate`` over the images of a ``decode_truth.json`` (no masks needed)."""
    read: dict[Path, list[str]] = {}
    timings = []
    for i, path in enumerate(tqdm(sorted(truth), desc=desc, unit="img", mininterval=2.0)):
        image = read_image(path)
        if i == 0:
            predictor.predict([image], threshold=threshold)
        (prediction,) = predictor.predict([image], threshold=threshold, decode=True, verify=verify)
        read[path] = [d.text for d in prediction.detections if d.text]
        timings.append(prediction.processing_time_ms)
    return {
        "decode_rate": decode_rate(truth, read),
        "decode_images": len(truth),
        "decode_instances": sum(len(t) for t in truth.values()),
        "decode_ms_per_image_p50": float(np.percentile(timings, 50)),
    }


def _kept(prediction: Prediction, threshold: float) -> list[Any]:
    return [d for d in prediction.detections if d.score >= threshold]


def _counts(result: ImageResult, threshold: float) -> tuple[int, int, list[tuple[int, int, float]]]:
    """(number of predictions kept, number of ground truths, mask-IoU matches). Detections
    are sorted by score, so those kept at ``threshold`` are the first rows of ``ious``."""
    dets = _kept(result.prediction, threshold)
    return len(dets), len(result.gt_rles), greedy_match(result.ious[: len(dets)], [d.score for d in dets])


def summarize(results: list[ImageResult], threshold: float) -> dict[str, Any]:
    """Every headline number for one set at score ``threshold``."""
    images = [{"id": i + 1, "width": r.record.width, "height": r.record.height} for i, r in enumerate(results)]
    gts, dts = [], []
    for i, r in enumerate(results):
        for rle, inst in zip(r.gt_rles, r.record.instances, strict=True):
            x0, y0, x1, y1 = inst.box()
            gts.append(
                {
                    "image_id": i + 1,
                    "segmentation": rle,
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": float(mask_utils.area(rle_bytes(rle))),
                }
            )
        for d in r.prediction.detections:
            x0, y0, x1, y1 = d.bbox
            dts.append(
                {"image_id": i + 1, "segmentation": d.mask, "bbox": [x0, y0, x1 - x0, y1 - y0], "score": d.score}
            )
    metrics: dict[str, Any] = coco_ap(images, gts, dts)

    tp = n_pred = n_gt = detected = 0
    ious, modified = [], []
    for r in results:
        kept, n, pairs = _counts(r, threshold)
        n_pred, n_gt, tp = n_pred + kept, n_gt + n, tp + len(pairs)
        dets = _kept(r.prediction, threshold)
        box_ious = box_iou_matrix([d.bbox for d in dets], [list(inst.box()) for inst in r.record.instances])
        detected += int((box_ious >= 0.5).any(axis=0).sum()) if box_ious.size else 0
        for p, g, iou in pairs:
            ious.append(iou)
            modified.append(
                modified_iou(mask_utils.decode(rle_bytes(r.gt_rles[g])), mask_utils.decode(rle_bytes(dets[p].mask)))
            )
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gt if n_gt else 0.0
    timings = [r.prediction.processing_time_ms for r in results]
    metrics.update(
        {
            "precision@0.5": precision,
            "recall@0.5": recall,
            "f1@0.5": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
            "mean_iou": float(np.mean(ious)) if ious else 0.0,
            "modified_iou": float(np.mean(modified)) if modified else 0.0,
            "detection_rate": detected / n_gt if n_gt else 0.0,
            "ms_per_image_p50": float(np.percentile(timings, 50)) if timings else 0.0,
            "ms_per_image_p95": float(np.percentile(timings, 95)) if timings else 0.0,
            "images": len(results),
            "instances": n_gt,
            "score_threshold": threshold,
        }
    )
    return metrics


def pr_curve(results: list[ImageResult]) -> list[dict[str, float]]:
    """Precision and recall (mask IoU >= 0.5, one-to-one) at each score threshold."""
    rows = []
    for t in PR_THRESHOLDS:
        counts = [_counts(r, t) for r in results]
        n_pred = sum(c[0] for c in counts)
        n_gt = sum(c[1] for c in counts)
        tp = sum(len(c[2]) for c in counts)
        rows.append({"threshold": t, "precision": tp / n_pred if n_pred else 1.0, "recall": tp / n_gt if n_gt else 0.0})
    return rows


def worst_overlays(results: list[ImageResult], threshold: float, out_dir: Path, count: int = 8) -> list[Path]:
    """Overlays of the ``count`` images with the most errors (misses + false detections):
    ground truth green, predictions red with their scores."""
    errors = []
    for r in results:
        kept, n, pairs = _counts(r, threshold)
        errors.append((kept - len(pairs)) + (n - len(pairs)))
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for rank, i in enumerate(np.argsort(-np.asarray(errors), kind="stable")[:count]):
        r = results[i]
        image = draw_detections(read_image(r.record.path), _kept(r.prediction, threshold))
        truth = [ring for inst in r.record.instances for ring in inst.polygons or [np.array(_box_ring(inst.box()))]]
        draw_polygons(image, truth, TRUTH_RGB)
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        scale = 800 / max(image.shape[:2])
        if scale < 1:
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        path = out_dir / f"{rank:02d}_{Path(r.record.path).stem}.png"
        cv2.imwrite(str(path), image)
        written.append(path)
    return written


def _box_ring(box: tuple[float, float, float, float]) -> list[list[float]]:
    x0, y0, x1, y1 = box
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def evaluate_set(
    predictor: Predictor,
    records: list[ImageRecord],
    name: str,
    threshold: float,
    plots_dir: Path | None,
    overlays: int = 8,
    decode: bool = False,
    verify: bool = False,
) -> dict[str, Any]:
    """Metrics of one set; with ``plots_dir``, also its PR curve (``pr/<name>.json``) and
    the worst ``overlays`` images (``worst/<name>/``); with ``decode``, ``decode_rate``
    against the annotations' ``attributes.text`` (every code must have one); with
    ``verify``, every figure of the detections re-scored by their reads.

    The two are apart because overlays show the evaluation photos: DVC caches them, git
    must not hold them (the real sets are not ours to redistribute)."""
    expected = expected_texts(records) if decode else None
    results = predict_records(predictor, records, f"evaluate {name}", threshold if decode else None, verify)
    metrics = summarize(results, threshold)
    if expected is not None:
        metrics["decode_rate"] = decode_rate(expected, read_texts(results, threshold))
        metrics["decode_instances"] = sum(len(t) for t in expected.values())
    if plots_dir is not None:
        (plots_dir / "pr").mkdir(parents=True, exist_ok=True)
        (plots_dir / "pr" / f"{name}.json").write_text(json.dumps(pr_curve(results), indent=1))
        worst_overlays(results, threshold, plots_dir / "worst" / name, overlays)
    return metrics


# Figures that count unlabelled codes as false alarms (left out of recall-only sets).
PRECISION_BASED = ("precision", "f1", "segm_AP", "bbox_AP")
# The figures a person reads first (stage logs, side-by-side reports): higher is better but for time.
HEADLINE = ("recall@0.5", "precision@0.5", "segm_AP50", "detection_rate", "decode_rate", "ms_per_image_p50")
LOWER_IS_BETTER = frozenset({"ms_per_image_p50"})
# What counts as worse in a side-by-side report: a rate below by more than its rounding, a
# time above by more than run-to-run jitter.
WORSE_BY = {"rate": 0.005, "time": 0.10}


def has_texts(records: list[ImageRecord]) -> bool:
    """Every code of the set carries its text, so ``decode_rate`` can be scored."""
    return any(r.instances for r in records) and all(inst.text for r in records for inst in r.instances)


def evaluate_source(
    predictor: Predictor,
    name: str,
    threshold: float,
    coco: Path | None = None,
    decode_truth: Path | None = None,
    plots_dir: Path | None = None,
    overlays: int = 8,
    decode: bool = True,
    images: Path | None = None,
    recall_only: bool = False,
    verify: bool = True,
) -> dict[str, Any]:
    """One evaluation entry, as the evaluate stage and ``barseg evaluate`` both define it: a
    COCO set (segmentation metrics; ``decode_rate`` from its texts when every code has one)
    and/or a ``decode_truth.json`` (then ``decode_rate`` comes from it, over its images).
    ``images``: the image folder of both, when not the default beside the file. ``recall_only``:
    only some codes are labelled, so figures that count false alarms are left out. ``verify``
    (with ``decode``): reads re-score the detections, as in the service, for every figure."""
    if coco is None and decode_truth is None:
        raise ValueError(f"{name}: give a COCO file, a decode_truth.json, or both")
    metrics: dict[str, Any] = {}
    if coco is not None:
        records = load_records(coco, images)
        metrics = evaluate_set(
            predictor,
            records,
            name,
            threshold,
            plots_dir,
            overlays,
            decode and decode_truth is None and has_texts(records),
            decode and verify,
        )
        if recall_only:
            metrics = {k: v for k, v in metrics.items() if not k.startswith(PRECISION_BASED)}
    if decode and decode_truth is not None:
        metrics.update(
            evaluate_decoding(predictor, load_decode_truth(decode_truth, images), threshold, f"decode {name}", verify)
        )
    return metrics


@dataclass(frozen=True)
class Comparison:
    """One headline figure of one set for two models (``baseline``: the weights training began from)."""

    set_name: str
    key: str
    model: float
    baseline: float

    @property
    def worse(self) -> bool:
        if self.key in LOWER_IS_BETTER:
            return self.model > self.baseline * (1 + WORSE_BY["time"])
        return self.model < self.baseline - WORSE_BY["rate"]


def compare_reports(model: dict[str, Any], baseline: dict[str, Any]) -> list[Comparison]:
    """The headline figures both reports have, set by set, in the model report's order."""
    return [
        Comparison(name, key, float(figures[key]), float(baseline[name][key]))
        for name, figures in model.items()
        if name in baseline
        for key in HEADLINE
        if key in figures and key in baseline[name]
    ]
