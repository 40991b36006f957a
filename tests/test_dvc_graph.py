"""The DAG in dvc.yaml against the code: every module a stage runs is one of its deps."""

from __future__ import annotations

import pytest
import yaml

from tests.code_graph import code_of
from tests.conftest import REPO

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


def test_training_and_evaluation_rerun_when_the_released_weights_they_start_from_change() -> None:
    """``model.init_weights`` is a path param: DVC sees a new file under the same name only
    through ``weights/weights.json``, which records every release's SHA-256."""
    init = yaml.safe_load((REPO / "params.yaml").read_text())["model"]["init_weights"]
    assert init is None or (REPO / init).parent == REPO / "weights", "the default starts from a release"
    for stage in ("train", "evaluate"):
        assert "weights/weights.json" in STAGES[stage]["deps"], stage


def test_a_generator_change_reruns_only_what_uses_the_generator() -> None:
    # Evaluation and export read sets, not scenes: a new generator must not re-run them (8 min).
    generator = REPO / "src/barseg/data/synth"
    using = {
        name
        for name, spec in STAGES.items()
        if any(generator == REPO / d or REPO / d in generator.parents for d in spec["deps"])
    }
    assert using == {"synthesize", "package"}, using  # package: the Bento's version hashes all its code
