"""Read the barcodes the network found: zxing-cpp on an upright crop of each detection.

This module is the one place that calls zxing-cpp. A whole-photo read (``read_codes``) is
the classical baseline; ``decode_detections`` reads each segmented code from a
perspective-corrected, upscaled crop of its own, which is what segmentation buys: the
reader no longer has to find small, tilted or skewed codes in a large, cluttered photo.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import zxingcpp

from barseg.data.symbology import ONE_D, canonical_symbology
from barseg.infer.detections import Detection
from barseg.infer.rectify import quad_of, rectify_with_transform

# Formats we have a canonical name for; the others (DX film edge, Telepen, PZN, ...) are
# more often false reads of bars and text than codes a user of this pipeline holds.
_KNOWN = [f for f in zxingcpp.barcode_formats_list() if canonical_symbology(str(f))]
FORMATS = zxingcpp.BarcodeFormats(_KNOWN)
MATRIX_FORMATS = zxingcpp.BarcodeFormats([f for f in _KNOWN if canonical_symbology(str(f)) not in ONE_D])
ACCEPT_GROWTH = 0.25  # a read counts for a detection when its centre lies in the quad grown by this per side
MIN_SPAN = 0.25  # ... and it spans this share of the quad's diameter (1D reads are a line across the bars)
FIT_SPAN = 0.6  # a whole-photo read is a detection's code when it spans this share of it, else a code of its own


@dataclass(frozen=True)
class Attempt:
    """One try at a detection: the image to read, its homography from photo pixels, how to
    binarise it and which formats to look for."""

    image: np.ndarray
    transform: np.ndarray
    binarizer: zxingcpp.Binarizer
    formats: zxingcpp.BarcodeFormats


@dataclass(frozen=True)
class Read:
    """One code zxing-cpp read: canonical symbology, text, and its four corners (top left
    first, clockwise) in the pixels of the photo."""

    symbology: str
    text: str
    corners: tuple[tuple[float, float], ...]

    @property
    def center(self) -> tuple[float, float]:
        x, y = np.mean(self.corners, axis=0)
        return float(x), float(y)


def _text_of(barcode: zxingcpp.Barcode, symbology: str) -> tuple[str, str]:
    """The symbology and text as printed on the label. zxing-cpp 3.1 reports a UPC-A as a
    13-digit EAN-13 and a UPC-E as its 13-digit expansion."""
    text = barcode.text
    if symbology == "EAN13" and len(text) == 13 and text.startswith("0"):
        return "UPCA", text[1:]
    if symbology == "UPCE" and isinstance(barcode.extra, dict):
        return symbology, barcode.extra.get("UPCE", text)
    return symbology, text


def _zxing(
    gray: np.ndarray,
    binarizer: zxingcpp.Binarizer = zxingcpp.Binarizer.LocalAverage,
    formats: zxingcpp.BarcodeFormats = FORMATS,
) -> list[Read]:
    """Every code zxing-cpp finds in a grayscale image, corners in that image's pixels."""
    reads = []
    for barcode in zxingcpp.read_barcodes(gray, formats=formats, binarizer=binarizer):
        symbology = canonical_symbology(str(barcode.format))
        if symbology is None or not barcode.text:
            continue
        p = barcode.position
        corners = tuple((float(c.x), float(c.y)) for c in (p.top_left, p.top_right, p.bottom_right, p.bottom_left))
        reads.append(Read(*_text_of(barcode, symbology), corners=corners))
    return reads


def to_gray(image: np.ndarray) -> np.ndarray:
    """Luma of an RGB image (a grayscale one as is): the readers binarise luma anyway."""
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def read_codes(image: np.ndarray) -> list[Read]:
    """Every code zxing-cpp alone finds in a whole RGB (or grayscale) photo: the baseline."""
    return _zxing(to_gray(image))


def detection_from_polygon(polygon: np.ndarray, score: float = 1.0) -> Detection:
    """A ``Detection`` of a known outline (a labelled code, an oracle segmentation), for
    reading regions the network did not propose."""
    points = np.asarray(polygon, np.float32).reshape(-1, 2)
    (cx, cy), (w, h), angle = cv2.minAreaRect(points)
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    return Detection(
        score=score,
        bbox=[float(x0), float(y0), float(x1), float(y1)],
        polygon=points.tolist(),
        rotated_box={"center": [float(cx), float(cy)], "size": [float(w), float(h)], "angle": float(angle)},
    )


