"""Merge validated sources into COCO train/val/test files with a content-hash split.

An image's split depends only on the SHA-1 of its bytes, so adding images never moves the
ones already there, and the same photo reached by two paths lands in one split.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from barseg.data.formats import ImageRecord, iter_source, rle_str, write_coco
from barseg.data.images import read_image, resize
from barseg.data.symbology import canonical_symbology
from barseg.data.validate import Source, image_digest

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SplitFractions:
    train: float
    val: float
    test: float

    def __post_init__(self) -> None:
        total = self.train + self.val + self.test
        if min(self.train, self.val, self.test) < 0 or abs(total - 1.0) > 1e-6:
            raise ValueError(
                f"data.split: fractions must be >= 0 and sum to 1, got {self.train}, {self.val}, {self.test} (sum {total})"
            )


def split_of(digest: str, fractions: SplitFractions) -> str:
    """The split of an image with SHA-1 ``digest``: its first 52 bits as a uniform number."""
    u = int(digest[:13], 16) / 16**13
    if u < fractions.train:
        return "train"
    if u < fractions.train + fractions.val:
        return "val"
    return "test"


def valid_records(sources: Iterable[Source], excluded: set[str]) -> Iterable[tuple[Source, ImageRecord]]:
    """``(source, record)`` for every item not excluded by validation.

    Raises if an unreadable item was not excluded: that means ``validate`` did not run on
    this data, and dropping it here would be silent.
    """
    for source in sources:
        if not source.path.exists():
            continue
        for result in iter_source(source.path):
            if result.key in excluded:
                continue
            if result.record is None:
                raise ValueError(f"{result.error}: not in validate's exclusion list; run the validate stage first")
            yield source, result.record


def rescale(record: ImageRecord, factor: float, width: int, height: int) -> ImageRecord:
    """``record`` with its geometry scaled by ``factor`` to a ``width x height`` image."""
    instances = []
    for inst in record.instances:
        scaled = replace(inst, area=None)
        if inst.polygons is not None:
            scaled.polygons = [ring * factor for ring in inst.polygons]
        if inst.bbox is not None:
            scaled.bbox = (inst.bbox[0] * factor, inst.bbox[1] * factor, inst.bbox[2] * factor, inst.bbox[3] * factor)
        if inst.rle is not None:
            mask = inst.mask(record.height, record.width).astype(np.uint8)
            small = cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)
            scaled.rle = rle_str(mask_utils.encode(np.asfortranarray(small)))
        instances.append(scaled)
    return replace(record, width=width, height=height, instances=instances)


def _canonical(record: ImageRecord) -> ImageRecord:
    instances = [replace(i, symbology=canonical_symbology(i.symbology)) if i.symbology else i for i in record.instances]
    return replace(record, instances=instances)


def process(
    sources: list[Source],
    excluded: set[str],
    out_dir: Path,
    fractions: SplitFractions,
    max_side: int | None,
    jpeg_quality: int,
) -> dict[str, dict[str, int]]:
    """Write ``out_dir/{train,val,test}.json`` and ``out_dir/images/``; return counts per split.

    Images are named by content hash. Larger than ``max_side`` on the long side, they are
    downscaled (JPEG, ``jpeg_quality``) with their annotations; otherwise copied byte for byte.
    """
    images_dir = out_dir / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    by_split: dict[str, list[tuple[str, ImageRecord]]] = {s: [] for s in SPLITS}
    for source, record in valid_records(sources, excluded):
        digest = image_digest(record.path)
        suffix = record.path.suffix.lower()
        factor = min(1.0, max_side / max(record.width, record.height)) if max_side else 1.0
        if factor < 1.0:
            width, height = round(record.width * factor), round(record.height * factor)
            target = images_dir / f"{digest}.jpg"
            small = resize(read_image(record.path), width, height)
            cv2.imwrite(str(target), cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
            out = rescale(record, width / record.width, width, height)
        else:
            target = images_dir / f"{digest}{suffix}"
            shutil.copyfile(record.path, target)
            out = record
        original: dict[str, str | int] = {"source": source.name, "original_file": str(record.path), "sha1": digest}
        if source.repeat > 1:  # read by training only (barseg.data.dataset.repeated)
            original["repeat"] = source.repeat
        out = _canonical(replace(out, path=target, extra={**record.extra, "barseg": original}))
        by_split[split_of(digest, fractions)].append((digest, out))
    counts = {}
    for name, items in by_split.items():
        records = [rec for _, rec in sorted(items, key=lambda item: item[0])]
        write_coco(
            records, out_dir / f"{name}.json", images_root=images_dir
        )  # file_name relative to images/, as COCO sets ship
        counts[name] = {"images": len(records), "instances": sum(len(r.instances) for r in records)}
    return counts
