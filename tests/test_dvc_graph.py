"""The DAG in dvc.yaml against the code: every module a stage runs is one of its deps."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

SRC = REPO / "src"


def _module_file(name: str) -> Path | None:
    base = SRC.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {n for n in names if n.split(".")[0] == "barseg"}


def code_of(script: Path, unused: frozenset[str] = frozenset()) -> set[Path]:
    """The files of ``barseg`` that running ``script`` can execute (imports anywhere in a
    file, function bodies included, and the packages around each module), less the modules
    named in ``unused`` and what only they import."""
    seen: set[Path] = set()
    todo = [script]
    while todo:
        for name in _imported_modules(todo.pop()):
            if any(name == u or name.startswith(u + ".") for u in unused):
                continue
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                file = _module_file(".".join(parts[:i]))
                if file is not None and file not in seen:
                    seen.add(file)
                    todo.append(file)
    return seen


STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_module_a_stage_runs_is_a_dependency(stage: str) -> None:
    spec = STAGES[stage]
    script = REPO / spec["cmd"].split()[1]
    deps = [REPO / d for d in spec["deps"]]
    assert script in deps
    missing = sorted(
        str(f.relative_to(REPO)) for f in code_of(script) if not any(f == d or d in f.parents for d in deps)
    )
    assert not missing, f"{stage}: runs {missing} without depending on them"


def test_train_reruns_for_every_param_that_changes_what_it_learns() -> None:
    from barseg.model.training import NOT_IN_RESULT

    declared = {p.removeprefix("train.") for p in STAGES["train"]["params"] if p.startswith("train.")}
    keys = set(yaml.safe_load((REPO / "params.yaml").read_text())["train"])
    assert declared == keys - set(NOT_IN_RESULT), "dvc.yaml's train params and training.NOT_IN_RESULT disagree"
