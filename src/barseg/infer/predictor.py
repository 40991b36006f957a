"""The ``Predictor`` interface and the one post-processing path every runtime shares.

A runtime only turns images into raw detections (boxes, scores, per-instance mask
probabilities at image size). ``postprocess`` makes them ``Detection``s: threshold, binary
mask, polygon of at most 16 points, rotated box and RLE. So evaluate, the CLI and the service
see the same numbers whatever the runtime.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import Any

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from barseg.data.formats import rle_str
from barseg.infer.detections import Detection, Prediction, RawDetections

MAX_POLYGON_POINTS = 16
NESTED_FRACTION = 0.7  # a detection this much inside a better one is a fragment of it


class Predictor(ABC):
    """Images (RGB uint8 HxWx3) in, one ``Prediction`` per image out."""

    def __init__(self, threshold: float = 0.5, mask_threshold: float = 0.5, nested: float = NESTED_FRACTION) -> None:
        self.threshold = threshold
        self.mask_threshold = mask_threshold
        self.nested = nested

    @abstractmethod
    def raw(self, images: list[np.ndarray], score_threshold: float) -> list[RawDetections]:
        """Run the network; detections scoring above ``score_threshold``, in image pixels."""

    def predict(
        self, images: list[np.ndarray], threshold: float | None = None, decode: bool = False
    ) -> list[Prediction]:
        """``decode``: also read each barcode (symbology and text) with zxing-cpp, and add
        the codes a whole-photo read finds outside every detection (``source: reader``)."""
        start = time.perf_counter()
        cut = self.threshold if threshold is None else threshold
        raws = self.raw(images, cut)
        predictions = []
        for raw, img in zip(raws, images, strict=True):
            detections = postprocess(raw, cut, self.mask_threshold, self.nested)
            if decode:
                from barseg.infer.decode import decode_prediction  # zxing-cpp only when asked for

                detections += decode_prediction(img, detections)
            predictions.append(Prediction(detections, (img.shape[1], img.shape[0])))
        elapsed = (time.perf_counter() - start) * 1000 / max(1, len(images))
        for prediction in predictions:
            prediction.processing_time_ms = elapsed
        return predictions


def mask_outline(mask: np.ndarray, max_points: int = MAX_POLYGON_POINTS) -> tuple[list[list[float]], dict[str, Any]]:
    """Polygon (<= ``max_points``, largest component) and rotated box of a binary mask."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return [], {"center": [0.0, 0.0], "size": [0.0, 0.0], "angle": 0.0}
    contour = max(contours, key=cv2.contourArea)
    perimeter = cv2.arcLength(contour, True)
    epsilon = 0.01 * perimeter
    approx = cv2.approxPolyDP(contour, epsilon, True)
    while len(approx) > max_points:  # coarser until it fits
        epsilon *= 1.5
        approx = cv2.approxPolyDP(contour, epsilon, True)
    (cx, cy), (w, h), angle = cv2.minAreaRect(contour)
    # Contour points are pixel centres; +0.5 puts them on the COCO continuous grid.
    polygon = [[float(x) + 0.5, float(y) + 0.5] for x, y in approx.reshape(-1, 2)]
    return polygon, {"center": [cx + 0.5, cy + 0.5], "size": [w + 1.0, h + 1.0], "angle": float(angle)}


def paste_mask(mask: np.ndarray, box: np.ndarray, height: int, width: int) -> np.ndarray:
    """An (M, M) box-relative mask as an (height, width) probability map of the photo,
    exactly as torchvision's ``paste_masks_in_image`` (one pixel of padding around the
    mask, the box grown to match, bilinear resize, integer box corners)."""
    m = mask.shape[-1]
    padded = np.pad(mask.astype(np.float32), 1)
    grow = (m + 2) / m
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half_w, half_h = (box[2] - box[0]) / 2 * grow, (box[3] - box[1]) / 2 * grow
    x0, y0, x1, y1 = (int(v) for v in (cx - half_w, cy - half_h, cx + half_w, cy + half_h))  # truncation, as .to(int64)
    w, h = max(x1 - x0 + 1, 1), max(y1 - y0 + 1, 1)
    resized = cv2.resize(padded, (w, h), interpolation=cv2.INTER_LINEAR)
    out = np.zeros((height, width), np.float32)
    ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x1 + 1, width), min(y1 + 1, height)
    if ix1 > ix0 and iy1 > iy0:
        out[iy0:iy1, ix0:ix1] = resized[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0]
    return out


def postprocess(
    raw: RawDetections, threshold: float, mask_threshold: float, nested: float = NESTED_FRACTION
) -> list[Detection]:
    """Detections by falling score. One whose mask lies ``nested`` or more inside the mask
    of a better one is dropped: box NMS keeps such fragments of long 1D codes, whose boxes
    overlap little even when their masks are nested."""
    detections: list[Detection] = []
    kept_rles: list[dict[str, Any]] = []
    for i in np.argsort(-raw.scores, kind="stable"):
        score = float(raw.scores[i])
        if score < threshold:
            continue
        binary = paste_mask(raw.masks[i], raw.boxes[i], *raw.image_shape) >= mask_threshold
        if not binary.any():
            continue
        rle = mask_utils.encode(np.asfortranarray(binary.astype(np.uint8)))
        # iscrowd=1 makes pycocotools divide the intersection by this mask's own area.
        if kept_rles and np.max(mask_utils.iou([rle], kept_rles, [1] * len(kept_rles))) >= nested:
            continue
        kept_rles.append(rle)
        polygon, rotated = mask_outline(binary)
        detections.append(Detection(score, [float(v) for v in raw.boxes[i]], polygon, rotated, rle_str(rle)))
    return detections
