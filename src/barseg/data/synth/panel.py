"""Flat panels before they are placed in a scene: a label, a patch of packaging or a metal
plate carrying one or many codes, or a hard negative carrying none.

A panel is drawn at an integer ``k`` pixels per module, so bars and modules are exact; the
scene then scales it by a homography. Symbol outlines are kept as rectangles in the panel's
pixel-centre coordinates, from which exact polygons are computed after every warp.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from barseg.data.synth import textures, typefaces
from barseg.data.synth.symbols import Symbol, quiet_zone


@dataclass
class PanelObject:
    rect: tuple[float, float, float, float]  # symbol edges x0, y0, x1, y1 (pixel-centre coords)
    symbol: Symbol


@dataclass
class Panel:
    image: np.ndarray  # uint8 BGR
    alpha: np.ndarray  # float32 in [0, 1]: how much of the panel covers the scene
    objects: list[PanelObject] = field(default_factory=list)


@dataclass(frozen=True)
class Style:
    """How a panel is printed: ink on paper, straight on packaging, or dot-peened metal."""

    name: str  # label | packaging | dpm
    paper: tuple[int, int, int]
    ink: tuple[int, int, int]


def _luma(c: tuple[int, int, int]) -> float:
    return 0.114 * c[0] + 0.587 * c[1] + 0.299 * c[2]


def _bgr(values: np.ndarray) -> tuple[int, int, int]:
    b, g, r = (int(v) for v in np.clip(values, 0, 255))
    return b, g, r


def pick_style(name: str, rng: np.random.Generator, invert: bool) -> Style:
    if name == "label":
        paper = _bgr(int(rng.integers(215, 256)) - rng.integers(0, 25, 3))
        ink = textures.random_colour(rng, 0, 60)
    elif name == "dpm":
        grey = int(rng.integers(70, 190))
        paper = _bgr(np.array([grey, grey, grey + int(rng.integers(-10, 11))]))
        delta = int(rng.integers(45, 100)) * (1 if rng.random() < 0.5 else -1)
        ink = _bgr(np.array(paper) + delta)
    else:  # packaging: coloured board, ink with enough luminance contrast to be printed code
        while True:
            paper = textures.random_colour(rng, 60, 255)
            ink = textures.random_colour(rng, 0, 120)
            if _luma(paper) - _luma(ink) >= 70:
                break
    if invert:
        paper, ink = ink, paper
    return Style(name, paper, ink)


def _symbol_pixels(symbol: Symbol, k: int, bar_modules: int, dots: bool) -> np.ndarray:
    """Boolean ink mask of ``symbol`` at ``k`` px per module."""
    modules = np.repeat(symbol.modules, bar_modules, axis=0) if symbol.is_1d else symbol.modules
    if dots and k >= 3:  # dot-peened marks: one round dot per dark module
        r = (k - 1) / 2
        yy, xx = np.mgrid[0:k, 0:k]
        dot = (xx - r) ** 2 + (yy - r) ** 2 <= (r * 0.95) ** 2 + 0.5
        return np.kron(modules, dot).astype(bool)
    return np.repeat(np.repeat(modules, k, axis=0), k, axis=1)


def _cell(symbol: Symbol, k: int, rng: np.random.Generator, hrt: bool, dots: bool) -> tuple[np.ndarray, int]:
    """The symbol's ink mask and the extra pixels below it for human-readable text."""
    if symbol.is_1d:
        width = symbol.modules.shape[1]
        bar_modules = max(8, int(width * rng.uniform(0.12, 0.7)))
    else:
        bar_modules = 1
    mask = _symbol_pixels(symbol, k, bar_modules, dots)
    text_px = int(k * rng.uniform(7, 11)) if (hrt and symbol.is_1d) else 0
    return mask, text_px


def draw_code_sheet(
    symbols: list[Symbol],
    k: int,
    style: Style,
    rng: np.random.Generator,
    max_size: tuple[int, int],
    hrt_prob: float,
    tight: bool,
) -> Panel:
    """One panel holding ``symbols`` in rows (a label, a sheet or a shelf), as many as fit
    ``max_size`` (w, h) in panel pixels. Codes that do not fit are left out."""
    dots = style.name == "dpm"
    cells = []
    for symbol in symbols:
        mask, text_px = _cell(symbol, k, rng, hrt=rng.random() < hrt_prob, dots=dots)
        cells.append((symbol, mask, text_px))
    gap_scale = rng.uniform(1.0, 1.6) if tight else rng.uniform(1.5, 4.0)
    margin = int(max(quiet_zone(s.symbology) for s in symbols) * k * gap_scale) + int(rng.integers(0, 3 * k + 1))
    max_w, max_h = max_size
    # Lay out left to right, wrapping rows; each cell keeps its own quiet zone as the gap.
    placed, x, y, row_h, width = [], margin, margin, 0, 0
    for symbol, mask, text_px in cells:
        h, w = mask.shape
        gap = int(quiet_zone(symbol.symbology) * k * gap_scale)
        if x + w + margin > max_w and x > margin:
            x, y, row_h = margin, y + row_h + gap, 0
        if x + w + margin > max_w or y + h + text_px + margin > max_h:
            continue
        placed.append((symbol, mask, text_px, x, y))
        width = max(width, x + w + margin)
        row_h = max(row_h, h + text_px)
        x += w + gap
    height = y + row_h + margin
    if not placed:
        raise ValueError("no code fits the panel")
    image = np.empty((height, width, 3), np.uint8)
    image[:] = style.paper
    if style.name == "dpm" or rng.random() < 0.4:
        grain = textures.surface(rng, height, width).astype(np.float32) - 128
        image = np.clip(image + grain * rng.uniform(0.05, 0.25), 0, 255).astype(np.uint8)
    objects = []
    for symbol, mask, text_px, x, y in placed:
        h, w = mask.shape
        image[y : y + h, x : x + w][mask] = style.ink
        if text_px:
            _human_readable(image, symbol.text, (x, y + h, x + w, y + h + text_px), style.ink, rng)
        objects.append(PanelObject((x - 0.5, y - 0.5, x + w - 0.5, y + h - 0.5), symbol))
    if style.name == "label" and rng.random() < 0.5:
        _label_decoration(image, objects, style, rng, k)
    alpha = np.ones((height, width), np.float32)
    return Panel(image, alpha, objects)


