import numpy as np
import pytest
from pycocotools import mask as mask_utils

from barseg.infer.detections import RawDetections
from barseg.infer.predictor import MaskCrop, crop_rle, mask_outline, paste_mask, postprocess

H, W = 60, 100


def raw(*items: tuple[tuple[int, int, int, int], float]) -> RawDetections:
    """Detections whose mask fills their box."""
    return RawDetections(
        np.array([b for b, _ in items], np.float32),
        np.array([s for _, s in items]),
        np.ones((len(items), 28, 28), np.float32),
        (H, W),
    )


def full_frame(crop: MaskCrop) -> np.ndarray:
    out = np.zeros(crop.photo_shape, crop.values.dtype)
    h, w = crop.values.shape
    out[crop.y0 : crop.y0 + h, crop.x0 : crop.x0 + w] = crop.values
    return out


def test_paste_mask_equals_torchvision() -> None:
    """Pasted into its box's crop, each mask is exactly torchvision's full-photo paste."""
    import torch
    from torchvision.models.detection.roi_heads import paste_masks_in_image

    rng = np.random.default_rng(0)
    masks = rng.random((5, 28, 28)).astype(np.float32)
    boxes = np.array(
        [[10.3, 5.7, 60.2, 20.9], [-5, -3, 30, 40], [70.5, 30, 120, 80], [0, 0, 1, 1], [2, 50, 98, 58.4]], np.float32
    )
    expected = paste_masks_in_image(torch.from_numpy(masks[:, None]), torch.from_numpy(boxes), (H, W))[:, 0].numpy()
    for mask, box, want in zip(masks, boxes, expected, strict=True):
        crop = paste_mask(mask, box, H, W)
        assert crop.values.size <= (box[2] - box[0] + 6) * (box[3] - box[1] + 6)  # the box, not the photo
        assert np.abs(full_frame(crop) - want).max() < 1e-5


@pytest.mark.parametrize(
    ("x0", "y0", "h", "w"), [(0, 0, H, W), (0, 0, 5, 7), (93, 55, 5, 7), (40, 0, H, 3), (10, 20, 1, 1)]
)
def test_crop_rle_equals_the_full_frame_encoding(x0: int, y0: int, h: int, w: int) -> None:
    """Crops at every corner and edge, starting and ending in either value."""
    rng = np.random.default_rng(x0 + y0 + h + w)
    for values in (rng.random((h, w)) > 0.5, np.ones((h, w), bool), np.zeros((h, w), bool)):
        crop = MaskCrop(values.astype(np.uint8), x0, y0, (H, W))
        expected = mask_utils.encode(np.asfortranarray(full_frame(crop)))
        assert crop_rle(crop) == expected


def test_outline_of_a_crop_is_the_outline_in_the_photo() -> None:
    """A mask that fills its crop to the edges keeps its corners when outlined in place."""
    for x0, y0 in ((40, 20), (0, 0), (W - 30, H - 10)):  # inside, and touching the photo's edges
        crop = MaskCrop(np.ones((10, 30), np.uint8), x0, y0, (H, W))
        polygon, rotated = mask_outline(crop.values, (crop.x0, crop.y0))
        assert (polygon, rotated) == mask_outline(full_frame(crop))


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
