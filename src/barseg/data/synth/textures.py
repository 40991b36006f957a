"""Procedural backgrounds and hard negatives: surfaces, text, tables, stripes, shapes,
large lettering and pictograms.

All images are uint8 BGR (OpenCV's order). Each function takes the random generator it draws
from, so a scene is reproducible from its seed alone.
"""

from __future__ import annotations

import string

import cv2
import numpy as np

FONTS = (
    cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_PLAIN,
    cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_TRIPLEX,
)  # fmt: skip


def random_colour(rng: np.random.Generator, lo: int = 0, hi: int = 255) -> tuple[int, int, int]:
    c = rng.integers(lo, hi + 1, 3)
    return int(c[0]), int(c[1]), int(c[2])


def _muted(rng: np.random.Generator) -> np.ndarray:
    """A surface colour: real desks, shelves and boxes are far less saturated than RGB noise."""
    colour = np.array(random_colour(rng, 20, 235), dtype=np.float32)
    grey = colour.mean()
    return grey + (colour - grey) * rng.uniform(0.1, 0.8)


def smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [0, 1]: random values on a coarse grid, bicubic-upsampled."""
    grid = rng.random((cells, max(2, int(cells * w / max(h, 1))))).astype(np.float32)
    field = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(field, 0.0, 1.0)


def surface(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A scene background: desk, cardboard, shelf, fabric, wood, metal or a gradient."""
    kind = rng.integers(0, 6)
    base = _muted(rng)
    if kind == 0:  # two-colour gradient
        other = _muted(rng)
        t = np.linspace(0, 1, w if rng.random() < 0.5 else h, dtype=np.float32)
        t = t[None, :, None] if t.size == w else t[:, None, None]
        img = base * (1 - t) + other * t
        img = np.broadcast_to(img, (h, w, 3))
    elif kind == 1:  # mottled (cardboard, paper, concrete)
        n = smooth_noise(rng, h, w, int(rng.integers(4, 24)))[..., None]
        img = base * (0.7 + 0.6 * n)
    elif kind == 2:  # wood grain / brushed metal
        y = np.arange(h, dtype=np.float32)[:, None]
        x = np.arange(w, dtype=np.float32)[None, :]
        warp = smooth_noise(rng, h, w, 4) * rng.uniform(5, 40)
        grain = 0.5 + 0.5 * np.sin((y + warp) * rng.uniform(0.05, 0.6) + x * rng.uniform(-0.02, 0.02))
        img = base * (0.75 + 0.35 * grain[..., None])
    elif kind == 3:  # fabric / fine texture
        n = rng.normal(0, 1, (h, w)).astype(np.float32)
        n = cv2.GaussianBlur(n, (0, 0), rng.uniform(0.6, 2.0))
        img = base * (1 + 0.15 * n[..., None])
    else:  # flat with a few large shapes (shelf edges, boxes, other objects)
        img = np.broadcast_to(base, (h, w, 3)).copy()
        for _ in range(int(rng.integers(2, 8))):
            shapes(img, rng, 1)
    out = np.clip(np.asarray(img, dtype=np.float32), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(out)


def shapes(img: np.ndarray, rng: np.random.Generator, count: int) -> None:
    """Rectangles, circles and thick lines: objects, logos, shelf edges."""
    h, w = img.shape[:2]
    for _ in range(count):
        colour = random_colour(rng)
        kind = rng.integers(0, 3)
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        if kind == 0:
            x2, y2 = x + int(rng.integers(-w // 2, w // 2)), y + int(rng.integers(-h // 2, h // 2))
            cv2.rectangle(img, (x, y), (x2, y2), colour, -1 if rng.random() < 0.7 else int(rng.integers(1, 6)))
        elif kind == 1:
            cv2.circle(img, (x, y), int(rng.integers(3, max(4, min(h, w) // 4))), colour, -1, cv2.LINE_AA)
        else:
            x2, y2 = int(rng.integers(0, w)), int(rng.integers(0, h))
            cv2.line(img, (x, y), (x2, y2), colour, int(rng.integers(1, 12)), cv2.LINE_AA)


def random_word(rng: np.random.Generator) -> str:
    alphabet = string.ascii_letters + string.digits if rng.random() < 0.7 else string.digits + ".,:%/-"
    return "".join(alphabet[i] for i in rng.integers(0, len(alphabet), int(rng.integers(1, 10))))


def text_lines(
    img: np.ndarray,
    rng: np.random.Generator,
    box: tuple[int, int, int, int],
    colour: tuple[int, int, int],
    line_px: float,
) -> None:
    """Fill ``box`` (x0, y0, x1, y1) with lines of word-like text of about ``line_px`` height."""
    x0, y0, x1, y1 = box
    font = FONTS[int(rng.integers(0, len(FONTS)))]
    scale = max(0.2, line_px / 30.0)
    thickness = max(1, round(line_px / 14))
    y = y0 + line_px
    while y <= y1:
        x = x0 + int(rng.integers(0, max(1, int(line_px))))
        while x < x1:
            word = random_word(rng)
            (tw, _), _ = cv2.getTextSize(word, font, scale, thickness)
            if x + tw > x1:
                break
            cv2.putText(img, word, (x, int(y)), font, scale, colour, thickness, cv2.LINE_AA)
            x += tw + int(line_px * rng.uniform(0.3, 0.8))
        y += line_px * rng.uniform(1.2, 1.8)


def table(img: np.ndarray, rng: np.random.Generator, colour: tuple[int, int, int], line_px: float) -> None:
    """A ruled table of text (nutrition facts, shipping label fields)."""
    h, w = img.shape[:2]
    rows = max(2, int(h / (line_px * 1.8)))
    cols = int(rng.integers(1, 4))
    for r in range(rows + 1):
        y = int(r * (h - 1) / rows)
        cv2.line(img, (0, y), (w - 1, y), colour, max(1, int(line_px / 10)))
    for c in range(cols + 1):
        x = int(c * (w - 1) / cols)
        cv2.line(img, (x, 0), (x, h - 1), colour, max(1, int(line_px / 10)))
    for r in range(rows):
        for c in range(cols):
            cell = (
                int(c * w / cols) + 3,
                int(r * h / rows) + 2,
                int((c + 1) * w / cols) - 3,
                int((r + 1) * h / rows) - 2,
            )
            text_lines(img, rng, cell, colour, line_px * 0.8)


def stripes(img: np.ndarray, rng: np.random.Generator, colour: tuple[int, int, int]) -> None:
    """Parallel bars that look like a 1D code but are not one: grilles, blinds, ruled paper."""
    h, w = img.shape[:2]
    x = 0.0
    regular = rng.random() < 0.5
    period = rng.uniform(2, 14)
    while x < w:
        width = period * 0.5 if regular else rng.uniform(1, period)
        cv2.rectangle(img, (int(x), 0), (int(x + width), h - 1), colour, -1)
        x += width + (period * 0.5 if regular else rng.uniform(1, period))


def big_text(img: np.ndarray, rng: np.random.Generator, colour: tuple[int, int, int]) -> None:
    """One or two short words filling much of ``img``: brand names, sizes ("500 ml"), big
    digits. A from-scratch detector takes such bold, squarish glyphs for 2D codes (most
    false alarms on the real photos were large letters, digits and logos)."""
    h, w = img.shape[:2]
    lines = 1 if rng.random() < 0.6 else 2
    font = FONTS[int(rng.integers(0, len(FONTS)))] | (cv2.FONT_ITALIC if rng.random() < 0.2 else 0)
    alphabet = [string.ascii_uppercase, string.ascii_letters, string.digits, string.digits + " .,/-%"]
    for i in range(lines):
        chars = alphabet[int(rng.integers(0, len(alphabet)))]
        word = "".join(chars[j] for j in rng.integers(0, len(chars), int(rng.integers(1, 7)))).strip() or "8"
        thickness = int(rng.integers(1, 4)) * max(1, h // (lines * 25))
        (tw, th), _ = cv2.getTextSize(word, font, 1.0, thickness)
        scale = min(0.95 * w / max(tw, 1), 0.8 * h / lines / max(th, 1))
        (tw, th), _ = cv2.getTextSize(word, font, scale, thickness)
        x = int(rng.integers(0, max(1, w - tw + 1)))
        y = int((i + 1) * h / lines - (h / lines - th) / 2)
        cv2.putText(img, word, (x, y), font, scale, colour, thickness, cv2.LINE_AA)


def pictogram(img: np.ndarray, rng: np.random.Generator, colour: tuple[int, int, int]) -> None:
    """A compact symbol the size of a code: recycling arrows, rings, badges, keypads, blobs."""
    h, w = img.shape[:2]
    c = (w // 2, h // 2)
    r = max(3, int(min(h, w) * rng.uniform(0.3, 0.48)))
    stroke = max(1, int(r * rng.uniform(0.08, 0.3)))
    kind = rng.integers(0, 5)
    if kind == 0:  # two chasing arrows in a disc (the Green Dot, recycling marks)
        if rng.random() < 0.5:
            cv2.circle(img, c, r, colour, max(1, stroke // 2), cv2.LINE_AA)
        inner = int(r * 0.6)
        start = rng.uniform(0, 360)
        for half in (0, 180):
            a0 = start + half
            cv2.ellipse(img, c, (inner, inner), 0, a0, a0 + 140, colour, stroke, cv2.LINE_AA)
            tip = np.deg2rad(a0 + 140)
            ex, ey = c[0] + inner * np.cos(tip), c[1] + inner * np.sin(tip)
            dx, dy = -np.sin(tip), np.cos(tip)  # tangent: the arrow's direction
            nx, ny = np.cos(tip), np.sin(tip)
            head = [
                (ex + dx * stroke * 1.6, ey + dy * stroke * 1.6),
                (ex + nx * stroke * 1.2, ey + ny * stroke * 1.2),
                (ex - nx * stroke * 1.2, ey - ny * stroke * 1.2),
            ]
            cv2.fillPoly(img, [np.round(np.array(head)).astype(np.int32)], colour, cv2.LINE_AA)
    elif kind == 1:  # rings and discs (logos, "e" marks, bullets)
        for i in range(int(rng.integers(1, 4))):
            cv2.circle(img, c, max(1, r - i * 2 * stroke), colour, stroke if rng.random() < 0.7 else -1, cv2.LINE_AA)
        if rng.random() < 0.5:
            cv2.line(img, (c[0] - r, c[1]), (c[0] + r, c[1]), colour, max(1, stroke // 2), cv2.LINE_AA)
    elif kind == 2:  # badge: a rounded square with a glyph in it
        cv2.rectangle(img, (c[0] - r, c[1] - r), (c[0] + r, c[1] + r), colour, stroke, cv2.LINE_AA)
        glyph = img[c[1] - r + 2 * stroke : c[1] + r - 2 * stroke, c[0] - r + 2 * stroke : c[0] + r - 2 * stroke]
        if glyph.size:
            big_text(glyph, rng, colour)
    elif kind == 3:  # keypad / battery / phone: a frame with a coarse grid of keys
        rows, cols = int(rng.integers(2, 5)), int(rng.integers(2, 4))
        x0, y0, x1, y1 = c[0] - int(r * 0.7), c[1] - r, c[0] + int(r * 0.7), c[1] + r
        cv2.rectangle(img, (x0, y0), (x1, y1), colour, max(1, stroke // 2), cv2.LINE_AA)
        kw, kh = (x1 - x0) / (cols * 1.5 + 0.5), (y1 - y0) / (rows * 1.5 + 0.5)
        for i in range(rows):
            for j in range(cols):
                kx, ky = x0 + kw * (0.5 + 1.5 * j), y0 + kh * (0.5 + 1.5 * i)
                cv2.rectangle(img, (int(kx), int(ky)), (int(kx + kw), int(ky + kh)), colour, -1)
    else:  # a blob logo: a filled random star-shaped polygon, sometimes outlined
        n = int(rng.integers(5, 12))
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        radii = r * rng.uniform(0.4, 1.0, n)
        points = np.stack([c[0] + radii * np.cos(angles), c[1] + radii * np.sin(angles)], axis=1)
        cv2.fillPoly(img, [np.round(points).astype(np.int32)], colour, cv2.LINE_AA)
        if rng.random() < 0.5:
            cv2.polylines(img, [np.round(points * 1.1 - np.array(c) * 0.1).astype(np.int32)], True, colour, stroke)
