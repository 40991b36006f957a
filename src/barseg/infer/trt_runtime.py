"""TensorRT runtime: a serialized engine written by the ``build_trt`` stage.

An engine has no metadata, so its ``InputSpec`` (and how it was built) lives beside it in
``<engine>.json``. TensorRT is imported only when an engine is opened: this module imports
on machines without it, where opening an engine is a clear error.

The graph's detection count is data-dependent (NMS, score cut), so output sizes are known only
while the engine runs: TensorRT asks an ``IOutputAllocator`` for each output's memory then.
Device buffers are torch CUDA tensors (torch already holds the CUDA context and a caching
allocator; no pycuda/cuda-python needed).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np

from barseg.infer.detections import RawDetections
from barseg.infer.network import (
    INPUT_NAME,
    OUTPUT_NAMES,
    THRESHOLD_NAME,
    InputSpec,
    NetworkInput,
    network_batch,
    raw_detections,
)
from barseg.infer.predictor import Predictor

MIN_ALIGNMENT = 256  # CUDA allocation granularity; any output dtype can be viewed at this offset
INSTALL_HINT = "install the [trt] extra (pip install -e '.[trt]', TensorRT >= 10) on a machine with an NVIDIA GPU"


def engine_meta_path(engine: Path) -> Path:
    """``model.engine`` → ``model.engine.json``: the engine's input spec and build facts."""
    return engine.with_name(engine.name + ".json")


def read_engine_meta(engine: Path) -> dict[str, Any]:
    path = engine_meta_path(engine)
    if not path.is_file():
        raise ValueError(
            f"{engine}: no {path.name} beside it (the engine's input spec); build it with `dvc repro build_trt`"
        )
    meta = json.loads(path.read_text())
    if "input_spec" not in meta:
        raise ValueError(f"{path}: no 'input_spec' key")
    return meta


def _output_allocator(trt: Any, torch: Any, device: Any) -> Any:
    """A new ``IOutputAllocator`` for one output (a factory: the base class comes from the
    lazily imported ``tensorrt``)."""

    class OutputBuffer(trt.IOutputAllocator):  # type: ignore[misc, name-defined]
        """Grow-only device buffer: after the first images no run allocates."""

        def __init__(self) -> None:
            trt.IOutputAllocator.__init__(self)
            self.raw = torch.empty(0, dtype=torch.uint8, device=device)
            self.offset = 0
            self.shape: tuple[int, ...] = ()

        def reallocate_output(self, tensor_name: str, memory: int, size: int, alignment: int) -> int:
            # At least one byte: zero detections ask for 0 bytes, and a null address is how
            # an allocator tells TensorRT that it failed.
            size, alignment = max(int(size), 1), max(int(alignment), MIN_ALIGNMENT)
            if self.raw.numel() - self.offset < size or (self.raw.data_ptr() + self.offset) % alignment:
                self.raw = torch.empty(size + alignment, dtype=torch.uint8, device=device)
                self.offset = -self.raw.data_ptr() % alignment
            return int(self.raw.data_ptr() + self.offset)

        def reallocate_output_async(self, tensor_name: str, memory: int, size: int, alignment: int, stream: int) -> int:
            return self.reallocate_output(tensor_name, memory, size, alignment)

        def notify_shape(self, tensor_name: str, shape: Any) -> None:
            self.shape = tuple(int(d) for d in shape)

        def read(self, dtype: Any) -> np.ndarray:
            """The output TensorRT wrote, as a host array of its notified shape."""
            count = int(np.prod(self.shape))
            data = self.raw[self.offset : self.offset + count * torch.empty(0, dtype=dtype).element_size()]
            return data.view(dtype).reshape(self.shape).cpu().numpy()

    return OutputBuffer()


class TrtPredictor(Predictor):
    """The same contract as ``OnnxPredictor``: one image per run, the same input preparation
    and post-processing, so the detections match the other runtimes."""

    def __init__(self, engine_path: Path, threshold: float = 0.5) -> None:
        super().__init__(threshold)
        self.path = engine_path
        self.meta = read_engine_meta(engine_path)
        self.spec = InputSpec.from_json(json.dumps(self.meta["input_spec"]))
        try:
            import tensorrt as trt
        except ImportError as exc:
            raise RuntimeError(f"{engine_path}: TensorRT is not installed ({exc}); {INSTALL_HINT}") from exc
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError(f"{engine_path}: a TensorRT engine runs only on an NVIDIA GPU and none is visible")
        self.torch, self.device = torch, torch.device("cuda")
        logger = trt.Logger(trt.Logger.WARNING)
        trt.init_libnvinfer_plugins(logger, "")  # RoiAlign and NMS may be plugin layers
        self.runtime = trt.Runtime(logger)  # kept: it must outlive the engine
        self.engine = self.runtime.deserialize_cuda_engine(engine_path.read_bytes())
        if self.engine is None:
            raise ValueError(
                f"{engine_path}: TensorRT {trt.__version__} cannot load this engine (built by {self.meta.get('tensorrt')} "
                f"on {self.meta.get('device')}? engines are tied to both); rebuild it with `dvc repro build_trt`"
            )
        self.context = self.engine.create_execution_context()
        # One execution context, its output buffers and the threshold buffer are shared
        # state: a service thread pool must not interleave two runs through them.
        self.lock = threading.Lock()
        self.stream = torch.cuda.Stream()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.dtypes = {
            n: torch.from_numpy(np.empty(0, trt.nptype(self.engine.get_tensor_dtype(n)))).dtype for n in names
        }
        inputs = {n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT}
        if inputs != {INPUT_NAME, THRESHOLD_NAME} or set(names) - inputs != set(OUTPUT_NAMES):
            raise ValueError(f"{engine_path}: unexpected tensors {names}; not an engine of a barseg export")
        self.outputs = {n: _output_allocator(trt, torch, self.device) for n in OUTPUT_NAMES}
        for name, allocator in self.outputs.items():
            self.context.set_output_allocator(name, allocator)
        # empty, not zeros: no kernel on the default stream to race the fill on self.stream
        self.threshold_buffer = torch.empty((), dtype=self.dtypes[THRESHOLD_NAME], device=self.device)
        self.context.set_tensor_address(THRESHOLD_NAME, self.threshold_buffer.data_ptr())

    def raw(self, inputs: list[NetworkInput], score_threshold: float) -> list[RawDetections]:
        """One image per run: the engine has batch size 1."""
        torch = self.torch
        out = []
        for fitted in inputs:
            batch, _ = network_batch([fitted], self.spec)
            with self.lock:
                with torch.cuda.stream(self.stream):
                    # Kept alive until the stream is synchronised: TensorRT reads it asynchronously.
                    device_batch = torch.from_numpy(batch).to(self.device, self.dtypes[INPUT_NAME])
                    self.threshold_buffer.fill_(score_threshold)
                    self.context.set_input_shape(INPUT_NAME, tuple(device_batch.shape))
                    self.context.set_tensor_address(INPUT_NAME, device_batch.data_ptr())
                    if not self.context.execute_async_v3(self.stream.cuda_stream):
                        raise RuntimeError(f"{self.path}: TensorRT failed to run the engine; see its log above")
                self.stream.synchronize()
                boxes, scores, masks = (self.outputs[n].read(self.dtypes[n]) for n in OUTPUT_NAMES)
            out.append(raw_detections(boxes, scores, masks, fitted))
        return out
