from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torchvision.ops.misc import FrozenBatchNorm2d

from barseg.model.factory import build_model
from tests.conftest import tiny_model

BACKBONES = {
    "mobilenet_v3_large_fpn": {"returned_layers": [2, 3, 5], "anchor_sizes": [16, 32, 64, 128]},
    "resnet18_fpn": {"returned_layers": [1, 2, 3, 4], "anchor_sizes": [16, 32, 64, 128, 256]},
    "resnet50_fpn": {"returned_layers": [1, 2, 3, 4], "anchor_sizes": [16, 32, 64, 128, 256]},
}


def _batch() -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    torch.manual_seed(0)
    images = [torch.rand(3, 200, 256), torch.rand(3, 256, 180)]
    targets = []
    for img in images:
        masks = torch.zeros(1, *img.shape[1:], dtype=torch.uint8)
        masks[0, 40:60, 30:150] = 1
        targets.append(
            {"boxes": torch.tensor([[30.0, 40.0, 150.0, 60.0]]), "labels": torch.tensor([1]), "masks": masks}
        )
    return images, targets


@pytest.mark.parametrize("backbone", sorted(BACKBONES))
def test_each_backbone_trains_and_predicts_on_cpu(backbone: str) -> None:
    model = build_model(tiny_model(backbone=backbone, **BACKBONES[backbone]))
    assert not any(isinstance(m, FrozenBatchNorm2d) for m in model.modules())
    assert all(p.requires_grad for p in model.parameters())
    images, targets = _batch()
    model.train()
    losses = model(images, targets)
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg"}
    total = sum(losses.values())
    total.backward()
    assert torch.isfinite(total)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.backbone.parameters())
    model.eval()
    with torch.inference_mode():
        (out,) = model(images[:1])
    assert set(out) >= {"boxes", "scores", "masks"}


def test_group_norm_option() -> None:
    model = build_model(tiny_model(norm="group"))
    assert any(isinstance(m, torch.nn.GroupNorm) for m in model.modules())


def test_anchor_levels_must_match_the_backbone() -> None:
    with pytest.raises(ValueError, match=r"model\.anchor_sizes: 2 levels given, the backbone has 4"):
        build_model(tiny_model(anchor_sizes=[16, 32]))


def test_init_weights_loads_a_users_file_and_reports_mismatches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch.manual_seed(1)
    source = build_model(tiny_model())
    state = source.state_dict()
    state["extra.weight"] = torch.zeros(1)
    del state["roi_heads.box_predictor.cls_score.bias"]
    path = tmp_path / "weights.pt"
    torch.save(state, path)
    torch.manual_seed(2)
    loaded = build_model(tiny_model(init_weights=str(path)))
    out = capsys.readouterr().out
    assert "1 missing keys" in out and "1 unexpected keys" in out
    assert torch.equal(loaded.backbone.fpn.inner_blocks[0][0].weight, source.backbone.fpn.inner_blocks[0][0].weight)
    with pytest.raises(FileNotFoundError, match=r"model\.init_weights"):
        build_model(tiny_model(init_weights=str(tmp_path / "absent.pt")))


def test_init_weights_of_another_architecture_name_the_params_they_were_trained_with(tmp_path: Path) -> None:
    path = tmp_path / "model.ckpt"
    trained_with = OmegaConf.to_container(tiny_model(fpn_channels=32))
    torch.save(
        {
            "state_dict": build_model(tiny_model(fpn_channels=32)).state_dict(),
            "hyper_parameters": {"model_cfg": trained_with},
        },
        path,
    )
    with pytest.raises(ValueError, match=r"tensors of other shapes .* model\.fpn_channels=32 \(here 64\)"):
        build_model(tiny_model(init_weights=str(path)))
    torch.save(build_model(tiny_model(fpn_channels=32)).state_dict(), path)  # a bare state dict: shapes only
    with pytest.raises(ValueError, match=r"tensors of other shapes than this model \(e\.g\. backbone\.fpn"):
        build_model(tiny_model(init_weights=str(path)))


def test_anchor_levels_need_the_same_number_of_sizes() -> None:
    with pytest.raises(ValueError, match="same number of sizes"):
        build_model(tiny_model(anchor_sizes=[[16, 24], [40, 64], [96, 160], [256]]))
