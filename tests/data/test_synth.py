import hashlib
import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
import zxingcpp
from omegaconf import OmegaConf

from barseg.data.formats import Instance, iter_source
from barseg.data.symbology import normalize_text
from barseg.data.synth import generate, render, textures, typefaces
from barseg.data.synth.panel import draw_negative
from barseg.data.synth.scene import SceneBuilder
from barseg.data.synth.symbols import WRITERS
from barseg.infer.rectify import rectify
from tests.conftest import clean_synth_params


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_same_params_give_byte_identical_output_whatever_the_workers(tmp_path: Path) -> None:
    params = clean_synth_params(count=6, **{"degrade.enabled": True, "bend": 0.5, "crumple": 0.5, "occlusion": 0.5})
    generate(params, tmp_path / "a", workers=2)
    generate(params, tmp_path / "b", workers=1)
    a, b = _digests(tmp_path / "a"), _digests(tmp_path / "b")
    assert len(a) == 12 and a == b
    params.seed = int(params.seed) + 1
    generate(params, tmp_path / "c", workers=1)
    assert _digests(tmp_path / "c") != a


def _decode_in_polygon(image: np.ndarray, polygon: np.ndarray, symbology: str) -> list[str]:
    reads = zxingcpp.read_barcodes(rectify(image, polygon))
    return [normalize_text(r.text, symbology) for r in reads]


def _scenes(params, count: int):
    for index in range(count):
        jpeg, doc = render(params, index)
        image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        yield image, doc


@pytest.mark.parametrize("symbology", sorted(WRITERS))
def test_every_symbology_decodes_inside_its_polygon(symbology: str) -> None:
    # Dot-peened marks are left out: zxing-cpp reads few of them, as with real ones.
    params = clean_synth_params(symbologies=[symbology], styles={"label": 0.6, "packaging": 0.4})
    read, wrong, total = 0, [], 0
    for image, doc in _scenes(params, 10):
        in_image = {normalize_text(o["text"], symbology) for o in doc["objects"]}
        for obj in doc["objects"]:
            total += 1
            expected = normalize_text(obj["text"], symbology)
            texts = _decode_in_polygon(image, np.asarray(obj["data"]), symbology)
            read += expected in texts
            # A crop's margin may hold a neighbour of a dense sheet: that read is right too.
            wrong += [t for t in texts if t not in in_image]
    assert total >= 6
    assert not wrong, f"reads that disagree with the label: {wrong}"
    assert read / total >= 0.85, f"{symbology}: {read}/{total} decoded"


def _coverage(image: np.ndarray, polygon: np.ndarray) -> tuple[float, float, list[float]]:
    """Dark-ink fractions: in a 1-3 px ring just outside the polygon (the quiet zone: must be
    ~0 when the polygon holds the whole symbol) and in a 2 px band inside each edge (must
    carry ink when the polygon is no larger than the symbol)."""
    h, w = image.shape[:2]
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)
    mask = Instance(polygons=[polygon]).mask(h, w).astype(np.uint8)
    inside = grey[mask > 0]
    threshold = (np.percentile(inside, 5) + np.percentile(inside, 95)) / 2
    dark = grey < threshold
    kernel = np.ones((3, 3), np.uint8)
    ring = cv2.dilate(mask, kernel, iterations=3) - cv2.dilate(mask, kernel, iterations=1)
    outside = dark[ring > 0].mean()
    edges = []
    # Polygons run clockwise from the symbol's top-left corner, the same number of points
    # per side: four sides of len/4 points each (+ the next side's first point).
    per_side = len(polygon) // 4
    closed = np.vstack([polygon, polygon[:1]])
    for side in range(4):
        band = np.zeros((h, w), np.uint8)
        points = np.round(closed[side * per_side : (side + 1) * per_side + 1] * 8).astype(np.int32)
        cv2.polylines(band, [points], False, 1, 4, shift=3)
        band &= cv2.erode(mask, kernel, iterations=1)
        edges.append(float(dark[band > 0].mean()))
    return float(outside), float(threshold), edges


