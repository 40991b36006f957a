"""Read and write the seed per-image format and COCO instances into one record type.

Seed format: ``name.jpg`` beside ``name.jpg.json`` holding
``{"size": [w, h], "objects": [{"data": [[x, y], ...], "symbology": ..., "text": ...}]}``.
Our extensions for geometry the seed format cannot hold: ``"polygons"`` (several rings),
``"rle"`` (COCO RLE) and ``"bbox"`` (``[x0, y0, x1, y1]``, box-only objects). Unknown keys are
kept in ``extra`` and written back, so both formats round-trip without loss.

Coordinates are continuous image pixels with (0, 0) at the top-left corner of the top-left
pixel (the COCO convention).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
SEED_SUFFIX = ".json"  # appended to the image name: name.jpg -> name.jpg.json
_SEED_OBJECT_KEYS = {"data", "polygons", "rle", "bbox", "symbology", "text"}
_COCO_ANN_KEYS = {
    "id", "image_id", "category_id", "segmentation", "bbox", "area", "iscrowd", "attributes",
}  # fmt: skip
_COCO_IMAGE_KEYS = {"id", "file_name", "width", "height"}


class FormatError(ValueError):
    """A file that does not follow its format; ``str()`` reads ``file: field: reason``."""

    def __init__(self, file: Path | str, reason: str, kind: str = "invalid_json") -> None:
        self.file = str(file)
        self.reason = reason
        self.kind = kind
        super().__init__(f"{file}: {reason}")


@dataclass
class Instance:
    """One barcode: exactly one geometry (polygons, RLE, or box only) plus optional labels."""

    polygons: list[np.ndarray] | None = None  # rings, each (N, 2) float64
    rle: dict[str, Any] | None = None  # COCO RLE with string counts
    bbox: tuple[float, float, float, float] | None = None  # x0, y0, x1, y1
    symbology: str | None = None
    text: str | None = None
    category: str = "barcode"
    iscrowd: int = 0
    area: float | None = None  # as read from COCO; recomputed on write when None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def geometry(self) -> str:
        if self.polygons is not None:
            return "polygon"
        if self.rle is not None:
            return "rle"
        return "bbox"

    def box(self) -> tuple[float, float, float, float]:
        """The ``x0, y0, x1, y1`` box: as stored, else from the geometry."""
        if self.bbox is not None:
            return self.bbox
        if self.polygons is not None:
            pts = np.concatenate(self.polygons)
            x0, y0 = pts.min(axis=0)
            x1, y1 = pts.max(axis=0)
            return float(x0), float(y0), float(x1), float(y1)
        assert self.rle is not None
        x, y, w, h = (float(v) for v in mask_utils.toBbox(rle_bytes(self.rle)))
        return x, y, x + w, y + h

    def to_rle(self, height: int, width: int) -> dict[str, Any]:
        """The instance mask as one COCO RLE (bytes counts), rasterised by pycocotools."""
        if self.rle is not None:
            return rle_bytes(self.rle)
        if self.polygons is not None:
            rings = [ring.reshape(-1).tolist() for ring in self.polygons]
        else:
            x0, y0, x1, y1 = self.box()
            rings = [[x0, y0, x1, y0, x1, y1, x0, y1]]
        return mask_utils.merge(mask_utils.frPyObjects(rings, height, width))

    def mask(self, height: int, width: int) -> np.ndarray:
        return mask_utils.decode(self.to_rle(height, width)).astype(bool)

    def mask_area(self, height: int, width: int) -> float:
        return float(mask_utils.area(self.to_rle(height, width)))


@dataclass
class ImageRecord:
    """One image and its barcodes; every stage after ``validate`` sees only this."""

    path: Path
    width: int
    height: int
    instances: list[Instance] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class LoadResult:
    """One item of a source: a record, or the error that kept it from being read."""

    key: str  # the file a person would open to fix it (image path)
    record: ImageRecord | None = None
    error: FormatError | None = None


def rle_bytes(rle: dict[str, Any]) -> dict[str, Any]:
    """The RLE as pycocotools takes it: compressed, bytes counts."""
    counts = rle["counts"]
    if isinstance(counts, list):  # uncompressed RLE
        return mask_utils.frPyObjects(rle, *rle["size"])
    return {"size": list(rle["size"]), "counts": counts.encode() if isinstance(counts, str) else counts}


def rle_str(rle: dict[str, Any]) -> dict[str, Any]:
    """The RLE as JSON holds it: string counts."""
    counts = rle["counts"]
    return {"size": list(rle["size"]), "counts": counts.decode() if isinstance(counts, bytes) else counts}


# ---------------------------------------------------------------- field checking helpers


def _points(value: Any, file: Path, where: str) -> np.ndarray:
    """Parse ``[[x, y], ...]`` into an (N, 2) array or raise naming the field."""
    if not isinstance(value, list) or not all(
        isinstance(p, list | tuple) and len(p) == 2 and all(_is_number(c) for c in p) for p in value
    ):
        raise FormatError(file, f"{where}: expected a list of [x, y] number pairs")
    return np.asarray(value, dtype=np.float64).reshape(-1, 2)


def _flat_points(value: Any, file: Path, where: str) -> np.ndarray:
    """Parse COCO's flat ``[x0, y0, x1, y1, ...]`` ring."""
    if not isinstance(value, list) or len(value) % 2 or not all(_is_number(c) for c in value):
        raise FormatError(file, f"{where}: expected a flat list of x, y numbers of even length")
    return np.asarray(value, dtype=np.float64).reshape(-1, 2)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _optional_str(obj: dict[str, Any], key: str, file: Path, where: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise FormatError(file, f"{where}.{key}: expected a string, got {type(value).__name__}")
    return value


def _check_rle(value: Any, file: Path, where: str) -> dict[str, Any]:
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("size"), list)
        or len(value["size"]) != 2
        or not isinstance(value.get("counts"), str | list)
    ):
        raise FormatError(file, f"{where}: expected an RLE {{'size': [h, w], 'counts': ...}}")
    return rle_str(rle_bytes(value))


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise FormatError(path, "annotation file is missing", kind="missing_json") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FormatError(path, f"not valid JSON ({exc})") from exc


