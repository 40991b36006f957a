"""Check every item of every data source and report each problem as ``file: reason``.

An image with any problem is excluded as a whole: keeping it with one annotation dropped
would teach the model that a real barcode is background.
"""

from __future__ import annotations

import hashlib
import io
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from shapely.geometry import Polygon
from shapely.validation import explain_validity

from barseg.data.formats import ImageRecord, Instance, iter_source
from barseg.data.images import ImageError, decode_image
from barseg.data.symbology import canonical_symbology

PROBLEM_KINDS = (
    "unreadable_image", "missing_json", "invalid_json", "size_mismatch", "too_few_points",
    "zero_area", "self_intersecting", "out_of_bounds", "duplicate_image", "unknown_symbology",
)  # fmt: skip
BOUNDS_TOLERANCE_PX = 1.0  # labelling tools round to whole pixels at the image edge


@dataclass(frozen=True)
class Problem:
    file: str
    kind: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.reason}"


@dataclass(frozen=True)
class Source:
    name: str
    path: Path
    optional: bool = False
    repeat: int = 1  # times each training photo is seen per pass: a few own photos among thousands of synthetic ones


def sources_from_params(entries: Iterable[Any]) -> list[Source]:
    """``data.sources`` entries (``{name, path, optional, repeat}``) as Source objects."""
    sources = []
    for i, e in enumerate(entries):
        repeat = e.get("repeat", 1)
        if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
            raise ValueError(f"data.sources[{i}] ({e.get('name')}): repeat must be a whole number >= 1, got {repeat!r}")
        sources.append(Source(str(e["name"]), Path(str(e["path"])), bool(e.get("optional", False)), repeat))
    return sources


@dataclass
class Report:
    problems: list[Problem] = field(default_factory=list)
    records: dict[str, list[ImageRecord]] = field(default_factory=dict)  # valid, per source
    skipped: dict[str, str] = field(default_factory=dict)  # source -> why
    items: int = 0

    @property
    def excluded(self) -> list[str]:
        return sorted({p.file for p in self.problems})

    def metrics(self) -> dict[str, Any]:
        valid = [r for recs in self.records.values() for r in recs]
        symbologies = Counter(inst.symbology or "unlabelled" for r in valid for inst in r.instances)
        widths, heights = [r.width for r in valid], [r.height for r in valid]
        kinds = Counter(p.kind for p in self.problems)
        return {
            "items": self.items,
            "valid_images": len(valid),
            "excluded_images": len(self.excluded),
            "instances": sum(len(r.instances) for r in valid),
            "problems_total": len(self.problems),
            "problems": {k: kinds.get(k, 0) for k in PROBLEM_KINDS},
            "sources": {name: len(recs) for name, recs in self.records.items()},
            "skipped_sources": dict(self.skipped),
            "symbology": dict(sorted(symbologies.items())),
            "image_size": {
                "width": _summary(widths),
                "height": _summary(heights),
            },
        }

    def problem_list(self) -> dict[str, Any]:
        return {"excluded": self.excluded, "problems": [asdict(p) for p in self.problems]}


def _summary(values: list[int]) -> dict[str, float]:
    if not values:
        return {"min": 0, "median": 0, "max": 0}
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def validate_sources(sources: Iterable[Source]) -> Report:
    report = Report()
    seen_content: dict[str, str] = {}
    for source in sources:
        if not source.path.exists():
            if not source.optional:
                report.problems.append(
                    Problem(str(source.path), "unreadable_image", "source folder or file does not exist")
                )
            else:
                report.skipped[source.name] = f"{source.path} is absent"
            continue
        valid = report.records.setdefault(source.name, [])
        for result in iter_source(source.path):
            report.items += 1
            if result.error is not None:
                report.problems.append(
                    Problem(
                        result.key,
                        result.error.kind,
                        result.error.reason if result.error.file == result.key else str(result.error),
                    )
                )
                continue
            assert result.record is not None
            problems = check_record(result.record, seen_content)
            report.problems.extend(problems)
            if not problems:
                valid.append(result.record)
    return report


