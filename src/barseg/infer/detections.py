"""What a prediction is: the types every runtime, the decoder, the metrics and the service
share (their own module, so that decoding and prediction need not import each other)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass
class Detection:
    score: float
    bbox: list[float]  # x0, y0, x1, y1
    polygon: list[list[float]]  # <= 16 points, image pixels
    rotated_box: dict[str, Any]  # {"center": [cx, cy], "size": [w, h], "angle": degrees}
    mask: dict[str, Any] | None = None  # COCO RLE, string counts
    symbology: str | None = None
    text: str | None = None
    source: str = "model"  # "reader": a code zxing-cpp read in the whole photo that no detection covers
    network_score: float | None = None  # the network's own score when reading re-scored it (``score``)

    def to_json(self, with_mask: bool = False) -> dict[str, Any]:
        out = asdict(self)
        if not with_mask:
            out.pop("mask")
        return out


@dataclass
class Prediction:
    detections: list[Detection]
    image_size: tuple[int, int]  # w, h
    processing_time_ms: float = 0.0

    def to_json(self, with_masks: bool = False) -> dict[str, Any]:
        return {
            "num_detections": len(self.detections),
            "detections": [d.to_json(with_masks) for d in self.detections],
            "image_size": list(self.image_size),
            "processing_time_ms": round(self.processing_time_ms, 2),
        }


@dataclass
class RawDetections:
    """What a runtime returns for one image: N boxes (photo pixels), scores, and (N, M, M)
    mask probabilities over each detection's box, as Mask R-CNN's mask head gives them."""

    boxes: np.ndarray
    scores: np.ndarray
    masks: np.ndarray
    image_shape: tuple[int, int]  # height, width of the photo
