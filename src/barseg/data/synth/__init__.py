"""The built-in synthetic data set: real zxing-cpp symbols composited into varied scenes.

``generate`` writes ``count`` images in the seed format (``NNNNNN.jpg`` + ``.jpg.json``)
with ``symbology`` and ``text`` per object. Scene ``i`` depends only on ``(seed, i)``, so the
output is byte-identical for the same params whatever the number of workers.
"""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from barseg.data.formats import ImageRecord, Instance, seed_document
from barseg.data.synth.scene import SceneBuilder


def render(params: Any, index: int) -> tuple[bytes, dict[str, Any]]:
    """Scene ``index`` as JPEG bytes and its seed JSON document."""
    builder = SceneBuilder(params, index)
    image, objects = builder.build()
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, builder.jpeg_quality()])
    if not ok:
        raise RuntimeError(f"JPEG encoding failed for scene {index}")
    h, w = image.shape[:2]
    instances = [Instance(polygons=[np.round(o.polygon, 2)], symbology=o.symbology, text=o.text) for o in objects]
    return jpeg.tobytes(), seed_document(ImageRecord(Path(f"{index:06d}.jpg"), w, h, instances))


def _worker_init() -> None:
    cv2.setNumThreads(1)  # one process per core; OpenCV's own threads would oversubscribe


def _write(job: tuple[dict[str, Any], str, int]) -> int:
    params, out_dir, index = job
    jpeg, doc = render(OmegaConf.create(params), index)
    path = Path(out_dir) / f"{index:06d}.jpg"
    path.write_bytes(jpeg)
    Path(f"{path}.json").write_text(json.dumps(doc), encoding="utf-8")
    return len(doc["objects"])


def generate(params: DictConfig, out_dir: Path, workers: int | None = None) -> int:
    """Write ``params.count`` scenes to ``out_dir`` (emptied first); return the code count."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.iterdir():
        old.unlink()
    plain: dict[str, Any] = OmegaConf.to_container(params, resolve=True)  # type: ignore[assignment]
    jobs = [(plain, str(out_dir), i) for i in range(int(params.count))]
    workers = workers or int(params.workers)
    with mp.get_context("spawn").Pool(workers, initializer=_worker_init) as pool:
        counts = list(
            tqdm(pool.imap(_write, jobs, chunksize=8), total=len(jobs), desc="synthesize", unit="img", mininterval=2.0)
        )
    return sum(counts)
