"""PyTorch runtime: a Lightning checkpoint, loaded without Lightning (weights only).

``DetectorCore`` is the part of torchvision's Mask R-CNN that is a network (backbone, RPN,
RoI heads); it is what the ONNX export traces, so eager and exported runs share every
step before and after it (``barseg.infer.network``).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import cast

import torch
from omegaconf import OmegaConf
from torch import nn
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.rpn import RegionProposalNetwork

from barseg.infer.detections import RawDetections
from barseg.infer.network import InputSpec, NetworkInput, network_batch, raw_detections
from barseg.infer.predictor import Predictor
from barseg.model.factory import build_model


def load_checkpoint_model(path: Path) -> MaskRCNN:
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


def input_spec(model: MaskRCNN, fixed_size: bool = False) -> InputSpec:
    t = model.transform
    return InputSpec(
        min_size=int(t.min_size[0]),
        max_size=int(t.max_size),
        mean=tuple(float(v) for v in t.image_mean),  # type: ignore[arg-type]
        std=tuple(float(v) for v in t.image_std),  # type: ignore[arg-type]
        size_divisible=int(t.size_divisible),
        fixed_size=fixed_size,
    )


class OnnxTieOrderRPN(RegionProposalNetwork):
    """torchvision's RPN whose eager proposal filtering orders anchors exactly as the exported
    graph does. The graph takes each level's top-n by logit (ONNX ``TopK``: ties to the lower
    index), then NMS over their sigmoid (ONNX Runtime: ties to the earlier candidate, i.e. the
    earlier level, then the higher logit). Eager torchvision leaves the order of equal values
    open (``torch.topk``, the unstable sort closing its per-level NMS), and a trained RPN gives
    many exact ties (flat background, a uniform code area; a sigmoid of 1.0 for every logit
    above ~17): of two overlapping tied anchors the runtimes kept different ones, and the
    detection grown from it moved by pixels (README "Released weights").

    Filtering uses the scores only to order anchors (there is no score cut: torchvision's
    default and ours), so eager runs sort anchors by the graph's key (sigmoid, level, logit,
    index) and filter by that rank. Traced, nothing changes: the graph has its own order."""

    def filter_proposals(
        self,
        proposals: torch.Tensor,
        objectness: torch.Tensor,
        image_shapes: list[tuple[int, int]],
        num_anchors_per_level: list[int],
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        if not torch.jit.is_tracing() and self.score_thresh == 0:
            objectness = graph_order_rank(objectness.detach().reshape(proposals.shape[0], -1), num_anchors_per_level)
        return super().filter_proposals(proposals, objectness, image_shapes, num_anchors_per_level)


def graph_order_rank(logits: torch.Tensor, num_anchors_per_level: list[int]) -> torch.Tensor:
    """(N, A) logits → distinct float32 scores in (-1, 0] in the graph's order: sigmoid
    descending, then level, then logit descending, then anchor index (stable sorts, least
    significant key first)."""
    levels = torch.repeat_interleave(
        torch.arange(len(num_anchors_per_level), device=logits.device),
        torch.tensor(num_anchors_per_level, device=logits.device),
    ).expand_as(logits)
    order = logits.argsort(dim=1, descending=True, stable=True)
    order = order.gather(1, levels.gather(1, order).argsort(dim=1, stable=True))
    order = order.gather(1, torch.sigmoid(logits).gather(1, order).argsort(dim=1, descending=True, stable=True))
    positions = torch.arange(order.shape[1], device=order.device).expand_as(order)
    rank = torch.empty_like(order).scatter_(1, order, positions)
    return -rank.float() / order.shape[1]  # float32 keeps ~260k ranks distinct, through the sigmoid too


def onnx_tie_order(rpn: RegionProposalNetwork) -> OnnxTieOrderRPN:
    """A view of ``rpn`` (same parameters and submodules) that filters proposals as
    ``OnnxTieOrderRPN`` does."""
    view = copy.copy(rpn)
    view.__class__ = OnnxTieOrderRPN
    return cast(OnnxTieOrderRPN, view)


class DetectorCore(nn.Module):
    """Backbone + RPN + RoI heads of a Mask R-CNN on a prepared (N, 3, H, W) batch; the
    padded size stands for every image's size, so the graph needs no per-image shapes.

    The score cut is an input, not the model's constant: the mask head, the costliest part
    on a CPU, then runs only on detections the caller keeps (a service at 0.5 computes a few
    masks; an AP evaluation at 0.05 computes up to a hundred)."""

    def __init__(self, model: MaskRCNN) -> None:
        super().__init__()
        self.backbone, self.rpn, self.roi_heads = model.backbone, onnx_tie_order(model.rpn), model.roi_heads

    def detect(
        self, batch: torch.Tensor, score_threshold: torch.Tensor, sizes: list[tuple[int, int]] | None = None
    ) -> list[dict[str, torch.Tensor]]:
        """``sizes``: each image's own padded size in a batch padded further to its largest,
        so boxes are clipped as a batch of one would clip them."""
        # The cut is compared with `>` inside the heads; traced, it is a graph input. A shallow
        # copy carries it (parameters and submodules shared), so concurrent calls with other
        # cuts never race on the shared model.
        roi_heads = copy.copy(self.roi_heads)
        roi_heads.score_thresh = score_threshold
        if sizes is None:
            sizes = [(batch.shape[-2], batch.shape[-1]) for _ in range(batch.shape[0])]
        images = ImageList(batch, sizes)  # type: ignore[arg-type]
        features = self.backbone(batch)
        proposals, _ = self.rpn(images, features)
        detections, _ = roi_heads(features, proposals, images.image_sizes)
        return detections

    def forward(
        self, batch: torch.Tensor, score_threshold: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One image: boxes (N, 4) in input pixels, scores (N,), masks (N, M, M)."""
        (d,) = self.detect(batch, score_threshold)
        return d["boxes"], d["scores"], d["masks"][:, 0]


class TorchPredictor(Predictor):
    """``model``: a train-stage checkpoint or released weights, or a network already built
    (e.g. ``build_model`` with ``init_weights``: what a fine-tuning run starts from)."""

    def __init__(self, model: Path | MaskRCNN, threshold: float = 0.5, device: str = "cpu") -> None:
        super().__init__(threshold)
        self.device = torch.device(device)
        model = model.eval() if isinstance(model, MaskRCNN) else load_checkpoint_model(model)
        self.spec = input_spec(model)
        self.core = DetectorCore(model).to(self.device).eval()

    @torch.inference_mode()
    def raw(self, inputs: list[NetworkInput], score_threshold: float) -> list[RawDetections]:
        """One forward pass for the whole list: inputs padded to the largest of them."""
        batch, sizes = network_batch(inputs, self.spec)
        outputs = self.core.detect(torch.from_numpy(batch).to(self.device), torch.tensor(score_threshold), sizes)
        return [
            raw_detections(o["boxes"].cpu().numpy(), o["scores"].cpu().numpy(), o["masks"].cpu().numpy(), fitted)
            for o, fitted in zip(outputs, inputs, strict=True)
        ]
