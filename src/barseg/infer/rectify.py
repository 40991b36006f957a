"""Cut a barcode out of a photo as an upright, perspective-corrected crop for a reader."""

from __future__ import annotations

import cv2
import numpy as np


def quad_of(polygon: np.ndarray) -> np.ndarray:
    """Four corners of ``polygon``: itself when it has four points (kept in order, so a
    labelled top-left stays first), else its minimum-area rotated rectangle."""
    if len(polygon) == 4:
        return polygon.astype(np.float32)
    return cv2.boxPoints(cv2.minAreaRect(polygon.astype(np.float32))).astype(np.float32)


def rectify(
    image: np.ndarray, polygon: np.ndarray, margin: float = 0.2, long_side: int = 360, max_zoom: float = 4.0
) -> np.ndarray:
    """The quad of ``polygon`` warped to an upright rectangle, grown by ``margin`` of its size
    on each side (readers need the quiet zone).

    Small codes are upscaled (bicubic) towards ``long_side`` pixels, at most ``max_zoom``:
    resampling thin rotated bars at 1:1 leaves a half-pixel staircase on each edge, enough
    to break a 1D reader, while 2x and more keeps the edges straight.
    """
    quad = quad_of(polygon)
    width = float(max(np.linalg.norm(quad[1] - quad[0]), np.linalg.norm(quad[2] - quad[3])))
    height = float(max(np.linalg.norm(quad[3] - quad[0]), np.linalg.norm(quad[2] - quad[1])))
    zoom = float(np.clip(long_side / max(width, height, 1.0), 1.0, max_zoom))
    w, h = width * zoom, height * zoom
    mx, my = margin * w, margin * h
    target = np.array([[mx, my], [mx + w, my], [mx + w, my + h], [mx, my + h]], np.float32)
    transform = cv2.getPerspectiveTransform(quad, target)
    size = (round(w + 2 * mx), round(h + 2 * my))
    return cv2.warpPerspective(image, transform, size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
