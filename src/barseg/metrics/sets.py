"""The registry of real evaluation sets (``params.yaml`` ``evaluate.extra_sets``), one reading of
it for the evaluate stage and every benchmark.

Relative paths are taken from the repository root, which DVC names in ``DVC_ROOT``: a queued
experiment (``dvc exp run --queue``) runs in a temporary copy under ``.dvc/tmp``, where
``../shared/...`` would find nothing and the real sets would silently drop out of its metrics.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from barseg.data.formats import load_records
from barseg.data.validate import image_digest
from barseg.metrics.decoding import load_decode_truth


@dataclass(frozen=True)
class EvalSet:
    """A COCO file (masks and boxes to score) and/or a ``decode_truth.json`` (texts to read)."""

    name: str
    coco: Path | None = None
    decode_truth: Path | None = None
    recall_only: bool = False  # only some codes are labelled: precision means nothing here


def repository_root() -> Path:
    return Path(os.environ.get("DVC_ROOT") or ".")


def evaluation_sets(entries: Iterable[Mapping[str, Any]], root: Path | None = None) -> tuple[list[EvalSet], list[str]]:
    """The sets whose files are present, and a message for each one skipped."""
    root = repository_root() if root is None else root
    found, skipped = [], []
    for entry in entries:
        if not entry.get("coco") and not entry.get("decode_truth"):
            raise ValueError(f"evaluate.extra_sets: '{entry.get('name')}' names neither a coco nor a decode_truth file")
        paths = {key: root / Path(entry[key]) for key in ("coco", "decode_truth") if entry.get(key)}
        if missing := [str(p) for p in paths.values() if not p.is_file()]:
            skipped.append(f"'{entry['name']}' skipped: {', '.join(missing)} not found")
            continue
        found.append(EvalSet(str(entry["name"]), recall_only=bool(entry.get("recall_only", False)), **paths))
    return found, skipped


def training_digests(train_coco: Path) -> set[str]:
    """Content hashes of a training split's photos: ``preprocess`` names each file by the SHA-1
    of the original's bytes, whatever it then did to the pixels."""
    return {Path(image["file_name"]).stem for image in json.loads(train_coco.read_text())["images"]}


def photos_trained_on(eval_set: EvalSet, trained_on: set[str]) -> tuple[int, int]:
    """How many of a set's photos are training photos (by content, whatever their names), of how
    many: a set a model was fine-tuned on measures fitting, not what users will get."""
    paths = {r.path for r in load_records(eval_set.coco)} if eval_set.coco else set()
    if eval_set.decode_truth:
        paths |= set(load_decode_truth(eval_set.decode_truth))
    return sum(image_digest(path) in trained_on for path in paths), len(paths)
