import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from barseg.data.formats import (
    FormatError,
    ImageRecord,
    Instance,
    coco_document,
    iter_source,
    read_coco,
    read_seed,
    seed_document,
    write_coco,
    write_seed,
)

W, H = 64, 48


def _rle(h: int, w: int) -> dict:
    mask = np.zeros((h, w), np.uint8, order="F")
    mask[10:20, 5:30] = 1
    rle = mask_utils.encode(mask)
    return {"size": list(rle["size"]), "counts": rle["counts"].decode()}


def _seed_doc() -> dict:
    return {
        "size": [W, H],
        "objects": [
            {
                "data": [[1.5, 2.0], [30.25, 2.0], [30.25, 20.0], [1.5, 20.0]],
                "symbology": "EAN13",
                "text": "4006381333931",
                "reviewer": "ann",
            },
            {"polygons": [[[40, 5], [50, 5], [50, 15]], [[40, 30], [50, 30], [45, 40]]], "symbology": "QRCode"},
            {"rle": _rle(H, W), "text": "no symbology"},
            {"bbox": [2.0, 30.0, 20.0, 44.0]},
        ],
        "camera": {"model": "phone"},
    }


def _write_image_pair(folder: Path, name: str, doc: dict) -> Path:
    image = folder / name
    image.write_bytes(b"")  # the formats layer does not decode images
    (folder / f"{name}.json").write_text(json.dumps(doc))
    return image


def _records_equal(a: ImageRecord, b: ImageRecord) -> None:
    assert (a.path, a.width, a.height, a.extra) == (b.path, b.width, b.height, b.extra)
    assert len(a.instances) == len(b.instances)
    for x, y in zip(a.instances, b.instances, strict=True):
        assert x.geometry == y.geometry
        if x.polygons is not None:
            assert len(x.polygons) == len(y.polygons)
            for p, q in zip(x.polygons, y.polygons, strict=True):
                np.testing.assert_array_equal(p, q)
        assert x.rle == y.rle
        assert x.box() == y.box()
        assert (x.symbology, x.text, x.category, x.iscrowd, x.extra) == (
            y.symbology,
            y.text,
            y.category,
            y.iscrowd,
            y.extra,
        )


def test_seed_round_trip_keeps_every_field(tmp_path: Path) -> None:
    doc = _seed_doc()
    image = _write_image_pair(tmp_path, "a.jpg", doc)
    record = read_seed(image)
    assert [i.geometry for i in record.instances] == ["polygon", "polygon", "rle", "bbox"]
    assert record.instances[0].extra == {"reviewer": "ann"}
    assert record.extra == {"camera": {"model": "phone"}}
    assert seed_document(record) == doc
    write_seed(record)
    assert json.loads((tmp_path / "a.jpg.json").read_text()) == doc


def test_seed_to_coco_to_seed_is_lossless(tmp_path: Path) -> None:
    doc = _seed_doc()
    image = _write_image_pair(tmp_path, "a.jpg", doc)
    record = read_seed(image)
    write_coco([record], tmp_path / "ann.json", images_root=tmp_path)
    (result,) = read_coco(tmp_path / "ann.json", images_dir=tmp_path)
    _records_equal(result.record, record)
    assert seed_document(result.record) == doc


