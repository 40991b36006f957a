"""End to end, as a user gets it: the package stage stores the tiny model (exported to ONNX)
and builds and exports the Bento; the archive is imported into a second, empty BentoML home
(as `dvc pull` + `bentoml import` on another machine) and served there by `bentoml serve`."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from barseg.serve.package import settings_from_params
from barseg.serve.server import serving
from tests.conftest import REPO, params_section
from tests.serve.conftest import bad_requests, barcode_photo

pytestmark = pytest.mark.slow

DETECTION_KEYS = {"score", "bbox", "polygon", "rotated_box", "symbology", "text"}


def run(command: list[str], home: Path) -> str:
    env = {**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> dict[str, Any]:
    """The package stage's outputs, from the stage script itself, run twice."""
    from barseg.export.onnx import export_onnx

    root = tmp_path_factory.mktemp("package")
    onnx = export_onnx(tiny_checkpoint, root / "model.onnx", barcode_photo())
    (root / "trt").mkdir()
    (root / "trt" / "SKIPPED.md").write_text("no NVIDIA GPU in the tests\n")
    out, archive, home = root / "bento.json", root / "models" / "barcode_segmenter.bento", root / "home"
    stage = [sys.executable, "stages/package.py", "--onnx", str(onnx), "--trt", str(root / "trt")]
    run([*stage, "--out", str(out), "--archive", str(archive)], home)
    first = json.loads(out.read_text())
    run([*stage, "--out", str(out), "--archive", str(archive)], home)
    return {"first": first, "second": json.loads(out.read_text()), "archive": archive, "root": root}


@pytest.fixture(scope="module")
def server(packaged: dict[str, Any]) -> Iterator[str]:
    """The exported Bento, imported into an empty BentoML home and served from it."""
    home = packaged["root"] / "elsewhere"
    run([sys.executable, "-m", "bentoml", "import", str(packaged["archive"])], home)
    with serving(packaged["first"]["tag"], packaged["root"] / "serve.log", env={"BENTOML_HOME": str(home)}) as served:
        yield served.url


@pytest.fixture(scope="module")
def photo() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(barcode_photo()).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def predict(url: str, photo: bytes, route: str = "/predict", **fields: str) -> httpx.Response:
    files = {"image": ("photo.jpg", photo, "image/jpeg"), **{k: (None, v) for k, v in fields.items()}}
    return httpx.post(f"{url}{route}", files=files, timeout=120)


def test_package_writes_a_deterministic_tag_and_an_archive(packaged: dict[str, Any]) -> None:
    first, second = packaged["first"], packaged["second"]
    assert first == second  # the same inputs package to the same Bento and model
    assert re.fullmatch(r"barcode_segmenter:[0-9a-f]{20}", first["tag"])
    assert first["model_tag"].startswith("barcode_segmenter:") and first["model_files"] == ["model.onnx"]
    assert packaged["archive"].stat().st_size > 1_000_000  # the model travels inside


def test_served_bento_answers_predict_visualize_and_probes(server: str, photo: bytes) -> None:
    # The tiny model scores below params.yaml's floor; the code comes from the reader then.
    response = predict(server, photo, confidence_threshold="0.05", decode="true")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"num_detections", "detections", "image_size", "processing_time_ms"}
    assert body["image_size"] == [320, 240] and body["num_detections"] == len(body["detections"]) > 0
    assert all(set(d) >= DETECTION_KEYS for d in body["detections"])
    assert any(d["text"] == "4006381333931" for d in body["detections"])
    overlay = predict(server, photo, "/visualize", confidence_threshold="0.05")
    assert overlay.status_code == 200 and overlay.headers["content-type"] == "image/png"
    assert np.asarray(Image.open(io.BytesIO(overlay.content))).shape == (240, 320, 3)
    for probe in ("/healthz", "/livez", "/readyz", "/"):
        assert httpx.get(f"{server}{probe}", timeout=10).status_code == 200, probe
    assert "/predict" in httpx.get(f"{server}/docs.json", timeout=10).json()["paths"]


def test_every_bad_input_is_a_named_4xx_and_the_server_keeps_serving(server: str, photo: bytes) -> None:
    _, settings = settings_from_params(params_section("serve"))  # what the stage stored with the model
    for case in bad_requests(photo, settings):
        response = httpx.post(f"{server}/predict", timeout=120, **case.request)
        assert response.status_code == case.status, (case.name, response.text)
        assert "error" in response.json() and case.reason in response.text, (case.name, response.text)
        assert predict(server, photo).status_code == 200, f"not serving after: {case.name}"


def batch_totals(url: str) -> tuple[float, float]:
    """(images, calls) of the Detector so far, from BentoML's adaptive batch size histogram."""
    totals = [0.0, 0.0]
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith("bentoml_service_adaptive_batch_size_") and 'method_name="detect"' in line:
            if line.startswith("bentoml_service_adaptive_batch_size_sum"):
                totals[0] += float(line.rsplit(" ", 1)[1])
            elif line.startswith("bentoml_service_adaptive_batch_size_count"):
                totals[1] += float(line.rsplit(" ", 1)[1])
    return totals[0], totals[1]


def test_concurrent_requests_are_batched_and_counted(server: str, photo: bytes) -> None:
    with ThreadPoolExecutor(8) as pool:
        for _ in range(4):  # BentoML's dispatcher runs its first dozen calls alone, to time them
            statuses = list(pool.map(lambda _: predict(server, photo).status_code, range(8)))
            assert statuses == [200] * 8
    images, calls = batch_totals(server)
    assert images >= 32 and calls < images  # some model call got several images
    metrics = httpx.get(f"{server}/metrics", timeout=10).text
    for name in (
        "barseg_detections_per_image_count",
        'barseg_inference_seconds_count{runtime="onnx"}',
        "barseg_decoded_total",
    ):
        assert name in metrics, name


def test_every_dashboard_query_names_a_metric_the_service_exports(server: str, photo: bytes) -> None:
    """docs/monitoring/grafana-dashboard.json against a live /metrics after good and bad requests."""
    assert predict(server, photo).status_code == 200
    httpx.post(f"{server}/predict", files={"image": ("x.jpg", b"not an image", "image/jpeg")}, timeout=60)
    exported = httpx.get(f"{server}/metrics", timeout=10).text
    series = [line for line in exported.splitlines() if line and not line.startswith("#")]
    names = {re.split(r"[{ ]", line, maxsplit=1)[0] for line in series}
    dashboard = json.loads((REPO / "docs/monitoring/grafana-dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(exprs) >= 8
    for expr in exprs:
        for metric in re.findall(r"\b(?:bentoml|barseg)_[a-z_]+", expr):
            assert metric in names, f"{metric} (in {expr!r}) is not exported"
        for label, value in re.findall(r'(\w+)="([^"]+)"', expr):
            assert any(f'{label}="{value}"' in line for line in series), f'no series with {label}="{value}"'
