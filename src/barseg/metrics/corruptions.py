"""Seeded, controlled corruptions of a labelled photo, for the robustness benchmark.

Each corruption takes an RGB uint8 photo, its code outlines (polygons in photo pixels) and a
severity 1-3, and returns the corrupted photo with the outlines moved where its pixels went;
the random parts (noise, a blur's direction, a rotation's sense, perspective corners) come
from the ``rng`` passed in, so a seed fixes the result. Photometric corruptions leave the
outlines as they are. Levels are chosen so that level 1 is a common nuisance and level 3 is
severe for a phone photo of up to 1600 px.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from barseg.data.augment import rotation_onto_canvas

Polygons = list[np.ndarray]  # each (K, 2) float32, photo pixels
Corruption = Callable[[np.ndarray, Polygons, int, np.random.Generator], tuple[np.ndarray, Polygons]]

SEVERITIES = (1, 2, 3)


def _level(values: tuple[float, float, float], severity: int) -> float:
    if severity not in SEVERITIES:
        raise ValueError(f"severity {severity}: must be one of {SEVERITIES}")
    return values[severity - 1]


def gaussian_blur(
    image: np.ndarray, polygons: Polygons, severity: int, rng: np.random.Generator
) -> tuple[np.ndarray, Polygons]:
    sigma = _level((1.0, 2.0, 3.5), severity)
    return cv2.GaussianBlur(image, (0, 0), sigma), polygons


def motion_blur(
    image: np.ndarray, polygons: Polygons, severity: int, rng: np.random.Generator
) -> tuple[np.ndarray, Polygons]:
    """A straight streak of ``length`` pixels in a random direction (hand shake)."""
    length = int(_level((7, 15, 25), severity))
    line = np.zeros((length, length), np.float32)
    line[length // 2, :] = 1.0
    rotation = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), float(rng.uniform(0, 180)), 1.0)
    kernel = np.asarray(cv2.warpAffine(line, rotation, (length, length)))
    return cv2.filter2D(image, -1, kernel / kernel.sum()), polygons


def noise(
    image: np.ndarray, polygons: Polygons, severity: int, rng: np.random.Generator
) -> tuple[np.ndarray, Polygons]:
    """Additive Gaussian sensor noise, per channel."""
    sigma = _level((10.0, 25.0, 45.0), severity)
    noisy = image.astype(np.float32) + rng.normal(0.0, sigma, image.shape).astype(np.float32)
    return np.clip(noisy, 0, 255).astype(np.uint8), polygons


def jpeg(image: np.ndarray, polygons: Polygons, severity: int, rng: np.random.Generator) -> tuple[np.ndarray, Polygons]:
    quality = int(_level((30, 15, 6), severity))
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR) if ok else None
    if decoded is None:
        raise RuntimeError(f"OpenCV could not round-trip a JPEG at quality {quality}")
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB), polygons


def low_light(
    image: np.ndarray, polygons: Polygons, severity: int, rng: np.random.Generator
) -> tuple[np.ndarray, Polygons]:
    """Underexposure: every value scaled down (the 8-bit range left is what a dark shot keeps)."""
    gain = _level((0.45, 0.25, 0.12), severity)
    return np.round(image.astype(np.float32) * gain).astype(np.uint8), polygons


def low_contrast(
    image: np.ndarray, polygons: Polygons, severity: int, rng: np.random.Generator
) -> tuple[np.ndarray, Polygons]:
    """Haze or a faded print: values pulled towards mid-grey."""
    keep = _level((0.5, 0.3, 0.15), severity)
    return np.round(127.5 + (image.astype(np.float32) - 127.5) * keep).astype(np.uint8), polygons


def _warp(
    image: np.ndarray, polygons: Polygons, matrix: np.ndarray, size: tuple[int, int]
) -> tuple[np.ndarray, Polygons]:
    """Apply a 3x3 homography to the photo (onto ``size`` = (w, h), grey fill) and outlines."""
    warped = cv2.warpPerspective(image, matrix, size, flags=cv2.INTER_LINEAR, borderValue=(128, 128, 128))
    moved = [cv2.perspectiveTransform(p.reshape(-1, 1, 2).astype(np.float32), matrix).reshape(-1, 2) for p in polygons]
    return warped, moved


def rotation(
    image: np.ndarray, polygons: Polygons, severity: int, rng: np.random.Generator
) -> tuple[np.ndarray, Polygons]:
    """A turn by the level's angle, either way, onto a canvas that keeps every corner."""
    degrees = _level((20.0, 45.0, 135.0), severity) * float(rng.choice([-1.0, 1.0]))
    h, w = image.shape[:2]
    affine, canvas = rotation_onto_canvas(w, h, degrees)  # the training augmentation's turn
    return _warp(image, polygons, np.vstack([affine, [0.0, 0.0, 1.0]]), canvas)


def perspective(
    image: np.ndarray, polygons: Polygons, severity: int, rng: np.random.Generator
) -> tuple[np.ndarray, Polygons]:
    """The photo's corners pulled inwards by up to the level's share of its size, each by its
    own random amount (a photo taken at a slant)."""
    pull = _level((0.06, 0.12, 0.2), severity)
    h, w = image.shape[:2]
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    inward = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]], np.float32)
    amounts = rng.uniform(0.5, 1.0, (4, 2)).astype(np.float32) * pull * np.array([w, h], np.float32)
    matrix = cv2.getPerspectiveTransform(corners, corners + inward * amounts)
    return _warp(image, polygons, matrix, (w, h))


def downscale(
    image: np.ndarray, polygons: Polygons, severity: int, rng: np.random.Generator
) -> tuple[np.ndarray, Polygons]:
    """A smaller photo (a farther shot, a cheaper camera): area-averaged."""
    factor = _level((0.5, 0.3, 0.18), severity)
    h, w = image.shape[:2]
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    scale = np.array([size[0] / w, size[1] / h], np.float32)
    return small, [p * scale for p in polygons]


CORRUPTIONS: dict[str, Corruption] = {
    "gaussian_blur": gaussian_blur,
    "motion_blur": motion_blur,
    "noise": noise,
    "jpeg": jpeg,
    "low_light": low_light,
    "low_contrast": low_contrast,
    "rotation": rotation,
    "perspective": perspective,
    "downscale": downscale,
}


def corrupt(image: np.ndarray, polygons: Polygons, name: str, severity: int, seed: int) -> tuple[np.ndarray, Polygons]:
    """``CORRUPTIONS[name]`` at ``severity`` with its randomness drawn from ``seed``."""
    if name not in CORRUPTIONS:
        raise ValueError(f"corruption {name!r}: unknown; known: {', '.join(CORRUPTIONS)}")
    return CORRUPTIONS[name](image, polygons, severity, np.random.default_rng(seed))
