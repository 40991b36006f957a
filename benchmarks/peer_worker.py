"""One peer reader over photos, inside the peer's own venv (run by ``benchmarks/compare.py``).

    .cache/peers/<venv>/bin/python benchmarks/peer_worker.py PEER [--threads N] < paths.txt

Reads photo paths (one per line) from stdin; prints ``{"ready": true}`` once the peer is
loaded, then one JSON line per photo, as soon as it is done: ``{"path", "seconds", "codes": [{"corners": [[x, y], ...], "score", "text"}]}``, or
``{"path", "error"}`` when the peer raised on it. Imports only the peer's own packages (and
numpy, Pillow): never barseg. The photo is read as everyone reads it (EXIF orientation
applied, RGB) and handed to each peer in the colour order it documents.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image, ImageOps

Code = dict[str, Any]
Reader = Callable[[np.ndarray], list[Code]]


def code(corners: Any, text: str | None = None, score: float = 1.0) -> Code:
    points = [[float(x), float(y)] for x, y in np.asarray(corners, np.float64).reshape(-1, 2)]
    return {"corners": points, "text": text or None, "score": float(score)}


def zxing_cpp(threads: int) -> Reader:
    import zxingcpp

    def read(rgb: np.ndarray) -> list[Code]:
        out = []
        view = zxingcpp.ImageView(rgb, rgb.shape[1], rgb.shape[0], zxingcpp.ImageFormat.RGB)  # a bare array is BGR
        for b in zxingcpp.read_barcodes(view):  # defaults otherwise
            p = b.position
            out.append(code([(c.x, c.y) for c in (p.top_left, p.top_right, p.bottom_right, p.bottom_left)], b.text))
        return out

    return read


def opencv(threads: int) -> Reader:
    """OpenCV's 1D barcode detector and its QR detector (both detect and decode)."""
    import cv2

    cv2.setNumThreads(threads)
    barcodes, qr = cv2.barcode.BarcodeDetector(), cv2.QRCodeDetector()

    def read(rgb: np.ndarray) -> list[Code]:
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        out = []
        for detector in (barcodes, qr):
            found = detector.detectAndDecodeMulti(bgr)
            ok, texts, points = found[0], found[1], found[2]
            if ok and points is not None:
                out += [code(p, t) for t, p in zip(texts, points, strict=True)]
        return out

    return read


def pyzbar(threads: int) -> Reader:
    from pyzbar import pyzbar as zbar

    def read(rgb: np.ndarray) -> list[Code]:
        grey = np.asarray(Image.fromarray(rgb).convert("L"))  # a 3-channel array would be read as its red channel
        out = []
        for r in zbar.decode(grey):
            points = [(p.x, p.y) for p in r.polygon] or [
                (r.rect.left, r.rect.top),
                (r.rect.left + r.rect.width, r.rect.top + r.rect.height),
            ]
            out.append(code(points, r.data.decode("utf-8", "replace")))
        return out

    return read


def _arbez_threads(engine: Any, threads: int) -> None:
    """arbez has no thread option: its ONNX Runtime session is rebuilt with ``threads``."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    engine._session = ort.InferenceSession(str(engine.model_path), options, providers=["CPUExecutionProvider"])


def arbez_detector(threads: int) -> Reader:
    """arbez's bundled YOLOX-s detector alone: boxes, classes and scores, nothing read."""
    from arbez.engines.arbez import ArbezEngine

    engine = ArbezEngine(decode=False, providers=["CPUExecutionProvider"])
    engine.warmup()
    _arbez_threads(engine, threads)

    def read(rgb: np.ndarray) -> list[Code]:
        return [code(d.polygon, None, d.score) for d in engine.detect_and_decode(rgb)]

    return read


def arbez(threads: int) -> Reader:
    """arbez's default ``Scanner()``: its detector and zxing-cpp, merged."""
    from arbez import Scanner

    scanner = Scanner()
    scanner.scan(np.zeros((64, 64, 3), np.uint8))  # loads the engines
    for engine in (getattr(scanner, "_consensus_engines", None) or {}).values():
        if hasattr(engine, "_session"):  # its detector; zxing-cpp runs on one thread anyway
            _arbez_threads(engine, threads)

    def read(rgb: np.ndarray) -> list[Code]:
        return [code(d.polygon, d.payload, d.score) for d in scanner.scan(rgb).detections]

    return read


def _codarascan(mode: str, threads: int) -> Reader:
    import cv2
    from codarascan import DecodedSymbolResult, Scanner

    cv2.setNumThreads(threads)
    scanner = Scanner(mode=mode, symbols="all", decode=True)
    scanner.warm()

    def read(rgb: np.ndarray) -> list[Code]:
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])  # a 3-channel array is read as BGR
        out = []
        for s in scanner.scan_image(bgr).symbols:  # found but unread symbols count as found
            text = s.text if isinstance(s, DecodedSymbolResult) else None
            out.append(code([(p.x, p.y) for p in s.quad], text, s.confidence))
        return out

    return read


PEERS: dict[str, Callable[[int], Reader]] = {
    "zxing-cpp": zxing_cpp,
    "opencv": opencv,
    "pyzbar": pyzbar,
    "arbez-detector": arbez_detector,
    "arbez": arbez,
    "codarascan-fast": lambda threads: _codarascan("fast", threads),
    "codarascan-robust": lambda threads: _codarascan("robust", threads),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("peer", choices=sorted(PEERS))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    try:
        read = PEERS[args.peer](args.threads)
    except Exception as exc:  # e.g. pyzbar without the zbar shared library: the peer cannot run at all
        print(f"{args.peer} unavailable: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(2)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        path = line.strip()
        if not path:
            continue
        start = time.perf_counter()
        try:
            with Image.open(path) as image:
                rgb = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
            codes = read(rgb)
            answer: dict[str, Any] = {"path": path, "seconds": time.perf_counter() - start, "codes": codes}
        except Exception as exc:  # reported per photo, never fatal to the run
            answer = {"path": path, "error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
