"""Build torchvision's Mask R-CNN for one class (barcode) from the ``model`` params section.

Everything is randomly initialised and trains from scratch; nothing is downloaded. Backbones
use a real norm layer: torchvision's backbone helpers default to FrozenBatchNorm2d even
without weights, whose identity statistics make from-scratch activations collapse (every
score ~0.5). An optional ``init_weights`` file is loaded with ``weights_only=True``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from barseg.weights import is_released, verified

BACKBONES = ("resnet50_fpn", "resnet18_fpn", "mobilenet_v3_large_fpn")
NUM_CLASSES = 2  # background, barcode


def norm_layer(kind: str) -> Callable[[int], nn.Module]:
    if kind == "batch":
        return nn.BatchNorm2d
    if kind == "group":  # for tiny per-device batches (GPU presets, DDP with 1 image each)
        return lambda channels: nn.GroupNorm(math.gcd(32, channels), channels)
    raise ValueError(f"model.norm: expected 'batch' or 'group', got {kind!r}")


def build_backbone(name: str, fpn_channels: int, returned_layers: list[int], norm: str) -> BackboneWithFPN:
    norm_cls = norm_layer(norm)
    if name in ("resnet50_fpn", "resnet18_fpn"):
        body = getattr(torchvision.models, name.removesuffix("_fpn"))(weights=None, norm_layer=norm_cls)
        return_layers = {f"layer{k}": str(v) for v, k in enumerate(returned_layers)}
        stage2 = body.inplanes // 8  # channels out of layer1
        in_channels = [stage2 * 2 ** (k - 1) for k in returned_layers]
        return BackboneWithFPN(body, return_layers, in_channels, fpn_channels, extra_blocks=LastLevelMaxPool())
    if name == "mobilenet_v3_large_fpn":
        features = torchvision.models.mobilenet_v3_large(weights=None, norm_layer=norm_cls).features
        # Stage ends (strides 2, 4, 8, 16, 32, 32), as torchvision's own mobilenet_backbone finds them.
        stages = [0] + [i for i, block in enumerate(features) if getattr(block, "_is_cn", False)] + [len(features) - 1]
        return_layers = {str(stages[k]): str(v) for v, k in enumerate(returned_layers)}
        in_channels = [features[stages[k]].out_channels for k in returned_layers]
        return BackboneWithFPN(features, return_layers, in_channels, fpn_channels, extra_blocks=LastLevelMaxPool())
    raise ValueError(f"model.backbone: expected one of {BACKBONES}, got {name!r}")


def build_model(cfg: Any) -> MaskRCNN:
    """Mask R-CNN with every head size from ``cfg`` (the ``model`` params section)."""
    backbone = build_backbone(cfg.backbone, cfg.fpn_channels, list(cfg.returned_layers), cfg.norm)
    levels = len(cfg.returned_layers) + 1  # + the max-pool level
    sizes = [(int(level),) if isinstance(level, int) else tuple(int(s) for s in level) for level in cfg.anchor_sizes]
    if len(sizes) != levels:
        raise ValueError(
            f"model.anchor_sizes: {len(sizes)} levels given, the backbone has {levels} "
            f"(returned_layers {list(cfg.returned_layers)} + max-pool)"
        )
    if len({len(level) for level in sizes}) != 1:  # one RPN head serves every level
        raise ValueError(
            f"model.anchor_sizes: every level needs the same number of sizes, got {[list(s) for s in sizes]}"
        )
    anchors = AnchorGenerator(tuple(sizes), (tuple(float(r) for r in cfg.anchor_ratios),) * levels)
    names = [str(i) for i in range(len(cfg.returned_layers))]
    channels = cfg.fpn_channels
    box_pool = MultiScaleRoIAlign(names, output_size=7, sampling_ratio=2)
    mask_pool = MultiScaleRoIAlign(names, output_size=cfg.mask_resolution // 2, sampling_ratio=2)
    mask_layers = [cfg.mask_head_width] * cfg.mask_head_depth
    model = MaskRCNN(
        backbone,
        num_classes=None,
        min_size=cfg.min_size,
        max_size=cfg.max_size,
        rpn_anchor_generator=anchors,
        rpn_pre_nms_top_n_train=cfg.rpn_pre_nms_top_n_train,
        rpn_pre_nms_top_n_test=cfg.rpn_pre_nms_top_n_test,
        rpn_post_nms_top_n_train=cfg.rpn_post_nms_top_n_train,
        rpn_post_nms_top_n_test=cfg.rpn_post_nms_top_n_test,
        rpn_batch_size_per_image=cfg.rpn_batch_size_per_image,
        box_roi_pool=box_pool,
        box_head=TwoMLPHead(channels * 7 * 7, cfg.box_head_width),
        box_predictor=FastRCNNPredictor(cfg.box_head_width, NUM_CLASSES),
        box_score_thresh=cfg.box_score_thresh,
        box_nms_thresh=cfg.box_nms_thresh,
        box_detections_per_img=cfg.detections_per_image,
        box_batch_size_per_image=cfg.box_batch_size_per_image,
        mask_roi_pool=mask_pool,
        mask_head=MaskRCNNHeads(channels, mask_layers, dilation=1),
        mask_predictor=MaskRCNNPredictor(mask_layers[-1], cfg.mask_head_width, NUM_CLASSES),
    )
    if cfg.get("init_weights"):
        load_weights(model, Path(cfg.init_weights), cfg)
    return model


def load_weights(model: nn.Module, path: Path, cfg: Any) -> None:
    """Load a user's state dict (or a Lightning checkpoint's, or released weights, whose SHA-256
    is checked first) and report what did not match. Tensors of another shape are an error that
    names the model params they were trained with, where the file records them."""
    if not path.is_file():
        raise FileNotFoundError(f"model.init_weights: {path} does not exist")
    if is_released(path):
        verified(path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    trained_with: dict[str, Any] = {}
    if isinstance(state, dict) and "state_dict" in state:  # a Lightning checkpoint or a release
        trained_with = state.get("hyper_parameters", {}).get("model_cfg") or {}
        state = {k.removeprefix("model."): v for k, v in state["state_dict"].items()}
    own = model.state_dict()
    reshaped = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    if reshaped:
        differ = [
            f"model.{k}={trained_with[k]} (here {cfg[k]})"
            for k in trained_with
            if k in cfg and k != "init_weights" and trained_with[k] != cfg[k]
        ]
        raise ValueError(
            f"model.init_weights: {path} holds {len(reshaped)} tensors of other shapes than this model "
            f"(e.g. {reshaped[0]}){'; it was trained with ' + ', '.join(differ) if differ else ''}: "
            "use the same model params, or model.init_weights: null to train these from scratch"
        )
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys:
        print(
            f"model.init_weights: {len(result.missing_keys)} missing keys (kept random), e.g. {result.missing_keys[:3]}"
        )
    if result.unexpected_keys:
        print(
            f"model.init_weights: {len(result.unexpected_keys)} unexpected keys (ignored), e.g. {result.unexpected_keys[:3]}"
        )
