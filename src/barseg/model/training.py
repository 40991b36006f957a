"""Fit the model from params: trainer, logger, checkpoints, resume (the `train` stage's engine)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from dvclive.lightning import DVCLiveLogger
from lightning_fabric.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import (
    Callback,
    EMAWeightAveraging,
    LearningRateMonitor,
    ModelCheckpoint,
    TQDMProgressBar,
)

from barseg.model.datamodule import BarcodeDataModule
from barseg.model.module import BarcodeSegmenter

LAST = "last.ckpt"
RUN_FILE = "run.json"
# train params that change how fast or how verbosely a run goes, not the computation of a step.
# (Under a max_minutes ceiling, speed decides how many steps fit: a faster setting trains
# further; DVC does not rerun for it and a resumed run may change it.)
NOT_IN_RESULT = ("num_workers", "threads", "log_every", "resume")
TRAINING_CODE = ("model", "data")  # barseg subpackages whose code a resumed run must share


def optim_config(cfg: DictConfig) -> dict[str, Any]:
    keys = ("optimizer", "lr", "weight_decay", "schedule", "warmup_steps", "max_steps", "step_milestones", "anneal_by")
    return {k: OmegaConf.to_container(cfg[k]) if OmegaConf.is_config(cfg[k]) else cfg[k] for k in keys}


def training_code_digest() -> str:
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha1()
    for path in sorted(p for sub in TRAINING_CODE for p in (package / sub).rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


def run_identity(model_cfg: DictConfig, cfg: DictConfig, train_json: Path) -> str:
    """What a run's result depends on: the model and train params (less ``NOT_IN_RESULT``),
    the training data (the split file names every image by its content hash) and the code
    that trains (``barseg.model``, ``barseg.data``)."""
    train = {k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items() if k not in NOT_IN_RESULT}  # type: ignore[union-attr]
    payload = {
        "model": OmegaConf.to_container(model_cfg, resolve=True),
        "train": train,
        "data": hashlib.sha1(train_json.read_bytes()).hexdigest(),
        "code": training_code_digest(),
    }
    return hashlib.sha1(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def prepare_checkpoints(checkpoints: Path, identity: str, resume: bool) -> Path | None:
    """``last.ckpt`` to resume from, when ``resume`` and it belongs to an unfinished run of the
    same params and data; otherwise the folder is moved aside and a new run starts in it.

    Resuming anything else would carry an old experiment into a new one: a finished run
    resumed stops at once and hands back its old weights. Every process of a distributed run
    makes the same decision; only global rank 0 moves or writes files."""
    run_file, last = checkpoints / RUN_FILE, checkpoints / LAST
    state = json.loads(run_file.read_text()) if run_file.is_file() else {}
    if resume and last.is_file() and state.get("identity") == identity and not state.get("finished"):
        print(f"train: resuming the unfinished run in {checkpoints} from {last}")
        return last
    if getattr(rank_zero_only, "rank", 0) != 0:  # set by Lightning from RANK, LOCAL_RANK, SLURM_PROCID
        return None
    if checkpoints.exists() and any(checkpoints.iterdir()):
        if not resume:
            why = "train.resume is off"
        elif state.get("identity") != identity:
            why = "they were trained with other params or data"
        else:
            why = "that run finished" if state.get("finished") else "that run saved no last.ckpt"
        stale = checkpoints.with_name(checkpoints.name + ".stale")
        shutil.rmtree(stale, ignore_errors=True)
        checkpoints.rename(stale)
        print(f"train: not resuming {checkpoints} ({why}); moved to {stale}, starting fresh")
    checkpoints.mkdir(parents=True, exist_ok=True)
    run_file.write_text(json.dumps({"identity": identity, "finished": False}))
    return None


class EMA(EMAWeightAveraging):
    """Lightning's exponential moving average of the weights (``train.ema_decay``), updated
    from the end of the warm-up; the final model, the snapshots and validation use it. A run
    that ends before its first update (a short time budget) keeps its own weights rather than
    the initial ones the average starts from."""

    _swapped = False  # whether validation runs on the average (swapped in at its start)

    def has_average(self) -> bool:
        return self._average_model is not None and int(self._average_model.n_averaged) > 0

    def averaged_state_dict(self) -> dict[str, torch.Tensor]:
        assert self._average_model is not None
        return self._average_model.module.state_dict()

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._swapped = self.has_average()
        if self._swapped:
            super().on_validation_epoch_start(trainer, pl_module)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._swapped:
            super().on_validation_epoch_end(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.has_average():
            super().on_train_end(trainer, pl_module)


class WeightSnapshots(Callback):
    """Every ``every`` steps, the weights we would serve (the EMA when on) as a weights-only
    ``step{N:06d}.ckpt``, written whole or not at all: the accuracy-vs-time curve evaluates
    them; resuming needs only ``last.ckpt``. With the EMA on, the raw weights ride along as
    ``live_state_dict``, so one run measures the average against what it averages, step for
    step (``benchmarks/curve.py --weights live``). A resumed run overwrites the snapshots the
    interrupted one wrote after its last ``last.ckpt``."""

    def __init__(self, dirpath: Path, every: int, ema: EMA | None) -> None:
        self.dirpath, self.every, self.ema = dirpath, every, ema
        self.saved_step = -1

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        step = trainer.global_step
        if step % self.every or step == self.saved_step or not trainer.is_global_zero:
            return
        snapshot = {
            "hyper_parameters": dict(pl_module.hparams),
            "state_dict": pl_module.state_dict(),
            "global_step": step,
        }
        if self.ema is not None and self.ema.has_average():
            snapshot["live_state_dict"] = snapshot["state_dict"]
            snapshot["state_dict"] = self.ema.averaged_state_dict()
        path = self.dirpath / f"step{step:06d}.ckpt"
        partial = path.with_suffix(".partial")
        torch.save(snapshot, partial)
        os.replace(partial, path)
        self.saved_step = step


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
    if cfg.anneal_by == "time" and not cfg.max_minutes:
        raise ValueError("train.anneal_by: time needs train.max_minutes (the budget it anneals over)")
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    hparams = {"model_cfg": OmegaConf.to_container(model_cfg, resolve=True), "optim_cfg": optim_config(cfg)}
    module = BarcodeSegmenter(**hparams)  # type: ignore[arg-type]
    data = BarcodeDataModule(train_json, val_json, cfg, long_side=int(model_cfg.max_size))
    identity = run_identity(model_cfg, cfg, train_json)
    resume = prepare_checkpoints(checkpoints, identity, resume=cfg.resume == "auto")
    every = int(cfg.checkpoint_every)
    # Full state (optimiser, loops, timer) only in last.ckpt, for resuming an interrupted run.
    last = ModelCheckpoint(dirpath=checkpoints, every_n_train_steps=every, save_top_k=0, save_last=True)
    ema = EMA(decay=float(cfg.ema_decay), update_starting_at_step=int(cfg.warmup_steps)) if cfg.ema_decay else None
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
        callbacks=[
            *([ema] if ema else []),  # before the snapshots: they save the average after its update
            last,
            WeightSnapshots(checkpoints, every, ema),
            LearningRateMonitor("step"),
            TQDMProgressBar(refresh_rate=int(cfg.log_every)),
        ],
        enable_model_summary=False,
    )
    trainer.fit(module, datamodule=data, ckpt_path=resume)
    out.parent.mkdir(parents=True, exist_ok=True)
    trainer.save_checkpoint(out, weights_only=True)
    if trainer.is_global_zero:
        (checkpoints / LAST).unlink(missing_ok=True)  # a finished run is never resumed
        (checkpoints / RUN_FILE).write_text(json.dumps({"identity": identity, "finished": True}))
    return out
