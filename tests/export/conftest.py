"""The fixed-size ONNX export of the tiny trained checkpoint (the dynamic one and the images
are in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from barseg.export.onnx import export_onnx


@pytest.fixture(scope="session")
def tiny_onnx_fixed(tiny_checkpoint: Path, tiny_images: list[tuple[str, np.ndarray]]) -> Path:
    out = tiny_checkpoint.with_name("tiny_fixed.onnx")
    return export_onnx(tiny_checkpoint, out, tiny_images[0][1], fixed_size=True)