def _scaled(crop: np.ndarray, transform: np.ndarray, factor: float, blur: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The crop resized by ``factor`` (area-averaged), then optionally blurred; the
    homography follows the resize."""
    small = cv2.resize(crop, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA) if factor != 1 else crop
    if blur:
        small = cv2.GaussianBlur(small, (0, 0), blur)
    return small, np.diag([factor, factor, 1.0]) @ transform


def _attempts(gray: np.ndarray, detection: Detection, quad: np.ndarray) -> Iterator[Attempt]:
    """Crops to read in turn, cheapest and likeliest first, built only when reached.

    The first is the general crop. Matrix codes then get a tight crop at half that zoom:
    their finder works on a few crisp pixels per module, where the bicubic upscale that keeps
    thin 1D bars straight leaves soft edges. Then a global threshold (uneven light), a wide
    margin (a mask that misses part of the code), the axis-aligned box (a poor 4-corner fit),
    a larger zoom (thin 1D bars), for matrix codes a native-size blurred and an eroded crop
    (print noise, thin dark modules), and last a locally contrast-equalised wide crop (glare,
    shadow). On bad 1D prints, downscaling, blur and erosion make misreads, so those attempts
    look for matrix formats only.
    """
    local, histogram = zxingcpp.Binarizer.LocalAverage, zxingcpp.Binarizer.GlobalHistogram
    general = rectify_with_transform(gray, quad)
    yield Attempt(*general, local, FORMATS)
    yield Attempt(*_scaled(*rectify_with_transform(gray, quad, margin=0.1), 0.5), local, MATRIX_FORMATS)
    yield Attempt(*rectify_with_transform(gray, quad, long_side=180, max_zoom=2.0), local, FORMATS)
    yield Attempt(*general, histogram, FORMATS)
    wide = rectify_with_transform(gray, quad, margin=0.6)
    yield Attempt(*wide, local, FORMATS)
    x0, y0, x1, y1 = detection.bbox
    box = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)
    yield Attempt(*rectify_with_transform(gray, box, margin=0.3), local, FORMATS)
    yield Attempt(*rectify_with_transform(gray, quad, long_side=720, max_zoom=8.0), local, FORMATS)
    native = rectify_with_transform(gray, quad, long_side=1, max_zoom=1.0)
    yield Attempt(*_scaled(*native, 1.0, blur=1.5), local, MATRIX_FORMATS)
    yield Attempt(cv2.erode(general[0], np.ones((3, 3), np.uint8)), general[1], local, MATRIX_FORMATS)
    yield Attempt(cv2.createCLAHE(2.0, (8, 8)).apply(wide[0]), wide[1], local, FORMATS)


def _grown(quad: np.ndarray, growth: float) -> np.ndarray:
    center = quad.mean(axis=0)
    return center + (quad - center) * (1 + 2 * growth)


def _best_read(reads: list[Read], transform: np.ndarray, quad: np.ndarray) -> tuple[Read | None, bool]:
    """The read that belongs to the detection, moved to photo pixels, and whether the
    detection holds codes too small to be it (a region around a group of codes, which no
    other crop will make one code).

    A neighbour caught in the crop's margin is no read of this code: the centre must lie in
    the (grown) quad, and the code must span a fair share of it. Of those, the one nearest
    the middle, unless another text was read at the same place: a bad print read two ways
    (or two codes under one mask), which this crop cannot settle.
    """
    if not reads:
        return None, False
    corners = np.array([r.corners for r in reads], np.float32).reshape(-1, 1, 2)
    in_image = cv2.perspectiveTransform(corners, np.linalg.inv(transform)).reshape(len(reads), 4, 2)
    region = _grown(quad, ACCEPT_GROWTH)
    span = _diameter(quad)
    accepted, group = [], False
    for read, points in zip(reads, in_image, strict=True):
        center = points.mean(axis=0)
        if cv2.pointPolygonTest(region, (float(center[0]), float(center[1])), False) < 0:
            continue
        if _diameter(points) < MIN_SPAN * span:
            group = True
            continue
        accepted.append(Read(read.symbology, read.text, tuple((float(x), float(y)) for x, y in points)))
    if not accepted:
        return None, group
    middle = quad.mean(axis=0)
    best = min(accepted, key=lambda r: float(np.linalg.norm(np.subtract(r.center, middle))))
    reach = _diameter(np.array(best.corners)) / 2
    if any(r.text != best.text and np.linalg.norm(np.subtract(r.center, best.center)) < reach for r in accepted):
        return None, False
    return best, False


def _diameter(points: np.ndarray) -> float:
    return float(max(np.linalg.norm(a - b) for a in points for b in points))


def decode_region(gray: np.ndarray, detection: Detection, deadline: float | None = None) -> Read | None:
    """The code inside one detection of a grayscale photo (corners in photo pixels), or None
    when no crop reads (before ``deadline``, a ``time.monotonic()``)."""
    quad = quad_of(np.asarray(detection.polygon, np.float32))
    for attempt in _attempts(gray, detection, quad):
        if deadline is not None and time.monotonic() > deadline:
            return None
        read, group = _best_read(_zxing(attempt.image, attempt.binarizer, attempt.formats), attempt.transform, quad)
        if read is not None or group:
            return read
    return None


def decode_detections(
    image: np.ndarray, detections: list[Detection], max_decodes: int | None = None, deadline: float | None = None
) -> int:
    """Fill ``symbology`` and ``text`` of each detection of an RGB photo that reads, in place;
    the others keep None. Only the first ``max_decodes`` detections are tried, and none
    after ``deadline`` (``time.monotonic()``). Returns how many were tried (the first ones)."""
    gray = to_gray(image)
    tried = 0
    for detection in detections[:max_decodes]:
        if deadline is not None and time.monotonic() > deadline:
            break  # not even the first crop of the rest: building one costs a warp
        tried += 1
        if len(detection.polygon) < 3:
            continue
        read = decode_region(gray, detection, deadline)
        if read is not None:
            detection.symbology, detection.text = read.symbology, read.text
    return tried


def decode_prediction(
    image: np.ndarray, detections: list[Detection], max_decodes: int | None = None, deadline: float | None = None
) -> tuple[list[Detection], int]:
    """Read each detection (in place; at most ``max_decodes``, the best first, none after
    ``deadline``), then, if the deadline has not passed, zxing-cpp on the whole photo (one call,
    not interrupted: on a 36 MP photo it may run a second past the deadline), so the pipeline
    reads at least what a classical reader does: a whole-photo read inside a detection whose
    crops did not read, and which it fills (``FIT_SPAN``), gives that detection its text; one
    outside every detection, or far smaller than the detection around it (a region the
    network drew around several codes), comes back as an extra detection with
    ``source="reader"`` and score 1.0 (a read that passed the symbology's checks: a code the
    network missed or merged). Returns those extra detections and how many of ``detections``
    were tried (the first ones)."""
    tried = decode_detections(image, detections, max_decodes, deadline)
    if deadline is not None and time.monotonic() > deadline:
        return [], tried
    outlined = [(d, np.asarray(d.polygon, np.float32)) for d in detections if len(d.polygon) >= 3]
    extra = []
    for read in read_codes(image):
        around = [(d, o) for d, o in outlined if cv2.pointPolygonTest(o, read.center, False) >= 0]
        if any(d.text == read.text for d, _ in around):
            continue
        span = _diameter(np.asarray(read.corners, np.float32))
        inside = [d for d, o in around if span >= FIT_SPAN * _diameter(o)]
        unread = [d for d in inside if d.text is None]
        if unread:
            unread[0].symbology, unread[0].text = read.symbology, read.text
            continue
        if inside:  # inside a detection that read another code: two codes under one mask
            continue
        detection = detection_from_polygon(np.asarray(read.corners), score=1.0)
        detection.symbology, detection.text, detection.source = read.symbology, read.text, "reader"
        extra.append(detection)
    return extra, tried
