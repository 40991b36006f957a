"""The robustness benchmark's corruptions: fixed by a seed, worse with each severity, and the
outlines follow the pixels."""

import cv2
import numpy as np
import pytest

from barseg.metrics.corruptions import CORRUPTIONS, SEVERITIES, corrupt

SIZE = (240, 320)  # h, w


def bars_photo() -> tuple[np.ndarray, list[np.ndarray]]:
    """A grey card with a 1D-like block of bars (2-px modules) and a white square marker."""
    photo = np.full((*SIZE, 3), 200, np.uint8)
    photo[80:160, 100:220] = 255
    photo[90:150, 110:210:4] = 0
    photo[90:150, 111:210:4] = 0
    polygon = np.float32([[100, 80], [220, 80], [220, 160], [100, 160]])
    return photo, [polygon]


def sharpness(image: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32), cv2.CV_32F).var())


def bar_contrast(image: np.ndarray, polygon: np.ndarray) -> float:
    """Spread of grey values inside the code's outline."""
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(polygon).astype(np.int32)], 1)
    return float(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[mask > 0].std())


def corner_shift(polygon: np.ndarray, original: np.ndarray, image: np.ndarray) -> float:
    """How far the outline's corners moved, relative to the photo's centre."""
    centre = np.float32(image.shape[1::-1]) / 2
    return float(np.abs((polygon - centre) - (original - np.float32(SIZE[::-1]) / 2)).max())


# A figure of damage per corruption, and whether it grows (+1) or falls (-1) with severity.
DAMAGE = {
    "gaussian_blur": (lambda img, poly, orig: sharpness(img), -1),
    "motion_blur": (lambda img, poly, orig: sharpness(img), -1),
    "noise": (lambda img, poly, orig: float(np.abs(img.astype(float) - bars_photo()[0]).mean()), 1),
    "jpeg": (lambda img, poly, orig: float(np.abs(img.astype(float) - bars_photo()[0]).mean()), 1),
    "low_light": (lambda img, poly, orig: float(img.mean()), -1),
    "low_contrast": (lambda img, poly, orig: bar_contrast(img, poly), -1),
    "rotation": (lambda img, poly, orig: corner_shift(poly, orig, img), 1),
    "perspective": (lambda img, poly, orig: corner_shift(poly, orig, img), 1),
    "downscale": (lambda img, poly, orig: float(img.shape[0]), -1),
}


def test_every_corruption_has_a_damage_figure() -> None:
    assert set(DAMAGE) == set(CORRUPTIONS)


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_a_seed_fixes_the_result(name: str) -> None:
    photo, polygons = bars_photo()
    a_img, a_poly = corrupt(photo, polygons, name, 2, seed=7)
    b_img, b_poly = corrupt(photo, polygons, name, 2, seed=7)
    assert np.array_equal(a_img, b_img)
    assert all(np.array_equal(a, b) for a, b in zip(a_poly, b_poly, strict=True))
    assert np.array_equal(photo, bars_photo()[0])  # the input is left alone


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_damage_grows_with_severity(name: str) -> None:
    photo, polygons = bars_photo()
    measure, sign = DAMAGE[name]
    clean = measure(photo, polygons[0], polygons[0])
    figures = [clean]
    for severity in SEVERITIES:
        image, moved = corrupt(photo, polygons, name, severity, seed=3)
        figures.append(measure(image, moved[0], polygons[0]))
    steps = np.diff(figures) * sign
    assert (steps > 0).all(), (name, figures)


@pytest.mark.parametrize("name", ["rotation", "perspective", "downscale"])
def test_outlines_follow_the_pixels(name: str) -> None:
    """Inside the moved outline lies the white card with its bars; outside it, no white."""
    photo, polygons = bars_photo()
    image, (polygon,) = corrupt(photo, polygons, name, 3, seed=1)
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)

    def region(grow: float) -> np.ndarray:  # the outline scaled about its centre, clear of resampled edges
        mask = np.zeros(image.shape[:2], np.uint8)
        centre = polygon.mean(axis=0)
        cv2.fillPoly(mask, [np.round(centre + (polygon - centre) * grow).astype(np.int32)], 1)
        return mask > 0

    inside = grey[region(0.9)]
    assert inside.max() >= 250 and (inside > 230).mean() > 0.25  # white paper between the bars
    assert grey[~region(1.1)].max() <= 230


def test_unknown_names_and_levels_are_refused() -> None:
    photo, polygons = bars_photo()
    with pytest.raises(ValueError, match="unknown"):
        corrupt(photo, polygons, "fog", 1, seed=0)
    with pytest.raises(ValueError, match="severity 4"):
        corrupt(photo, polygons, "noise", 4, seed=0)
