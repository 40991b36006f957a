import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from barseg.data.validate import PROBLEM_KINDS, Source, validate_sources

W, H = 80, 60
GOOD = [[10, 10], [40, 10], [40, 30], [10, 30]]


def _image(path: Path, seed: int) -> None:
    pixels = np.random.default_rng(seed).integers(0, 255, (H, W, 3), dtype=np.uint8)
    cv2.imwrite(str(path), pixels)


def _pair(folder: Path, name: str, seed: int, doc: dict | str | None) -> Path:
    path = folder / name
    _image(path, seed)
    if doc is not None:
        (folder / f"{name}.json").write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def _doc(points=GOOD, size=(W, H), **obj) -> dict:
    return {"size": list(size), "objects": [{"data": points, **obj}]}


def make_faulty_dataset(folder: Path) -> dict[str, set[str]]:
    """One file per fault kind (two for unreadable images), plus two good files.
    Returns {file name: expected problem kinds}."""
    folder.mkdir(parents=True, exist_ok=True)
    _pair(folder, "good.jpg", 1, _doc(symbology="EAN-13", text="4006381333931"))
    _pair(folder, "good_coco_style.png", 2, _doc(symbology="QRCode"))
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    (folder / "corrupt.jpg.json").write_text(json.dumps(_doc()))
    _pair(folder, "truncated.jpg", 3, _doc())
    data = (folder / "truncated.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    _pair(folder, "no_json.jpg", 4, None)
    _pair(folder, "bad_json.jpg", 5, '{"size": [80, 60], "objects": [')
    _pair(folder, "wrong_size.jpg", 6, _doc(size=(800, 600)))
    _pair(folder, "two_points.jpg", 7, _doc(points=[[1, 1], [5, 5]]))
    _pair(folder, "flat.jpg", 8, _doc(points=[[1, 1], [5, 5], [9, 9]]))
    _pair(folder, "bowtie.jpg", 9, _doc(points=[[10, 10], [40, 30], [40, 10], [10, 30]]))
    _pair(folder, "outside.jpg", 10, _doc(points=[[10, 10], [95, 10], [95, 30], [10, 30]]))
    shutil.copyfile(folder / "good.jpg", folder / "zz_copy_of_good.jpg")
    (folder / "zz_copy_of_good.jpg.json").write_text(json.dumps(_doc()))
    _pair(folder, "unknown_symbology.jpg", 11, _doc(symbology="Klingon-7"))
    return {
        "corrupt.jpg": {"unreadable_image"},
        "truncated.jpg": {"unreadable_image"},
        "no_json.jpg": {"missing_json"},
        "bad_json.jpg": {"invalid_json"},
        "wrong_size.jpg": {"size_mismatch"},
        "two_points.jpg": {"too_few_points"},
        "flat.jpg": {"zero_area"},
        "bowtie.jpg": {"self_intersecting"},
        "outside.jpg": {"out_of_bounds"},
        "zz_copy_of_good.jpg": {"duplicate_image"},
        "unknown_symbology.jpg": {"unknown_symbology"},
    }


def test_each_fault_is_found_and_names_its_file(tmp_path: Path) -> None:
    expected = make_faulty_dataset(tmp_path / "raw")
    report = validate_sources([Source("raw", tmp_path / "raw")])
    found: dict[str, set[str]] = {}
    for problem in report.problems:
        found.setdefault(Path(problem.file).name, set()).add(problem.kind)
        assert str(problem).startswith(problem.file + ": ")
    assert found == expected
    assert {p.kind for p in report.problems} == set(PROBLEM_KINDS)
    assert sorted(Path(r.path).name for r in report.records["raw"]) == ["good.jpg", "good_coco_style.png"]
    metrics = report.metrics()
    assert metrics["problems"]["unreadable_image"] == 2 and metrics["excluded_images"] == len(expected)
    assert metrics["symbology"] == {"EAN-13": 1, "QRCode": 1}
    assert metrics["image_size"]["width"] == {"min": W, "median": W, "max": W}


def test_absent_optional_source_is_skipped_with_a_reason(tmp_path: Path) -> None:
    report = validate_sources([Source("raw", tmp_path / "nothing", optional=True)])
    assert not report.problems and "absent" in report.skipped["raw"]
    report = validate_sources([Source("raw", tmp_path / "nothing")])
    assert [p.kind for p in report.problems] == ["unreadable_image"]


def _stage_repo(tmp_path: Path, repo: Path, strict: bool) -> Path:
    """A folder with the stage scripts and a params.yaml pointing at the faulty data."""
    work = tmp_path / "work"
    shutil.copytree(repo / "stages", work / "stages")
    make_faulty_dataset(work / "data" / "raw")
    params = {
        "validate": {"strict": strict},
        "data": {
            "sources": [
                {"name": "raw", "path": "data/raw"},
                {"name": "synthetic", "path": "data/synthetic", "optional": True},
            ],
            "split": {"train": 0.5, "val": 0.25, "test": 0.25},
            "max_side": 40,
            "jpeg_quality": 90,
        },
    }
    (work / "params.yaml").write_text(json.dumps(params))
    return work


def _run(work: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=work, capture_output=True, text=True, env=os.environ.copy())


@pytest.mark.parametrize("strict", [True, False])
def test_validate_stage_exit_code_and_preprocess_exclusion(tmp_path: Path, repo: Path, strict: bool) -> None:
    work = _stage_repo(tmp_path, repo, strict)
    result = _run(
        work, "stages/validate.py", "--metrics", "metrics/validate.json", "--problems", "metrics/problems.json"
    )
    assert "Traceback" not in result.stderr
    assert "data/raw/bowtie.jpg: object 0: polygon: is not simple" in result.stderr
    assert "validate: 11 problem(s) in 11 file(s)" in result.stderr
    assert result.returncode == (1 if strict else 0)
    assert json.loads((work / "metrics/validate.json").read_text())["problems_total"] == 11
    if strict:
        return
    result = _run(work, "stages/preprocess.py", "--problems", "metrics/problems.json", "--out", "data/processed")
    assert result.returncode == 0, result.stderr
    names = []
    for split in ("train", "val", "test"):
        coco = json.loads((work / "data/processed" / f"{split}.json").read_text())
        names += [Path(img["barseg"]["original_file"]).name for img in coco["images"]]
        for img in coco["images"]:
            assert max(img["width"], img["height"]) == 40  # the resize cache
            assert (work / "data/processed/images" / img["file_name"]).is_file()
        assert all(
            a["attributes"].get("symbology") in (None, "EAN13", "QRCode")
            for a in coco["annotations"]
            if "attributes" in a
        )
    assert sorted(names) == ["good.jpg", "good_coco_style.png"]


def test_preprocess_refuses_unvalidated_bad_items(tmp_path: Path, repo: Path) -> None:
    work = _stage_repo(tmp_path, repo, strict=False)
    (work / "metrics").mkdir()
    (work / "metrics/problems.json").write_text(json.dumps({"excluded": [], "problems": []}))
    result = _run(work, "stages/preprocess.py", "--problems", "metrics/problems.json", "--out", "data/processed")
    assert result.returncode != 0
    assert "run the validate stage first" in result.stderr


def test_labels_are_checked_against_the_upright_photo(tmp_path: Path) -> None:
    """A phone photo stored landscape with EXIF "rotate 90": validate, training and the service
    all see it portrait; labels drawn on the stored landscape pixels are named."""
    from PIL import Image

    from barseg.data.dataset import BarcodeDataset
    from barseg.data.formats import load_records, write_coco

    exif = Image.Exif()
    exif[0x0112] = 6
    folder = tmp_path / "photos"
    folder.mkdir()
    for seed, name in enumerate(("upright.jpg", "sideways.jpg")):
        stored = np.random.default_rng(seed).integers(0, 255, (H, W, 3), dtype=np.uint8)  # 80 wide, 60 high
        Image.fromarray(stored).save(folder / name, exif=exif, quality=95)
    (folder / "upright.jpg.json").write_text(
        json.dumps(_doc(points=[[5, 10], [50, 10], [50, 70], [5, 70]], size=(H, W)))
    )
    (folder / "sideways.jpg.json").write_text(json.dumps(_doc(size=(W, H))))
    report = validate_sources([Source("photos", folder)])
    problems = {Path(p.file).name: p for p in report.problems}
    assert set(problems) == {"sideways.jpg"}
    assert problems["sideways.jpg"].kind == "size_mismatch" and "EXIF orientation" in problems["sideways.jpg"].reason
    coco = tmp_path / "coco.json"

    write_coco(report.records["photos"], coco, images_root=folder)
    (record,) = load_records(coco, folder)
    image, target = BarcodeDataset([record], long_side=1000)[0]
    assert tuple(image.shape) == (3, W, H) and target["masks"].shape == (1, W, H)
