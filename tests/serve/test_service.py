"""The service in-process (BentoML's ASGI app under Starlette's test client): the JSON of
docs/design.md §5, the PNG overlay, converted uploads, and a named 4xx for every bad input."""

from __future__ import annotations

import io
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image
from starlette.testclient import TestClient

from barseg.infer.detections import RawDetections
from barseg.infer.network import NetworkInput
from barseg.infer.predictor import Predictor
from tests.serve.conftest import SETTINGS, BadRequest, bad_requests, barcode_photo, encode

LOWEST = str(SETTINGS.min_threshold)  # the lowest cut the service accepts: the most detections
RESPONSE_KEYS = {"num_detections", "detections", "image_size", "processing_time_ms"}
DETECTION_KEYS = {"score", "bbox", "polygon", "rotated_box", "symbology", "text"}


@pytest.fixture(scope="module")
def client(service: ModuleType) -> Iterator[TestClient]:
    with TestClient(service.BarcodeSegmenter.to_asgi()) as test_client:
        yield test_client


def post(client: TestClient, data: bytes, route: str = "/predict", **fields: str) -> dict:
    response = client.post(route, files={"image": ("photo", data), **{k: (None, v) for k, v in fields.items()}})
    assert response.status_code == 200, response.text
    return response.json()


def test_settings_come_from_the_model(service: ModuleType) -> None:
    assert service.SETTINGS == SETTINGS
    assert str(service.MODEL.tag).startswith("barcode_segmenter:")


def test_predict_answers_the_design_json(client: TestClient, photo_jpeg: bytes) -> None:
    body = post(client, photo_jpeg, confidence_threshold=LOWEST)
    assert set(body) == RESPONSE_KEYS
    assert body["image_size"] == [320, 240]
    assert body["num_detections"] == len(body["detections"]) > 0
    for detection in body["detections"]:
        assert set(detection) >= DETECTION_KEYS  # docs/design.md §5 (the Predictor may add keys)
        assert len(detection["bbox"]) == 4 and 3 <= len(detection["polygon"]) <= 16
        assert set(detection["rotated_box"]) == {"center", "size", "angle"}
    assert body["processing_time_ms"] > 0


def test_threshold_field_and_default(client: TestClient, photo_jpeg: bytes) -> None:
    everything = post(client, photo_jpeg, confidence_threshold=LOWEST)
    default = post(client, photo_jpeg)  # the model's threshold, 0.5
    assert default == {
        **post(client, photo_jpeg, confidence_threshold="0.5"),
        "processing_time_ms": default["processing_time_ms"],
    }
    assert post(client, photo_jpeg, confidence_threshold="1")["num_detections"] == 0
    assert all(d["score"] >= 0.5 for d in default["detections"])
    assert default["num_detections"] <= everything["num_detections"]


def test_decode_field_is_accepted(client: TestClient, photo_jpeg: bytes) -> None:
    body = post(client, photo_jpeg, confidence_threshold=LOWEST, decode="true")
    assert body["num_detections"] > 0


def test_visualize_answers_a_png_of_the_photo(client: TestClient, photo_jpeg: bytes) -> None:
    response = client.post("/visualize", files={"image": ("photo", photo_jpeg), "confidence_threshold": (None, LOWEST)})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    overlay = np.asarray(Image.open(io.BytesIO(response.content)))
    assert overlay.shape == (240, 320, 3)
    red = (overlay[..., 0] > 200) & (overlay[..., 1] < 60) & (overlay[..., 2] < 60)
    assert red.any()  # polygons are drawn on a black-and-white photo


def converted_uploads() -> list[tuple[str, bytes, list[int]]]:
    rgb = barcode_photo(size=(280, 160))
    grey = rgb[..., 0]
    exif = Image.Exif()
    exif[0x0112] = 6
    rgba = np.dstack([rgb, np.full(grey.shape, 255, np.uint8)])
    rgba[:, :10, 3] = 0
    return [
        ("16-bit grey PNG", encode(Image.fromarray(grey.astype(np.uint16) * 257), "PNG"), [280, 160]),
        ("CMYK JPEG", encode(Image.fromarray(rgb).convert("CMYK"), "JPEG"), [280, 160]),
        ("palette GIF", encode(Image.fromarray(rgb).convert("P"), "GIF", transparency=0), [280, 160]),
        ("RGBA PNG", encode(Image.fromarray(rgba, "RGBA"), "PNG"), [280, 160]),
        ("grey+alpha PNG", encode(Image.fromarray(rgba, "RGBA").convert("LA"), "PNG"), [280, 160]),
        ("EXIF-rotated JPEG", encode(Image.fromarray(rgb), "JPEG", exif=exif), [160, 280]),
        ("TIFF", encode(Image.fromarray(rgb), "TIFF"), [280, 160]),
        ("WebP", encode(Image.fromarray(rgb), "WEBP"), [280, 160]),
    ]


@pytest.mark.parametrize(("kind", "data", "size"), converted_uploads(), ids=lambda v: v if isinstance(v, str) else "")
def test_uploads_in_other_modes_are_converted(client: TestClient, kind: str, data: bytes, size: list[int]) -> None:
    assert post(client, data, confidence_threshold=LOWEST)["image_size"] == size


