"""Training: overfitting a tiny set, resuming after a kill, DDP on two CPU processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import yaml
from omegaconf import OmegaConf

from barseg.data.dataset import BarcodeDataset, collate
from barseg.data.formats import load_records, rle_str
from barseg.infer.torch_runtime import TorchPredictor
from barseg.metrics.matching import greedy_match, mask_iou_matrix
from barseg.model.module import BarcodeSegmenter
from tests.conftest import REPO, tiny_model
from tests.model.conftest import tiny_params

pytestmark = pytest.mark.slow


def test_a_tiny_model_overfits_four_images(tiny_processed: Path, tmp_path: Path) -> None:
    pl.seed_everything(0)
    torch.set_num_threads(2)
    records = [r for r in load_records(tiny_processed / "train.json") if r.instances][:4]
    assert len(records) == 4
    data = torch.utils.data.DataLoader(BarcodeDataset(records, 256), batch_size=4, collate_fn=collate)
    optim = {
        "optimizer": "adamw",
        "lr": 3e-3,
        "weight_decay": 0.0,
        "schedule": "constant",
        "warmup_steps": 20,
        "max_steps": 150,
        "step_milestones": [],
    }
    module = BarcodeSegmenter(OmegaConf.to_container(tiny_model()), optim)  # type: ignore[arg-type]
    losses: list[float] = []

    class Record(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # type: ignore[no-untyped-def]
            losses.append(float(outputs["loss"]))

    trainer = pl.Trainer(
        max_steps=150,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        callbacks=[Record()],
        enable_model_summary=False,
    )
    trainer.fit(module, train_dataloaders=data)
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    assert last < first / 5, f"loss {first:.2f} -> {last:.2f}"
    trainer.save_checkpoint(tmp_path / "tiny.ckpt", weights_only=True)
    predictor = TorchPredictor(tmp_path / "tiny.ckpt", threshold=0.5)
    ious = []
    for record in records:
        image = (
            torch.utils.data.default_convert(BarcodeDataset([record], 256)[0][0])
            .permute(1, 2, 0)
            .mul(255)
            .byte()
            .numpy()
        )
        (prediction,) = predictor.predict([image])
        gts = [rle_str(inst.to_rle(record.height, record.width)) for inst in record.instances]
        matrix = mask_iou_matrix([d.mask for d in prediction.detections], gts)
        pairs = greedy_match(matrix, [d.score for d in prediction.detections])
        assert len(pairs) == len(gts), f"{record.path}: found {len(pairs)} of {len(gts)}"
        ious += [iou for _, _, iou in pairs]
    assert np.mean(ious) > 0.8


def _stage(work: Path, **env: str) -> subprocess.Popen[str]:
    cmd = [
        sys.executable, str(REPO / "stages/train.py"), "--train", str(work / "data/train.json"), "--val", str(work / "data/val.json"),
        "--checkpoints", "models/checkpoints", "--out", "models/model.ckpt", "--metrics", "metrics/train",
    ]  # fmt: skip
    return subprocess.Popen(
        cmd, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **env}
    )


def _workdir(tmp_path: Path, tiny_processed: Path, **train: object) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "data").symlink_to(tiny_processed)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params(**train)))
    return tmp_path


def test_resume_after_kill_continues_from_the_saved_step(tiny_processed: Path, tmp_path: Path) -> None:
    """Killed mid-run, the stage resumes from last.ckpt, also when only params that cannot
    change a step's computation (threads, logging) differ."""
    work = _workdir(tmp_path, tiny_processed, max_steps=30, checkpoint_every=4, val_every=100)
    first = _stage(work)
    last = work / "models/checkpoints/last.ckpt"
    deadline = time.monotonic() + 300
    saved = 0
    while saved < 8:  # last.ckpt is written atomically: load it until it holds step 8 or later
        assert first.poll() is None, first.stdout.read() if first.stdout else ""
        assert time.monotonic() < deadline, "no checkpoint of step 8 within 300 s"
        time.sleep(0.2)
        if last.is_file():
            saved = torch.load(last, map_location="cpu", weights_only=False)["global_step"]
    first.send_signal(signal.SIGKILL)
    first.wait()
    saved = torch.load(last, map_location="cpu", weights_only=False)["global_step"]
    assert 8 <= saved < 30
    _set_train(work, threads=1, log_every=2)
    second = _stage(work)
    output, _ = second.communicate(timeout=600)
    assert second.returncode == 0, output
    assert "train: resuming the unfinished run" in output and "Restored all states" in output
    final = torch.load(work / "models/model.ckpt", map_location="cpu", weights_only=True)
    assert final["global_step"] == 30
    steps = [
        int(line.split("\t")[0])
        for line in (work / "metrics/train/plots/metrics/train/loss.tsv").read_text().splitlines()[1:]
    ]
    assert max(steps) >= 29 and min(steps) <= 2  # the log kept the steps from before the kill


