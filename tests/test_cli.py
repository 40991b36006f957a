"""The ``barseg`` command: predict and evaluate through the same Predictor, clean errors."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from barseg.cli import main
from barseg.metrics.evaluation import PRECISION_BASED


def _photos(tiny_images, folder: Path) -> list[Path]:
    """The first two tiny images as a/x.png and b/x.png: the same stem twice."""
    paths = []
    for sub, (_, image) in zip(("a", "b"), tiny_images[:2], strict=True):
        (folder / sub).mkdir(parents=True)
        cv2.imwrite(str(folder / sub / "x.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        paths.append(folder / sub / "x.png")
    return paths


def test_predict_writes_json_and_one_overlay_per_image(tiny_onnx: Path, tiny_images, tmp_path: Path, capsys) -> None:
    paths = _photos(tiny_images, tmp_path / "photos")
    main(
        [
            "predict",
            str(tmp_path / "photos"),
            "--model",
            str(tiny_onnx),
            "--threshold",
            "0.005",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    result = json.loads(capsys.readouterr().out)
    assert sorted(result) == sorted(str(p) for p in paths)
    for path, r in result.items():
        h, w = cv2.imread(path).shape[:2]
        assert r["num_detections"] == len(r["detections"]) and r["image_size"] == [w, h]
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["x.png", "x_1.png"]  # none overwritten


def test_evaluate_scores_decode_rate_from_a_decode_truth_file(tiny_onnx: Path, tiny_images, tmp_path: Path) -> None:
    _photos(tiny_images, tmp_path / "photos")
    truth = tmp_path / "photos" / "decode_truth.json"
    truth.write_text(json.dumps({"images": {"a/x.png": [{"text": "no such code 1"}], "b/x.png": []}}))
    main(["evaluate", "--model", str(tiny_onnx), "--decode-truth", str(truth), "--out", str(tmp_path / "m.json")])
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["decode_rate"] == 0.0 and metrics["decode_images"] == 2 and metrics["decode_instances"] == 1


def test_evaluate_recall_only_leaves_out_what_counts_false_alarms(
    tiny_onnx: Path, tiny_processed: Path, tmp_path: Path
) -> None:
    coco = tiny_processed / "val.json"
    main(
        ["evaluate", "--model", str(tiny_onnx), "--coco", str(coco), "--no-decode", "--out", str(tmp_path / "all.json")]
    )
    argv = ["evaluate", "--model", str(tiny_onnx), "--coco", str(coco), "--no-decode", "--recall-only"]
    main([*argv, "--out", str(tmp_path / "recall.json")])
    full, partial = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("all", "recall"))
    assert "precision@0.5" in full and "segm_AP50" in full
    assert set(partial) == {k for k in full if not k.startswith(PRECISION_BASED)}
    assert partial["recall@0.5"] == full["recall@0.5"] and partial["detection_rate"] == full["detection_rate"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["predict", "absent.jpg", "--model", "{onnx}"], "absent.jpg"),
        (["predict", "{photo}", "--model", "{engine}"], "model.engine"),
        (["evaluate", "--model", "{onnx}", "--decode-truth", "{bad}", "--out", "m.json"], "decode_truth.json"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str], message: str, tiny_onnx: Path, tmp_path: Path, capsys
) -> None:
    photo = tmp_path / "p.png"
    cv2.imwrite(str(photo), np.zeros((32, 32, 3), np.uint8))
    (tmp_path / "model.engine").write_bytes(b"an engine needs TensorRT and a GPU")
    (tmp_path / "decode_truth.json").write_text('{"images": "not a mapping"}')
    paths = {
        "photo": photo,
        "engine": tmp_path / "model.engine",
        "onnx": tiny_onnx,
        "bad": tmp_path / "decode_truth.json",
    }
    with pytest.raises(SystemExit) as exit_info:
        main([a.format(**paths) for a in argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("barseg: error:") and message in err and "Traceback" not in err
