"""TensorRT: the graph surgery and the build modes are checked on CPU (the surgered graph runs
in ONNX Runtime); the engine build and ``TrtPredictor`` need TensorRT and a GPU and skip
without them, saying so."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest
from omegaconf import OmegaConf

from barseg.export import trt as trt_export
from barseg.export.onnx import check_parity
from barseg.export.trt import (
    ENGINE_NAME,
    REPORT_NAME,
    SKIPPED_NAME,
    SURGERED_NAME,
    build,
    build_engine,
    inline_nms_branches,
    prepare_for_tensorrt,
    tensorrt_problems,
    trt_available,
    write_fp16,
)
from barseg.infer.onnx_runtime import OnnxPredictor
from barseg.infer.trt_runtime import TrtPredictor, engine_meta_path
from tests.conftest import FP16_TOLERANCE, params_section
from tests.conftest import PARITY_TOLERANCE as TOLERANCE


def with_wide(images: list[tuple[str, np.ndarray]]) -> list[tuple[str, np.ndarray]]:
    """The photos plus half-height crops: padding to the fixed square then differs in shape."""
    return images + [(f"wide-{n}", np.ascontiguousarray(img[: img.shape[0] // 2])) for n, img in images[:3]]


@pytest.fixture(scope="module")
def surgered(tiny_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, trt_export.SurgeryReport]:
    """The dynamic tiny export as the build_trt stage gets it, surgered."""
    out = tmp_path_factory.mktemp("trt") / SURGERED_NAME
    return out, prepare_for_tensorrt(tiny_onnx, out)


@pytest.fixture
def no_tensorrt(monkeypatch: pytest.MonkeyPatch) -> None:
    """``import tensorrt`` fails, whatever is installed."""
    monkeypatch.setitem(sys.modules, "tensorrt", None)


def test_surgery_makes_the_dynamic_export_static_if_free_and_checked(tiny_onnx: Path, surgered) -> None:
    path, report = surgered
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [1, 3, 256, 256]
    assert not any(
        n.attribute and any(a.type == onnx.AttributeProto.GRAPH for a in n.attribute) for n in model.graph.node
    )
    assert report.ifs_inlined == 2 and "If" not in report.ops_after
    assert report.ops_after["NonMaxSuppression"] == 2  # the inlined branches' NMS
    assert report.ops_after.get("Shape", 0) < report.ops_before["Shape"] / 3  # shape arithmetic folded
    assert report.nodes_after < report.nodes_before / 2
    assert tensorrt_problems(model) == []
    assert OnnxPredictor(path).spec.fixed_size


def test_the_problem_check_flags_the_raw_export(tiny_onnx: Path) -> None:
    problems = tensorrt_problems(onnx.load(str(tiny_onnx)))
    assert any("not static" in p for p in problems)
    assert sum(p.startswith("If node") for p in problems) == 2


def test_surgered_graph_gives_the_detections_of_the_fixed_size_export(
    tiny_onnx_fixed: Path, surgered, tiny_images
) -> None:
    reference, candidate = OnnxPredictor(tiny_onnx_fixed, threads=1), OnnxPredictor(surgered[0], threads=1)
    report = check_parity(reference, candidate, with_wide(tiny_images), **TOLERANCE)
    assert report.passed, report.failures
    assert report.matched == report.reference_detections > 5


def test_zero_detections_pass_through_the_inlined_nms(surgered, tiny_images) -> None:
    """The inlined branch now also sees the case the removed one handled: no boxes at all."""
    predictor = OnnxPredictor(surgered[0], threads=1)
    (raw,) = predictor.raw([predictor.prepare(tiny_images[0][1])], 1.0)
    assert raw.boxes.shape == (0, 4) and raw.scores.shape == (0,) and raw.masks.shape[0] == 0


def test_an_if_that_is_not_an_nms_guard_is_refused() -> None:
    x = gs.Variable("x", np.float32, [2])
    cond = gs.Variable("cond", np.bool_, [])
    y = gs.Variable("y", np.float32, [2])
    branches = []
    for op in ("Relu", "Neg"):
        out = gs.Variable(f"{op}_out", np.float32, [2])
        branches.append(gs.Graph(nodes=[gs.Node(op, inputs=[x], outputs=[out])], outputs=[out], name=op))
    node = gs.Node("If", inputs=[cond], outputs=[y], attrs={"then_branch": branches[0], "else_branch": branches[1]})
    graph = gs.Graph(nodes=[node], inputs=[x, cond], outputs=[y], opset=17)
    with pytest.raises(ValueError, match="not an NMS guard"):
        inline_nms_branches(graph)


def test_fp16_graph_casts_the_dense_part_and_stays_close(surgered, tiny_images, tmp_path: Path) -> None:
    """The TensorRT 11 fp16 path: the graph itself carries the precision."""
    half = tmp_path / "half.onnx"
    assert write_fp16(surgered[0], half) > 50
    graph = gs.import_onnx(onnx.load(str(half)))
    convs = [n for n in graph.nodes if n.op == "Conv"]
    assert sum(n.inputs[1].dtype == np.float16 for n in convs) > len(convs) / 2
    precise = [n for n in graph.nodes if n.op in ("NonMaxSuppression", "RoiAlign", "Gemm")]
    assert precise and all(n.inputs[0].dtype == np.float32 for n in precise)
    assert [t.dtype for t in graph.inputs + graph.outputs] == [np.float32] * 5
    report = check_parity(OnnxPredictor(surgered[0]), OnnxPredictor(half), tiny_images, **FP16_TOLERANCE)
    assert report.passed, report.failures
    assert report.matched == report.reference_detections > 0


def test_trt_available_says_what_to_install(no_tensorrt) -> None:
    available, reason = trt_available()
    assert not available
    assert "TensorRT" in reason and "[trt]" in reason


def test_auto_without_tensorrt_skips_with_the_reason_and_keeps_the_graph(
    tiny_onnx: Path, tmp_path: Path, no_tensorrt
) -> None:
    (tmp_path / ENGINE_NAME).write_bytes(b"stale engine of an earlier run")
    result = build(tiny_onnx, tmp_path, params_section("trt", enabled="auto"))
    assert result.engine is None and not (tmp_path / ENGINE_NAME).exists()
    skipped = (tmp_path / SKIPPED_NAME).read_text()
    assert "TensorRT is not importable" in skipped and "pip install -e '.[trt]'" in skipped
    assert tensorrt_problems(onnx.load(str(tmp_path / SURGERED_NAME))) == []
    assert json.loads((tmp_path / REPORT_NAME).read_text())["surgery"]["ifs_inlined"] == 2


def test_on_without_tensorrt_fails_loudly(tiny_onnx: Path, tmp_path: Path, no_tensorrt) -> None:
    with pytest.raises(RuntimeError, match=r"trt\.enabled: on, but TensorRT is not importable"):
        build(tiny_onnx, tmp_path, params_section("trt", enabled="on"))
    assert not (tmp_path / SKIPPED_NAME).exists()


def test_off_writes_why(tiny_onnx: Path, tmp_path: Path) -> None:
    result = build(tiny_onnx, tmp_path, params_section("trt", enabled="off"))
    assert result.engine is None and result.surgery is None
    assert "trt.enabled: off" in (tmp_path / SKIPPED_NAME).read_text()
    assert not (tmp_path / SURGERED_NAME).exists()


@pytest.mark.parametrize("text", ["off", "'off'"])
def test_off_as_written_in_params_yaml(tiny_onnx: Path, tmp_path: Path, text: str) -> None:
    cfg = OmegaConf.create(f"enabled: {text}\nprecision: fp16\nworkspace_mb: 64\n")  # YAML 1.1: off is False
    assert build(tiny_onnx, tmp_path, cfg).surgery is None
    assert "trt.enabled: off" in (tmp_path / SKIPPED_NAME).read_text()


def test_an_unknown_mode_is_an_error(tiny_onnx: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"trt\.enabled: .yes."):
        build(tiny_onnx, tmp_path, params_section("trt", enabled="yes"))


def test_predictor_errors_name_the_engine(tmp_path: Path, no_tensorrt) -> None:
    engine = tmp_path / ENGINE_NAME
    engine.write_bytes(b"engine")
    with pytest.raises(ValueError, match=r"model\.engine.*model\.engine\.json"):
        TrtPredictor(engine)
    spec = {"min_size": 256, "max_size": 256, "mean": [0.5] * 3, "std": [0.2] * 3, "fixed_size": True}
    engine_meta_path(engine).write_text(json.dumps({"input_spec": spec}))
    with pytest.raises(RuntimeError, match=r"model\.engine: TensorRT is not installed"):
        TrtPredictor(engine)


# --- on a machine with TensorRT and an NVIDIA GPU ---


@pytest.fixture(scope="module")
def gpu() -> None:
    pytest.importorskip("tensorrt", reason="TensorRT is not installed (the [trt] extra)")
    import torch

    if not torch.cuda.is_available():
        pytest.skip("TensorRT is installed but no CUDA GPU is visible")


@pytest.mark.slow
def test_fp32_engine_matches_onnx_runtime(gpu, surgered, tiny_images, tmp_path: Path) -> None:
    engine = tmp_path / ENGINE_NAME
    meta = build_engine(surgered[0], engine, "fp32", 1024)
    assert meta["precision"] == "fp32" and meta["input_spec"]["fixed_size"]
    predictor = TrtPredictor(engine)
    report = check_parity(OnnxPredictor(surgered[0]), predictor, with_wide(tiny_images), **TOLERANCE)
    assert report.passed, report.failures
    assert report.matched == report.reference_detections > 5
    (empty,) = predictor.raw([predictor.prepare(tiny_images[0][1])], 1.0)
    assert empty.boxes.shape == (0, 4)
    again = predictor.raw([predictor.prepare(tiny_images[0][1])], 0.001)[0]  # the output buffers are reused, not stale
    assert len(again.scores) > 0


@pytest.mark.slow
def test_fp16_engine_stays_close_to_onnx_runtime(gpu, surgered, tiny_images, tmp_path: Path) -> None:
    engine = tmp_path / ENGINE_NAME
    meta = build_engine(surgered[0], engine, "fp16", 1024)
    assert meta["precision"] in ("fp16", "fp32") and meta["precision_note"]
    report = check_parity(OnnxPredictor(surgered[0]), TrtPredictor(engine), tiny_images, **FP16_TOLERANCE)
    assert report.passed, report.failures


@pytest.mark.slow
def test_auto_builds_the_engine_where_tensorrt_is(gpu, tiny_onnx: Path, tmp_path: Path) -> None:
    result = build(tiny_onnx, tmp_path, params_section("trt", enabled="auto", workspace_mb=1024))
    assert result.engine == tmp_path / ENGINE_NAME and result.engine.stat().st_size > 0
    assert engine_meta_path(result.engine).is_file() and not (tmp_path / SKIPPED_NAME).exists()
