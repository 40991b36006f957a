"""Box-level scores that any barcode reader or detector can be held to, ours included.

Peers report a code as corners or a box and maybe a text; our pipeline as a ``Detection``.
Both become ``Found`` and are scored the same way: one-to-one greedy matching at box IoU
>= 0.5 (``matching``) for recall and precision, and the one-to-one decode rate of docs/design.md §6
(``decoding``) on the texts read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from barseg.infer.detections import Prediction
from barseg.metrics.decoding import decode_rate
from barseg.metrics.matching import box_iou_matrix, greedy_match

Box = tuple[float, float, float, float]  # x0, y0, x1, y1


@dataclass(frozen=True)
class Found:
    """One code a reader or detector reports: its box, score (1.0 when it gives none) and text."""

    box: Box
    score: float = 1.0
    text: str | None = None

    @classmethod
    def from_corners(cls, corners: Sequence[Sequence[float]], score: float = 1.0, text: str | None = None) -> Found:
        points = np.asarray(corners, np.float64).reshape(-1, 2)
        x0, y0 = points.min(axis=0)
        x1, y1 = points.max(axis=0)
        return cls((float(x0), float(y0), float(x1), float(y1)), score, text or None)


def found_in(prediction: Prediction, threshold: float) -> list[Found]:
    """Our pipeline's codes at or above ``threshold``, as any reader's are scored."""
    return [
        Found((d.bbox[0], d.bbox[1], d.bbox[2], d.bbox[3]), d.score, d.text)
        for d in prediction.detections
        if d.score >= threshold
    ]


@dataclass
class BoxTally:
    """Codes labelled, reported, and matched one-to-one at box IoU >= ``iou``."""

    truths: int = 0
    found: int = 0
    matched: int = 0

    def add(self, truths: Sequence[Box], found: Sequence[Found], iou: float = 0.5) -> None:
        ious = box_iou_matrix([list(f.box) for f in found], [list(t) for t in truths])
        self.matched += len(greedy_match(ious, [f.score for f in found], iou))
        self.truths += len(truths)
        self.found += len(found)

    @property
    def recall(self) -> float:
        return self.matched / self.truths if self.truths else float("nan")

    @property
    def precision(self) -> float:
        return self.matched / self.found if self.found else float("nan")


def read_decode_rate(expected: Mapping[Path, list[str]], found: Mapping[Path, Iterable[Found]]) -> float:
    """docs/design.md §6's decode rate of the texts among ``found`` (codes without a text read nothing)."""
    return decode_rate(expected, {path: [f.text for f in codes if f.text] for path, codes in found.items()})