def test_every_bad_input_is_a_named_4xx_and_serving_goes_on(client: TestClient, photo_jpeg: bytes) -> None:
    cases: list[BadRequest] = bad_requests(photo_jpeg, SETTINGS)
    for case in cases:
        for route in ("/predict", "/visualize"):
            response = client.post(route, **case.request)
            assert response.status_code == case.status, (case.name, route, response.text)
            body = response.json()
            assert isinstance(body, dict) and "error" in body, (case.name, body)  # an object, never BentoML's list
            assert case.reason in response.text, (case.name, body)
            assert "Traceback" not in response.text
        assert post(client, photo_jpeg)["image_size"] == [320, 240], case.name


def test_requests_are_counted_in_our_metrics(client: TestClient, photo_jpeg: bytes) -> None:
    """In-process, BentoML's /metrics needs the server's multiprocess directory; the
    served test reads them there. Here: the registry they live in."""
    import prometheus_client

    def sample(name: str, **labels: str) -> float:
        return prometheus_client.REGISTRY.get_sample_value(name, labels) or 0.0

    before = sample("barseg_detections_per_image_count"), sample("barseg_inference_seconds_count", runtime="onnx")
    detections = post(client, photo_jpeg, confidence_threshold=LOWEST)["num_detections"]
    assert sample("barseg_detections_per_image_count") == before[0] + 1
    assert sample("barseg_detections_per_image_sum") >= detections
    assert sample("barseg_inference_seconds_count", runtime="onnx") == before[1] + 1


class BoxPredictor(Predictor):
    """A 'network' that finds one code filling ``box`` (photo pixels) in every image, with
    ``score``, and records how many inputs each call got."""

    def __init__(self, box: tuple[float, float, float, float], score: float = 0.9) -> None:
        super().__init__()
        self.box, self.score = box, score
        self.batches: list[int] = []

    def raw(self, inputs: list[NetworkInput], score_threshold: float) -> list[RawDetections]:
        self.batches.append(len(inputs))
        found = self.score > score_threshold
        return [
            RawDetections(
                np.array([self.box] if found else np.zeros((0, 4)), np.float32),
                np.array([self.score] if found else [], np.float32),
                np.ones((int(found), 28, 28), np.float32),
                fitted.photo_shape,
            )
            for fitted in inputs
        ]


def test_detector_runs_the_network_once_per_threshold(service: ModuleType) -> None:
    detector = service.Detector()
    detector.predictor = BoxPredictor((10.0, 20.0, 110.0, 70.0))
    job = {"pixels": np.zeros((48, 64, 3), np.uint8), "scale": 0.2, "photo_shape": [240, 320]}
    jobs = [{**job, "threshold": 0.5}, {**job, "threshold": 0.95}, {**job, "threshold": 0.5}]
    results = detector.detect(jobs)
    assert sorted(detector.predictor.batches) == [1, 2]  # jobs 0 and 2 ran together
    assert [len(r["scores"]) for r in results] == [1, 0, 1]
    assert results[0]["boxes"].tolist() == [[10.0, 20.0, 110.0, 70.0]] and results[0]["masks"].shape == (1, 28, 28)


def test_only_the_network_input_reaches_the_model_process(
    client: TestClient, tiny_onnx: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 1600 x 1200 photo reaches the Detector as the network's input (the tiny model's
    256 px); the public service maps the detections back to the photo."""
    from barseg.infer.onnx_runtime import OnnxPredictor

    seen: list[tuple[int, ...]] = []
    run_network = OnnxPredictor.raw

    def spy(self: OnnxPredictor, inputs: list[NetworkInput], score_threshold: float) -> list[RawDetections]:
        seen.extend(i.pixels.shape for i in inputs)
        return run_network(self, inputs, score_threshold)

    monkeypatch.setattr(OnnxPredictor, "raw", spy)
    rgb = np.repeat(np.repeat(barcode_photo(), 5, axis=0), 5, axis=1)  # 1600 x 1200, the code as large
    body = post(client, encode(Image.fromarray(rgb), "PNG"), confidence_threshold=LOWEST)
    assert seen == [(192, 256, 3)] and OnnxPredictor(tiny_onnx).spec.max_size == 256
    monkeypatch.undo()
    (direct,) = OnnxPredictor(tiny_onnx).predict([rgb], SETTINGS.min_threshold)  # all in one process
    assert body["num_detections"] > 0
    assert body == {**direct.to_json(), "processing_time_ms": body["processing_time_ms"]}


def test_model_file_choice_falls_back_from_an_unusable_engine(
    service: ModuleType,
    tiny_onnx: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    (tmp_path / "model.engine").write_bytes(b"not a TensorRT engine")
    shutil.copyfile(tiny_onnx, tmp_path / "model.onnx")
    assert service.open_predictor(tmp_path, SETTINGS)[1] == "onnx"
    monkeypatch.setattr(service, "find_spec", lambda name: object())  # as if TensorRT were installed
    with caplog.at_level(logging.WARNING):
        assert service.open_predictor(tmp_path, SETTINGS)[1] == "onnx"
    assert "TensorRT cannot run it" in caplog.text
    with pytest.raises(FileNotFoundError, match=r"model\.onnx"):
        service.open_predictor(tmp_path / "elsewhere", SETTINGS)
