"""Released weights: files in the repository's ``weights/`` folder, each checked against the
SHA-256 that ``weights/weights.json`` records before anything loads it.

``weights.json``: ``{"default": "<file>", "files": {"<file>": {"sha256": "...", ...}}}``; the
other keys of a file's entry describe it (steps, hours, data) and the model card
(``weights/README.md``) gives its figures. ``BARSEG_WEIGHTS_DIR`` points elsewhere (an
installed package has no repository around it). Nothing here imports torch: the CLI and the
service find and check weights before choosing a runtime.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

WEIGHTS_DIR_ENV = "BARSEG_WEIGHTS_DIR"
MANIFEST = "weights.json"


def weights_dir() -> Path:
    """``$BARSEG_WEIGHTS_DIR``, else ``weights/`` of the checkout this package runs from."""
    return Path(os.environ.get(WEIGHTS_DIR_ENV) or Path(__file__).resolve().parents[2] / "weights")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no released weights here (train with `make repro`, or pass --model)")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        raise ValueError(f"{path}: expected {{'default': NAME, 'files': {{NAME: {{'sha256': ...}}}}}}")
    return data


def verified(path: Path) -> Path:
    """``path`` when its SHA-256 is the one its folder's ``weights.json`` records for it."""
    entry = manifest(path.parent)["files"].get(path.name)
    if entry is None or "sha256" not in entry:
        raise ValueError(f"{path}: not listed with a sha256 in {path.parent / MANIFEST}")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: listed in {MANIFEST} but missing (a partial checkout or Git LFS pointer?)")
    actual = sha256(path)
    if actual != entry["sha256"]:
        raise ValueError(
            f"{path}: SHA-256 {actual[:16]}... differs from {entry['sha256'][:16]}... in {MANIFEST}: "
            "the file is damaged or was replaced; restore it with `git checkout -- weights/`"
        )
    return path


def default_release(folder: Path | None = None) -> Path:
    """The file ``weights.json`` names as the default (not yet checked: loaders check it)."""
    folder = weights_dir() if folder is None else folder
    chosen = manifest(folder).get("default")
    if not chosen:
        raise ValueError(f"{folder / MANIFEST}: names no default weights")
    return folder / chosen


def released_weights(folder: Path | None = None) -> Path:
    """The default released weights, checked."""
    return verified(default_release(folder))


def is_released(path: Path) -> bool:
    """Whether ``path`` is listed in the ``weights.json`` beside it (then it must verify); a
    ``weights.json`` of another kind beside a user's file is none of our business."""
    try:
        return path.name in manifest(path.parent)["files"]
    except (FileNotFoundError, ValueError):
        return False
