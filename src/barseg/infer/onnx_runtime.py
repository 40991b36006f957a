"""ONNX Runtime: an ``.onnx`` file written by the ``export_onnx`` stage.

The file carries its own ``InputSpec`` (metadata ``barseg.input_spec``), so it runs
without the checkpoint, torch or params.yaml.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from barseg.infer.detections import RawDetections
from barseg.infer.network import INPUT_NAME, THRESHOLD_NAME, InputSpec, NetworkInput, network_batch, raw_detections
from barseg.infer.predictor import Predictor

SPEC_KEY = "barseg.input_spec"
# GPU providers first where this onnxruntime build has them; CPU always last.
PREFERRED_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")


def session_options(threads: int = 0) -> ort.SessionOptions:
    """All graph optimisations (constant folding, Conv+BN+activation fusion, layout); one
    inter-op thread, since the detector's graph is a chain; ``threads`` intra-op (0: ORT's
    default, one per physical core)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # ORT warns about every unused initializer otherwise
    return options


class OnnxPredictor(Predictor):
    def __init__(
        self, path: Path, threshold: float = 0.5, threads: int = 0, providers: list[str] | None = None
    ) -> None:
        super().__init__(threshold)
        available = ort.get_available_providers()
        chosen = providers or [p for p in PREFERRED_PROVIDERS if p in available]
        try:
            self.session = ort.InferenceSession(str(path), session_options(threads), providers=chosen)
        except Exception as exc:  # ORT raises its own exception types for unreadable graphs
            raise ValueError(f"{path}: ONNX Runtime cannot load this model: {exc}") from exc
        meta = self.session.get_modelmeta().custom_metadata_map
        if SPEC_KEY not in meta:
            raise ValueError(f"{path}: no '{SPEC_KEY}' metadata; export it with `dvc repro export_onnx`")
        self.spec = InputSpec.from_json(meta[SPEC_KEY])

    def raw(self, inputs: list[NetworkInput], score_threshold: float) -> list[RawDetections]:
        """One image per run: the exported graph has batch size 1."""
        out = []
        cut = np.array(score_threshold, np.float32)
        for fitted in inputs:
            batch, _ = network_batch([fitted], self.spec)
            boxes, scores, masks = self.session.run(None, {INPUT_NAME: batch, THRESHOLD_NAME: cut})
            out.append(raw_detections(boxes, scores, masks, fitted))
        return out
