"""One-to-one matching and the barcode-specific measures of docs/design.md §6."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from barseg.data.formats import rle_bytes

Rle = dict[str, Any]


def mask_iou_matrix(preds: list[Rle], gts: list[Rle]) -> np.ndarray:
    """(P, G) mask IoUs, computed on RLEs by pycocotools."""
    if not preds or not gts:
        return np.zeros((len(preds), len(gts)))
    return np.asarray(mask_utils.iou([rle_bytes(p) for p in preds], [rle_bytes(g) for g in gts], [0] * len(gts)))


def box_iou_matrix(preds: list[list[float]], gts: list[list[float]]) -> np.ndarray:
    """(P, G) IoUs of ``x0, y0, x1, y1`` boxes."""
    if not preds or not gts:
        return np.zeros((len(preds), len(gts)))
    xywh = lambda boxes: [[b[0], b[1], b[2] - b[0], b[3] - b[1]] for b in boxes]  # noqa: E731
    return np.asarray(mask_utils.iou(xywh(preds), xywh(gts), [0] * len(gts)))


def greedy_match(ious: np.ndarray, scores: list[float], threshold: float = 0.5) -> list[tuple[int, int, float]]:
    """Greedy by score, one-to-one: each prediction takes its best unmatched ground truth
    with IoU >= ``threshold``. Returns ``(prediction, ground truth, iou)`` triples."""
    matched_gt: set[int] = set()
    pairs = []
    for p in np.argsort(-np.asarray(scores, dtype=float), kind="stable"):
        if ious.shape[1] == 0:
            break
        candidates = [(ious[p, g], g) for g in range(ious.shape[1]) if g not in matched_gt and ious[p, g] >= threshold]
        if candidates:
            iou, g = max(candidates)
            matched_gt.add(g)
            pairs.append((int(p), int(g), float(iou)))
    return pairs


def long_axis(mask: np.ndarray) -> np.ndarray:
    """Unit vector along the long side of a mask's minimum-area rectangle (for a 1D code,
    across the bars)."""
    ys, xs = np.nonzero(mask)
    (_, _), (w, h), angle = cv2.minAreaRect(np.stack([xs, ys], axis=1).astype(np.float32))
    theta = np.deg2rad(angle if w >= h else angle + 90.0)
    return np.array([np.cos(theta), np.sin(theta)])


def modified_iou(gt_mask: np.ndarray, pred_mask: np.ndarray) -> float:
    """IoU of the two masks' extents along the ground truth's long axis: rewards covering the
    full run of bars even when the height differs (the seed project's measure)."""
    axis = long_axis(gt_mask)

    def extent(mask: np.ndarray) -> tuple[float, float]:
        ys, xs = np.nonzero(mask)
        t = (xs + 0.5) * axis[0] + (ys + 0.5) * axis[1]
        return float(t.min()) - 0.5, float(t.max()) + 0.5

    (a0, a1), (b0, b1) = extent(gt_mask), extent(pred_mask)
    overlap = max(0.0, min(a1, b1) - max(a0, b0))
    union = max(a1, b1) - min(a0, b0)
    return overlap / union if union > 0 else 0.0
