"""Tile images of a seed-format folder with their polygons drawn, to judge realism at a glance.

python tools/contact_sheet.py data/synthetic docs/synthetic_contact_sheet.png --count 16
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from barseg.data.formats import iter_source


def contact_sheet(source: Path, count: int, tile: int, columns: int) -> np.ndarray:
    tiles = []
    for result in iter_source(source):
        if result.record is None:
            continue
        rec = result.record
        image = cv2.imread(str(rec.path))
        for inst in rec.instances:
            for ring in inst.polygons or []:
                pts = np.round(ring * 8).astype(np.int32)  # 3 fractional bits: sub-pixel outline
                cv2.polylines(image, [pts], True, (0, 255, 0), 1, cv2.LINE_AA, shift=3)
                cv2.circle(image, tuple(int(v) for v in np.round(ring[0])), 3, (0, 0, 255), -1)
        scale = tile / max(image.shape[:2])
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        canvas = np.full((tile, tile, 3), 32, np.uint8)
        canvas[: image.shape[0], : image.shape[1]] = image
        tiles.append(canvas)
        if len(tiles) == count:
            break
    rows = [np.hstack(tiles[i : i + columns]) for i in range(0, len(tiles), columns)]
    rows[-1] = np.hstack([rows[-1], np.zeros((tile, tile * columns - rows[-1].shape[1], 3), np.uint8)])
    return np.vstack(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--count", type=int, default=16)
    parser.add_argument("--tile", type=int, default=320)
    parser.add_argument("--columns", type=int, default=4)
    args = parser.parse_args()
    sheet = contact_sheet(args.source, args.count, args.tile, args.columns)
    # A 256-colour palette keeps the committed PNG small; the outlines stay crisp.
    Image.fromarray(cv2.cvtColor(sheet, cv2.COLOR_BGR2RGB)).quantize(256).save(args.out, optimize=True)


if __name__ == "__main__":
    main()
