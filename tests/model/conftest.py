"""Tiny model and training params, and a tiny processed data set, for fast CPU tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from omegaconf import DictConfig, OmegaConf

from barseg.data.split import SplitFractions, process
from barseg.data.synth import generate
from barseg.data.validate import Source
from tests.conftest import clean_synth_params, params_section

TINY_MODEL = {
    "backbone": "mobilenet_v3_large_fpn",
    "returned_layers": [2, 3, 5],
    "fpn_channels": 64,
    "min_size": 256,
    "max_size": 256,
    "anchor_sizes": [[16, 24], [40, 64], [96, 160], [256, 384]],
    "rpn_pre_nms_top_n_train": 300,
    "rpn_post_nms_top_n_train": 150,
    "rpn_pre_nms_top_n_test": 150,
    "rpn_post_nms_top_n_test": 100,
    "box_batch_size_per_image": 64,
    "box_head_width": 256,
    "mask_head_width": 64,
    "mask_head_depth": 2,
}


def tiny_model(**overrides: Any) -> DictConfig:
    return params_section("model", **{**TINY_MODEL, **overrides})


def tiny_params(**train: Any) -> dict[str, Any]:
    """A whole params.yaml for stage scripts run in a temporary folder."""
    params = OmegaConf.to_container(OmegaConf.load(Path(__file__).parents[2] / "params.yaml"))
    assert isinstance(params, dict)
    params["model"].update(TINY_MODEL)
    params["train"].update(
        {
            "max_steps": 6,
            "max_minutes": None,
            "warmup_steps": 2,
            "val_every": 3,
            "val_images": 2,
            "checkpoint_every": 2,
            "log_every": 1,
            **train,
        }
    )
    return params


@pytest.fixture(scope="session")
def tiny_processed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """COCO splits of 16 clean synthetic 256-px scenes, most with one to three codes."""
    root = tmp_path_factory.mktemp("tiny")
    synth = clean_synth_params(count=16, image_size=256, min_module_px=1.5, scenes={"single": 0.6, "few": 0.4})
    generate(synth, root / "synthetic", workers=1)
    process(
        [Source("synthetic", root / "synthetic")], set(), root / "processed", SplitFractions(0.6, 0.2, 0.2), None, 95
    )
    return root / "processed"
