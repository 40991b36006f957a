"""The ``Predictor`` interface and the one post-processing path every runtime shares.

A runtime only turns photos fitted to the network (``NetworkInput``) into raw detections
(boxes, scores, a low-resolution mask per box). ``to_prediction`` makes them ``Detection``s:
threshold, binary mask, polygon of at most 16 points, rotated box and RLE, then optionally
the decoded text, and a score that counts whether the code read. So evaluate, the CLI and the
service see the same numbers whatever the runtime, and the service can run the network in one
process and the rest in another.

The work per detection is bounded by its box, not the photo: each mask is pasted into its
box's crop and run-length encoded from there, never as a full-frame array.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from barseg.data.formats import rle_str
from barseg.infer.confidence import network_floor, verified_score
from barseg.infer.detections import Detection, Prediction, RawDetections
from barseg.infer.network import InputSpec, NetworkInput, fit_to_network

MAX_POLYGON_POINTS = 16
NESTED_FRACTION = 0.7  # a detection this much inside a better one is a fragment of it
MASK_THRESHOLD = 0.5  # mask probability that counts as barcode


class Predictor(ABC):
    """Images (RGB uint8 HxWx3) in, one ``Prediction`` per image out."""

    spec: InputSpec  # how a photo becomes the network's input; set by each runtime

    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = threshold

    def prepare(self, image: np.ndarray) -> NetworkInput:
        return fit_to_network(image, self.spec)

    @abstractmethod
    def raw(self, inputs: list[NetworkInput], score_threshold: float) -> list[RawDetections]:
        """Run the network; detections scoring above ``score_threshold``, in photo pixels."""

    def predict(
        self, images: list[np.ndarray], threshold: float | None = None, decode: bool = False, verify: bool = True
    ) -> list[Prediction]:
        """``decode``: also read each barcode; ``verify``: and let the reads score the
        detections (see ``to_prediction``)."""
        start = time.perf_counter()
        cut = self.threshold if threshold is None else threshold
        raws = self.raw([self.prepare(img) for img in images], network_cut(cut, decode and verify))
        predictions = [
            to_prediction(raw, img, cut, decode, verify=verify) for raw, img in zip(raws, images, strict=True)
        ]
        elapsed = (time.perf_counter() - start) * 1000 / max(1, len(images))
        for prediction in predictions:
            prediction.processing_time_ms = elapsed
        return predictions


def network_cut(threshold: float, verify: bool) -> float:
    """The network score detections must reach before post-processing: the caller's cut, or,
    when reads score the detections, the lowest score a read can lift to it."""
    return network_floor(threshold) if verify else threshold


def to_prediction(
    raw: RawDetections,
    image: np.ndarray,
    threshold: float,
    decode: bool = False,
    max_decodes: int | None = None,
    deadline: float | None = None,
    verify: bool = True,
) -> Prediction:
    """The ``Prediction`` of one photo from its raw detections. ``decode``: also read each
    barcode (symbology and text) with zxing-cpp from full-resolution crops, and add the codes
    a whole-photo read finds outside every detection (``source: reader``); at most
    ``max_decodes`` detections (the best first) and nothing after ``deadline``
    (``time.monotonic()``) is tried, so a request's reading work is bounded.

    ``verify`` (with ``decode``): each detection tried is re-scored by whether it read
    (``barseg.infer.confidence``; its ``network_score`` keeps the network's own) and the
    ``threshold`` applies to that score; ``raw`` must then reach down to
    ``network_cut(threshold, True)``. A detection the budget left untried keeps its score."""
    verifying = decode and verify
    detections = postprocess(raw, network_cut(threshold, verifying), MASK_THRESHOLD)
    if decode:
        from barseg.infer.decode import decode_prediction  # zxing-cpp only when asked for

        extra, tried = decode_prediction(image, detections, max_decodes, deadline)
        if verifying:
            for i, detection in enumerate(detections):
                read = detection.text is not None  # by its own crops or the whole-photo read
                if i < tried or read:
                    detection.network_score = detection.score
                    detection.score = verified_score(detection.score, read)
            detections = sorted((d for d in detections if d.score >= threshold), key=lambda d: -d.score)
        detections += extra
    return Prediction(detections, (image.shape[1], image.shape[0]))


def mask_outline(
    mask: np.ndarray, offset: tuple[int, int] = (0, 0), max_points: int = MAX_POLYGON_POINTS
) -> tuple[list[list[float]], dict[str, Any]]:
    """Polygon (<= ``max_points``, largest component) and rotated box of a binary mask whose
    top-left pixel lies at ``offset`` (x, y) of the photo."""
    # A zero border, so that a mask touching its crop's edge is outlined as in the full photo.
    framed = np.pad(mask.astype(np.uint8), 1)
    x, y = offset
    contours, _ = cv2.findContours(framed, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE, offset=(x - 1, y - 1))
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


@dataclass(frozen=True)
class MaskCrop:
    """A mask over part of a photo: ``values`` (h, w) placed with its top-left pixel at
    (``x0``, ``y0``) of a photo of ``photo_shape`` (height, width); zero elsewhere."""

    values: np.ndarray
    x0: int
    y0: int
    photo_shape: tuple[int, int]


def paste_mask(mask: np.ndarray, box: np.ndarray, height: int, width: int) -> MaskCrop:
    """An (M, M) box-relative mask as probabilities over the part of an (height, width)
    photo it covers, exactly as torchvision's ``paste_masks_in_image`` fills the photo (one
    pixel of padding around the mask, the box grown to match, bilinear resize, integer box
    corners) but without the full-frame array."""
    m = mask.shape[-1]
    padded = np.pad(mask.astype(np.float32), 1)
    grow = (m + 2) / m
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half_w, half_h = (box[2] - box[0]) / 2 * grow, (box[3] - box[1]) / 2 * grow
    x0, y0, x1, y1 = (int(v) for v in (cx - half_w, cy - half_h, cx + half_w, cy + half_h))  # truncation, as .to(int64)
    w, h = max(x1 - x0 + 1, 1), max(y1 - y0 + 1, 1)
    ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x1 + 1, width), min(y1 + 1, height)
    if ix1 <= ix0 or iy1 <= iy0:
        return MaskCrop(np.zeros((0, 0), np.float32), 0, 0, (height, width))
    resized = cv2.resize(padded, (w, h), interpolation=cv2.INTER_LINEAR)
    return MaskCrop(resized[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0], ix0, iy0, (height, width))


def crop_rle(crop: MaskCrop) -> dict[str, Any]:
    """The COCO RLE (compressed) of a binary crop in its photo, computed from the crop alone.

    COCO runs go down each column of the photo. The crop's columns are framed by one zero row
    above and below that stands for all the zeros of that column outside the crop; run lengths
    then count those rows for what they stand for, and the columns before and after the crop
    add whole zero columns to the first and last runs.
    """
    height, width = crop.photo_shape
    h, w = crop.values.shape
    if h == 0 or w == 0:
        return mask_utils.frPyObjects({"counts": [height * width], "size": [height, width]}, height, width)
    above, below = crop.y0, height - crop.y0 - h
    flat = np.pad(crop.values.astype(bool), ((1, 1), (0, 0))).ravel(order="F")
    starts = np.concatenate(([0], np.flatnonzero(flat[1:] != flat[:-1]) + 1))
    ends = np.append(starts[1:], flat.size)
    column = h + 2

    def frames_in(offset: int) -> np.ndarray:  # framing rows at column * (h + 2) + offset within each run
        return (ends - 1 - offset) // column - (starts - 1 - offset) // column

    lengths = (ends - starts) + frames_in(0) * (above - 1) + frames_in(h + 1) * (below - 1)
    values = flat[starts]
    keep = lengths > 0  # a framing row that stands for no zeros leaves an empty run between two of ones
    lengths, values = lengths[keep], values[keep]
    first = np.concatenate(([True], values[1:] != values[:-1]))
    counts = np.add.reduceat(lengths, np.flatnonzero(first)).tolist()
    if values[0]:
        counts.insert(0, 0)  # runs alternate zeros, ones, ... from a zeros run
    counts[0] += crop.x0 * height
    after = (width - crop.x0 - w) * height
    if len(counts) % 2:  # ends in zeros
        counts[-1] += after
    elif after:
        counts.append(after)
    return mask_utils.frPyObjects({"counts": counts, "size": [height, width]}, height, width)


def binary_mask(raw: RawDetections, i: int, mask_threshold: float = MASK_THRESHOLD) -> MaskCrop:
    """Detection ``i``'s mask, thresholded, over its box's part of the photo (uint8)."""
    pasted = paste_mask(raw.masks[i], raw.boxes[i], *raw.image_shape)
    return MaskCrop((pasted.values >= mask_threshold).astype(np.uint8), pasted.x0, pasted.y0, pasted.photo_shape)


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
        crop = binary_mask(raw, i, mask_threshold)
        if not crop.values.any():
            continue
        rle = crop_rle(crop)
        # iscrowd=1 makes pycocotools divide the intersection by this mask's own area.
        if kept_rles and np.max(mask_utils.iou([rle], kept_rles, [1] * len(kept_rles))) >= nested:
            continue
        kept_rles.append(rle)
        polygon, rotated = mask_outline(crop.values, (crop.x0, crop.y0))
        detections.append(Detection(score, [float(v) for v in raw.boxes[i]], polygon, rotated, rle_str(rle)))
    return detections
