"""Shared fixtures: the repository root, params sections, small synthetic data sets."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from omegaconf import DictConfig, OmegaConf

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = Path(os.environ.get("BARSEG_REAL_DATA", REPO.parent / "shared" / "data" / "real"))

os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")


def params_section(name: str, **overrides: Any) -> DictConfig:
    """A section of the repository's params.yaml with dotted-key overrides applied."""
    section = OmegaConf.load(REPO / "params.yaml")[name]
    for key, value in overrides.items():
        OmegaConf.update(section, key, value, merge=False)
    return section


def clean_synth_params(**overrides: Any) -> DictConfig:
    """Synthesis without photometric damage, occlusion or clutter: every code readable."""
    clean = {
        "degrade.enabled": False,
        "bend": 0.0,
        "crumple": 0.0,
        "occlusion": 0.0,
        "hard_negatives": [0, 0],
        "human_readable": 0.0,
        "min_module_px": 3.0,
        "dense_max_module_px": 4.0,
        "jpeg_quality": [95, 95],
        "scenes": {"single": 0.2, "few": 0.5, "dense": 0.3},
    }
    return params_section("synth", **{**clean, **overrides})


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def real_data() -> Path:
    if not REAL_DATA.is_dir():
        pytest.skip(f"real evaluation photos not found at {REAL_DATA} (set BARSEG_REAL_DATA)")
    return REAL_DATA