@pytest.mark.parametrize("warp", ["straight", "bent"])
def test_polygons_cover_the_symbol_exactly(warp: str) -> None:
    overrides = {"styles": {"label": 1.0}, "inverted": 0.0, "min_module_px": 4.0, "dense_max_module_px": 5.0}
    if warp == "bent":
        overrides.update(bend=0.5, crumple=1.0)
    params = clean_synth_params(**overrides)
    checked = Counter()
    for image, doc in _scenes(params, 16):
        for obj in doc["objects"]:
            polygon = np.asarray(obj["data"])
            outside, _, edges = _coverage(image, polygon)
            assert outside < 0.03, f"ink outside the polygon of a {obj['symbology']}: {outside:.3f}"
            assert min(edges) > 0.15, f"an edge of a {obj['symbology']} polygon has no ink: {edges}"
            checked[obj["symbology"]] += 1
    assert sum(checked.values()) >= 10
    if warp == "bent":
        assert any(len(o["data"]) > 4 for _, doc in _scenes(params, 16) for o in doc["objects"])


def test_output_is_seed_format_with_labels(tmp_path: Path) -> None:
    params = clean_synth_params(count=4)
    params.degrade.enabled = True
    codes = generate(params, tmp_path, workers=1)
    results = list(iter_source(tmp_path))
    assert len(results) == 4 and all(r.record is not None for r in results)
    instances = [i for r in results for i in r.record.instances]
    assert len(instances) == codes > 0
    assert all(i.symbology in WRITERS and i.text for i in instances)


def test_unknown_symbology_is_a_clear_error() -> None:
    params = clean_synth_params(symbologies=["MaxiCode"], scenes={"single": 1.0})
    with pytest.raises(ValueError, match=r"synth\.symbologies"):
        render(params, 0)


def test_params_are_plain_yaml() -> None:
    # Workers receive params as a plain dict: every value must survive the round trip.
    params = clean_synth_params()
    assert OmegaConf.create(OmegaConf.to_container(params)) == params


def _code_diameters(params, count: int) -> list[float]:
    """Each placed code's largest extent as a fraction of its scene's short side."""
    out = []
    for index in range(count):
        builder = SceneBuilder(params, index)
        _, objects = builder.build()
        for obj in objects:
            poly = np.asarray(obj.polygon)
            out.append(float(np.linalg.norm(poly[:, None] - poly[None], axis=-1).max()) / min(builder.w, builder.h))
    return out


def test_placing_to_fit_keeps_close_ups_at_their_drawn_size() -> None:
    # One code per scene, drawn at 0.35-0.9 of the short side: placed anywhere, large ones
    # fail until shrunk (or are dropped); placed where they fit, they keep their size.
    params = clean_synth_params(scenes={"single": 1.0}, min_module_px=0.7, dense_max_module_px=3.0)
    params.place_to_fit = False
    anywhere = _code_diameters(params, 30)
    params.place_to_fit = True
    fitted = _code_diameters(params, 30)
    assert len(fitted) == 30 and np.median(fitted) > 0.6, np.median(fitted)
    assert np.median(anywhere) < np.median(fitted) - 0.1


def test_placing_all_but_the_sheets_to_fit_leaves_the_sheets_as_they_were() -> None:
    # The dense sheets' shrink-until-it-fits makes the small codes: they stay drawn as placed anywhere.
    sheets = clean_synth_params(scenes={"dense": 1.0})
    sheets.place_to_fit = False
    default = _code_diameters(sheets, 6)
    sheets.place_to_fit = "except_sheets"
    assert _code_diameters(sheets, 6) == default
    single = clean_synth_params(scenes={"single": 1.0}, min_module_px=0.7, dense_max_module_px=3.0)
    single.place_to_fit = "except_sheets"
    assert np.median(_code_diameters(single, 30)) > 0.6


@pytest.mark.parametrize("value", ["sheets", 2, [True]])
def test_an_unknown_placement_is_a_clear_error(value: object) -> None:
    params = clean_synth_params()
    params.place_to_fit = value
    with pytest.raises(ValueError, match=r"synth.place_to_fit: expected false, true or except_sheets, got"):
        SceneBuilder(params, 0)


@pytest.mark.parametrize("draw", ["big_text", "pictogram"])
def test_code_sized_hard_negatives_draw_a_compact_mark(draw: str) -> None:
    """Big lettering and pictograms fill a good part of their panel (the size of a code,
    where they fool the detector) and never an empty or a fully inked one."""
    rng = np.random.default_rng(0)
    for _ in range(40):
        h, w = (int(v) for v in rng.integers(24, 200, 2))
        canvas = np.zeros((h, w, 3), np.uint8)
        getattr(textures, draw)(canvas, rng, (255, 255, 255))
        inked = (canvas.max(axis=2) > 0).mean()
        assert 0.01 < inked < 0.95, (draw, h, w, inked)


