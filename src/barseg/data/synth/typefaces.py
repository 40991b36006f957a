"""Printed text in real typefaces: the hard negatives real photos are full of.

Most false alarms on real photos are print: boarding-pass paragraphs, label tables, forms. The
Hershey stroke fonts of OpenCV (``textures``) look nothing like filled TrueType type, so these
draw with the DejaVu and STIX families that matplotlib's wheel ships (no download, same files
on every machine with the pinned matplotlib), through Pillow's FreeType renderer: paragraphs,
ruled tables and forms in Latin and Cyrillic, at code-like sizes.
"""

from __future__ import annotations

import string
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Sans, serif and mono; regular, bold and italic; each with Latin and Cyrillic glyphs (tested).
FACES = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf",
    "STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf",
)  # fmt: skip
LATIN = string.ascii_lowercase + "éèàüöäçñ"
CYRILLIC = "абвгдеёжзийклмнопрстуфхцчшщъыьэюя"
FIELD_NAMES = ("NAME", "FROM", "TO", "DATE", "GATE", "SEAT", "FLIGHT", "QTY", "LOT", "EXP", "REF", "TEL", "NO")


@lru_cache(maxsize=1)
def font_folder() -> Path:
    """matplotlib's bundled fonts, found without importing matplotlib (workers stay light)."""
    spec = find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("matplotlib is not installed: the typefaces come with it (make install)")
    folder = Path(spec.submodule_search_locations[0]) / "mpl-data" / "fonts" / "ttf"
    if missing := [face for face in FACES if not (folder / face).is_file()]:
        raise FileNotFoundError(f"{folder}: no {missing[0]}; the typefaces come with matplotlib (make install)")
    return folder


@lru_cache(maxsize=512)
def _font(face: str, size: int) -> ImageFont.FreeTypeFont:
    # BASIC layout: with RAQM (used when the OS has libfribidi) glyphs land elsewhere, and the
    # same seed would draw other pixels on another machine.
    return ImageFont.truetype(str(font_folder() / face), size, layout_engine=ImageFont.Layout.BASIC)


def _word(rng: np.random.Generator, alphabet: str) -> str:
    kind = rng.random()
    if kind < 0.15:  # numbers, prices, dates, codes
        digits = "".join(string.digits[i] for i in rng.integers(0, 10, int(rng.integers(1, 7))))
        return digits + str(rng.choice(["", ".", ",", "%", "/", ":", "-", " kg", " ml"]))
    word = "".join(alphabet[i] for i in rng.integers(0, len(alphabet), int(rng.integers(1, 11))))
    if kind < 0.3:
        word = word.upper()
    elif kind < 0.5:
        word = word.capitalize()
    return word + str(rng.choice(["", "", "", ",", ".", ":"]))


def _draw_lines(draw: ImageDraw.ImageDraw, rng: np.random.Generator, box: tuple[int, int, int, int], px: float) -> None:
    """Lines of words filling ``box`` (x0, y0, x1, y1), a line about ``px`` high, one face."""
    x0, y0, x1, y1 = box
    alphabet = CYRILLIC if rng.random() < 0.35 else LATIN
    font = _font(FACES[int(rng.integers(0, len(FACES)))], max(4, round(px * 0.8)))
    space = font.getlength(" ")
    leading = px * rng.uniform(1.05, 1.5)
    y = float(y0)
    while y + px <= y1:
        x = x0 + (px * rng.uniform(0, 2) if rng.random() < 0.2 else 0.0)
        while True:
            word = _word(rng, alphabet)
            width = font.getlength(word)
            if x + width > x1:
                break
            draw.text((x, y), word, fill=255, font=font)
            x += width + space * rng.uniform(0.8, 1.6)
        y += leading


def _draw_form(draw: ImageDraw.ImageDraw, rng: np.random.Generator, size: tuple[int, int], px: float) -> None:
    """A ruled table or a form: field names, values, underlines (labels, passes, invoices)."""
    w, h = size
    rows, cols = max(1, int(h / (px * 1.8))), int(rng.integers(1, 4))
    rule = max(1, round(px / 10))
    ruled = rng.random() < 0.6
    for r in range(rows):
        for c in range(cols):
            x0, y0 = c * w // cols, r * h // rows
            x1, y1 = (c + 1) * w // cols, (r + 1) * h // rows
            if ruled:
                draw.rectangle((x0, y0, x1 - 1, y1 - 1), outline=255, width=rule)
            label_px = px * rng.uniform(0.45, 0.7)
            label = _font(FACES[int(rng.integers(0, len(FACES)))], max(4, round(label_px * 0.8)))
            draw.text((x0 + rule + 2, y0 + rule + 1), str(rng.choice(FIELD_NAMES)), fill=255, font=label)
            _draw_lines(draw, rng, (x0 + rule + 2, int(y0 + label_px * 1.2), x1 - rule - 2, y1 - rule), px)
            if not ruled:
                draw.line((x0 + 2, y1 - rule, x1 - 4, y1 - rule), fill=255, width=rule)


def _draw_big(draw: ImageDraw.ImageDraw, rng: np.random.Generator, size: tuple[int, int]) -> None:
    """One or two short bold words filling the panel: brand names, sizes, big digits."""
    w, h = size
    lines = 1 if rng.random() < 0.6 else 2
    for i in range(lines):
        alphabet = str(rng.choice([string.ascii_uppercase, CYRILLIC.upper(), string.digits, string.digits + " .,/-%"]))
        face = FACES[int(rng.integers(0, len(FACES)))]
        word = "".join(alphabet[j] for j in rng.integers(0, len(alphabet), int(rng.integers(1, 7)))).strip() or "8"
        probe = _font(face, 100)
        left, top, right, bottom = probe.getbbox(word)
        scale = min(0.95 * w / max(right - left, 1), 0.8 * h / lines / max(bottom - top, 1))
        font = _font(face, max(4, int(100 * scale) // 4 * 4))  # sizes in steps of 4: fewer fonts to cache
        left, top, right, bottom = font.getbbox(word)
        x = rng.integers(0, max(1, int(w - (right - left)) + 1)) - left
        y = (i + 0.5) * h / lines - (top + bottom) / 2
        draw.text((float(x), float(y)), word, fill=255, font=font)


def typeset(img: np.ndarray, rng: np.random.Generator, colour: tuple[int, int, int], line_px: float, kind: str) -> None:
    """Print text in ``colour`` over all of ``img`` (uint8 BGR, in place): ``kind`` is
    ``paragraph``, ``form`` or ``big``; ``line_px`` is the line height of the first two."""
    h, w = img.shape[:2]
    if not h or not w:
        return
    ink = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(ink)
    if kind == "paragraph":
        _draw_lines(draw, rng, (0, 0, w, h), line_px)
    elif kind == "form":
        _draw_form(draw, rng, (w, h), line_px)
    elif kind == "big":
        _draw_big(draw, rng, (w, h))
    else:
        raise ValueError(f"typeset kind {kind!r}: paragraph, form or big")
    alpha = np.asarray(ink, np.float32)[..., None] / 255.0
    img[:] = np.round(img * (1 - alpha) + np.array(colour, np.float32) * alpha).astype(np.uint8)
