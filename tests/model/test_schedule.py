"""The learning-rate schedule: warm-up, then cosine or steps, by steps or by the time budget."""

from __future__ import annotations

import math

import pytest

from barseg.model.module import lr_schedule


def test_cosine_by_steps_warms_up_then_anneals_to_one_percent() -> None:
    factor = lr_schedule("cosine", warmup=10, total=110, milestones=[])
    assert factor(0) == pytest.approx(0.1) and factor(9) == pytest.approx(1.0)
    assert factor(60) == pytest.approx(0.01 + 0.99 * 0.5)
    assert factor(110) == pytest.approx(0.01) and factor(500) == pytest.approx(0.01)


def test_a_spent_time_budget_anneals_whatever_the_step() -> None:
    """On a slow machine the time budget ends the run at a third of max_steps: the schedule
    must still end at its floor there, not at 3/4 of the peak rate."""
    spent = {"fraction": 0.0}
    factor = lr_schedule("cosine", warmup=10, total=3010, milestones=[], clock=lambda: spent["fraction"])
    spent["fraction"] = 0.5
    assert factor(1000) == pytest.approx(0.01 + 0.99 * 0.5)  # time is further along than steps (0.33)
    spent["fraction"] = 1.0
    assert factor(1000) == pytest.approx(0.01)
    spent["fraction"] = 0.1
    steps_done = (2500 - 10) / 3000
    assert factor(2500) == pytest.approx(0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * steps_done)))  # steps lead
    step = lr_schedule("step", warmup=0, total=1000, milestones=[0.7, 0.9], clock=lambda: 0.95)
    assert step(10) == pytest.approx(0.01)


def test_an_unknown_schedule_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"train\.schedule"):
        lr_schedule("linear", warmup=0, total=10, milestones=[])(5)


def test_annealing_by_time_without_a_time_budget_is_a_clear_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The default anneals by time; a run by steps (``max_minutes: null``, the GPU preset) must
    say so (``anneal_by: steps``) and is told before anything loads."""
    from barseg.model.training import fit
    from tests.conftest import params_section, tiny_model

    assert params_section("train").anneal_by == "time"
    with pytest.raises(ValueError, match=r"train\.anneal_by: time needs train\.max_minutes"):
        fit(tiny_model(), params_section("train", max_minutes=None), *(tmp_path / n for n in "abcde"))
