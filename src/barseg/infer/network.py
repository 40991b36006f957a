"""What goes into and comes out of the network graph, the same for every runtime.

The graph (PyTorch, ONNX or TensorRT) holds only backbone, RPN and RoI heads. Resizing,
normalising and padding the photo happen here in numpy, and so does pasting the
low-resolution mask of each detection back into the photo (``predictor.paste_mask``,
only for detections that pass the score cut): torchvision pastes every detection at full
image size inside the graph, which costs more than the heads themselves on a CPU.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

import numpy as np

from barseg.data.images import resize
from barseg.infer.detections import RawDetections

INPUT_NAME = "image"
THRESHOLD_NAME = "score_threshold"  # scalar: detections at or below it are dropped in the graph
OUTPUT_NAMES = ("boxes", "scores", "masks")  # (N, 4) input pixels, (N,), (N, M, M) probabilities


@dataclass(frozen=True)
class InputSpec:
    """How a photo becomes the network's input: torchvision's GeneralizedRCNNTransform rule
    (short side to ``min_size`` unless the long side would pass ``max_size``), then padding
    to a multiple of ``size_divisible`` or, with ``fixed_size``, to a ``max_size`` square."""

    min_size: int
    max_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    size_divisible: int = 32
    fixed_size: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> InputSpec:
        d = json.loads(text)
        return cls(**{**d, "mean": tuple(d["mean"]), "std": tuple(d["std"])})

    def scale(self, height: int, width: int) -> float:
        short, long = min(height, width), max(height, width)
        return min(self.min_size / short, self.max_size / long)

    def padded_shape(self, height: int, width: int) -> tuple[int, int]:
        if self.fixed_size:
            side = math.ceil(self.max_size / self.size_divisible) * self.size_divisible
            return side, side
        d = self.size_divisible
        return math.ceil(height / d) * d, math.ceil(width / d) * d


def prepare_input(image: np.ndarray, spec: InputSpec) -> tuple[np.ndarray, float]:
    """(1, 3, H, W) float32 network input of an RGB uint8 image, and the resize factor."""
    height, width = image.shape[:2]
    scale = spec.scale(height, width)
    # torchvision floors the scaled size the same way (interpolate with recompute_scale_factor).
    new_h, new_w = max(1, math.floor(height * scale)), max(1, math.floor(width * scale))
    resized = resize(image, new_w, new_h)  # area-averaged when shrinking, as training images are
    pad_h, pad_w = spec.padded_shape(new_h, new_w)
    batch = np.zeros((1, 3, pad_h, pad_w), np.float32)
    normalised = (resized.astype(np.float32) / 255.0 - np.asarray(spec.mean, np.float32)) / np.asarray(
        spec.std, np.float32
    )
    batch[0, :, :new_h, :new_w] = normalised.transpose(2, 0, 1)
    return batch, scale


def raw_detections(
    boxes: np.ndarray, scores: np.ndarray, masks: np.ndarray, scale: float, image_shape: tuple[int, int]
) -> RawDetections:
    """Network outputs (boxes in padded-input pixels) as detections in photo pixels, boxes
    clipped to the photo (``image_shape`` = height, width)."""
    height, width = image_shape
    photo_boxes = boxes.astype(np.float32) / scale
    np.clip(photo_boxes[:, 0::2], 0, width, out=photo_boxes[:, 0::2])
    np.clip(photo_boxes[:, 1::2], 0, height, out=photo_boxes[:, 1::2])
    return RawDetections(
        photo_boxes,
        scores.astype(np.float32),
        masks.reshape(len(masks), *masks.shape[-2:]).astype(np.float32),
        (height, width),
    )