# ---------------------------------------------------------------- seed per-image format


def seed_json_path(image_path: Path) -> Path:
    return image_path.with_name(image_path.name + SEED_SUFFIX)


def read_seed(image_path: Path) -> ImageRecord:
    """Read ``image_path``'s seed JSON; raise FormatError naming the field on bad input."""
    json_path = seed_json_path(image_path)
    doc = _load_json(json_path)
    if not isinstance(doc, dict):
        raise FormatError(json_path, "top level: expected an object")
    size = doc.get("size")
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
        raise FormatError(json_path, "size: expected [width, height] as positive integers")
    objects = doc.get("objects")
    if not isinstance(objects, list):
        raise FormatError(json_path, "objects: expected a list")
    instances = [_seed_object(obj, json_path, f"objects[{i}]") for i, obj in enumerate(objects)]
    extra = {k: v for k, v in doc.items() if k not in ("size", "objects")}
    return ImageRecord(image_path, size[0], size[1], instances, extra)


def _seed_object(obj: Any, file: Path, where: str) -> Instance:
    if not isinstance(obj, dict):
        raise FormatError(file, f"{where}: expected an object")
    geometries = [k for k in ("data", "polygons", "rle", "bbox") if k in obj]
    if len(geometries) != 1:
        raise FormatError(file, f"{where}: expected exactly one of data/polygons/rle/bbox, got {geometries or 'none'}")
    inst = Instance(
        symbology=_optional_str(obj, "symbology", file, where),
        text=_optional_str(obj, "text", file, where),
        extra={k: v for k, v in obj.items() if k not in _SEED_OBJECT_KEYS},
    )
    key = geometries[0]
    if key == "data":
        inst.polygons = [_points(obj["data"], file, f"{where}.data")]
    elif key == "polygons":
        if not isinstance(obj["polygons"], list) or not obj["polygons"]:
            raise FormatError(file, f"{where}.polygons: expected a non-empty list of rings")
        inst.polygons = [_points(r, file, f"{where}.polygons[{j}]") for j, r in enumerate(obj["polygons"])]
    elif key == "rle":
        inst.rle = _check_rle(obj["rle"], file, f"{where}.rle")
    else:
        box = obj["bbox"]
        if not (isinstance(box, list) and len(box) == 4 and all(_is_number(v) for v in box)):
            raise FormatError(file, f"{where}.bbox: expected [x0, y0, x1, y1]")
        inst.bbox = (float(box[0]), float(box[1]), float(box[2]), float(box[3]))
    return inst


def seed_document(record: ImageRecord) -> dict[str, Any]:
    """The seed JSON document for ``record``."""
    objects = []
    for inst in record.instances:
        obj: dict[str, Any] = {}
        if inst.polygons is not None and len(inst.polygons) == 1:
            obj["data"] = inst.polygons[0].tolist()
        elif inst.polygons is not None:
            obj["polygons"] = [ring.tolist() for ring in inst.polygons]
        elif inst.rle is not None:
            obj["rle"] = rle_str(inst.rle)
        else:
            obj["bbox"] = list(inst.box())
        if inst.symbology is not None:
            obj["symbology"] = inst.symbology
        if inst.text is not None:
            obj["text"] = inst.text
        obj.update(inst.extra)
        objects.append(obj)
    return {"size": [record.width, record.height], "objects": objects, **record.extra}


