"""The registry of real evaluation sets (``params.yaml`` ``evaluate.extra_sets``), one reading of
it for the evaluate stage and every benchmark.

Relative paths are taken from the repository root, which DVC names in ``DVC_ROOT``: a queued
experiment (``dvc exp run --queue``) runs in a temporary copy under ``.dvc/tmp``, where
``../shared/...`` would find nothing and the real sets would silently drop out of its metrics.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


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
