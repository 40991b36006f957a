"""The service's settings: written into the BentoML model's metadata by the ``package`` stage
(from params.yaml ``serve``), read back from it at serve time, so a Bento carries the
settings it was built with and serving needs no params.yaml."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

BATCHING_ENV = "BARSEG_BATCHING"  # "0"/"false": serve without adaptive batching (the benchmark's baseline)
FALSE_WORDS = ("0", "false", "no", "off")


# The model files a Bento holds, best first (the engine needs TensorRT and an NVIDIA GPU), and
# the runtime of each: packaging names its files so, the service picks from them in this order.
MODEL_FILES = (("model.engine", "trt"), ("model.onnx", "onnx"))


@dataclass(frozen=True)
class ServeSettings:
    threshold: float = 0.5  # default confidence_threshold
    min_threshold: float = 0.05  # lowest confidence_threshold accepted (the AP floor; below it, work without use)
    decode: bool = True  # default for the `decode` field
    verify: bool = True  # with decode: a detection's score counts whether it read
    max_decodes: int = 32  # detections read per image, the best first
    decode_budget_s: float = 2.0  # no reading attempt starts later than this after the network answered
    batching: bool = True  # adaptive batching of concurrent requests
    max_batch_size: int = 8
    max_latency_ms: int = 1000
    max_concurrency: int = 32  # requests in flight; more are refused with 429
    timeout_s: float = 30.0  # a request still running after this is answered 504
    max_pixels: int = 36_000_000  # decompression-bomb guard
    max_upload_mb: float = 20.0
    threads: int = 2  # inference threads per worker

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_threshold <= self.threshold <= 1.0:
            raise ValueError(
                f"serve.threshold {self.threshold}, serve.min_threshold {self.min_threshold}: "
                "need 0 <= min_threshold <= threshold <= 1"
            )
        if self.batching and self.max_batch_size < 2:
            raise ValueError(f"serve.max_batch_size {self.max_batch_size}: batching needs 2 or more")
        for name in (
            "max_latency_ms",
            "max_pixels",
            "max_upload_mb",
            "max_decodes",
            "max_concurrency",
            "timeout_s",
            "decode_budget_s",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"serve.{name} {getattr(self, name)}: must be positive")
        if self.threads < 0:
            raise ValueError(f"serve.threads {self.threads}: must be 0 (the runtime's default) or more")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> ServeSettings:
        """The known keys of ``values`` (a params section or model metadata), typed."""
        kwargs: dict[str, Any] = {}
        for field in fields(cls):
            if field.name not in values:
                continue
            value = values[field.name]
            if field.type == "bool" and not isinstance(value, bool):
                raise ValueError(f"serve.{field.name} {value!r}: must be true or false")
            if field.type == "int" and (isinstance(value, bool) or value != int(value)):
                raise ValueError(f"serve.{field.name} {value!r}: must be an integer")
            kwargs[field.name] = {"float": float, "bool": bool, "int": int}[str(field.type)](value)
        return cls(**kwargs)

    def with_environment(self, environ: Mapping[str, str] = os.environ) -> ServeSettings:
        """``BARSEG_BATCHING`` switches batching at serve time, so one Bento can be measured
        with and without it."""
        if BATCHING_ENV not in environ:
            return self
        return replace(self, batching=environ[BATCHING_ENV].strip().lower() not in FALSE_WORDS)

    def to_metadata(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)
