"""Training augmentations that matter for barcodes, applied to an image and its instance masks.

Geometry (90-degree turns, flips, any-angle rotation, zoom in/out) moves masks with pixels;
photometry (colour, grey, blur, JPEG) touches the image only. Probabilities and ranges come
from ``train.augment`` in params.yaml.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

MIN_KEPT_FRACTION = 0.4  # a code cropped to less than this of its area stops being a label


def augment(image: np.ndarray, masks: np.ndarray, rng: np.random.Generator, p: Any) -> tuple[np.ndarray, np.ndarray]:
    """``image`` uint8 (H, W, 3) RGB, ``masks`` uint8 (N, H, W) -> augmented copies.

    Instances cropped below ``MIN_KEPT_FRACTION`` of their area are removed, with their masks.
    """
    if rng.random() < p.rot90:
        k = int(rng.integers(1, 4))
        image, masks = np.rot90(image, k), np.rot90(masks, k, axes=(1, 2))
    if rng.random() < p.flip:
        image, masks = image[:, ::-1], masks[:, :, ::-1]
    image, masks = np.ascontiguousarray(image), np.ascontiguousarray(masks)
    if rng.random() < p.rotate:
        image, masks = _rotate(image, masks, rng.uniform(0, 360), rng)
    zoom = float(np.exp(rng.uniform(np.log(p.scale[0]), np.log(p.scale[1]))))
    if zoom > 1.0:
        image, masks = _zoom_in(image, masks, zoom, rng)
    elif zoom < 1.0:
        image, masks = _zoom_out(image, masks, zoom, rng)
    image = _photometric(image, rng, p)
    return image, masks


def _rotate(
    image: np.ndarray, masks: np.ndarray, degrees: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Rotate about the centre onto a canvas large enough to keep every corner."""
    h, w = image.shape[:2]
    matrix, (nw, nh) = rotation_onto_canvas(w, h, degrees)
    fill = tuple(int(c) for c in rng.integers(0, 256, 3))
    out = cv2.warpAffine(image, matrix, (nw, nh), flags=cv2.INTER_LINEAR, borderValue=fill)
    out_masks = (
        np.stack([cv2.warpAffine(m, matrix, (nw, nh), flags=cv2.INTER_NEAREST) for m in masks])
        if len(masks)
        else np.zeros((0, nh, nw), np.uint8)
    )
    return out, out_masks


def rotation_onto_canvas(width: int, height: int, degrees: float) -> tuple[np.ndarray, tuple[int, int]]:
    """The 2x3 affine turning a ``width`` x ``height`` image by ``degrees`` about its centre,
    and the (width, height) of the canvas that keeps every corner."""
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    nw, nh = int(height * sin + width * cos + 0.5), int(height * cos + width * sin + 0.5)
    matrix[0, 2] += nw / 2 - width / 2
    matrix[1, 2] += nh / 2 - height / 2
    return matrix, (nw, nh)


def _zoom_in(
    image: np.ndarray, masks: np.ndarray, zoom: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Crop a random window of 1/zoom of each side; the model's resize then enlarges it."""
    h, w = image.shape[:2]
    ch, cw = max(1, int(h / zoom)), max(1, int(w / zoom))
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    cropped = masks[:, y : y + ch, x : x + cw]
    before = masks.sum(axis=(1, 2))
    after = cropped.sum(axis=(1, 2))
    keep = after >= MIN_KEPT_FRACTION * np.maximum(before, 1)
    return image[y : y + ch, x : x + cw], np.ascontiguousarray(cropped[keep])


def _zoom_out(
    image: np.ndarray, masks: np.ndarray, zoom: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Place the image on a larger canvas (codes get smaller after the model's resize)."""
    h, w = image.shape[:2]
    nh, nw = int(h / zoom), int(w / zoom)
    y, x = int(rng.integers(0, nh - h + 1)), int(rng.integers(0, nw - w + 1))
    canvas = np.empty((nh, nw, 3), np.uint8)
    canvas[:] = rng.integers(0, 256, 3).astype(np.uint8)
    canvas[y : y + h, x : x + w] = image
    out_masks = np.zeros((len(masks), nh, nw), np.uint8)
    out_masks[:, y : y + h, x : x + w] = masks
    return canvas, out_masks


def _photometric(image: np.ndarray, rng: np.random.Generator, p: Any) -> np.ndarray:
    img = image
    if rng.random() < p.color:
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV).astype(np.float32)
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(-12, 12)) % 180
        hsv[..., 1] *= rng.uniform(0.5, 1.4)
        img = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB)
        alpha, beta = rng.uniform(0.6, 1.4), rng.uniform(-40, 40)  # contrast, brightness
        img = np.clip(img.astype(np.float32) * alpha + beta + (1 - alpha) * 128, 0, 255).astype(np.uint8)
    if rng.random() < p.grayscale:
        img = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    if rng.random() < p.blur:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.5))
    if rng.random() < p.jpeg:
        ok, data = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 90))])
        decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if ok else None
        img = decoded if decoded is not None else img
    return img
