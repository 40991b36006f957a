"""Draw detections on a photo: the CLI's overlays, the service's /visualize and the
evaluation's worst cases all draw them this one way."""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from barseg.infer.detections import Detection

PREDICTION_RGB = (255, 0, 0)
TRUTH_RGB = (0, 200, 0)


def line_width(image: np.ndarray) -> int:
    return max(2, round(max(image.shape[:2]) / 500))


def draw_polygons(image: np.ndarray, polygons: Iterable[np.ndarray], colour: tuple[int, int, int]) -> None:
    for polygon in polygons:
        cv2.polylines(image, [np.round(polygon).astype(np.int32)], True, colour, line_width(image))


def draw_detections(image: np.ndarray, detections: list[Detection]) -> np.ndarray:
    """A copy of the RGB ``image`` with each detection's polygon and its score (and decoded
    symbology: text when read)."""
    out = image.copy()
    scale = max(0.5, max(image.shape[:2]) / 1200)
    for d in detections:
        if not d.polygon:
            continue
        pts = np.asarray(d.polygon)
        draw_polygons(out, [pts], PREDICTION_RGB)
        label = f"{d.score:.2f}" + (f" {d.symbology}: {d.text[:24]}" if d.text else "")
        x, y = (int(v) for v in pts.min(axis=0))
        cv2.putText(
            out, label, (x, max(y - 4, 12)), cv2.FONT_HERSHEY_SIMPLEX, scale, PREDICTION_RGB, max(1, round(scale * 2))
        )
    return out
