import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from barseg.data.formats import ImageRecord, Instance, rle_str
from barseg.infer.detections import Detection, Prediction
from barseg.infer.predictor import mask_outline
from barseg.metrics.coco import coco_ap
from barseg.metrics.evaluation import ImageResult, compare_reports, summarize
from barseg.metrics.matching import greedy_match, modified_iou

H, W = 120, 160


def rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def rotated(cx: float, cy: float, w: float, h: float, degrees: float) -> np.ndarray:
    return cv2.boxPoints(((cx, cy), (w, h), degrees)).astype(np.float64)


def mask_of(polygon: np.ndarray) -> np.ndarray:
    return Instance(polygons=[polygon]).mask(H, W)


def result(gts: list[np.ndarray], preds: list[tuple[np.ndarray, float]]) -> ImageResult:
    record = ImageRecord(Path("toy.png"), W, H, [Instance(polygons=[g]) for g in gts])
    detections = []
    for polygon, score in sorted(preds, key=lambda p: -p[1]):
        inst = Instance(polygons=[polygon])
        outline, rotated = mask_outline(inst.mask(H, W))
        detections.append(Detection(score, list(inst.box()), outline, rotated, rle_str(inst.to_rle(H, W))))
    prediction = Prediction(detections, (W, H), 10.0)
    return ImageResult(record, prediction, [rle_str(i.to_rle(H, W)) for i in record.instances])


BAR = rect(20, 40, 120, 50)  # a thin 100 x 10 1D code


def test_perfect() -> None:
    m = summarize([result([BAR], [(BAR, 0.9)])], 0.5)
    assert m["precision@0.5"] == m["recall@0.5"] == m["f1@0.5"] == 1.0
    assert m["mean_iou"] == pytest.approx(1.0) and m["modified_iou"] == pytest.approx(1.0)
    assert m["detection_rate"] == 1.0 and m["instances"] == 1 and m["images"] == 1
    assert m["segm_AP50"] == pytest.approx(1.0) and m["bbox_AP"] == pytest.approx(1.0)


def test_shifted_along_the_bars() -> None:
    # 25 px along the long axis: mask IoU 75/125 = 0.6 (a match), modified IoU the same.
    m = summarize([result([BAR], [(rect(45, 40, 145, 50), 0.9)])], 0.5)
    assert m["recall@0.5"] == 1.0
    assert m["mean_iou"] == pytest.approx(0.6, abs=0.02)
    assert m["modified_iou"] == pytest.approx(0.6, abs=0.02)


def test_shifted_across_the_bars_is_a_miss() -> None:
    # 6 px across a 10 px tall code: IoU 4/16 = 0.25 -> no match, one miss and one false alarm.
    m = summarize([result([BAR], [(rect(20, 46, 120, 56), 0.9)])], 0.5)
    assert m["recall@0.5"] == 0.0 and m["precision@0.5"] == 0.0 and m["detection_rate"] == 0.0


def test_modified_iou_rewards_the_full_run_of_bars() -> None:
    half_height = mask_of(rect(20, 40, 120, 45))
    assert modified_iou(mask_of(BAR), half_height) == pytest.approx(1.0)
    half_length = mask_of(rect(20, 40, 70, 50))
    assert modified_iou(mask_of(BAR), half_length) == pytest.approx(0.5, abs=0.02)


def test_missing_and_extra() -> None:
    other = rect(20, 80, 120, 90)
    missing = summarize([result([BAR, other], [(BAR, 0.9)])], 0.5)
    assert missing["recall@0.5"] == 0.5 and missing["precision@0.5"] == 1.0 and missing["detection_rate"] == 0.5
    extra = summarize([result([BAR], [(BAR, 0.9), (other, 0.8)])], 0.5)
    assert extra["recall@0.5"] == 1.0 and extra["precision@0.5"] == 0.5
    assert extra["f1@0.5"] == pytest.approx(2 / 3)
    below = summarize([result([BAR], [(BAR, 0.9), (other, 0.3)])], 0.5)
    assert below["precision@0.5"] == 1.0  # the extra one is under the score threshold


def test_rotated_thin_codes() -> None:
    gt = rotated(80, 60, 110, 8, 30)
    same = summarize([result([gt], [(rotated(80, 60, 110, 8, 30), 0.9)])], 0.5)
    assert same["recall@0.5"] == 1.0 and same["mean_iou"] > 0.95
    # 8 degrees off: a thin code's masks barely overlap, though their boxes nearly coincide.
    tilted = summarize([result([gt], [(rotated(80, 60, 110, 8, 38), 0.9)])], 0.5)
    assert tilted["recall@0.5"] == 0.0 and tilted["detection_rate"] == 1.0


