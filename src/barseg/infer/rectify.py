"""Cut a barcode out of a photo as an upright, perspective-corrected crop for a reader."""

from __future__ import annotations

import cv2
import numpy as np

QUAD_FILL = 0.9  # a 4-corner fit must keep this share of the outline's area to be trusted


def _signed_area(points: np.ndarray) -> float:
    x, y = points[:, 0].astype(np.float64), points[:, 1].astype(np.float64)
    return float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)) / 2


def quad_of(polygon: np.ndarray) -> np.ndarray:
    """Four corners of ``polygon``, clockwise on screen (so a crop is never mirrored: Data
    Matrix readers often cannot read a mirror image).

    Four points are kept in order (a labelled top-left stays first). A longer outline, such as
    a mask's, is reduced to the 4-corner polygon that follows its hull when that polygon keeps
    most of the area: it holds the perspective of a tilted code, which the minimum-area
    rotated rectangle, the fallback for round or ragged outlines, loses.
    """
    points = np.asarray(polygon, np.float32).reshape(-1, 2)
    if len(points) == 4:
        quad = points
    else:
        hull = cv2.convexHull(points)
        hull_area = cv2.contourArea(hull)
        quad = cv2.boxPoints(cv2.minAreaRect(points)).astype(np.float32)
        epsilon = 0.02 * cv2.arcLength(hull, True)
        for _ in range(8):  # coarser until at most four corners remain
            approx = cv2.approxPolyDP(hull, epsilon, True).reshape(-1, 2)
            if len(approx) <= 4:
                if len(approx) == 4 and cv2.contourArea(approx) >= QUAD_FILL * hull_area:
                    quad = approx.astype(np.float32)
                break
            epsilon *= 1.5
    if _signed_area(quad) < 0:  # counter-clockwise on screen: same first corner, other way round
        quad = quad[[0, 3, 2, 1]]
    return quad


def rectify_with_transform(
    image: np.ndarray, quad: np.ndarray, margin: float = 0.2, long_side: int = 360, max_zoom: float = 4.0
) -> tuple[np.ndarray, np.ndarray]:
    """``rectify`` of a ``quad_of`` result, with the 3x3 homography from image to crop pixels
    (to place what a reader finds in the crop back on the photo)."""
    width = float(max(np.linalg.norm(quad[1] - quad[0]), np.linalg.norm(quad[2] - quad[3])))
    height = float(max(np.linalg.norm(quad[3] - quad[0]), np.linalg.norm(quad[2] - quad[1])))
    zoom = float(np.clip(long_side / max(width, height, 1.0), 1.0, max_zoom))
    w, h = max(width * zoom, 1.0), max(height * zoom, 1.0)
    mx, my = margin * w, margin * h
    target = np.array([[mx, my], [mx + w, my], [mx + w, my + h], [mx, my + h]], np.float32)
    transform = cv2.getPerspectiveTransform(quad.astype(np.float32), target)
    size = (round(w + 2 * mx), round(h + 2 * my))
    crop = cv2.warpPerspective(image, transform, size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    return crop, transform


def rectify(
    image: np.ndarray, polygon: np.ndarray, margin: float = 0.2, long_side: int = 360, max_zoom: float = 4.0
) -> np.ndarray:
    """The quad of ``polygon`` warped to an upright rectangle, grown by ``margin`` of its size
    on each side (readers need the quiet zone).

    Small codes are upscaled (bicubic) towards ``long_side`` pixels, at most ``max_zoom``:
    resampling thin rotated bars at 1:1 leaves a half-pixel staircase on each edge, enough
    to break a 1D reader, while 2x and more keeps the edges straight.
    """
    return rectify_with_transform(image, quad_of(polygon), margin, long_side, max_zoom)[0]
