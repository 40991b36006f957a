"""Tiny training params for stage scripts run in a temporary folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from tests.conftest import TINY_MODEL


def tiny_params(**train: Any) -> dict[str, Any]:
    """A whole params.yaml for stage scripts run in a temporary folder."""
    params = OmegaConf.to_container(OmegaConf.load(Path(__file__).parents[2] / "params.yaml"))
    assert isinstance(params, dict)
    params["model"].update(TINY_MODEL)
    params["train"].update(
        {
            "max_steps": 6,
            "max_minutes": None,
            "anneal_by": "steps",  # no time budget to anneal over
            "warmup_steps": 2,
            "val_every": 3,
            "val_images": 2,
            "checkpoint_every": 2,
            "log_every": 1,
            **train,
        }
    )
    return params
