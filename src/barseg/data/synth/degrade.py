"""Photometric degradations of a whole scene: light, shadow, glare, blur, noise.

None of these moves a pixel, so polygons are unaffected. Probabilities come from
``synth.degrade`` in params.yaml.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from barseg.data.synth.textures import smooth_noise


def degrade(image: np.ndarray, rng: np.random.Generator, p: Any) -> np.ndarray:
    h, w = image.shape[:2]
    img: np.ndarray = image.astype(np.float32)
    if rng.random() < p.light:  # uneven illumination
        field = smooth_noise(rng, h, w, int(rng.integers(2, 5)))
        img *= (rng.uniform(0.45, 0.8) + rng.uniform(0.3, 0.7) * field)[..., None]
    if rng.random() < p.shadow:  # a soft-edged shadow cast across part of the scene
        mask: np.ndarray = np.zeros((h, w), np.float32)
        pts = (rng.random((int(rng.integers(3, 7)), 2)) * [w, h]).astype(np.int32)
        cv2.fillPoly(mask, [cv2.convexHull(pts)], 1.0)
        mask = cv2.GaussianBlur(mask, (0, 0), rng.uniform(2, 0.05 * max(h, w) + 3))
        img *= (1 - rng.uniform(0.25, 0.6) * mask)[..., None]
    if rng.random() < p.glare:  # specular highlight from a lamp or flash
        cx, cy = rng.random() * w, rng.random() * h
        sigma = rng.uniform(0.03, 0.2) * max(h, w)
        yy, xx = np.ogrid[0:h, 0:w]
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2)).astype(np.float32)
        img += (rng.uniform(80, 255) * blob)[..., None]
    if rng.random() < p.low_light:
        img *= rng.uniform(0.2, 0.5)
    img = np.clip(img, 0, 255)
    if rng.random() < p.motion:
        length = int(rng.integers(3, 10))
        kernel: np.ndarray = np.zeros((length, length), np.float32)
        kernel[length // 2, :] = 1.0 / length
        rot = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), rng.uniform(0, 180), 1.0)
        kernel = cv2.warpAffine(kernel, rot, (length, length))
        img = cv2.filter2D(img, -1, kernel / max(kernel.sum(), 1e-6))
    elif rng.random() < p.blur:  # defocus
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.8, 2.0))
    else:  # every lens spreads a point a little: no real photo has perfectly hard edges
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 0.7))
    if rng.random() < p.noise:
        # Sensor noise grows in the dark after gain: scale sigma up when the image is dim.
        sigma = rng.uniform(2, 9) * (1.8 if img.mean() < 70 else 1.0)
        img += rng.normal(0, sigma, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def occlude(image: np.ndarray, polygon: np.ndarray, rng: np.random.Generator, max_fraction: float) -> None:
    """Cover part of one code, from one side, with a finger, a strap or a sticker edge.

    The polygon stays the whole code (amodal), as a person labelling the photo would draw it.
    """
    centre = polygon.mean(axis=0)
    x0, y0 = polygon.min(axis=0)
    x1, y1 = polygon.max(axis=0)
    size = max(x1 - x0, y1 - y0)
    angle = rng.uniform(0, 2 * np.pi)
    direction = np.array([np.cos(angle), np.sin(angle)])
    depth = rng.uniform(0.1, max_fraction * 2) * size  # how far past the edge it reaches
    edge_point = centre + direction * (size / 2 - depth / 2)
    axes = (int(size * rng.uniform(0.15, 0.35)) + 1, int(depth / 2 + size * 0.5) + 1)
    colour = tuple(
        int(c) for c in (rng.integers(60, 140), rng.integers(100, 180), rng.integers(150, 230))
    )  # skin to tan
    if rng.random() < 0.5:
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
    centre_far = edge_point + direction * axes[1] * 0.9
    cv2.ellipse(
        image,
        (int(centre_far[0]), int(centre_far[1])),
        axes,
        float(np.degrees(angle)) + 90.0,
        0,
        360,
        colour,
        -1,
        cv2.LINE_AA,
    )
