"""The network's input: what every runtime feeds the graph."""

import numpy as np

from barseg.data.dataset import resize_long_side
from barseg.infer.network import InputSpec, prepare_input

SPEC = InputSpec(min_size=512, max_size=512, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))


def test_a_large_photo_is_shrunk_as_training_shrinks_it() -> None:
    """A 1536-px photo of 1-px bars reaches the network as training images reach it (area
    averaging), not as false full-contrast stripes (bilinear sampling aliases them)."""
    bars = np.zeros((1536, 1536, 3), np.uint8)
    bars[:, ::2] = 255
    batch, scale = prepare_input(bars, SPEC)
    assert scale == 1 / 3
    trained, _ = resize_long_side(bars, np.zeros((0, 1536, 1536), np.uint8), 512)
    assert np.array_equal(np.round(batch[0].transpose(1, 2, 0) * 255).astype(np.uint8), trained)
    assert batch.std() < 0.2  # bilinear: 0.5
