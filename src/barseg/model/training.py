"""Fit the model from params: trainer, logger, checkpoints, resume (the `train` stage's engine)."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from dvclive.lightning import DVCLiveLogger
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint, TQDMProgressBar

from barseg.model.datamodule import BarcodeDataModule
from barseg.model.module import BarcodeSegmenter

LAST = "last.ckpt"


def optim_config(cfg: DictConfig) -> dict[str, Any]:
    keys = ("optimizer", "lr", "weight_decay", "schedule", "warmup_steps", "max_steps", "step_milestones")
    return {k: OmegaConf.to_container(cfg[k]) if OmegaConf.is_config(cfg[k]) else cfg[k] for k in keys}


def resume_checkpoint(checkpoints: Path, hparams: dict[str, Any]) -> Path | None:
    """``last.ckpt`` when it was written by a run with the same model and optimiser params.

    A checkpoint from different params (a new sweep point) is moved aside, not resumed: its
    weights would silently carry the old experiment into the new one.
    """
    last = checkpoints / LAST
    if not last.is_file():
        return None
    saved = torch.load(last, map_location="cpu", weights_only=False).get("hyper_parameters", {})
    if saved == hparams:
        print(f"train: resuming from {last}")
        return last
    stale = checkpoints.with_name(checkpoints.name + ".stale")
    shutil.rmtree(stale, ignore_errors=True)
    checkpoints.rename(stale)
    print(f"train: {last} was trained with other params; moved to {stale}, starting fresh")
    return None


def fit(
    model_cfg: DictConfig,
    cfg: DictConfig,
    train_json: Path,
    val_json: Path,
    checkpoints: Path,
    out: Path,
    metrics_dir: Path,
) -> Path:
    """Train, write the final weights-only checkpoint to ``out`` and return it."""
    pl.seed_everything(int(cfg.seed), workers=True)
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    hparams = {"model_cfg": OmegaConf.to_container(model_cfg, resolve=True), "optim_cfg": optim_config(cfg)}
    module = BarcodeSegmenter(**hparams)  # type: ignore[arg-type]
    data = BarcodeDataModule(train_json, val_json, cfg, long_side=int(model_cfg.max_size))
    resume = resume_checkpoint(checkpoints, hparams) if cfg.resume == "auto" else None
    checkpointing = ModelCheckpoint(
        dirpath=checkpoints,
        filename="step{step:06d}",
        auto_insert_metric_name=False,
        every_n_train_steps=int(cfg.checkpoint_every),
        save_top_k=-1,  # keep every one: evaluating them gives the accuracy-vs-time curve
        save_last=True,
    )
    trainer = pl.Trainer(
        max_steps=int(cfg.max_steps),
        max_time=timedelta(minutes=float(cfg.max_minutes)) if cfg.max_minutes else None,
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        strategy=cfg.strategy,
        num_nodes=int(cfg.num_nodes),
        precision=cfg.precision,
        val_check_interval=int(cfg.val_every),
        check_val_every_n_epoch=None,
        num_sanity_val_steps=0,
        gradient_clip_val=float(cfg.grad_clip) if cfg.grad_clip else None,
        log_every_n_steps=int(cfg.log_every),
        logger=DVCLiveLogger(dir=str(metrics_dir), dvcyaml=None, save_dvc_exp=False, resume=resume is not None),
        callbacks=[checkpointing, LearningRateMonitor("step"), TQDMProgressBar(refresh_rate=int(cfg.log_every))],
        enable_model_summary=False,
    )
    trainer.fit(module, datamodule=data, ckpt_path=resume)
    out.parent.mkdir(parents=True, exist_ok=True)
    trainer.save_checkpoint(out, weights_only=True)
    return out