def _human_readable(
    image: np.ndarray, text: str, box: tuple[int, int, int, int], ink: tuple[int, int, int], rng: np.random.Generator
) -> None:
    x0, y0, x1, y1 = box
    font = textures.FONTS[int(rng.integers(0, 2))]
    height = max(1, y1 - y0)
    scale = height / 30.0
    (tw, th), _ = cv2.getTextSize(text, font, scale, 1)
    if tw > (x1 - x0):
        scale *= (x1 - x0) / tw
        (tw, th), _ = cv2.getTextSize(text, font, scale, 1)
    org = (x0 + max(0, (x1 - x0 - tw) // 2), y0 + min(height - 1, th + max(1, height // 6)))
    cv2.putText(image, text, org, font, scale, ink, max(1, int(scale * 1.5)), cv2.LINE_AA)


def _label_decoration(
    image: np.ndarray, objects: list[PanelObject], style: Style, rng: np.random.Generator, k: int
) -> None:
    """A border line and text in free space above the first code: product names, prices."""
    h, w = image.shape[:2]
    if rng.random() < 0.5:
        cv2.rectangle(image, (1, 1), (w - 2, h - 2), style.ink, max(1, k // 2))
    top = int(min(o.rect[1] for o in objects))
    if top > 4 * k:
        textures.text_lines(image, rng, (2 * k, k, w - 2 * k, top - 2 * k), style.ink, rng.uniform(3, 8) * k)


# Negative kinds whose text a real typeface can set: kind -> layout.
TYPESET_LAYOUTS = {0: "paragraph", 1: "form", 3: "paragraph", 4: "big"}


def draw_negative(rng: np.random.Generator, size: tuple[int, int], line_px: float, typeset_share: float = 0.0) -> Panel:
    """A panel with no code on it that a detector may mistake for one: on its own piece of
    paper, or (lettering and pictograms, half the time) printed straight on the surface.
    ``typeset_share``: the chance its text is set in a real typeface rather than a stroke font."""
    w, h = size
    paper = textures.random_colour(rng, 200, 255) if rng.random() < 0.6 else textures.random_colour(rng)
    ink = textures.random_colour(rng, 0, 80) if sum(paper) > 380 else textures.random_colour(rng, 170, 255)
    image = np.empty((h, w, 3), np.uint8)
    image[:] = paper
    kind = int(rng.integers(0, 6))
    # Drawn only when asked for, so scenes without typeset text stay byte-identical.
    in_typeface = typeset_share > 0 and kind in TYPESET_LAYOUTS and rng.random() < typeset_share
    margin = int(line_px)
    text_box = {0: (margin, 0, w - margin, h - 2), 3: (0, h // 2, w, h - 2)}.get(kind, (0, 0, w, h))
    if kind == 3:
        textures.shapes(image, rng, int(rng.integers(2, 6)))
    if in_typeface:
        x0, y0, x1, y1 = text_box
        typefaces.typeset(image[y0:y1, x0:x1], rng, ink, line_px, TYPESET_LAYOUTS[kind])
    elif kind in (0, 3):
        textures.text_lines(image, rng, text_box, ink, line_px)
    elif kind == 1:
        textures.table(image, rng, ink, line_px)
    elif kind == 2:
        textures.stripes(image, rng, ink)
    elif kind == 4:
        textures.big_text(image, rng, ink)
    else:
        textures.pictogram(image, rng, ink)
    alpha = np.ones((h, w), np.float32)
    if kind >= 4 and rng.random() < 0.5:  # printed on the packaging: only the ink covers the scene
        ink_delta = np.abs(image.astype(np.int16) - np.array(paper, np.int16)).max(axis=2)
        alpha = np.clip(ink_delta / max(1, int(np.abs(np.array(ink) - np.array(paper)).max())), 0, 1).astype(np.float32)
    return Panel(image, alpha)
