"""TensorRT: the exported ONNX graph made parseable by TensorRT, the engine built from it, or
``SKIPPED.md`` saying why not.

The graph surgery runs anywhere and is checked on CPU with ONNX Runtime; the engine build
needs the ``[trt]`` extra (``tensorrt>=10``) and an NVIDIA GPU.

Why surgery: torchvision's ``batched_nms`` is scripted inside the trace, so the export holds
an ``If`` per NMS (then: an empty result for zero boxes; else: the real NMS), and a graph
exported for any input size keeps hundreds of Shape/Gather chains. TensorRT's parser wants
neither. With the input made static (1, 3, S, S) the shape arithmetic folds to constants,
and inlining the NMS branch removes each ``If`` (NMS of zero boxes is itself an empty
result, so the graph computes the same thing). What stays data-dependent (NonZero, NMS,
the detection count) TensorRT 10 runs natively, with output sizes known at run time.

Precision: TensorRT 10.x has ``BuilderFlag.FP16`` (weak typing: TensorRT may run any layer
in fp16 where it is faster). TensorRT 11 removed it: networks are strongly typed and the
precision is the ONNX graph's own, so fp16 there means building from a graph whose
convolutional part is fp16 by explicit casts (``convert_dense_to_fp16``).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import onnxruntime as ort

from barseg.infer.network import INPUT_NAME, InputSpec
from barseg.infer.onnx_runtime import SPEC_KEY
from barseg.infer.trt_runtime import INSTALL_HINT, engine_meta_path

ENGINE_NAME = "model.engine"
SURGERED_NAME = "model.trt.onnx"  # the graph the engine is built from; kept for inspection
FP16_NAME = "model.trt.fp16.onnx"  # TensorRT 11 fp16 builds only
SKIPPED_NAME = "SKIPPED.md"
REPORT_NAME = "build.json"
MIN_TENSORRT = 10
MODES = ("auto", "on", "off")
PRECISIONS = ("fp16", "fp32")
TOPK_LIMIT = 3840  # TensorRT's TopK takes K below this (onnx-tensorrt operator matrix)
FOLD_ROUNDS = 5  # folding and shape inference feed each other; a few rounds reach the fixed point

# Ops that only transform feature maps, value by value or by neighbourhood, where fp16 is
# safe. Per op, the inputs that carry data: the others (e.g. Resize's sizes) keep their type.
FP16_OPS = {
    "Conv": (0, 1, 2),
    "Relu": (0,),
    "HardSwish": (0,),
    "HardSigmoid": (0,),
    "Sigmoid": (0,),
    "Add": (0, 1),
    "Mul": (0, 1),
    "GlobalAveragePool": (0,),
    "MaxPool": (0,),
    "Resize": (0,),
}


def read_spec(model: onnx.ModelProto, path: Path) -> InputSpec:
    meta = {p.key: p.value for p in model.metadata_props}
    if SPEC_KEY not in meta:
        raise ValueError(f"{path}: no '{SPEC_KEY}' metadata; export it with `dvc repro export_onnx`")
    return InputSpec.from_json(meta[SPEC_KEY])


def static_side(spec: InputSpec) -> int:
    """The square input side of a fixed-size export: ``max_size`` rounded up to ``size_divisible``."""
    return math.ceil(spec.max_size / spec.size_divisible) * spec.size_divisible


def make_input_static(model: onnx.ModelProto, side: int) -> None:
    """Overwrite the image input's dims with (1, 3, side, side). The stage gets the ONNX file,
    not the checkpoint, so a dynamic export is made static here rather than re-exported."""
    (image,) = [i for i in model.graph.input if i.name == INPUT_NAME]
    for dim, value in zip(image.type.tensor_type.shape.dim, (1, 3, side, side), strict=True):
        dim.Clear()
        dim.dim_value = value


def _contains(graph: gs.Graph, op: str) -> bool:
    return any(
        node.op == op or any(isinstance(a, gs.Graph) and _contains(a, op) for a in node.attrs.values())
        for node in graph.nodes
    )


def inline_nms_branches(graph: gs.Graph) -> int:
    """Replace every ``If`` by its branch that runs NonMaxSuppression; the number replaced.

    The other branch returns an empty tensor for zero boxes, which the NMS branch also does
    (NMS of nothing keeps nothing). An ``If`` of another kind is an error: inlining it
    blindly could change what the graph computes."""
    inlined = index = 0
    while index < len(graph.nodes):
        node = graph.nodes[index]
        if node.op != "If":
            index += 1
            continue
        with_nms = [
            b for b in (node.attrs["then_branch"], node.attrs["else_branch"]) if _contains(b, "NonMaxSuppression")
        ]
        if len(with_nms) != 1:
            raise ValueError(f"If node {node.name!r}: not an NMS guard (no single branch with NonMaxSuppression)")
        branch = with_nms[0]
        for tensor in {t.name: t for n in branch.nodes for t in n.outputs}.values():  # unique once outside
            tensor.name = f"{tensor.name}__{node.name}"
        identities = []
        for node_out, branch_out in zip(node.outputs, branch.outputs, strict=True):
            node_out.inputs.clear()
            producers = [n for n in branch.nodes if branch_out in n.outputs]
            if producers:
                producers[0].outputs[producers[0].outputs.index(branch_out)] = node_out
            else:  # the branch returns an outer tensor or a constant as it is
                identities.append(gs.Node("Identity", inputs=[branch_out], outputs=[node_out]))
        node.inputs.clear()
        graph.nodes[index : index + 1] = branch.nodes + identities
        inlined += 1  # the inlined nodes are scanned next, so a nested If is inlined too
    return inlined


def fold(graph: gs.Graph) -> gs.Graph:
    """Constant-fold (ONNX Runtime evaluates the constant parts) until the graph stops
    shrinking; with a static input the Shape/Gather/Concat chains become constants."""
    ort.set_default_logger_severity(3)  # the folding sessions warn about every unused initializer
    count = -1
    for _ in range(FOLD_ROUNDS):
        if len(graph.nodes) == count:
            break
        count = len(graph.nodes)
        graph = gs.import_onnx(onnx.shape_inference.infer_shapes(gs.export_onnx(graph), data_prop=True))
        graph.fold_constants(fold_shapes=True, error_ok=False).cleanup(remove_unused_graph_inputs=False)
    return graph.toposort()


def _constant_input(node: gs.Node, index: int) -> np.ndarray | None:
    if index >= len(node.inputs) or not isinstance(node.inputs[index], gs.Constant):
        return None
    return np.asarray(node.inputs[index].values)


def tensorrt_problems(model: onnx.ModelProto) -> list[str]:
    """What TensorRT's ONNX parser is known to refuse in this graph (empty: none found),
    checked on CPU so a graph that cannot build is caught before a GPU machine sees it."""
    graph = gs.import_onnx(model)
    problems = []
    for tensor in graph.inputs:
        if tensor.name == INPUT_NAME and not all(isinstance(d, int) and d > 0 for d in tensor.shape or [None]):
            problems.append(f"input '{tensor.name}' is not static: {tensor.shape}")
    for node in graph.nodes:
        if node.op in ("If", "Loop", "Scan"):
            problems.append(f"{node.op} node {node.name!r}: control flow")
        elif node.op == "TopK":
            k = _constant_input(node, 1)
            if k is None:
                problems.append(f"TopK {node.name!r}: K is not a constant")
            elif int(k.max()) >= TOPK_LIMIT:
                problems.append(f"TopK {node.name!r}: K={int(k.max())} is not below {TOPK_LIMIT}")
        elif node.op in ("Conv", "ConvTranspose") and _constant_input(node, 1) is None:
            problems.append(f"{node.op} {node.name!r}: weights are not a constant")
    return problems


@dataclass
class SurgeryReport:
    """The graph before and after (node counts by op) and what the surgery did."""

    side: int
    ifs_inlined: int
    nodes_before: int
    nodes_after: int
    ops_before: dict[str, int]
    ops_after: dict[str, int]


def _op_counts(model: onnx.ModelProto) -> dict[str, int]:
    return dict(Counter(n.op_type for n in model.graph.node).most_common())


def prepare_for_tensorrt(onnx_in: Path, onnx_out: Path) -> SurgeryReport:
    """Write the graph TensorRT parses: static (1, 3, S, S) input, no ``If``, shapes folded.
    It runs in ONNX Runtime like the original (its spec now ``fixed_size``), so that it
    computes the same thing is checked on any machine."""
    model = onnx.load(str(onnx_in))
    spec = read_spec(model, onnx_in)
    side = static_side(spec)
    before = _op_counts(model)
    make_input_static(model, side)
    graph = gs.import_onnx(onnx.shape_inference.infer_shapes(model, data_prop=True))
    inlined = inline_nms_branches(graph)
    out = gs.export_onnx(fold(graph))
    onnx.helper.set_model_props(out, {SPEC_KEY: replace(spec, fixed_size=True).to_json()})
    onnx.checker.check_model(out, full_check=True)
    problems = tensorrt_problems(out)
    if problems:
        raise ValueError(f"{onnx_in}: the surgered graph still has what TensorRT refuses:\n" + "\n".join(problems))
    onnx_out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(out, str(onnx_out))
    after = _op_counts(out)
    return SurgeryReport(side, inlined, sum(before.values()), sum(after.values()), before, after)


def convert_dense_to_fp16(graph: gs.Graph) -> int:
    """Make the convolutional part rooted at the image (backbone, FPN, RPN head) fp16 by
    explicit casts; the number of nodes converted.

    For TensorRT 11, whose strongly typed networks take their precision from the ONNX types.
    Box decoding, NMS, RoIAlign and the heads stay fp32, where rounding would move boxes and
    scores; the dense part, where nearly all the FLOPs are, becomes fp16."""
    (image,) = [t for t in graph.inputs if t.name == INPUT_NAME]
    image16 = gs.Variable(f"{INPUT_NAME}_fp16", dtype=np.float16, shape=image.shape)
    region = {image.name}
    converted: list[gs.Node] = []
    for node in graph.nodes:  # topological order: a node's inputs are classified before it
        if node.op not in FP16_OPS:
            continue
        data = [node.inputs[i] for i in FP16_OPS[node.op] if i < len(node.inputs)]
        variables = [t for t in data if not isinstance(t, gs.Constant)]
        if variables and all(t.name in region for t in variables):
            converted.append(node)
            region.update(t.name for t in node.outputs)
    inside = {id(n) for n in converted}
    halves: dict[str, gs.Constant] = {}  # shared weights (the RPN head's, across levels) converted once
    casts = [gs.Node("Cast", inputs=[image], outputs=[image16], attrs={"to": onnx.TensorProto.FLOAT16})]
    for node in converted:
        for i in FP16_OPS[node.op]:
            tensor = node.inputs[i] if i < len(node.inputs) else None
            if tensor is image:
                node.inputs[i] = image16
            elif isinstance(tensor, gs.Constant) and tensor.values.dtype == np.float32:
                if tensor.name not in halves:
                    halves[tensor.name] = gs.Constant(f"{tensor.name}_fp16", tensor.values.astype(np.float16))
                node.inputs[i] = halves[tensor.name]
        for out in node.outputs:
            out.dtype = np.float16
            outside = [c for c in out.outputs if id(c) not in inside]
            if not outside and out not in graph.outputs:
                continue
            back = gs.Variable(f"{out.name}_fp32", dtype=np.float32, shape=out.shape)
            for consumer in outside:
                consumer.inputs[consumer.inputs.index(out)] = back
            casts.append(gs.Node("Cast", inputs=[out], outputs=[back], attrs={"to": onnx.TensorProto.FLOAT}))
    graph.nodes.extend(casts)
    graph.cleanup().toposort()
    return len(converted)


def write_fp16(onnx_in: Path, onnx_out: Path) -> int:
    """``convert_dense_to_fp16`` from file to file, metadata kept; the nodes converted."""
    model = onnx.load(str(onnx_in))
    graph = gs.import_onnx(model)
    converted = convert_dense_to_fp16(graph)
    out = gs.export_onnx(graph)
    out.metadata_props.extend(model.metadata_props)
    onnx.checker.check_model(out, full_check=True)
    onnx.save(out, str(onnx_out))
    return converted


def trt_available() -> tuple[bool, str]:
    """Whether an engine can be built here, and a sentence saying why (not)."""
    try:
        import tensorrt as trt
    except (ImportError, OSError) as exc:  # OSError: the wheel is there but its libraries are not
        return False, f"TensorRT is not importable ({exc}); {INSTALL_HINT}"
    import torch

    if int(trt.__version__.split(".")[0]) < MIN_TENSORRT:
        return (
            False,
            f"TensorRT {trt.__version__} is too old (the name-based I/O API needs >= {MIN_TENSORRT}); {INSTALL_HINT}",
        )
    if not torch.cuda.is_available():
        return (
            False,
            f"TensorRT {trt.__version__} is installed but no NVIDIA GPU is visible (torch.cuda.is_available() is False)",
        )
    return True, f"TensorRT {trt.__version__} on {torch.cuda.get_device_name(0)}"


def _check_choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{key}: {value!r}; expected one of {choices}")


def build_engine(onnx_path: Path, engine_path: Path, precision: str, workspace_mb: int) -> dict[str, Any]:
    """Parse ``onnx_path`` (a ``prepare_for_tensorrt`` output), build and serialize the engine
    with its ``<engine>.json`` beside it; the facts of the build.

    fp16 on TensorRT 10.x: the builder flag, where the GPU has fast fp16 (else fp32, said so).
    fp16 on TensorRT 11.x: the graph with its dense part cast to fp16, strongly typed.
    fp32 turns TF32 off, so that fp32 means the precision ONNX Runtime computes in."""
    import tensorrt as trt
    import torch

    _check_choice("trt.precision", precision, PRECISIONS)
    spec = read_spec(onnx.load(str(onnx_path), load_external_data=False), onnx_path)
    logger = trt.Logger(trt.Logger.WARNING)
    trt.init_libnvinfer_plugins(logger, "")  # RoiAlign and NMS may map to plugin layers
    builder = trt.Builder(logger)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    weak_typing = hasattr(trt.BuilderFlag, "FP16")  # TensorRT 10.x; removed in 11
    source, built, note = onnx_path, precision, "fp32 throughout"
    if precision == "fp32" and hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)
        note = "fp32 throughout, TF32 off"
    elif precision == "fp16" and weak_typing:
        if builder.platform_has_fast_fp16:
            config.set_flag(trt.BuilderFlag.FP16)
            note = "TensorRT 10 weak typing: BuilderFlag.FP16, layers run in fp16 where TensorRT finds it faster"
        else:
            built, note = "fp32", "this GPU has no fast fp16: built in fp32"
    elif precision == "fp16":
        source = engine_path.with_name(FP16_NAME)
        converted = write_fp16(onnx_path, source)
        note = f"TensorRT 11 strong typing: {converted} backbone/FPN/RPN-head nodes fp16 in {source.name}"
    network = builder.create_network(0)  # explicit batch always; strongly typed always in 11.x
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(source)):
        errors = "\n".join(f"  {parser.get_error(i)}" for i in range(parser.num_errors))
        raise RuntimeError(f"{source}: TensorRT {trt.__version__} cannot parse this graph:\n{errors}")
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        shape = tuple(tensor.shape)
        if any(d < 0 for d in shape):
            raise ValueError(
                f"{source}: input '{tensor.name}' is dynamic {shape}; build from prepare_for_tensorrt's output"
            )
        if shape:  # the image: min = opt = max, the one size a fixed-size spec pads to
            profile.set_shape(tensor.name, shape, shape, shape)
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"{source}: TensorRT {trt.__version__} failed to build an engine; its log above says why")
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    engine_path.write_bytes(bytes(serialized))
    meta = {
        "input_spec": asdict(spec),
        "precision": built,
        "precision_note": note,
        "tensorrt": trt.__version__,
        "device": torch.cuda.get_device_name(0),
        "onnx": source.name,
    }
    engine_meta_path(engine_path).write_text(json.dumps(meta, indent=2) + "\n")
    return meta


@dataclass
class BuildResult:
    engine: Path | None  # None: skipped
    reason: str  # why skipped, or what was built on what
    surgery: SurgeryReport | None  # None: disabled


def _skip(out_dir: Path, title: str, reason: str, what_next: str) -> None:
    (out_dir / SKIPPED_NAME).write_text(f"# TensorRT engine not built: {title}\n\n{reason}\n\n{what_next}\n")


def build(onnx_path: Path, out_dir: Path, cfg: Any) -> BuildResult:
    """The ``build_trt`` stage: ``trt.enabled`` auto (build where TensorRT and a GPU exist,
    else ``SKIPPED.md`` with the reason), on (no TensorRT or GPU is an error) or off.
    The surgered graph is written whenever not off: it is the part any machine can check."""
    # YAML 1.1 (PyYAML, so OmegaConf and `dvc exp run -S`) reads a bare on/off as a boolean.
    mode = {True: "on", False: "off"}.get(cfg.enabled, str(cfg.enabled))
    _check_choice("trt.enabled", mode, MODES)
    _check_choice("trt.precision", str(cfg.precision), PRECISIONS)  # before a CPU machine skips: a typo shows anywhere
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in (
        ENGINE_NAME,
        engine_meta_path(Path(ENGINE_NAME)).name,
        SKIPPED_NAME,
        SURGERED_NAME,
        FP16_NAME,
        REPORT_NAME,
    ):
        (out_dir / stale).unlink(missing_ok=True)
    if mode == "off":
        _skip(
            out_dir,
            "disabled",
            "params.yaml has `trt.enabled: off`.",
            "Set it to `auto` (build where TensorRT and an NVIDIA GPU exist) or `on`, then `dvc repro build_trt`.",
        )
        return BuildResult(None, "disabled (trt.enabled: off)", None)
    available, reason = trt_available()
    if mode == "on" and not available:
        raise RuntimeError(f"trt.enabled: on, but {reason}")
    surgery = prepare_for_tensorrt(onnx_path, out_dir / SURGERED_NAME)
    (out_dir / REPORT_NAME).write_text(json.dumps({"surgery": asdict(surgery)}, indent=2) + "\n")
    if not available:
        _skip(
            out_dir,
            "TensorRT or GPU missing",
            f"{reason}.\n\n`{SURGERED_NAME}` beside this file is the graph the engine would be built from: input made "
            f"static (1, 3, {surgery.side}, {surgery.side}), {surgery.ifs_inlined} NMS `If` nodes inlined, shapes folded "
            f"({surgery.nodes_before} → {surgery.nodes_after} nodes); it runs in ONNX Runtime with the same results as the export.",
            "To build the engine: on a machine with an NVIDIA GPU, `pip install -e '.[trt]'`, then `dvc repro build_trt` "
            "(params.yaml `trt.enabled: auto` or `on`).",
        )
        return BuildResult(None, reason, surgery)
    meta = build_engine(out_dir / SURGERED_NAME, out_dir / ENGINE_NAME, str(cfg.precision), int(cfg.workspace_mb))
    (out_dir / REPORT_NAME).write_text(json.dumps({"surgery": asdict(surgery), "engine": meta}, indent=2) + "\n")
    return BuildResult(out_dir / ENGINE_NAME, f"{meta['precision']} engine, {reason}", surgery)
