"""A private BentoML home, the tiny model stored in it with small limits, the service
imported over it, and photos to send."""

from __future__ import annotations

import importlib
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import zxingcpp
from PIL import Image

from barseg.serve.settings import ServeSettings

MODEL_NAME = "barcode_segmenter"  # the service's default model: no build argument in-process
# Small limits, so the tests reach them with small requests.
# The floor is low: the 40-step tiny model scores its detections below the default 0.05.
SETTINGS = ServeSettings(threshold=0.5, min_threshold=0.001, decode=False, max_pixels=2_000_000, max_upload_mb=1.0)


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def barcode_photo(text: str = "4006381333931", size: tuple[int, int] = (320, 240)) -> np.ndarray:
    """An EAN-13 rendered by zxing-cpp on white paper: RGB uint8, code near the centre."""
    code = np.asarray(zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.EAN13).to_image(scale=2))
    photo = np.full((size[1], size[0], 3), 255, np.uint8)
    y, x = (size[1] - code.shape[0]) // 2, (size[0] - code.shape[1]) // 2
    photo[y : y + code.shape[0], x : x + code.shape[1]] = code[..., None]
    return photo


@pytest.fixture(scope="session")
def bentoml_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """BENTOML_HOME for this process and the servers it starts; nothing reaches ~/bentoml."""
    from bentoml._internal.configuration.containers import BentoMLContainer

    home = tmp_path_factory.mktemp("bentoml_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BENTOML_HOME", str(home))
        resolved = BentoMLContainer.bentoml_home.get()  # BentoML reads the variable once per process
        if Path(resolved) != home:
            pytest.fail(f"BentoML's home was resolved before the serve tests set it: {resolved}")
        yield home


@pytest.fixture(scope="session")
def stored_model(bentoml_home: Path, tiny_onnx: Path) -> str:
    from barseg.serve.package import save_model

    return str(save_model(MODEL_NAME, [tiny_onnx], SETTINGS))


@pytest.fixture(scope="session")
def service(stored_model: str) -> ModuleType:
    """``barseg.serve.service``, imported once the model it loads at import time exists."""
    return importlib.import_module("barseg.serve.service")


@pytest.fixture(scope="session")
def photo_jpeg() -> bytes:
    return encode(Image.fromarray(barcode_photo()), "JPEG", quality=95)


@dataclass(frozen=True)
class BadRequest:
    """A request the service must refuse with ``status`` and an error naming ``reason``."""

    name: str
    request: dict[str, Any]  # keyword arguments of httpx's post()
    status: int
    reason: str


def bomb_png(max_pixels: int) -> bytes:
    """A real, tiny PNG (bilevel, all black) with more pixels than ``max_pixels``."""
    side = math.isqrt(max_pixels) + 100
    return encode(Image.new("1", (side, side)), "PNG")


def bad_requests(photo_jpeg: bytes, settings: ServeSettings) -> list[BadRequest]:
    """Every kind of bad input the service refuses, for the in-process and served tests."""
    image = ("photo.jpg", photo_jpeg, "image/jpeg")

    def with_threshold(value: str) -> dict[str, Any]:
        return {"files": {"image": image, "confidence_threshold": (None, value)}}

    return [
        BadRequest("empty body", {}, 400, "empty request body"),
        BadRequest(
            "non-image bytes",
            {"files": {"image": ("notes.txt", b"ean13,4006381333931\n" * 20)}},
            400,
            "not a readable image",
        ),
        BadRequest("empty file", {"files": {"image": ("photo.jpg", b"")}}, 400, "empty"),
        BadRequest(
            "truncated JPEG", {"files": {"image": ("photo.jpg", photo_jpeg[: len(photo_jpeg) // 2])}}, 400, "truncated"
        ),
        BadRequest(
            "decompression bomb",
            {"files": {"image": ("bomb.png", bomb_png(settings.max_pixels))}},
            413,
            "above the limit",
        ),
        BadRequest(
            "missing image field", {"files": {"confidence_threshold": (None, "0.5")}}, 400, "missing field 'image'"
        ),
        BadRequest("misnamed image field", {"files": {"photo": image}}, 400, "unexpected field 'photo'"),
        BadRequest(
            "image as text", {"files": {"image": (None, "http://127.0.0.1:9/a.jpg")}}, 400, "must be a file upload"
        ),
        BadRequest("threshold above 1", with_threshold("1.5"), 400, "confidence_threshold"),
        BadRequest("threshold below 0", with_threshold("-0.1"), 400, "confidence_threshold"),
        BadRequest(
            "threshold below the floor", with_threshold("0"), 400, f"greater than or equal to {settings.min_threshold}"
        ),
        BadRequest("threshold not a number", with_threshold("high"), 400, "confidence_threshold"),
        BadRequest("decode not a boolean", {"files": {"image": image, "decode": (None, "perhaps")}}, 400, "decode"),
        BadRequest(
            "oversized upload",
            {"files": {"image": ("big.jpg", bytes(settings.max_upload_bytes + 1))}},
            413,
            "larger than the limit",
        ),
        BadRequest(
            "raw JPEG body",
            {"content": photo_jpeg, "headers": {"content-type": "image/jpeg"}},
            415,
            "multipart/form-data",
        ),
        BadRequest(
            "multipart without boundary",
            {"content": b"--x--", "headers": {"content-type": "multipart/form-data"}},
            400,
            "boundary",
        ),
    ]