@pytest.mark.parametrize("typeset_share", [0.0, 1.0])
def test_printed_negatives_cover_the_scene_with_their_ink_only(typeset_share: float) -> None:
    rng = np.random.default_rng(1)
    printed = 0
    for _ in range(200):
        pan = draw_negative(rng, (int(rng.integers(40, 160)), int(rng.integers(40, 160))), 8.0, typeset_share)
        assert pan.alpha.shape == pan.image.shape[:2] and pan.objects == []
        assert pan.alpha.min() >= 0.0 and pan.alpha.max() <= 1.0
        if pan.alpha.min() < 1.0:
            printed += 1
            paper = np.median(pan.image.reshape(-1, 3), axis=0)
            bare = (pan.image == paper).all(axis=2)
            assert (pan.alpha[bare] == 0).all() and pan.alpha.max() == 1.0
    assert 10 < printed < 100  # half of the lettering and pictogram panels (a third of all)


# The first scenes of the default params, as this repository's pinned libraries draw them
# (sha256 prefixes of the JPEG and of the label document). A different OpenCV or NumPy draws
# other pixels, and then `dvc repro` no longer reproduces dvc.lock: install with `make install`
# (constraints.txt), or refresh the lock, these values and dvc.lock together on purpose.
DEFAULT_SCENES = {
    0: ("d16baf7b1ca020d5", "e9e86b5d1656bc25"),
    1: ("245c5337b52b1e86", "3da9ad51b2fbaa42"),
    2: ("90aa7320ff18d90d", "5952aa867a073a18"),
}


@pytest.mark.parametrize("index", sorted(DEFAULT_SCENES))
def test_default_scenes_hash_to_the_committed_values(repo: Path, index: int) -> None:
    params = OmegaConf.load(repo / "params.yaml").synth
    jpeg, doc = render(params, index)
    labels = json.dumps(doc, sort_keys=True).encode()
    got = (hashlib.sha256(jpeg).hexdigest()[:16], hashlib.sha256(labels).hexdigest()[:16])
    assert got == DEFAULT_SCENES[index], "the installed libraries draw other scenes than constraints.txt pins"


@pytest.mark.parametrize("layout", ["paragraph", "form", "big"])
def test_typeset_text_inks_part_of_its_panel_the_same_way_every_time(layout: str) -> None:
    for seed in range(12):
        canvases = []
        for _ in range(2):
            rng = np.random.default_rng(seed)
            canvas = np.zeros((int(rng.integers(30, 160)), int(rng.integers(30, 240)), 3), np.uint8)
            typefaces.typeset(canvas, rng, (255, 255, 255), float(rng.uniform(5, 16)), layout)
            canvases.append(canvas)
        assert np.array_equal(*canvases)
        inked = (canvases[0].max(axis=2) > 0).mean()
        assert 0.01 < inked < 0.95, (layout, seed, inked)
    with pytest.raises(ValueError, match="paragraph, form or big"):
        typefaces.typeset(canvas, rng, (255, 255, 255), 8.0, "poster")


@pytest.mark.parametrize("face", typefaces.FACES)
def test_every_face_has_cyrillic_glyphs(face: str) -> None:
    """A face without the glyphs would print its 'missing' box for every Cyrillic letter."""
    font = typefaces._font(face, 24)
    missing = np.asarray(font.getmask("\u0378"))  # an unassigned code point: the notdef glyph
    for letter in "жщЖЯ":
        assert not np.array_equal(np.asarray(font.getmask(letter)), missing), (face, letter)


def test_typeset_negatives_are_drawn_when_asked_for_and_hash_to_the_committed_values(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = OmegaConf.load(repo / "params.yaml").synth
    params.typeset_text = 1.0
    jpeg, doc = render(params, 3)
    labels = json.dumps(doc, sort_keys=True).encode()
    # As DEFAULT_SCENES: the pinned Pillow, FreeType and fonts draw these bytes on any machine.
    assert (hashlib.sha256(jpeg).hexdigest()[:16], hashlib.sha256(labels).hexdigest()[:16]) == (
        "7c993e281fbb2477",
        "36fbbf2e717b93e9",
    )
    layouts = []
    monkeypatch.setattr(typefaces, "typeset", lambda img, rng, colour, px, layout: layouts.append(layout))
    render(params, 3)
    assert layouts, "no negative of scene 3 was typeset"
    params.typeset_text = 0.0
    layouts.clear()
    render(params, 3)
    assert layouts == []
