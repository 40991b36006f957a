"""The package's import graph: no circles, dependencies pointing one way (docs/design.md §4),
and the CLI and serving modules free of torch."""

from __future__ import annotations

import subprocess
import sys

from tests.code_graph import SRC, imported_modules, module_file
from tests.conftest import REPO


def _graph() -> dict[str, set[str]]:
    graph = {}
    for path in SRC.rglob("*.py"):
        module = ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        targets = {n for n in imported_modules(path) if module_file(n) is not None and n != module}
        graph[module] = {t for t in targets if not module.startswith(t + ".")}  # a module's own packages
    return graph


def test_no_module_imports_one_that_imports_it_back() -> None:
    graph = _graph()
    circles = []
    for start in graph:
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == start:
                    circles.append(" -> ".join([*path, nxt]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
    assert not circles, circles


# docs/design.md §4: a subpackage imports only those of lower layers, so the data layer never
# needs the model, and serving needs neither training nor export code.
LAYERS = {
    "barseg.params": 0,
    "barseg.data": 0,
    "barseg.weights": 1,
    "barseg.model": 2,
    "barseg.infer": 3,
    "barseg.metrics": 4,
    "barseg.export": 5,
    "barseg.serve": 5,
    "barseg.cli": 6,
}


def _layer(module: str) -> int:
    return LAYERS[".".join(module.split(".")[:2])]


def test_every_subpackage_imports_only_lower_layers() -> None:
    upward = [
        f"{module} -> {target}"
        for module, targets in _graph().items()
        if module != "barseg"
        for target in targets
        if _layer(target) >= _layer(module) and target.split(".")[:2] != module.split(".")[:2]
    ]
    assert not upward, upward


def test_the_cli_and_the_modules_the_service_serves_with_never_import_torch() -> None:
    # The service module itself needs a stored model to import; its Bento test checks what it ships.
    code = (
        "import sys, barseg.cli, barseg.serve.settings, barseg.data.images, barseg.infer.onnx_runtime, "
        "barseg.infer.decode, barseg.metrics.evaluation; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stdout + out.stderr
