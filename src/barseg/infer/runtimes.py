"""Pick the runtime for a model file (or an explicit ``--runtime``)."""

from __future__ import annotations

from pathlib import Path

from barseg.infer.predictor import Predictor
from barseg.weights import is_released, verified

RUNTIME_BY_SUFFIX = {".ckpt": "torch", ".pt": "torch", ".onnx": "onnx", ".engine": "trt"}
RUNTIMES = ("torch", "onnx", "trt")


def load_predictor(model: Path, runtime: str | None = None, threshold: float = 0.5, threads: int = 0) -> Predictor:
    """``threads``: CPU threads for inference (0: the runtime's default)."""
    if not model.is_file():
        raise FileNotFoundError(f"--model {model}: no such file")
    if is_released(model):
        verified(model)  # released weights load only when their SHA-256 matches weights.json
    runtime = runtime or RUNTIME_BY_SUFFIX.get(model.suffix)
    if runtime == "torch":
        import torch

        from barseg.infer.torch_runtime import TorchPredictor  # torch only when asked for

        if threads:
            torch.set_num_threads(threads)
        return TorchPredictor(model, threshold)
    if runtime == "onnx":
        from barseg.infer.onnx_runtime import OnnxPredictor

        return OnnxPredictor(model, threshold, threads)
    if runtime == "trt":
        from barseg.infer.trt_runtime import TrtPredictor  # tensorrt only when asked for

        return TrtPredictor(model, threshold)
    known = ", ".join(f"{s} ({r})" for s, r in RUNTIME_BY_SUFFIX.items())
    raise ValueError(f"--model {model}: no runtime for this file (runtime {runtime!r}); supported: {known}")