def write_seed(record: ImageRecord) -> Path:
    """Write the seed JSON beside ``record.path`` (the image itself is the caller's)."""
    path = seed_json_path(record.path)
    path.write_text(json.dumps(seed_document(record)), encoding="utf-8")
    return path


# ---------------------------------------------------------------- COCO instances


def default_images_dir(annotations: Path) -> Path:
    """COCO images live in ``images/`` beside the annotations file when it exists."""
    beside = annotations.parent / "images"
    return beside if beside.is_dir() else annotations.parent


def read_coco(annotations: Path, images_dir: Path | None = None) -> list[LoadResult]:
    """Read a COCO instances file; a bad image entry or annotation fails only its image."""
    images_dir = images_dir or default_images_dir(annotations)
    doc = _load_json(annotations)
    if (
        not isinstance(doc, dict)
        or not isinstance(doc.get("images"), list)
        or not isinstance(doc.get("annotations"), list)
    ):
        raise FormatError(annotations, "expected a COCO object with 'images' and 'annotations' lists")
    categories = {}
    for i, cat in enumerate(doc.get("categories") or []):
        if not isinstance(cat, dict) or "id" not in cat or not isinstance(cat.get("name"), str):
            raise FormatError(annotations, f"categories[{i}]: expected {{'id', 'name'}}")
        categories[cat["id"]] = cat["name"]

    by_image: dict[Any, list[tuple[int, Any]]] = {}
    results: list[LoadResult] = []
    for i, ann in enumerate(doc["annotations"]):
        if not isinstance(ann, dict) or "image_id" not in ann:
            results.append(
                LoadResult(
                    f"{annotations}#annotations[{i}]",
                    error=FormatError(annotations, f"annotations[{i}]: expected an object with image_id"),
                )
            )
            continue
        by_image.setdefault(ann["image_id"], []).append((i, ann))

    seen_ids = set()
    for i, img in enumerate(doc["images"]):
        where = f"images[{i}]"
        if not isinstance(img, dict) or not isinstance(img.get("file_name"), str) or "id" not in img:
            results.append(
                LoadResult(
                    f"{annotations}#{where}",
                    error=FormatError(annotations, f"{where}: expected an object with id and file_name"),
                )
            )
            continue
        seen_ids.add(img["id"])
        path = images_dir / img["file_name"]
        try:
            width, height = img.get("width"), img.get("height")
            if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
                raise FormatError(annotations, f"{where} ({img['file_name']}): width/height must be positive integers")
            instances = [
                _coco_annotation(ann, categories, annotations, f"annotations[{j}]", height, width)
                for j, ann in by_image.get(img["id"], [])
            ]
            extra = {k: v for k, v in img.items() if k not in _COCO_IMAGE_KEYS}
            results.append(LoadResult(str(path), record=ImageRecord(path, width, height, instances, extra)))
        except FormatError as exc:
            results.append(LoadResult(str(path), error=exc))
    for image_id in by_image.keys() - seen_ids:
        j = by_image[image_id][0][0]
        results.append(
            LoadResult(
                f"{annotations}#annotations[{j}]",
                error=FormatError(annotations, f"annotations[{j}]: image_id {image_id!r} has no image entry"),
            )
        )
    return results


def _coco_annotation(
    ann: dict[str, Any], categories: dict[Any, str], file: Path, where: str, height: int, width: int
) -> Instance:
    category = categories.get(ann.get("category_id"), "barcode") if categories else "barcode"
    attributes = ann.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise FormatError(file, f"{where}.attributes: expected an object")
    inst = Instance(
        symbology=_optional_str(attributes, "symbology", file, f"{where}.attributes"),
        text=_optional_str(attributes, "text", file, f"{where}.attributes"),
        category=category,
        iscrowd=int(ann.get("iscrowd", 0)),
        area=float(ann["area"]) if _is_number(ann.get("area")) else None,
        extra={k: v for k, v in ann.items() if k not in _COCO_ANN_KEYS},
    )
    other_attributes = {k: v for k, v in attributes.items() if k not in ("symbology", "text")}
    if other_attributes:
        inst.extra["attributes"] = other_attributes
    box = ann.get("bbox")
    if box is not None:
        if not (isinstance(box, list) and len(box) == 4 and all(_is_number(v) for v in box)):
            raise FormatError(file, f"{where}.bbox: expected [x, y, width, height]")
        inst.bbox = (float(box[0]), float(box[1]), float(box[0] + box[2]), float(box[1] + box[3]))
    seg = ann.get("segmentation")
    if isinstance(seg, list) and seg:
        inst.polygons = [_flat_points(ring, file, f"{where}.segmentation[{k}]") for k, ring in enumerate(seg)]
    elif isinstance(seg, dict):
        inst.rle = _check_rle(seg, file, f"{where}.segmentation")
    elif seg not in (None, []):
        raise FormatError(file, f"{where}.segmentation: expected polygons, an RLE or nothing")
    elif box is None:
        raise FormatError(file, f"{where}: has neither segmentation nor bbox")
    return inst


