"""The package's import graph: no circles, and the serving path free of torch."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO
from tests.test_dvc_graph import SRC, _imported_modules, _module_file


def _graph() -> dict[str, set[str]]:
    graph = {}
    for path in SRC.rglob("*.py"):
        module = ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        targets = {n for n in _imported_modules(path) if _module_file(n) is not None and n != module}
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


def test_the_onnx_cli_path_and_the_service_never_import_torch() -> None:
    code = (
        "import sys, barseg.cli, barseg.serve.settings, barseg.data.images, barseg.infer.onnx_runtime, "
        "barseg.infer.decode, barseg.metrics.evaluation; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stdout + out.stderr
