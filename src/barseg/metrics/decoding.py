"""``decode_rate`` (docs/design.md §6): the share of expected texts a reader returns, one-to-one, and
the two places expected texts come from (COCO ``attributes.text``, ``decode_truth.json``)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from barseg.data.formats import FormatError, ImageRecord, default_images_dir
from barseg.data.symbology import comparison_key


def decode_matches(expected: list[str], read: list[str]) -> int:
    """How many of ``expected`` are among ``read``, one-to-one after normalising both sides
    (``comparison_key``): two codes with the same text need two reads."""
    found = Counter(comparison_key(t) for t in read)
    wanted = Counter(comparison_key(t) for t in expected)
    return sum((wanted & found).values())


def decode_rate(expected: Mapping[Path, list[str]], read: Mapping[Path, list[str]]) -> float:
    """``decode_matches`` summed over images, over all expected texts; an image missing from
    ``read`` read nothing."""
    total = sum(len(texts) for texts in expected.values())
    if total == 0:
        raise ValueError("decode_rate: no expected texts (every image has an empty list)")
    return sum(decode_matches(texts, read.get(path, [])) for path, texts in expected.items()) / total


def expected_texts(records: list[ImageRecord]) -> dict[Path, list[str]]:
    """The texts each image's codes hold, from COCO ``attributes.text``; a code without one
    cannot be scored, so it is an error naming the image and the annotation."""
    out: dict[Path, list[str]] = {}
    for record in records:
        texts = out[record.path] = []
        for i, instance in enumerate(record.instances):
            if not isinstance(instance.text, str) or not instance.text:
                raise ValueError(
                    f"{record.path}: annotation {i} of this image has no attributes.text; "
                    "decode_rate needs the text of every code"
                )
            texts.append(instance.text)
    return out


def load_decode_truth(path: Path, images_dir: Path | None = None) -> dict[Path, list[str]]:
    """``{"images": {"relative/path.png": [{"text": ..., "symbology": ...}]}}`` (``[]`` for an
    image without codes) as image path -> expected texts. Paths are relative to
    ``images_dir``, by default ``images/`` beside the file when it exists, else its folder
    (as for COCO files)."""
    images_dir = images_dir or default_images_dir(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(path, f"cannot read decode truth: {exc}") from exc
    images = doc.get("images") if isinstance(doc, dict) else None
    if not isinstance(images, dict):
        raise FormatError(path, 'expected {"images": {"relative/path.png": [{"text": ...}, ...]}}')
    out: dict[Path, list[str]] = {}
    for name, codes in images.items():
        if not isinstance(codes, list):
            raise FormatError(path, f"images[{name!r}]: expected a list of codes, got {type(codes).__name__}")
        texts = []
        for i, code in enumerate(codes):
            if not isinstance(code, dict):
                raise FormatError(path, f'images[{name!r}][{i}]: expected {{"text": ...}}, got {code!r}')
            text = code.get("text")
            if not isinstance(text, str) or not text:
                raise FormatError(path, f"images[{name!r}][{i}].text: expected a non-empty string, got {text!r}")
            texts.append(text)
        out[images_dir / name] = texts
    return out
