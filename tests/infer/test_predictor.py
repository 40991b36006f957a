import numpy as np
import pytest

from barseg.infer.detections import RawDetections
from barseg.infer.predictor import mask_outline, paste_mask, postprocess

H, W = 60, 100


def raw(*items: tuple[tuple[int, int, int, int], float]) -> RawDetections:
    """Detections whose mask fills their box."""
    return RawDetections(
        np.array([b for b, _ in items], np.float32),
        np.array([s for _, s in items]),
        np.ones((len(items), 28, 28), np.float32),
        (H, W),
    )


def test_paste_mask_equals_torchvision() -> None:
    import torch
    from torchvision.models.detection.roi_heads import paste_masks_in_image

    rng = np.random.default_rng(0)
    masks = rng.random((5, 28, 28)).astype(np.float32)
    boxes = np.array(
        [[10.3, 5.7, 60.2, 20.9], [-5, -3, 30, 40], [70.5, 30, 120, 80], [0, 0, 1, 1], [2, 50, 98, 58.4]], np.float32
    )
    expected = paste_masks_in_image(torch.from_numpy(masks[:, None]), torch.from_numpy(boxes), (H, W))[:, 0].numpy()
    for mask, box, want in zip(masks, boxes, expected, strict=True):
        got = paste_mask(mask, box, H, W)
        assert got.shape == (H, W)
        assert np.abs(got - want).max() < 1e-5


def test_fragment_inside_a_better_detection_is_dropped() -> None:
    whole, fragment, neighbour = (10, 20, 90, 30), (12, 20, 40, 30), (10, 40, 90, 50)
    dets = postprocess(raw((whole, 0.9), (fragment, 0.8), (neighbour, 0.7)), 0.5, 0.5)
    assert [d.score for d in dets] == [0.9, 0.7]
    kept_all = postprocess(raw((whole, 0.9), (fragment, 0.8), (neighbour, 0.7)), 0.5, 0.5, nested=1.01)
    assert len(kept_all) == 3


def test_threshold_and_order() -> None:
    dets = postprocess(raw(((0, 0, 10, 10), 0.3), ((20, 0, 30, 10), 0.6), ((40, 0, 50, 10), 0.95)), 0.5, 0.5)
    assert [d.score for d in dets] == [0.95, 0.6]


def test_outline_of_a_rotated_bar_has_four_corners_and_its_box() -> None:
    import cv2

    mask = np.zeros((H, W), np.uint8)
    corners = cv2.boxPoints(((50, 30), (60, 10), 20)).astype(np.int32)
    cv2.fillPoly(mask, [corners], 1)
    polygon, rotated = mask_outline(mask.astype(bool))
    assert 4 <= len(polygon) <= 16
    w, h = sorted(rotated["size"])[::-1]
    assert w == pytest.approx(61, abs=2) and h == pytest.approx(11, abs=2)
    assert rotated["center"] == pytest.approx([50.5, 30.5], abs=1)
