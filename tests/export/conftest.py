"""ONNX files exported from the tiny trained checkpoint, shared by the export tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from barseg.data.dataset import load_records, read_rgb
from barseg.export.onnx import export_onnx


@pytest.fixture(scope="session")
def tiny_images(tiny_processed: Path) -> list[tuple[str, np.ndarray]]:
    records = load_records(tiny_processed / "train.json") + load_records(tiny_processed / "val.json")
    return [(Path(r.path).name, read_rgb(r.path)) for r in records[:8]]


@pytest.fixture(scope="session")
def tiny_onnx(tiny_checkpoint: Path, tiny_images: list[tuple[str, np.ndarray]]) -> Path:
    return export_onnx(tiny_checkpoint, tiny_checkpoint.with_suffix(".onnx"), tiny_images[0][1])


@pytest.fixture(scope="session")
def tiny_onnx_fixed(tiny_checkpoint: Path, tiny_images: list[tuple[str, np.ndarray]]) -> Path:
    out = tiny_checkpoint.with_name("tiny_fixed.onnx")
    return export_onnx(tiny_checkpoint, out, tiny_images[0][1], fixed_size=True)
