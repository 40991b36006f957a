"""Write a released weights file: a training checkpoint as a weights-only state dict (fp16 by
default), listed with its SHA-256 in ``weights.json`` (``barseg.weights`` checks it at load)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from barseg.weights import MANIFEST, manifest, sha256

MAX_VERSIONS = 3  # released files ever kept in the repository (each is up to 25 MB in git history)
MAX_BYTES = 25 * 1024 * 1024


def write_release(
    checkpoint: Path, folder: Path, name: str, half: bool = True, describe: dict[str, Any] | None = None
) -> Path:
    """``folder/name`` from ``checkpoint`` (the train stage's or a snapshot), made the default."""
    if Path(name).name != name or not name.endswith(".pt"):
        raise ValueError(f"release name {name!r}: a plain file name ending in .pt, e.g. barseg-mbv3-v1.pt")
    source = torch.load(checkpoint, map_location="cpu", weights_only=True)
    try:
        model_cfg, state = source["hyper_parameters"]["model_cfg"], source["state_dict"]
    except (KeyError, TypeError) as exc:
        raise ValueError(
            f"{checkpoint}: not a barseg training checkpoint (hyper_parameters.model_cfg/state_dict)"
        ) from exc
    data = manifest(folder) if (folder / MANIFEST).is_file() else {"default": None, "files": {}}
    if name not in data["files"] and len(data["files"]) >= MAX_VERSIONS:
        raise ValueError(
            f"{folder / MANIFEST}: already {MAX_VERSIONS} released versions; replace one, never add a fourth"
        )
    weights = {k: v.half() if half and v.is_floating_point() else v for k, v in state.items()}
    release = {
        "hyper_parameters": {"model_cfg": model_cfg},
        "state_dict": weights,
        "global_step": int(source.get("global_step", 0)),
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    partial = path.with_suffix(".partial")  # a release being replaced stays whole until the new one is
    torch.save(release, partial)
    size = partial.stat().st_size
    if size > MAX_BYTES:
        partial.unlink()
        raise ValueError(f"{path}: {size / 2**20:.1f} MB is over the {MAX_BYTES / 2**20:.0f} MB a file may take")
    data["files"][name] = {
        **(describe or {}),
        "sha256": sha256(partial),
        "bytes": size,
        "dtype": "float16" if half else "float32",
        "global_step": release["global_step"],
    }
    data["default"] = name
    listing = folder / (MANIFEST + ".partial")
    listing.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(partial, path)
    os.replace(listing, folder / MANIFEST)
    return path