def test_coco_round_trip_polygon_rle_and_bbox_only(tmp_path: Path) -> None:
    coco = {
        "images": [{"id": 7, "file_name": "x.png", "width": W, "height": H, "license": 3}],
        "annotations": [
            {
                "id": 1,
                "image_id": 7,
                "category_id": 2,
                "segmentation": [[1.0, 1.0, 20.0, 1.0, 20.0, 9.0]],
                "bbox": [1.0, 1.0, 19.0, 8.0],
                "area": 76.0,
                "iscrowd": 0,
                "attributes": {"symbology": "Code128", "text": "A1", "occluded": True},
            },
            {
                "id": 2,
                "image_id": 7,
                "category_id": 2,
                "segmentation": _rle(H, W),
                "bbox": [5.0, 10.0, 25.0, 10.0],
                "area": 250.0,
                "iscrowd": 0,
            },
            {
                "id": 3,
                "image_id": 7,
                "category_id": 2,
                "bbox": [30.0, 30.0, 10.0, 5.0],
                "area": 50.0,
                "iscrowd": 0,
                "score_hint": 0.5,
            },
        ],
        "categories": [{"id": 2, "name": "barcode"}],
    }
    path = tmp_path / "in.json"
    path.write_text(json.dumps(coco))
    records = [r.record for r in read_coco(path, images_dir=tmp_path)]
    inst = records[0].instances
    assert [i.geometry for i in inst] == ["polygon", "rle", "bbox"]
    assert inst[2].box() == (30.0, 30.0, 40.0, 35.0)
    assert inst[0].extra == {"attributes": {"occluded": True}}
    out = coco_document(records, tmp_path)
    again = [r.record for r in read_coco(_dump(tmp_path / "out.json", out), images_dir=tmp_path)]
    _records_equal(again[0], records[0])
    # Same content; only ids are renumbered (categories from 1, images from 1).
    assert out["images"] == [{"id": 1, "file_name": "x.png", "width": W, "height": H, "license": 3}]
    for a, b in zip(out["annotations"], coco["annotations"], strict=True):
        assert {k: v for k, v in a.items() if k not in ("id", "image_id", "category_id", "segmentation")} == {
            k: v for k, v in b.items() if k not in ("id", "image_id", "category_id", "segmentation")
        }
        assert a.get("segmentation", []) == b.get("segmentation", [])


def _dump(path: Path, doc: dict) -> Path:
    path.write_text(json.dumps(doc))
    return path


def test_bbox_only_mask_is_its_box() -> None:
    inst = Instance(bbox=(2.0, 3.0, 12.0, 8.0))
    assert inst.mask(20, 20).sum() == 50


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"objects": []}, "size"),
        ({"size": [10, 10], "objects": {}}, "objects"),
        ({"size": [10, 10], "objects": [{"data": [[1, 2], [3]]}]}, "objects[0].data"),
        ({"size": [10, 10], "objects": [{"data": [[1, 1], [2, 2], [3, 1]], "text": 5}]}, "objects[0].text"),
        ({"size": [10, 10], "objects": [{"symbology": "QRCode"}]}, "objects[0]"),
    ],
)
def test_seed_errors_name_file_and_field(tmp_path: Path, doc: dict, field: str) -> None:
    image = _write_image_pair(tmp_path, "bad.jpg", doc)
    with pytest.raises(FormatError) as info:
        read_seed(image)
    assert str(info.value).startswith(f"{tmp_path / 'bad.jpg.json'}: {field}")


def test_iter_source_mixes_coco_and_seed_and_reports_orphans(tmp_path: Path) -> None:
    _write_image_pair(tmp_path, "seed.jpg", {"size": [W, H], "objects": []})
    (tmp_path / "lonely.png").write_bytes(b"")  # no sidecar
    (tmp_path / "ghost.jpg.json").write_text("{}")  # no image
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "c.jpg").write_bytes(b"")
    _dump(
        tmp_path / "set.json",
        {"images": [{"id": 1, "file_name": "c.jpg", "width": W, "height": H}], "annotations": [], "categories": []},
    )
    results = {Path(r.key).name: r for r in iter_source(tmp_path)}
    assert results["seed.jpg"].record is not None
    assert results["c.jpg"].record is not None and results["c.jpg"].record.path == tmp_path / "images" / "c.jpg"
    assert results["lonely.png"].error.kind == "missing_json"
    assert results["ghost.jpg.json"].error.kind == "unreadable_image"


def test_reads_the_real_coco_sets(real_data: Path) -> None:
    for name in ("dynamsoft_challenging", "artelab"):
        results = read_coco(real_data / name / "annotations.json")
        assert results and all(r.record is not None and r.record.path.is_file() for r in results)
        assert any(i.symbology for r in results for i in r.record.instances)
