"""LightningModule: Mask R-CNN training with warm-up + cosine/step schedules from params."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf
from pytorch_lightning.callbacks import Timer
from torch import nn

from barseg.data.dataset import Target
from barseg.model.factory import build_model


class BarcodeSegmenter(pl.LightningModule):
    """Wraps the plain ``nn.Module`` from ``build_model``; knows losses and optimisers only.

    ``model_cfg`` (the ``model`` section) is saved in every checkpoint, so a checkpoint alone
    rebuilds its network (``barseg.infer`` does, without importing Lightning).
    """

    def __init__(self, model_cfg: dict[str, Any], optim_cfg: dict[str, Any]) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = build_model(OmegaConf.create(model_cfg))
        self.optim_cfg = optim_cfg
        self.spent = 0.0  # fraction of the time budget used (train.anneal_by: time)

    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        return self.model(images)

    def training_step(self, batch: tuple[list[torch.Tensor], list[Target]], batch_idx: int) -> torch.Tensor:
        images, targets = batch
        losses = self.model(images, targets)
        loss = sum(losses.values())
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, batch_size=len(images))
        self.log("train/loss", loss, prog_bar=True, batch_size=len(images))
        return loss

    def validation_step(self, batch: tuple[list[torch.Tensor], list[Target]], batch_idx: int) -> None:
        """Validation loss: the training losses with BatchNorm frozen (eval statistics), so
        validating never changes the model. Accuracy is measured by ``evaluate``."""
        images, targets = batch
        self.model.train()
        for module in self.model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
        losses = self.model(images, targets)
        self.log("val/loss", sum(losses.values()), prog_bar=True, batch_size=len(images), sync_dist=True)
        self.log_dict({f"val/{k}": v for k, v in losses.items()}, batch_size=len(images), sync_dist=True)

    def configure_optimizers(self) -> Any:
        cfg = self.optim_cfg
        params = [p for p in self.model.parameters() if p.requires_grad]
        if cfg["optimizer"] == "adamw":
            optimizer: torch.optim.Optimizer = torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=cfg["weight_decay"])
        elif cfg["optimizer"] == "sgd":
            optimizer = torch.optim.SGD(params, lr=cfg["lr"], momentum=0.9, weight_decay=cfg["weight_decay"])
        else:
            raise ValueError(f"train.optimizer: expected adamw or sgd, got {cfg['optimizer']!r}")
        anneal_by = cfg.get("anneal_by", "steps")
        if anneal_by not in ("steps", "time"):
            raise ValueError(f"train.anneal_by: expected steps or time, got {anneal_by!r}")
        schedule = lr_schedule(
            cfg["schedule"],
            cfg["warmup_steps"],
            cfg["max_steps"],
            list(cfg.get("step_milestones", [])),
            clock=(lambda: self.spent) if anneal_by == "time" else None,
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if self.optim_cfg.get("anneal_by") == "time":
            # Rank 0's clock for every rank: DDP replicas must follow one learning rate.
            self.spent = float(self.trainer.strategy.broadcast(self.time_spent(), src=0))

    def time_spent(self) -> float:
        """The fraction of ``train.max_minutes`` used so far (validation and checkpoints
        included), from Lightning's timer, which a resumed run restores."""
        timer = next((c for c in self.trainer.callbacks if isinstance(c, Timer)), None)  # type: ignore[attr-defined]
        remaining = timer.time_remaining() if timer is not None else None
        if timer is None or remaining is None:
            raise ValueError("train.anneal_by: time needs train.max_minutes")
        elapsed = timer.time_elapsed()
        return elapsed / max(1e-9, elapsed + remaining)


def lr_schedule(
    kind: str, warmup: int, total: int, milestones: list[float], clock: Callable[[], float] | None = None
) -> Callable[[int], float]:
    """LR multiplier per step: linear warm-up, then cosine to 1% or x0.1 at each milestone.

    Progress is the fraction of ``total`` steps done, or, with ``clock`` (the fraction of the
    time budget spent), whichever is further: a run cut by its time budget then ends annealed
    on any machine, instead of wherever the budget happens to stop the step schedule."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        spent = clock() if clock is not None else 0.0
        if kind == "cosine":
            progress = max(min(1.0, (step - warmup) / max(1, total - warmup)), min(1.0, spent))
            return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress))
        if kind == "step":
            progress = max(step / total, spent)
            return 0.1 ** sum(progress >= m for m in milestones)
        if kind == "constant":
            return 1.0
        raise ValueError(f"train.schedule: expected cosine, step or constant, got {kind!r}")

    return factor
