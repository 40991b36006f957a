"""Decoding round trips: codes the generator makes, pasted rotated into cluttered photos, read
back through the outline a segmentation would give."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from barseg.data.symbology import normalize_text
from barseg.data.synth import textures
from barseg.data.synth.symbols import WRITERS, Symbol, make_symbol, quiet_zone
from barseg.infer.decode import decode_detections, decode_prediction, detection_from_polygon, read_codes
from barseg.infer.detections import Detection
from barseg.infer.predictor import mask_outline
from barseg.infer.rectify import quad_of, rectify

SCENE = 720  # px, square
ANGLES = (0, 37, 90, 200)


def _symbol(symbology: str, seed: int = 0) -> Symbol:
    return make_symbol(symbology, np.random.default_rng(seed))


def _label(symbol: Symbol, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The code printed black on white with its quiet zone (gray), and the code's own corners
    (continuous pixels) on that label. ``k`` px per module, by default 3 (1D) or 4, fewer for
    a long code to fit the scene at any angle, never under 2."""
    k = k or max(2, min(3 if symbol.is_1d else 4, int(0.6 * SCENE / max(symbol.modules.shape))))
    modules = np.repeat(symbol.modules, 30, axis=0) if symbol.is_1d else symbol.modules
    ink = np.repeat(np.repeat(modules, k, axis=0), k, axis=1)
    pad = quiet_zone(symbol.symbology) * k
    label = np.full((ink.shape[0] + 2 * pad, ink.shape[1] + 2 * pad), 255, np.uint8)
    label[pad : pad + ink.shape[0], pad : pad + ink.shape[1]][ink] = 0
    h, w = ink.shape
    corners = np.array([[pad, pad], [pad + w, pad], [pad + w, pad + h], [pad, pad + h]], np.float64)
    return label, corners


def _clutter(seed: int) -> np.ndarray:
    """A photo-like RGB background: surface, shapes, print."""
    rng = np.random.default_rng(seed)
    scene = textures.surface(rng, SCENE, SCENE)
    textures.shapes(scene, rng, 6)
    textures.text_lines(scene, rng, (20, 20, SCENE - 20, 160), (30, 30, 30), 18)
    return cv2.cvtColor(scene, cv2.COLOR_BGR2RGB)


def _paste(scene: np.ndarray, label: np.ndarray, corners: np.ndarray, homography: np.ndarray) -> np.ndarray:
    """Warp ``label`` into ``scene`` (in place) by ``homography`` (label pixel centres to scene
    pixel centres); the code's corners moved to the scene's continuous coordinates."""
    size = (scene.shape[1], scene.shape[0])
    warped = cv2.warpPerspective(label, homography, size, flags=cv2.INTER_LINEAR)
    inside = cv2.warpPerspective(np.full_like(label, 255), homography, size, flags=cv2.INTER_NEAREST) > 0
    scene[inside] = warped[inside][:, None]
    centres = cv2.perspectiveTransform((corners - 0.5).reshape(-1, 1, 2), homography).reshape(-1, 2)
    return centres + 0.5


def _rotation(label: np.ndarray, angle: float, center: tuple[float, float]) -> np.ndarray:
    """Homography turning ``label`` by ``angle`` degrees about its middle, placed at ``center``."""
    h, w = label.shape
    affine = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, 1.0)
    affine[:, 2] += np.array(center) - np.array([(w - 1) / 2, (h - 1) / 2])
    return np.vstack([affine, [0, 0, 1]])


def _mask_detection(polygon: np.ndarray, shape: tuple[int, int]) -> Detection:
    """What the predictor makes of a perfect mask of ``polygon``: outline of <= 16 points and
    rotated box."""
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(polygon - 0.5).astype(np.int32)], 1)
    outline, rotated = mask_outline(mask)
    detection = detection_from_polygon(np.array(outline))
    detection.rotated_box = rotated
    return detection


def _expected_symbology(symbol: Symbol) -> str:
    # An EAN-13 whose first digit is 0 is a UPC-A: the same bars, and the name a reader gives.
    return "UPCA" if symbol.symbology == "EAN13" and symbol.text.startswith("0") else symbol.symbology