def image_digest(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def check_record(record: ImageRecord, seen_content: dict[str, str]) -> list[Problem]:
    """Every problem of one image and its annotations; ``seen_content`` maps digests of
    images checked before to their paths, to find duplicates."""
    file = str(record.path)
    try:
        data = record.path.read_bytes()
    except FileNotFoundError:
        return [Problem(file, "unreadable_image", "image file is missing")]
    except OSError as exc:  # a folder, no permission, an I/O error
        return [Problem(file, "unreadable_image", f"cannot read the file ({exc.strerror or exc})")]
    try:
        # Decoded fully, as training reads it (catches truncated and corrupt files), and upright:
        # every stage applies the EXIF orientation, so labels are in the upright photo's pixels.
        height, width = decode_image(data, None).shape[:2]
    except ImageError as exc:
        return [Problem(file, "unreadable_image", f"cannot decode image ({exc})")]
    size = (width, height)
    problems = []
    digest = hashlib.sha1(data).hexdigest()
    if digest in seen_content:
        problems.append(Problem(file, "duplicate_image", f"same image content as {seen_content[digest]}"))
    else:
        seen_content[digest] = file
    if size != (record.width, record.height):
        turned = ""
        if size == (record.height, record.width) and _exif_turns(data):
            turned = " after its EXIF orientation is applied (label the photo as it is displayed)"
        problems.append(
            Problem(
                file,
                "size_mismatch",
                f"annotation says {record.width}x{record.height}, image is {size[0]}x{size[1]}{turned}",
            )
        )
    for i, inst in enumerate(record.instances):
        problems.extend(
            Problem(file, kind, f"object {i}: {reason}")
            for kind, reason in check_instance(inst, record.width, record.height)
        )
    return problems


def _exif_turns(data: bytes) -> bool:
    """Whether the image's EXIF orientation swaps its width and height (5-8: quarter turns)."""
    with Image.open(io.BytesIO(data)) as img:
        return img.getexif().get(0x0112, 1) in (5, 6, 7, 8)


def check_instance(inst: Instance, width: int, height: int) -> list[tuple[str, str]]:
    """``(kind, reason)`` for each problem of one annotation in a ``width x height`` image."""
    problems = []
    if inst.symbology is not None and canonical_symbology(inst.symbology) is None:
        problems.append(("unknown_symbology", f"unknown symbology {inst.symbology!r}"))
    if inst.polygons is not None:
        for j, ring in enumerate(inst.polygons):
            where = f"polygon {j}: " if len(inst.polygons) > 1 else "polygon: "
            problems.extend((kind, where + reason) for kind, reason in _check_ring(ring, width, height))
    elif inst.rle is not None:
        h, w = inst.rle["size"]
        if (w, h) != (width, height):
            problems.append(("size_mismatch", f"RLE size is {w}x{h}, image is {width}x{height}"))
        elif inst.mask_area(height, width) == 0:
            problems.append(("zero_area", "RLE mask is empty"))
    else:
        x0, y0, x1, y1 = inst.box()
        if x1 <= x0 or y1 <= y0:
            problems.append(("zero_area", f"box {[x0, y0, x1, y1]} has no area"))
        problems.extend(_check_bounds(np.array([[x0, y0], [x1, y1]]), width, height))
    return problems


def _check_ring(ring: np.ndarray, width: int, height: int) -> list[tuple[str, str]]:
    if len(ring) < 3:
        return [("too_few_points", f"has {len(ring)} point(s), a polygon needs at least 3")]
    problems = _check_bounds(ring, width, height)
    shape = Polygon(ring)
    if shape.convex_hull.area == 0:  # not shape.area: a bow-tie's two lobes cancel out
        problems.append(("zero_area", "has zero area (points coincide or lie on one line)"))
    elif not shape.is_valid:
        problems.append(("self_intersecting", f"is not simple: {explain_validity(shape)}"))
    return problems


def _check_bounds(points: np.ndarray, width: int, height: int) -> list[tuple[str, str]]:
    t = BOUNDS_TOLERANCE_PX
    outside = (points[:, 0] < -t) | (points[:, 0] > width + t) | (points[:, 1] < -t) | (points[:, 1] > height + t)
    if outside.any():
        x, y = points[np.argmax(outside)]
        return [("out_of_bounds", f"point ({x:g}, {y:g}) lies outside the {width}x{height} image")]
    return []