def coco_document(records: list[ImageRecord], images_root: Path) -> dict[str, Any]:
    """COCO instances for ``records``; ``file_name`` is each image path relative to ``images_root``."""
    names = sorted({inst.category for rec in records for inst in rec.instances} | {"barcode"})
    cat_ids = {name: i + 1 for i, name in enumerate(names)}
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, rec in enumerate(records, start=1):
        file_name = Path(rec.path).resolve().relative_to(images_root.resolve()).as_posix()
        images.append({"id": image_id, "file_name": file_name, "width": rec.width, "height": rec.height, **rec.extra})
        for inst in rec.instances:
            x0, y0, x1, y1 = inst.box()
            ann: dict[str, Any] = {
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": cat_ids[inst.category],
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "area": inst.area if inst.area is not None else inst.mask_area(rec.height, rec.width),
                "iscrowd": inst.iscrowd,
            }
            if inst.polygons is not None:
                ann["segmentation"] = [ring.reshape(-1).tolist() for ring in inst.polygons]
            elif inst.rle is not None:
                ann["segmentation"] = rle_str(inst.rle)
            else:
                ann["segmentation"] = []
            attributes = dict(inst.extra.get("attributes", {}))
            if inst.symbology is not None:
                attributes["symbology"] = inst.symbology
            if inst.text is not None:
                attributes["text"] = inst.text
            if attributes:
                ann["attributes"] = attributes
            ann.update({k: v for k, v in inst.extra.items() if k != "attributes"})
            annotations.append(ann)
    categories = [{"id": i, "name": name} for name, i in cat_ids.items()]
    return {"images": images, "annotations": annotations, "categories": categories}


def write_coco(records: list[ImageRecord], path: Path, images_root: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(coco_document(records, images_root)), encoding="utf-8")


def iter_source(root: Path) -> Iterator[LoadResult]:
    """Every item of a source: a COCO file, or a folder of COCO files and/or seed pairs.

    In a folder, each ``.json`` that is not a seed sidecar (``name.jpg.json``) must be a COCO
    file; images it lists belong to it. Every other image must have its seed sidecar, and a
    sidecar without its image is reported: nothing labelled is dropped silently.
    """
    if root.is_file():
        yield from _coco_results(root)
        return
    files = sorted(p for p in root.rglob("*") if p.is_file())
    covered: set[Path] = set()
    for path in files:
        if path.suffix == ".json" and not _is_sidecar(path):
            for result in _coco_results(path):
                if result.record is not None:
                    covered.add(result.record.path)
                yield result
    all_images = {p for p in files if p.suffix.lower() in IMAGE_SUFFIXES}
    for path in files:
        if _is_sidecar(path) and path.with_name(path.name[: -len(SEED_SUFFIX)]) not in all_images:
            yield LoadResult(str(path), error=FormatError(path, "its image is missing", "unreadable_image"))
    for image in sorted(all_images - covered):
        try:
            yield LoadResult(str(image), record=read_seed(image))
        except FormatError as exc:
            yield LoadResult(str(image), error=exc)


def _is_sidecar(path: Path) -> bool:
    return path.name.endswith(SEED_SUFFIX) and Path(path.name[: -len(SEED_SUFFIX)]).suffix.lower() in IMAGE_SUFFIXES


def _coco_results(path: Path) -> list[LoadResult]:
    try:
        return read_coco(path)
    except FormatError as exc:
        return [LoadResult(str(path), error=exc)]


def load_records(annotations: Path, images_dir: Path | None = None) -> list[ImageRecord]:
    """Every record of a COCO file; any unreadable entry is an error (validate ran before)."""
    results = read_coco(annotations, images_dir)
    errors = [str(r.error) for r in results if r.error is not None]
    if errors:
        raise ValueError(f"{annotations}: {len(errors)} bad entries, first: {errors[0]}")
    return [r.record for r in results if r.record is not None]
