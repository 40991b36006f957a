"""COCO bbox/segm AP through pycocotools, on in-memory ground truth and detections."""

from __future__ import annotations

import contextlib
import io
from typing import Any

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def coco_ap(
    images: list[dict[str, Any]], ground_truth: list[dict[str, Any]], detections: list[dict[str, Any]]
) -> dict[str, float]:
    """``segm_AP``, ``segm_AP50``, ``segm_AP75``, ``bbox_AP``, ``bbox_AP50``.

    ``images``: ``{"id", "width", "height"}``; ``ground_truth``: COCO annotations (RLE or
    polygon ``segmentation``, ``bbox`` xywh); ``detections``: COCO results with ``score``.
    """
    names = ("segm_AP", "segm_AP50", "segm_AP75", "bbox_AP", "bbox_AP50")
    if not detections or not ground_truth:
        return dict.fromkeys(names, 0.0)
    gt = COCO()
    anns = [{**a, "id": i + 1, "category_id": 1, "iscrowd": a.get("iscrowd", 0)} for i, a in enumerate(ground_truth)]
    gt.dataset = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "barcode"}]}
    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet):
        gt.createIndex()
        dt = gt.loadRes([{**d, "category_id": 1} for d in detections])
        stats = {}
        for kind in ("segm", "bbox"):
            evaluation = COCOeval(gt, dt, kind)
            evaluation.evaluate()
            evaluation.accumulate()
            evaluation.summarize()
            stats[kind] = evaluation.stats
    return {
        "segm_AP": float(stats["segm"][0]),
        "segm_AP50": float(stats["segm"][1]),
        "segm_AP75": float(stats["segm"][2]),
        "bbox_AP": float(stats["bbox"][0]),
        "bbox_AP50": float(stats["bbox"][1]),
    }
