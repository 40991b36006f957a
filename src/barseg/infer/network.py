"""What goes into and comes out of the network graph, the same for every runtime.

The graph (PyTorch, ONNX or TensorRT) holds only backbone, RPN and RoI heads. Resizing,
normalising and padding the photo happen here in numpy, and so does pasting the
low-resolution mask of each detection back into the photo (``predictor.paste_mask``,
only for detections that pass the score cut): torchvision pastes every detection at full
image size inside the graph, which costs more than the heads themselves on a CPU.

A photo reaches a runtime as a ``NetworkInput``: already resized to the network's scale
(at most ``max_size`` on its long side), so what a runtime receives is small whatever the
photo; the service resizes in its API process and sends only that to the model's process.
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


@dataclass(frozen=True)
class NetworkInput:
    """A photo at the network's scale: ``pixels`` (RGB uint8), the factor that made them from
    the photo, and the photo's own (height, width), to map detections back."""

    pixels: np.ndarray
    scale: float
    photo_shape: tuple[int, int]


def fit_to_network(image: np.ndarray, spec: InputSpec) -> NetworkInput:
    """An RGB uint8 photo resized as the network takes it."""
    height, width = image.shape[:2]
    scale = spec.scale(height, width)
    # torchvision floors the scaled size the same way (interpolate with recompute_scale_factor).
    new_h, new_w = max(1, math.floor(height * scale)), max(1, math.floor(width * scale))
    resized = resize(image, new_w, new_h)  # area-averaged when shrinking, as training images are
    return NetworkInput(resized, scale, (height, width))


def network_batch(inputs: list[NetworkInput], spec: InputSpec) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """(N, 3, H, W) float32: each input normalised and padded (``spec.padded_shape``), then
    to the largest of them; and each input's own padded (height, width)."""
    sizes = [spec.padded_shape(*i.pixels.shape[:2]) for i in inputs]
    batch = np.zeros((len(inputs), 3, max(h for h, _ in sizes), max(w for _, w in sizes)), np.float32)
    mean, std = np.asarray(spec.mean, np.float32), np.asarray(spec.std, np.float32)
    for k, i in enumerate(inputs):
        h, w = i.pixels.shape[:2]
        batch[k, :, :h, :w] = ((i.pixels.astype(np.float32) / 255.0 - mean) / std).transpose(2, 0, 1)
    return batch, sizes


def prepare_input(image: np.ndarray, spec: InputSpec) -> tuple[np.ndarray, float]:
    """(1, 3, H, W) float32 network input of one RGB uint8 photo, and the resize factor."""
    fitted = fit_to_network(image, spec)
    return network_batch([fitted], spec)[0], fitted.scale


def raw_detections(boxes: np.ndarray, scores: np.ndarray, masks: np.ndarray, fitted: NetworkInput) -> RawDetections:
    """Network outputs (boxes in padded-input pixels) as detections in photo pixels, boxes
    clipped to the photo."""
    height, width = fitted.photo_shape
    photo_boxes = boxes.astype(np.float32) / fitted.scale
    np.clip(photo_boxes[:, 0::2], 0, width, out=photo_boxes[:, 0::2])
    np.clip(photo_boxes[:, 1::2], 0, height, out=photo_boxes[:, 1::2])
    return RawDetections(
        photo_boxes,
        scores.astype(np.float32),
        masks.reshape(len(masks), *masks.shape[-2:]).astype(np.float32),
        (height, width),
    )