def _run(work: Path) -> str:
    run = _stage(work)
    out, _ = run.communicate(timeout=600)
    assert run.returncode == 0, out
    return out


def _set_train(work: Path, **train: object) -> None:
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["train"].update(train)
    (work / "params.yaml").write_text(yaml.safe_dump(params))


def test_only_an_unfinished_run_of_the_same_params_and_data_is_resumed(tiny_processed: Path, tmp_path: Path) -> None:
    """A finished run, new augmentations or new data start fresh; the old checkpoints are kept
    aside, not mixed into the new run's."""
    data = tmp_path / "data"
    work = tmp_path / "work"
    shutil.copytree(tiny_processed, data, symlinks=True)
    work.mkdir()
    (work / "data").symlink_to(data)
    (work / "params.yaml").write_text(yaml.safe_dump(tiny_params(max_steps=2, checkpoint_every=2, val_every=100)))
    snapshots = work / "models/checkpoints"

    out = _run(work)
    assert "train: resuming" not in out
    assert sorted(p.name for p in snapshots.iterdir()) == ["run.json", "step000002.ckpt"]  # no last.ckpt left
    first = torch.load(work / "models/model.ckpt", map_location="cpu", weights_only=True)

    out = _run(work)  # the same params: the finished run is not handed back
    assert "train: resuming" not in out and "that run finished" in out
    assert (work / "models/checkpoints.stale/step000002.ckpt").is_file()

    _set_train(work, augment={**tiny_params()["train"]["augment"], "flip": 0.0})
    assert "other params or data" in _run(work)

    coco = json.loads((data / "train.json").read_text())
    coco["images"] = coco["images"][1:]
    (data / "train.json").write_text(json.dumps(coco))
    _set_train(work, num_workers=0, threads=1, log_every=2)  # cannot change what is learnt
    out = _run(work)
    assert "other params or data" in out and "train: resuming" not in out
    last = torch.load(work / "models/model.ckpt", map_location="cpu", weights_only=True)
    assert last["global_step"] == 2
    assert any(not torch.equal(first["state_dict"][k], v) for k, v in last["state_dict"].items())


def test_ema_weights_are_what_the_run_hands_on(tiny_processed: Path, tmp_path: Path) -> None:
    """With train.ema_decay the final model and every snapshot are the average; the raw
    weights of the same (deterministic) run differ from it."""
    finals = {}
    for decay in (None, 0.5):
        work = _workdir(
            tmp_path / str(decay), tiny_processed, max_steps=4, warmup_steps=1, checkpoint_every=2, val_every=100,
            ema_decay=decay, threads=1,
        )  # fmt: skip
        _run(work)
        final = torch.load(work / "models/model.ckpt", map_location="cpu", weights_only=True)["state_dict"]
        snapshot = torch.load(work / "models/checkpoints/step000004.ckpt", map_location="cpu", weights_only=True)
        assert snapshot["global_step"] == 4
        assert all(torch.equal(final[k], v) for k, v in snapshot["state_dict"].items())
        if decay is None:
            assert "live_state_dict" not in snapshot
        else:  # the raw weights of the same step ride along, for the EMA-vs-raw curve
            live = snapshot["live_state_dict"]
            assert any(not torch.equal(live[k], v) for k, v in snapshot["state_dict"].items() if v.is_floating_point())
        TorchPredictor(work / "models/checkpoints/step000004.ckpt")  # snapshots load as models
        finals[decay] = final
    plain, averaged = finals[None], finals[0.5]
    assert any(not torch.equal(plain[k], averaged[k]) for k in plain if plain[k].is_floating_point())


def test_ddp_on_two_cpu_processes(tiny_processed: Path, tmp_path: Path) -> None:
    work = _workdir(
        tmp_path,
        tiny_processed,
        max_steps=3,
        strategy="ddp",
        devices=2,
        accelerator="cpu",
        threads=1,
        batch_size=1,
        val_every=100,
    )
    run = _stage(work)
    output, _ = run.communicate(timeout=600)
    assert run.returncode == 0, output
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in output
    checkpoint = torch.load(work / "models/model.ckpt", map_location="cpu", weights_only=True)
    assert checkpoint["global_step"] == 3
    metrics = json.loads((work / "metrics/train/metrics.json").read_text())
    assert "train" in metrics
