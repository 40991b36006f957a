"""LightningDataModule over the processed COCO splits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from torch.utils.data import DataLoader

from barseg.data.dataset import BarcodeDataset, EpochSampler, collate, repeated
from barseg.data.formats import load_records


class BarcodeDataModule(pl.LightningDataModule):
    def __init__(self, train_json: Path, val_json: Path, cfg: Any, long_side: int) -> None:
        super().__init__()
        self.train_json, self.val_json = train_json, val_json
        self.cfg = cfg
        self.long_side = long_side

    def setup(self, stage: str | None = None) -> None:
        cfg = self.cfg
        train = repeated(load_records(self.train_json))
        if not train:
            raise ValueError(f"{self.train_json}: the training split is empty")
        # A fixed, evenly spread subset keeps validation cheap and comparable across runs.
        val = load_records(self.val_json)
        step = max(1, len(val) // max(1, cfg.val_images))
        self.train_set = BarcodeDataset(train, self.long_side, cfg.augment, seed=cfg.seed)
        self.val_set = BarcodeDataset(val[::step][: cfg.val_images], self.long_side)

    def train_dataloader(self) -> DataLoader:
        # Lightning builds this loader once; the sampler gives each pass its epoch (new augmentations).
        return DataLoader(
            self.train_set, batch_size=self.cfg.batch_size, sampler=EpochSampler(len(self.train_set), self.cfg.seed),
            num_workers=self.cfg.num_workers, collate_fn=collate, drop_last=True,
        )  # fmt: skip

    def val_dataloader(self) -> DataLoader:
        return DataLoader(
            self.val_set, batch_size=self.cfg.batch_size, num_workers=self.cfg.num_workers, collate_fn=collate
        )