def _assert_read(detection: Detection, symbol: Symbol) -> None:
    assert detection.text is not None, f"{symbol.symbology} {symbol.text!r} not read"
    assert detection.symbology == _expected_symbology(symbol)
    assert normalize_text(detection.text, detection.symbology) == normalize_text(symbol.text, symbol.symbology)


@pytest.mark.parametrize("symbology", sorted(WRITERS))
def test_every_generated_symbology_reads_back_at_any_angle(symbology: str) -> None:
    symbol = _symbol(symbology)
    label, corners = _label(symbol)
    for i, angle in enumerate(ANGLES):
        scene = _clutter(i)
        polygon = _paste(scene, label, corners, _rotation(label, angle, (SCENE / 2, SCENE / 2 + 60)))
        detections = [_mask_detection(polygon, scene.shape[:2])]
        decode_detections(scene, detections)
        _assert_read(detections[0], symbol)


@pytest.mark.parametrize("symbology", ["DataMatrix", "QRCode", "EAN13", "Code128"])
def test_perspective_quad_in_either_winding(symbology: str) -> None:
    """A labelled 4-corner quad of a code seen at a slant: the crop undoes the perspective,
    and a quad listed counter-clockwise gives no mirrored crop (Data Matrix readers often
    cannot read a mirror image)."""
    symbol = _symbol(symbology, seed=3)
    label, corners = _label(symbol)
    h, w = label.shape
    slanted = np.array([[200, 260], [200 + 1.1 * w, 300], [180 + 1.0 * w, 300 + 0.9 * h], [210, 280 + h]], np.float32)
    upright = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float32)
    homography = cv2.getPerspectiveTransform(upright, slanted)
    scene = _clutter(7)
    polygon = _paste(scene, label, corners, homography)
    clockwise, counter = detection_from_polygon(polygon), detection_from_polygon(polygon[[0, 3, 2, 1]])
    decode_detections(scene, [clockwise, counter])
    _assert_read(clockwise, symbol)
    _assert_read(counter, symbol)
    # Either winding gives the same, unmirrored crop.
    assert np.array_equal(rectify(scene, polygon), rectify(scene, polygon[[0, 3, 2, 1]]))


def test_quad_of_a_ragged_outline_keeps_the_perspective_corners() -> None:
    """A mask's outline (many points, a little jagged) of a slanted code reduces to its four
    corners, clockwise on screen, not to a rotated rectangle that would cut the perspective."""
    corners = np.array([[100, 100], [300, 130], [290, 260], [110, 240]], np.float64)
    rng = np.random.default_rng(0)
    edges = [
        a + (b - a) * t
        for a, b in zip(corners, np.roll(corners, -1, axis=0), strict=True)
        for t in np.linspace(0, 1, 5)[:-1]
    ]
    ragged = np.array(edges) + rng.uniform(-1, 1, (len(edges), 2))
    for outline in (ragged, ragged[::-1]):
        quad = quad_of(outline)
        assert len(quad) == 4
        assert max(np.min(np.linalg.norm(quad - c, axis=1)) for c in corners) < 3
        assert cv2.contourArea(quad.astype(np.float32), oriented=True) > 0  # clockwise with y down


def _neighbours() -> tuple[np.ndarray, list[Symbol], list[np.ndarray]]:
    """A long Code 128 with a small Data Matrix just past its end, on its axis, well inside
    the margin of the 1D code's crop; both turned 10 degrees."""
    scene = _clutter(11)
    symbols = [_symbol("Code128", seed=1), _symbol("DataMatrix", seed=1)]
    axis = np.array([np.cos(np.radians(10)), -np.sin(np.radians(10))])
    code, dm = _label(symbols[0], k=2), _label(symbols[1], k=2)
    start = np.array([250.0, 420.0])
    offset = (code[1][1, 0] - code[1][0, 0] + dm[1][1, 0] - dm[1][0, 0]) / 2 + 8  # 8 px between the codes
    polygons = [
        _paste(scene, *label, _rotation(label[0], 10, tuple(center)))
        for label, center in ((code, start), (dm, start + axis * offset))
    ]
    return scene, symbols, polygons


