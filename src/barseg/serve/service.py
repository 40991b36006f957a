"""The BentoML service: ``POST /predict`` (detections as JSON) and ``POST /visualize`` (a PNG
overlay) over the model the ``package`` stage stored.

Two services, because BentoML batches only an API with a single argument:
``BarcodeSegmenter`` is the public one. It reads and checks the upload, resizes it to the
network's input (``fit_to_network``: at most ``max_size`` pixels on its long side) and sends
only that to ``Detector``, whose batchable ``detect`` runs just the network: under concurrent
load BentoML hands it several inputs per call and the runtime runs them together. The raw
detections come back, and the public service turns them into polygons and reads the codes
from the full-resolution photo itself (``to_prediction``, with at most ``max_decodes``
detections read and a ``decode_budget_s`` deadline), so no photo crosses processes and a
batch never waits on zxing. ``bentoml serve`` runs the two in separate processes.

Bounds per request: uploads above ``max_upload_mb`` and photos above ``max_pixels`` are
refused (413), a ``confidence_threshold`` below ``min_threshold`` too (400); more than
``max_concurrency`` requests in flight are refused (429), a request queued past the
batching latency is shed (503), and one running past ``timeout_s`` is answered 504.

The model comes from the Bento's build argument ``model`` (a model tag; ``package`` sets it),
else ``barcode_segmenter:latest``; its metadata holds the settings (``ServeSettings``). The
service imports ``barseg.infer`` and nothing of training.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any, cast

import aiohttp
import anyio
import bentoml
import numpy as np
from bentoml.exceptions import BentoMLException, InvalidArgument, NotFound
from bentoml.models import BentoModel
from PIL import Image
from pydantic import Field

from barseg.data.images import ImageError, ImageTooLarge, decode_image
from barseg.infer.detections import Prediction, RawDetections
from barseg.infer.network import InputSpec, NetworkInput, fit_to_network
from barseg.infer.overlay import draw_detections
from barseg.infer.predictor import Predictor, network_cut, to_prediction
from barseg.infer.runtimes import load_predictor
from barseg.serve.asgi import FlatErrors, PayloadTooLarge, RequestGuard, form_fields
from barseg.serve.settings import MODEL_FILES, ServeSettings

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "barcode_segmenter:latest"


def stored_model(tag: str) -> bentoml.Model:
    try:
        return bentoml.models.get(tag)
    except NotFound as exc:
        raise BentoMLException(
            f"no BentoML model {tag!r} in this store: run `dvc repro package`, or `bentoml import` the Bento"
        ) from exc


MODEL = stored_model(getattr(bentoml.use_arguments(), "model", DEFAULT_MODEL))
SETTINGS = ServeSettings.from_mapping(MODEL.info.metadata).with_environment()


@dataclass(frozen=True)
class Metrics:
    detections: Any  # prometheus_client.Histogram
    decoded: Any  # prometheus_client.Counter
    inference: Any  # prometheus_client.Histogram


@functools.cache
def metrics() -> Metrics:
    """Created on first use, in the worker: ``prometheus_client`` must be imported after
    BentoML has set up its multiprocess directory, or ``/metrics`` never sees these."""
    import prometheus_client

    return Metrics(
        detections=prometheus_client.Histogram(
            "barseg_detections_per_image",
            "Barcodes found per image",
            buckets=(0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 100),
        ),
        decoded=prometheus_client.Counter("barseg_decoded", "Barcodes read (symbology and text) by zxing-cpp"),
        inference=prometheus_client.Histogram(
            "barseg_inference_seconds",
            "Wall time of one Predictor call (a batch of images)",
            ["runtime"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
        ),
    )


def open_predictor(folder: Path, settings: ServeSettings) -> tuple[Predictor, str]:
    """The best runtime this machine can run for the model files in ``folder``, with
    ``settings.threads`` CPU threads (0: the runtime's default)."""
    for name, runtime in MODEL_FILES:
        path = folder / name
        if not path.is_file():
            continue
        if runtime == "trt":
            if find_spec("tensorrt") is None:
                logger.info("%s: TensorRT is not installed; using the next model file", path)
                continue
            try:
                return load_predictor(path, runtime, settings.threshold), runtime
            except Exception as exc:  # no NVIDIA GPU, or an engine built for another GPU/TensorRT
                logger.warning("%s: TensorRT cannot run it (%s); using the next model file", path, exc)
                continue
        return load_predictor(path, runtime, settings.threshold, settings.threads), runtime
    raise FileNotFoundError(f"{folder}: none of {', '.join(n for n, _ in MODEL_FILES)}")


def batch_api() -> Any:
    """``detect``'s decorator: batchable unless batching is off (BentoML needs a batch size
    of 2 or more, so 'off' is a plain API that gets one request per call)."""
    if SETTINGS.batching:
        return bentoml.api(
            batchable=True, max_batch_size=SETTINGS.max_batch_size, max_latency_ms=SETTINGS.max_latency_ms
        )
    return bentoml.api()


@bentoml.service(name="detector", workers=1, traffic={"timeout": SETTINGS.timeout_s})
class Detector:
    """Holds the model; one call runs the network on a batch of jobs
    ``{"pixels", "scale", "photo_shape", "threshold"}`` (a ``NetworkInput`` and its cut)."""

    model = BentoModel(MODEL.tag)

    def __init__(self) -> None:
        self.predictor, self.runtime = open_predictor(Path(self.model.path), SETTINGS)
        logger.info("model %s: %s runtime, batching %s", MODEL.tag, self.runtime, SETTINGS.batching)

    @bentoml.api
    def input_spec(self) -> str:
        """How the public service must resize photos for this model (``InputSpec`` JSON)."""
        return self.predictor.spec.to_json()

    @batch_api()
    def detect(self, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Raw detections per job, in photo pixels: ``{"boxes", "scores", "masks"}``. Jobs
        sharing a threshold (the usual case: the default) run as one batch."""
        groups: dict[float, list[int]] = defaultdict(list)
        for i, job in enumerate(jobs):
            groups[job["threshold"]].append(i)
        results: list[dict[str, Any]] = [{} for _ in jobs]
        for threshold, indices in groups.items():
            inputs = [NetworkInput(jobs[i]["pixels"], jobs[i]["scale"], tuple(jobs[i]["photo_shape"])) for i in indices]
            start = time.perf_counter()
            raws = self.predictor.raw(inputs, threshold)
            metrics().inference.labels(self.runtime).observe(time.perf_counter() - start)
            for i, raw in zip(indices, raws, strict=True):
                results[i] = {"boxes": raw.boxes, "scores": raw.scores, "masks": raw.masks}
        return results


THRESHOLD = Field(
    default=None,
    ge=SETTINGS.min_threshold,
    le=1.0,
    description=f"score cut in [{SETTINGS.min_threshold}, 1]; default: the model's setting",
)
DECODE = Field(default=None, description="also read each barcode (symbology, text); default: the model's setting")


@bentoml.service(
    name=MODEL.tag.name, traffic={"timeout": SETTINGS.timeout_s, "max_concurrency": SETTINGS.max_concurrency}
)
class BarcodeSegmenter:
    """Barcode instance segmentation: polygons, rotated boxes and decoded text per photo."""

    detector = bentoml.depends(Detector)

    def __init__(self) -> None:
        self.settings = SETTINGS
        self.spec: InputSpec | None = None  # asked of the Detector on first use

    async def run(self, image: Path, threshold: float | None, decode: bool | None) -> tuple[np.ndarray, Prediction]:
        """The upload as RGB and its ``Prediction``; bad uploads raise 4xx errors."""
        start = time.monotonic()
        try:
            rgb = await anyio.to_thread.run_sync(read_upload, image, self.settings.max_pixels)
        except ImageTooLarge as exc:
            raise PayloadTooLarge(f"image: {exc}") from exc
        except ImageError as exc:
            raise InvalidArgument(f"image: {exc}") from exc
        if self.spec is None:
            self.spec = InputSpec.from_json(await self.call_detector("input_spec"))
        fitted = await anyio.to_thread.run_sync(fit_to_network, rgb, self.spec)
        cut = self.settings.threshold if threshold is None else threshold
        reading = self.settings.decode if decode is None else decode
        job = {
            "pixels": fitted.pixels,
            "scale": fitted.scale,
            "photo_shape": list(fitted.photo_shape),
            "threshold": network_cut(cut, reading and self.settings.verify),
        }
        found = await self.detect(job)
        raw = RawDetections(found["boxes"], found["scores"], found["masks"], fitted.photo_shape)
        deadline = time.monotonic() + self.settings.decode_budget_s
        prediction = await anyio.to_thread.run_sync(
            functools.partial(
                to_prediction, raw, rgb, cut, reading, self.settings.max_decodes, deadline, self.settings.verify
            )
        )
        prediction.processing_time_ms = (time.monotonic() - start) * 1000
        m = metrics()
        m.detections.observe(len(prediction.detections))
        m.decoded.inc(sum(d.text is not None for d in prediction.detections))
        return rgb, prediction

    async def detect(self, job: dict[str, Any]) -> dict[str, Any]:
        """The Detector's raw detections for one job."""
        (found,) = await self.call_detector("detect", [job])
        return cast("dict[str, Any]", found)

    async def call_detector(self, method: str, *args: Any) -> Any:
        """A Detector API, retried once when the connection breaks: BentoML 1.4's client
        between services keeps idle connections 15 s, the Detector's server 5 s, so the first
        call after a pause can hit a closed one (bentoml/BentoML#4971). Both APIs have no side
        effects, so the retry is safe."""
        call = getattr(self.detector.to_async, method)
        try:
            return await call(*args)
        except aiohttp.ClientConnectionError as exc:
            if isinstance(exc, TimeoutError):
                raise
            logger.info("detector connection broke (%s); retrying once", exc)
            return await call(*args)

    @bentoml.api(route="/predict")
    async def predict(
        self, image: Path, confidence_threshold: float | None = THRESHOLD, decode: bool | None = DECODE
    ) -> dict[str, Any]:
        """Detections in one photo (multipart field ``image``): ``num_detections``,
        ``detections`` (score, bbox, polygon, rotated_box, symbology, text), ``image_size``
        [w, h], ``processing_time_ms``."""
        _, prediction = await self.run(image, confidence_threshold, decode)
        return prediction.to_json()

    @bentoml.api(route="/visualize")
    async def visualize(
        self, image: Path, confidence_threshold: float | None = THRESHOLD, decode: bool | None = DECODE
    ) -> Image.Image:
        """The photo as PNG with each detection's polygon, score and decoded text drawn."""
        rgb, prediction = await self.run(image, confidence_threshold, decode)
        overlay = await anyio.to_thread.run_sync(draw_detections, rgb, prediction.detections)
        return Image.fromarray(overlay)


def read_upload(path: Path, max_pixels: int) -> np.ndarray:
    """The uploaded file as RGB (off the event loop: reading and decoding both block)."""
    return decode_image(path.read_bytes(), max_pixels)


PUBLIC = cast("bentoml.Service[BarcodeSegmenter]", BarcodeSegmenter)  # type checkers ignore class decorators
PUBLIC.add_asgi_middleware(FlatErrors)
PUBLIC.add_asgi_middleware(RequestGuard, max_bytes=SETTINGS.max_upload_bytes, forms=form_fields(PUBLIC.apis))
