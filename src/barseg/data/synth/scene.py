"""Compose one synthetic photo: background, hard negatives, code panels, degradations.

Scene kinds (weights from ``synth.scenes``):
- ``single``: one code filling much of the frame;
- ``few``: 1-3 codes of the sizes real photos show (median ~1.6% of the image);
- ``dense``: a sheet or shelf of 4-40 small, tightly packed codes;
- ``negative``: no code at all, only clutter that looks like one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from shapely.geometry import Polygon

from barseg.data.synth import degrade, panel, textures, warp
from barseg.data.synth.symbols import Symbol, check_symbologies, make_symbol

MAX_POLYGON_POINTS = 32


@dataclass
class SceneObject:
    polygon: np.ndarray  # (N, 2) image pixels, edge convention, clockwise from the symbol's top-left
    symbology: str
    text: str


def _choice(rng: np.random.Generator, weights: dict[str, float]) -> str:
    names = list(weights)
    p = np.asarray([weights[n] for n in names], dtype=np.float64)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


# synth.place_to_fit: which code panels are centred where they fit (``_centre_to_fit``). Not the
# dense sheets: shrinking them until they fit is where most of the small codes come from.
FIT_MODES = {False: "never", True: "always", "except_sheets": "except_sheets"}


class SceneBuilder:
    """Draws scene ``index`` of a run; everything random comes from ``(seed, index)``."""

    def __init__(self, params: Any, index: int) -> None:
        check_symbologies(list(params.symbologies))
        fit = params.place_to_fit
        self.fit_mode = FIT_MODES.get(fit) if isinstance(fit, bool | str) else None
        if self.fit_mode is None:
            raise ValueError(f"synth.place_to_fit: expected false, true or except_sheets, got {fit!r}")
        self.p = params
        self.rng = np.random.default_rng([int(params.seed), index])
        long_side = int(params.image_size)
        aspect = float(self.rng.choice(list(params.aspects)))
        w = long_side if aspect >= 1 else round(long_side * aspect)
        h = round(long_side / aspect) if aspect >= 1 else long_side
        self.w, self.h = w, h
        self.image = textures.surface(self.rng, h, w)
        self.occupied = np.zeros((h, w), np.uint8)  # code areas no later panel may cover
        self.objects: list[SceneObject] = []

    # -------------------------------------------------------------- public

    def build(self) -> tuple[np.ndarray, list[SceneObject]]:
        rng, p = self.rng, self.p
        for _ in range(int(rng.integers(p.hard_negatives[0], p.hard_negatives[1] + 1))):
            self._place_negative()
        kind = _choice(rng, dict(p.scenes))
        if kind == "single":
            self._place_codes(1, size=(0.35, 0.9))
        elif kind == "few":
            self._place_codes(int(rng.integers(p.few_codes[0], p.few_codes[1] + 1)), size=(0.08, 0.6))
        elif kind == "dense":
            self._place_sheet(int(rng.integers(p.dense_codes[0], p.dense_codes[1] + 1)))
        for obj in self.objects:
            if rng.random() < p.occlusion:
                degrade.occlude(self.image, obj.polygon, rng, max_fraction=0.25)
        if p.degrade.enabled:
            self.image = degrade.degrade(self.image, rng, p.degrade)
        return self.image, self.objects

    def jpeg_quality(self) -> int:
        lo, hi = self.p.jpeg_quality
        return int(self.rng.integers(lo, hi + 1))

    # -------------------------------------------------------------- panels

    def _symbols(self, n: int, same: bool) -> list[Symbol]:
        names = list(self.p.symbologies)
        first = names[int(self.rng.integers(0, len(names)))]
        return [
            make_symbol(first if same else names[int(self.rng.integers(0, len(names)))], self.rng) for _ in range(n)
        ]

    def _style_for(self, symbols: list[Symbol]) -> panel.Style:
        rng = self.rng
        styles = dict(self.p.styles)
        if any(s.symbology != "DataMatrix" for s in symbols):
            styles.pop("dpm", None)  # direct part marking is a DataMatrix practice
        name = _choice(rng, styles)
        all_2d = not any(s.is_1d for s in symbols)
        return panel.pick_style(name, rng, invert=all_2d and name != "dpm" and rng.random() < self.p.inverted)

    def _module_px(self, k_target: float) -> tuple[int, float]:
        """Panel pixels per module ``k`` and the scale from panel to scene that gives
        ``k_target`` scene pixels per module (``k`` supersamples so downscaling antialiases)."""
        k = max(1, round(k_target / 0.7))
        if self.p.styles.get("dpm", 0) and k < 3 and k_target > 1.5:
            k = 3
        return k, k_target / k

    def _place_codes(self, n: int, size: tuple[float, float]) -> None:
        """``n`` separate panels, each holding one code whose long side is ``size`` of the
        image's short side (log-uniform, so small codes are as common as real photos show)."""
        for _ in range(n):
            symbols = self._symbols(1, same=True)
            long_modules = max(symbols[0].modules.shape[1], symbols[0].modules.shape[0])
            target = _log_uniform(self.rng, *size) * min(self.w, self.h)
            k_target = max(float(self.p.min_module_px), target / long_modules)
            k, scale = self._module_px(k_target)
            style = self._style_for(symbols)
            pan = panel.draw_code_sheet(symbols, k, style, self.rng, (10**6, 10**6), self.p.human_readable, tight=False)
            self._place(pan, scale, min_scale=float(self.p.min_module_px) / k)

    def _place_sheet(self, n: int) -> None:
        """One panel with up to ``n`` codes in rows, covering much of the frame."""
        same = self.rng.random() < 0.7
        symbols = self._symbols(n, same)
        k_target = _log_uniform(self.rng, float(self.p.min_module_px), float(self.p.dense_max_module_px))
        k, scale = self._module_px(k_target)
        style = self._style_for(symbols)
        cover = self.rng.uniform(0.5, 0.95)
        max_size = (int(self.w * cover / scale), int(self.h * cover / scale))
        try:
            pan = panel.draw_code_sheet(symbols, k, style, self.rng, max_size, self.p.human_readable, tight=True)
        except ValueError:
            return  # codes this large do not fit: the scene keeps its clutter only
        self._place(pan, scale, perspective_scale=0.5, min_scale=float(self.p.min_module_px) / k, sheet=True)

    def _place_negative(self) -> None:
        rng = self.rng
        size = (int(rng.uniform(0.1, 0.6) * self.w), int(rng.uniform(0.05, 0.4) * self.h))
        pan = panel.draw_negative(
            rng, (max(size[0], 8), max(size[1], 8)), rng.uniform(5, 16), float(self.p.typeset_text)
        )
        self._place(pan, 1.0)

    # -------------------------------------------------------------- placement

    def _place(
        self,
        pan: panel.Panel,
        scale: float,
        perspective_scale: float = 1.0,
        min_scale: float = 0.0,
        tries: int = 12,
        sheet: bool = False,
    ) -> bool:
        """Warp ``pan`` into the scene where its codes stay inside the frame and clear of
        codes placed before; shrink (not below ``min_scale``) and retry when it does not fit.
        Returns success."""
        rng, p = self.rng, self.p
        to_fit = bool(pan.objects) and (self.fit_mode == "always" or (self.fit_mode == "except_sheets" and not sheet))
        deform = None
        if pan.objects and rng.random() < p.bend:
            deform = warp.cylinder(pan.alpha.shape[0], pan.alpha.shape[1], rng)
        elif pan.objects and rng.random() < p.crumple:
            deform = warp.crumple(
                pan.alpha.shape[0], pan.alpha.shape[1], rng, amplitude=rng.uniform(1.0, 4.0) / max(scale, 0.1)
            )
        image, alpha = pan.image, pan.alpha
        if deform is not None:
            image, alpha = deform.apply(image), deform.apply(alpha)
        if scale < 0.5:  # antialias: the panel is about to shrink by more than 2x
            sigma = 0.35 / scale
            image = cv2.GaussianBlur(image, (0, 0), sigma)
        outlines = [self._outline(o, deform) for o in pan.objects]
        ph, pw = alpha.shape
        for _ in range(tries):
            angle = rng.uniform(0, 2 * np.pi)
            if to_fit:
                centre = self._centre_to_fit(outlines, pw, ph, scale, angle, p.perspective * perspective_scale)
            else:
                centre = (rng.uniform(0, self.w), rng.uniform(0, self.h))
            hom = warp.placement(pw, ph, scale, angle, centre, p.perspective * perspective_scale, rng)
            polygons = [warp.transform_points(o, hom) + 0.5 for o in outlines]
            if pan.objects and not self._fits(polygons, hom, pw, ph):
                scale = max(scale * 0.93, min_scale)
                continue
            self._composite(image, alpha, hom)
            for obj, poly in zip(pan.objects, polygons, strict=True):
                self.objects.append(SceneObject(poly, obj.symbol.symbology, obj.symbol.text))
                cv2.fillPoly(self.occupied, [np.round(poly).astype(np.int32)], 1)
            return True
        return False

    def _centre_to_fit(
        self, outlines: list[np.ndarray], pw: int, ph: int, scale: float, angle: float, perspective: float
    ) -> tuple[float, float]:
        """A centre drawn where the codes' rotated outlines stay inside the frame, allowing for the
        perspective jitter: a centre drawn anywhere makes a large code fail until shrunk, so
        close-ups (every artelab photo) would be far rarer than their drawn size says."""
        rotated = warp.scaled_and_turned(np.concatenate(outlines), pw, ph, scale, angle)
        slack = perspective * scale * max(pw, ph) + 1.0
        centre = []
        for axis, extent in enumerate((self.w, self.h)):
            lo = slack - rotated[:, axis].min()
            hi = extent - slack - rotated[:, axis].max()
            # Too large at this angle: the middle, where it fails least, and the caller shrinks it.
            centre.append(float(self.rng.uniform(lo, hi)) if lo < hi else (lo + hi) / 2)
        return centre[0], centre[1]

    def _outline(self, obj: panel.PanelObject, deform: warp.Deformation | None) -> np.ndarray:
        x0, y0, x1, y1 = obj.rect
        if deform is None:
            return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)
        return deform.forward(warp.sample_rectangle_edges(x0, y0, x1, y1, MAX_POLYGON_POINTS // 4))

    def _fits(self, polygons: list[np.ndarray], hom: np.ndarray, pw: int, ph: int) -> bool:
        """Codes inside the frame, and the whole panel clear of codes already placed."""
        margin = 1.0
        for poly in polygons:
            if not Polygon(poly).is_valid:  # a fold or a sliver: not a printable code
                return False
            if poly.min() < margin or (poly[:, 0] > self.w - margin).any() or (poly[:, 1] > self.h - margin).any():
                return False
        quad = warp.transform_points(np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], np.float64), hom)
        probe = np.zeros_like(self.occupied)
        cv2.fillPoly(probe, [np.round(quad).astype(np.int32)], 1)
        return not (probe & self.occupied).any()

    def _composite(self, image: np.ndarray, alpha: np.ndarray, hom: np.ndarray) -> None:
        ph, pw = alpha.shape
        corners = warp.transform_points(np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], np.float64), hom)
        x0, y0 = np.floor(corners.min(axis=0)).astype(int)
        x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + 1
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, self.w), min(y1, self.h)
        if x1 <= x0 or y1 <= y0:
            return
        shift = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], np.float64) @ hom
        size = (x1 - x0, y1 - y0)
        warped = cv2.warpPerspective(image, shift, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        a = cv2.warpPerspective(alpha, shift, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)[..., None]
        roi = self.image[y0:y1, x0:x1].astype(np.float32)
        self.image[y0:y1, x0:x1] = (roi * (1 - a) + warped.astype(np.float32) * a).astype(np.uint8)
