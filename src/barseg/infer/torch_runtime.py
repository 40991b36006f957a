"""PyTorch runtime: a Lightning checkpoint, loaded without Lightning (weights only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from barseg.infer.predictor import Predictor, RawDetections
from barseg.model.factory import build_model


def load_checkpoint_model(path: Path) -> torch.nn.Module:
    """The eval-mode network of a checkpoint written by the train stage."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    try:
        cfg = OmegaConf.create(checkpoint["hyper_parameters"]["model_cfg"])
        state = {k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items()}
    except (KeyError, TypeError) as exc:
        raise ValueError(
            f"{path}: not a barseg training checkpoint (no hyper_parameters.model_cfg/state_dict)"
        ) from exc
    cfg.init_weights = None  # the checkpoint holds the weights
    model = build_model(cfg)
    model.load_state_dict(state)
    return model.eval()


class TorchPredictor(Predictor):
    def __init__(self, checkpoint: Path, threshold: float = 0.5, device: str = "cpu") -> None:
        super().__init__(threshold)
        self.device = torch.device(device)
        self.model = load_checkpoint_model(checkpoint).to(self.device)

    @torch.inference_mode()
    def raw(self, images: list[np.ndarray]) -> list[RawDetections]:
        tensors = [
            torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div_(255).to(self.device)
            for img in images
        ]
        outputs = self.model(tensors)
        return [
            RawDetections(o["boxes"].cpu().numpy(), o["scores"].cpu().numpy(), o["masks"][:, 0].cpu().numpy())
            for o in outputs
        ]
