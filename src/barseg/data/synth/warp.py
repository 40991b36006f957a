"""Geometric warps that move pixels and polygon points together, so polygons stay exact.

Every warp exposes the inverse map that ``cv2.remap``/``warpPerspective`` sample with and the
forward map applied to points. Points use the pixel-centre convention of OpenCV inside this
module; callers convert from edge coordinates (``+/- 0.5``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class Deformation:
    """A smooth non-linear deformation of a canvas: ``out(p) = in(p + d(p))``."""

    map_x: np.ndarray  # float32 (h, w): source x for each output pixel
    map_y: np.ndarray
    forward: Callable[[np.ndarray], np.ndarray]  # source points -> output points

    def apply(self, image: np.ndarray, border: int | tuple[int, ...] = 0) -> np.ndarray:
        return cv2.remap(
            image, self.map_x, self.map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=border
        )


def _invert_displacement(dx: np.ndarray, dy: np.ndarray, iterations: int = 20) -> Callable[[np.ndarray], np.ndarray]:
    """Forward map of ``out(q) = in(q + d(q))``: solve ``q + d(q) = p`` by fixed-point iteration.

    Converges when ``d`` is smooth and its gradient well below 1, as ``crumple`` guarantees.
    """

    def forward(points: np.ndarray) -> np.ndarray:
        p = points.astype(np.float32)
        q = p.copy()
        for _ in range(iterations):
            sample = q.reshape(1, -1, 2)
            ddx = cv2.remap(dx, sample[..., 0], sample[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            ddy = cv2.remap(dy, sample[..., 0], sample[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            q = p - np.stack([ddx.ravel(), ddy.ravel()], axis=1)
        return q.astype(np.float64)

    return forward


def cylinder(h: int, w: int, rng: np.random.Generator) -> Deformation:
    """A label wrapped round a can or bottle, seen from the front (axis vertical).

    Arc length ``s`` from the centre projects to ``x = R sin(s / R)``; the top and bottom
    edges sag by ``k (1 - cos(s / R))`` as they would under a slightly raised camera.
    """
    half = w / 2.0
    radius = half / rng.uniform(0.55, 1.3)  # half-width subtends 0.55..1.3 rad
    sag = rng.uniform(-0.08, 0.08) * h
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    u = np.clip((gx - half) / radius, -0.999, 0.999)
    s = radius * np.arcsin(u)
    # Keep the visible centre fixed; content beyond the horizon maps outside the canvas.
    src_x = half + s
    src_y = gy + sag * (1 - np.cos(s / radius)) * (gy - h / 2) / (h / 2)

    def forward(points: np.ndarray) -> np.ndarray:
        arc = points[:, 0] - half
        x = half + radius * np.sin(arc / radius)
        y = h / 2 + (points[:, 1] - h / 2) / (1 + sag * (1 - np.cos(arc / radius)) / (h / 2))
        return np.stack([x, y], axis=1)

    return Deformation(src_x.astype(np.float32), src_y.astype(np.float32), forward)


def crumple(h: int, w: int, rng: np.random.Generator, amplitude: float) -> Deformation:
    """Paper crumpled or a pouch wrinkled: a smooth random displacement of ``amplitude`` px.

    ``amplitude`` is capped at 6% of the wave length so the map stays invertible.
    """
    cells = int(rng.integers(3, 7))
    amplitude = min(amplitude, 0.06 * min(h, w) / cells)
    field = rng.normal(0.0, 1.0, (2, cells, cells)).astype(np.float32)
    dx = cv2.resize(field[0], (w, h), interpolation=cv2.INTER_CUBIC) * amplitude
    dy = cv2.resize(field[1], (w, h), interpolation=cv2.INTER_CUBIC) * amplitude
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return Deformation(gx + dx, gy + dy, _invert_displacement(dx, dy))


def placement(
    w: int,
    h: int,
    scale: float,
    angle: float,
    centre: tuple[float, float],
    perspective: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Homography taking a ``w x h`` canvas to the scene: move each corner by up to
    ``perspective`` of the canvas size along each axis (a tilted camera; below 0.25 a quad
    cannot fold), scale, rotate about ``centre``."""
    src = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], dtype=np.float32)
    jitter = rng.uniform(-perspective, perspective, src.shape).astype(np.float32) * np.array([w, h], np.float32)
    dst = scaled_and_turned(src + jitter, w, h, scale, angle) + np.asarray(centre, dtype=np.float32)
    return cv2.getPerspectiveTransform(src, dst)


def scaled_and_turned(points: np.ndarray, w: int, h: int, scale: float, angle: float) -> np.ndarray:
    """Points of a ``w x h`` canvas relative to its centre, scaled, then rotated by ``angle``
    (radians): where ``placement`` puts them around the scene point it centres the canvas on."""
    local = (points - np.array([(w - 1) / 2, (h - 1) / 2], dtype=points.dtype)) * scale
    c, s = np.cos(angle), np.sin(angle)
    return local @ np.array([[c, -s], [s, c]], dtype=points.dtype).T


def transform_points(points: np.ndarray, homography: np.ndarray) -> np.ndarray:
    return cv2.perspectiveTransform(points.reshape(-1, 1, 2).astype(np.float64), homography).reshape(-1, 2)


def sample_rectangle_edges(x0: float, y0: float, x1: float, y1: float, per_edge: int) -> np.ndarray:
    """Points along a rectangle's edges, clockwise from the top-left corner."""
    t = np.linspace(0.0, 1.0, per_edge, endpoint=False)
    top = np.stack([x0 + (x1 - x0) * t, np.full_like(t, y0)], axis=1)
    right = np.stack([np.full_like(t, x1), y0 + (y1 - y0) * t], axis=1)
    bottom = np.stack([x1 - (x1 - x0) * t, np.full_like(t, y1)], axis=1)
    left = np.stack([np.full_like(t, x0), y1 - (y1 - y0) * t], axis=1)
    return np.concatenate([top, right, bottom, left])
