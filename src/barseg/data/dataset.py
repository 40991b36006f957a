"""A torch Dataset over a COCO split, giving torchvision detection targets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from barseg.data.augment import augment
from barseg.data.formats import ImageRecord
from barseg.data.images import read_image, resize

Target = dict[str, torch.Tensor]


def resize_long_side(image: np.ndarray, masks: np.ndarray, long_side: int) -> tuple[np.ndarray, np.ndarray]:
    """Downscale so the long side is at most ``long_side`` (cheap before augmenting)."""
    h, w = image.shape[:2]
    scale = long_side / max(h, w)
    if scale >= 1.0:
        return image, masks
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = resize(image, *size)
    small_masks = (
        np.stack([cv2.resize(m, size, interpolation=cv2.INTER_NEAREST) for m in masks])
        if len(masks)
        else np.zeros((0, size[1], size[0]), np.uint8)
    )
    return small, small_masks


def to_target(masks: np.ndarray) -> Target:
    """torchvision's target dict from instance masks; masks left empty are removed."""
    masks = masks[masks.sum(axis=(1, 2)) > 0]
    boxes = np.zeros((len(masks), 4), np.float32)
    for i, m in enumerate(masks):
        ys, xs = np.nonzero(m.any(axis=1))[0], np.nonzero(m.any(axis=0))[0]
        boxes[i] = (xs[0], ys[0], xs[-1] + 1, ys[-1] + 1)  # pixel edges: a 1-px mask is 1 px wide
    return {
        "boxes": torch.from_numpy(boxes),
        "labels": torch.ones(len(masks), dtype=torch.int64),
        "masks": torch.from_numpy(np.ascontiguousarray(masks)),
    }


def to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)


def repeated(records: list[ImageRecord]) -> list[ImageRecord]:
    """Each record as many times as its source's ``repeat`` (recorded by ``preprocess``): every
    copy is its own item, so each draws its own augmentation in a pass."""
    return [r for r in records for _ in range(int(r.extra.get("barseg", {}).get("repeat", 1)))]


class BarcodeDataset(Dataset[tuple[torch.Tensor, Target]]):
    """Images and masks of one split; ``augment_params`` (``train.augment``) for training.

    Items are addressed by index, or by ``(epoch, index)`` (what ``EpochSampler`` yields): the
    augmentation of an item is drawn from ``(seed, epoch, index)``, so every pass over the data
    draws new augmentations, reproducibly, in whichever worker process loads the item."""

    def __init__(
        self, records: list[ImageRecord], long_side: int, augment_params: Any | None = None, seed: int = 0
    ) -> None:
        self.records = records
        self.long_side = long_side
        self.augment_params = augment_params
        self.seed = seed

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, Target]:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        record = self.records[index]
        image = read_image(record.path)
        h, w = image.shape[:2]
        if (w, h) != (record.width, record.height):
            raise ValueError(f"{record.path}: image is {w}x{h}, annotations say {record.width}x{record.height}")
        masks = (
            np.stack([inst.mask(h, w).astype(np.uint8) for inst in record.instances])
            if record.instances
            else np.zeros((0, h, w), np.uint8)
        )
        image, masks = resize_long_side(image, masks, self.long_side)
        if self.augment_params is not None:
            rng = np.random.default_rng([self.seed, epoch, index])
            image, masks = augment(image, masks, rng, self.augment_params)
        return to_tensor(image), to_target(masks)


class EpochSampler(Sampler[tuple[int, int]]):
    """A shuffled pass over ``size`` items as ``(epoch, index)`` pairs, the order drawn from
    ``(seed, epoch)``.

    Lightning calls ``set_epoch`` before each pass (and after a resume); a wrapper that does
    not (DDP's ``DistributedSamplerWrapper``) still gets a new epoch per pass, because each
    pass advances it. The epoch travels with the index, so worker processes, which hold a copy
    of the dataset made when the pass began, draw the right augmentations."""

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch
        self.epoch += 1
        order = np.random.default_rng([self.seed, epoch]).permutation(self.size)
        return iter([(epoch, int(i)) for i in order])


def collate(batch: list[tuple[torch.Tensor, Target]]) -> tuple[list[torch.Tensor], list[Target]]:
    images, targets = zip(*batch, strict=True)
    return list(images), list(targets)