def test_greedy_match_is_one_to_one_by_score() -> None:
    ious = np.array([[0.7, 0.0], [0.9, 0.6]])
    # Prediction 1 (score 0.9) takes ground truth 0; prediction 0 has nothing left above 0.5.
    assert greedy_match(ious, [0.5, 0.9]) == [(1, 0, 0.9)]
    assert greedy_match(ious, [0.9, 0.5]) == [(0, 0, 0.7), (1, 1, 0.6)]


def test_coco_ap_agrees_with_pycocotools_on_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images, gts, dts = [], [], []
    for image_id in range(1, 5):
        images.append({"id": image_id, "width": W, "height": H})
        for k in range(3):
            g = rect(10 + 45 * k, 20, 50 + 45 * k, 60)
            gts.append(
                {
                    "image_id": image_id,
                    "segmentation": [g.reshape(-1).tolist()],
                    "bbox": [10 + 45 * k, 20, 40, 40],
                    "area": 1600.0,
                }
            )
            if rng.random() < 0.8:  # found, a little off
                d = g + rng.normal(0, 3, g.shape)
                x0, y0 = d.min(0)
                x1, y1 = d.max(0)
                dts.append(
                    {
                        "image_id": image_id,
                        "segmentation": rle_str(Instance(polygons=[d]).to_rle(H, W)),
                        "bbox": [x0, y0, x1 - x0, y1 - y0],
                        "score": float(rng.random()),
                    }
                )
        dts.append(
            {
                "image_id": image_id,
                "segmentation": rle_str(Instance(polygons=[rect(0, 90, 60, 110)]).to_rle(H, W)),
                "bbox": [0, 90, 60, 20],
                "score": 0.5,
            }
        )
    ours = coco_ap(images, gts, dts)
    gt_file, dt_file = tmp_path / "gt.json", tmp_path / "dt.json"
    anns = [{**g, "id": i + 1, "category_id": 1, "iscrowd": 0} for i, g in enumerate(gts)]
    gt_file.write_text(
        json.dumps({"images": images, "annotations": anns, "categories": [{"id": 1, "name": "barcode"}]})
    )
    dt_file.write_text(json.dumps([{**d, "category_id": 1} for d in dts]))
    coco = COCO(str(gt_file))
    for kind, key in (("segm", "segm_AP"), ("bbox", "bbox_AP")):
        evaluation = COCOeval(coco, coco.loadRes(str(dt_file)), kind)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
        assert ours[key] == pytest.approx(evaluation.stats[0])
        assert 0.2 < ours[key] < 0.95  # a toy set that is neither trivial nor empty


def test_no_detections_score_zero() -> None:
    m = summarize([result([BAR], [])], 0.5)
    assert m["segm_AP"] == 0.0 and m["recall@0.5"] == 0.0 and m["precision@0.5"] == 0.0


def test_compare_reports_pairs_shared_figures_and_flags_what_got_worse() -> None:
    model = {
        "test": {"recall@0.5": 0.798, "precision@0.5": 0.7, "ms_per_image_p50": 120.0, "images": 10},
        "artelab": {"recall@0.5": 0.9, "decode_rate": 0.95, "ms_per_image_p50": 105.0},
        "only_here": {"recall@0.5": 0.1},
    }
    baseline = {
        "test": {"recall@0.5": 0.8, "precision@0.5": 0.75, "ms_per_image_p50": 100.0},
        "artelab": {"recall@0.5": 0.85, "ms_per_image_p50": 100.0},
    }
    rows = compare_reports(model, baseline)
    assert [(r.set_name, r.key, r.model, r.baseline) for r in rows] == [
        ("test", "recall@0.5", 0.798, 0.8),
        ("test", "precision@0.5", 0.7, 0.75),
        ("test", "ms_per_image_p50", 120.0, 100.0),
        ("artelab", "recall@0.5", 0.9, 0.85),
        ("artelab", "ms_per_image_p50", 105.0, 100.0),
    ]
    # within rounding or timing jitter is not worse; clearly lower, or clearly slower, is
    assert [r.worse for r in rows] == [False, True, True, False, False]
    assert compare_reports(model, {}) == []
