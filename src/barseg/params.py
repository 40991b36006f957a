"""``params.yaml`` access: each stage reads only the sections it declares in ``dvc.yaml``."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

PARAMS_FILE = Path("params.yaml")


def load_section(name: str, path: Path = PARAMS_FILE) -> DictConfig:
    config = OmegaConf.load(path)
    if not isinstance(config, DictConfig) or name not in config:
        raise KeyError(f"{path}: has no '{name}' section")
    section = config[name]
    assert isinstance(section, DictConfig)
    return section
