"""The training DataModule as Lightning drives it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch import nn

from barseg.model.datamodule import BarcodeDataModule
from tests.conftest import params_section


class _Recorder(pl.LightningModule):
    """Records a digest of every training image, per epoch; learns nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.seen: dict[int, list[str]] = {}

    def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        images, _ = batch
        digests = [hashlib.sha1(image.numpy().tobytes()).hexdigest() for image in images]
        self.seen.setdefault(self.current_epoch, []).extend(digests)
        return self.weight.square().sum()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _augmented_images_per_epoch(tiny_processed: Path, workers: int) -> dict[int, list[str]]:
    cfg = params_section("train", num_workers=workers, batch_size=2, seed=3)
    data = BarcodeDataModule(tiny_processed / "train.json", tiny_processed / "val.json", cfg, long_side=128)
    recorder = _Recorder()
    trainer = pl.Trainer(
        max_epochs=3, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, limit_val_batches=0,
    )  # fmt: skip
    trainer.fit(recorder, datamodule=data)
    return recorder.seen


@pytest.mark.parametrize("workers", [0, 2])
def test_every_epoch_draws_new_augmentations_reproducibly(tiny_processed: Path, workers: int) -> None:
    seen = _augmented_images_per_epoch(tiny_processed, workers)
    assert sorted(seen) == [0, 1, 2] and len(seen[0]) >= 6
    for earlier, later in [(0, 1), (1, 2), (0, 2)]:
        repeated = set(seen[earlier]) & set(seen[later])
        assert len(repeated) <= len(seen[later]) // 3, (
            f"epoch {later} repeats {len(repeated)} images of epoch {earlier}"
        )
    assert _augmented_images_per_epoch(tiny_processed, workers) == seen  # the same from the same seed


def test_a_source_repeated_n_times_is_seen_n_times_per_pass(tmp_path: Path) -> None:
    """A few own photos among thousands of synthetic scenes would barely be seen in a short
    fine-tuning run: ``data.sources[].repeat`` shows each of them ``repeat`` times per pass."""
    from barseg.data.split import SplitFractions, process
    from barseg.data.validate import sources_from_params
    from tests.conftest import labelled_photos

    for seed, name in enumerate(("own", "synthetic")):
        labelled_photos(tmp_path / name, ["photo.png"], seed)
    entries = [
        {"name": "synthetic", "path": str(tmp_path / "synthetic")},
        {"name": "own", "path": str(tmp_path / "own"), "repeat": 3},
    ]
    process(sources_from_params(entries), set(), tmp_path / "processed", SplitFractions(1, 0, 0), None, 92)
    data = BarcodeDataModule(
        tmp_path / "processed/train.json", tmp_path / "processed/val.json", params_section("train"), 64
    )
    data.setup()
    sources = [record.extra["barseg"]["source"] for record in data.train_set.records]
    assert sorted(sources) == ["own", "own", "own", "synthetic"]
    copies = [i for i, source in enumerate(sources) if source == "own"]
    (first, _), (second, _) = data.train_set[(0, copies[0])], data.train_set[(0, copies[1])]
    assert not torch.equal(first, second), "each copy draws its own augmentation"


@pytest.mark.parametrize("repeat", [0, 1.5, "3", True])
def test_a_repeat_that_is_not_a_whole_number_names_its_source(repeat: object) -> None:
    from barseg.data.validate import sources_from_params

    with pytest.raises(ValueError, match=r"data\.sources\[1\] \(own\): repeat must be a whole number"):
        sources_from_params(
            [{"name": "synthetic", "path": "data/synthetic"}, {"name": "own", "path": "x", "repeat": repeat}]
        )