def test_a_neighbour_in_the_margin_is_not_the_detections_code() -> None:
    scene, symbols, polygons = _neighbours()
    (whole_crop,) = [read_codes(rectify(scene, polygons[0]))]
    assert {r.symbology for r in whole_crop} == {"Code128", "DataMatrix"}  # the crop holds both
    detections = [_mask_detection(p, scene.shape[:2]) for p in polygons]
    # An empty patch past the Data Matrix, 12 px from it: the code lies in its crops' margins.
    dm_side = np.linalg.norm(polygons[1][1] - polygons[1][0])
    axis = (polygons[1][1] - polygons[1][0]) / dm_side
    square = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * 50
    rotated = square @ np.array([axis, [-axis[1], axis[0]]])
    empty = polygons[1].mean(axis=0) + axis * (dm_side / 2 + 12 + 50) + rotated
    detections.append(detection_from_polygon(empty))
    decode_detections(scene, detections)
    _assert_read(detections[0], symbols[0])
    _assert_read(detections[1], symbols[1])
    assert detections[2].text is None


def test_one_detection_over_two_stacked_codes_claims_neither() -> None:
    """A mask merging two stacked 1D codes: two texts at one place, so no text rather than a
    guess; a detection of each reads it."""
    scene = _clutter(13)
    symbols = [_symbol("Code128", seed=4), _symbol("Code128", seed=5)]
    polygons = []
    for symbol, y in zip(symbols, (380, 470), strict=True):
        label, corners = _label(symbol, k=2)
        polygons.append(_paste(scene, label, corners, _rotation(label, 0, (360, y))))
    x0, y0 = np.min(np.vstack(polygons), axis=0)
    x1, y1 = np.max(np.vstack(polygons), axis=0)
    merged = detection_from_polygon(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]))
    own = [detection_from_polygon(p) for p in polygons]
    decode_detections(scene, [merged, *own])
    assert merged.text is None
    for detection, symbol in zip(own, symbols, strict=True):
        _assert_read(detection, symbol)


def test_regions_without_a_code_stay_unread() -> None:
    """Print, stripes (a barcode look-alike) and a region around a group of small codes: no
    text for any of them."""
    scene = _clutter(5)
    bgr = cv2.cvtColor(scene, cv2.COLOR_RGB2BGR)
    textures.stripes(bgr[420:560, 60:360], np.random.default_rng(0), (20, 20, 20))
    scene = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    group = []
    for i in range(3):
        label, corners = _label(_symbol("DataMatrix", seed=i))
        group.append(_paste(scene, label, corners, _rotation(label, 0, (420 + 90 * i, 600))))
    regions = [
        np.array([[20, 20], [700, 20], [700, 160], [20, 160]], np.float64),  # text lines
        np.array([[60, 420], [360, 420], [360, 560], [60, 560]], np.float64),  # stripes
        np.array([[300, 380], [700, 380], [700, 715], [300, 715]], np.float64),  # three codes
    ]
    detections = [detection_from_polygon(r) for r in regions]
    decode_detections(scene, detections)
    assert [(d.symbology, d.text) for d in detections] == [(None, None)] * 3
    # The group is read when each code has a detection of its own.
    own = [detection_from_polygon(p) for p in group]
    decode_detections(scene, own)
    assert all(d.text is not None for d in own)


def test_whole_image_reader_finds_a_code_in_rgb() -> None:
    symbol = _symbol("QRCode", seed=4)
    label, corners = _label(symbol)
    scene = _clutter(3)
    polygon = _paste(scene, label, corners, _rotation(label, 20, (360, 420)))
    (read,) = read_codes(scene)
    assert (read.symbology, read.text) == ("QRCode", symbol.text)
    assert np.linalg.norm(np.array(read.center) - polygon.mean(axis=0)) < 10


def test_rectify_puts_the_labelled_first_corner_top_left() -> None:
    """A code turned 200 degrees comes out upright when its outline starts at the code's top
    left, and upside down when it starts at the bottom right."""
    import zxingcpp

    symbol = _symbol("DataMatrix", seed=5)
    label, corners = _label(symbol)
    scene = _clutter(9)
    polygon = _paste(scene, label, corners, _rotation(label, 200, (360, 400)))
    for order, orientation in (([0, 1, 2, 3], 0), ([2, 3, 0, 1], 180)):
        crop = cv2.cvtColor(rectify(scene, polygon[order]), cv2.COLOR_RGB2GRAY)
        (read,) = zxingcpp.read_barcodes(crop, try_rotate=False)
        assert (read.text, read.orientation) == (symbol.text, orientation)


def test_a_code_no_detection_covers_comes_back_from_the_whole_photo_read() -> None:
    scene, symbols, polygons = _neighbours()
    detections = [_mask_detection(polygons[0], scene.shape[:2])]  # the network found only the Code 128
    extra, _ = decode_prediction(scene, detections)
    _assert_read(detections[0], symbols[0])
    assert [(d.source, d.symbology) for d in extra] == [("reader", "DataMatrix")]
    assert normalize_text(extra[0].text or "") == normalize_text(symbols[1].text)
    assert cv2.pointPolygonTest(np.asarray(extra[0].polygon, np.float32), tuple(polygons[1].mean(axis=0)), False) >= 0
    both = [_mask_detection(p, scene.shape[:2]) for p in polygons]
    assert decode_prediction(scene, both) == ([], 2)  # nothing twice


def test_a_detection_its_crops_cannot_read_takes_the_whole_photo_read_inside_it(monkeypatch) -> None:
    import barseg.infer.decode as decode

    scene, symbols, polygons = _neighbours()
    detections = [_mask_detection(p, scene.shape[:2]) for p in polygons]
    monkeypatch.setattr(decode, "decode_region", lambda gray, detection, deadline: None)  # every crop fails
    extra, tried = decode.decode_prediction(scene, detections)
    assert (extra, tried) == ([], 2)  # both codes lie inside a detection: no extra detections
    for detection, symbol in zip(detections, symbols, strict=True):
        _assert_read(detection, symbol)


def test_reading_work_is_bounded_by_count_and_deadline(monkeypatch) -> None:
    """Only the best ``max_decodes`` detections are tried; past the deadline no crop and no
    whole-photo read is tried, and every detection is still returned, unread."""
    import time

    import barseg.infer.decode as decode

    scene, symbols, polygons = _neighbours()
    tried: list[int] = []
    read_region = decode.decode_region
    monkeypatch.setattr(
        decode,
        "decode_region",
        lambda gray, detection, deadline: tried.append(id(detection)) or read_region(gray, detection, deadline),
    )
    detections = [_mask_detection(p, scene.shape[:2]) for p in polygons]
    assert decode.decode_prediction(scene, detections, max_decodes=1)[1] == 1
    assert tried == [id(detections[0])]
    _assert_read(detections[0], symbols[0])
    whole_photo = []
    monkeypatch.setattr(decode, "read_codes", lambda image: whole_photo.append(1) or [])
    late = [_mask_detection(p, scene.shape[:2]) for p in polygons]
    assert decode.decode_prediction(scene, late, deadline=time.monotonic() - 1) == ([], 0)
    assert [d.text for d in late] == [None, None] and whole_photo == []


def test_a_code_inside_a_detection_drawn_around_several_stands_on_its_own() -> None:
    """One detection drawn around both neighbours (a merge the network makes in dense
    scenes): the long Code 128 it fills is its code; the small Data Matrix a whole-photo read
    finds inside it comes back as a code of its own, not as lost."""
    scene, symbols, polygons = _neighbours()
    hull = cv2.convexHull(np.concatenate(polygons).astype(np.float32)).reshape(-1, 2)
    merged = _mask_detection(hull, scene.shape[:2])
    extra, _ = decode_prediction(scene, [merged])
    _assert_read(merged, symbols[0])
    assert [(d.source, d.symbology) for d in extra] == [("reader", "DataMatrix")]
    assert normalize_text(extra[0].text or "") == normalize_text(symbols[1].text)
