"""End to end: the DVC DAG on tiny params in a temporary copy of the repository, and the
S3 remote story against a local S3-compatible server (moto)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from benchmarks.ab import find_experiment
from omegaconf import OmegaConf

from tests.conftest import REPO
from tests.model.conftest import tiny_params as model_tiny_params

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent  # this venv: its python, dvc
MOTO_VENV = Path(os.environ.get("BARSEG_MOTO_VENV", REPO / ".cache" / "moto-venv"))


def run(
    cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 600, stdout_only: bool = False
) -> str:
    # Bytecode writing on, as on a user's machine: __pycache__ must not change any dependency's hash.
    full_env = {
        **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
        "BENTOML_DO_NOT_TRACK": "true",
        "BENTOML_HOME": str(cwd.parent / "bentoml-home"),  # the package stage's store: never ~/bentoml
        **(env or {}),
    }
    result = subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout if stdout_only else result.stdout + result.stderr


def copy_worktree(dest: Path) -> None:
    """The repository as git would check it out (tracked and new files, nothing ignored)."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listed):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


def tiny_params(path: Path) -> None:
    params = OmegaConf.create(model_tiny_params(max_steps=4, val_every=2, checkpoint_every=2))
    params.synth.count = 12
    params.synth.image_size = 320
    params.synth.place_to_fit = False  # as the tiny fixtures (tests/conftest.py clean_synth_params)
    params.data.split = {"train": 0.6, "val": 0.2, "test": 0.2}
    OmegaConf.save(params, path)


@pytest.fixture(scope="module")
def tiny_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("repo")
    copy_worktree(work)
    tiny_params(work / "params.yaml")
    run(["git", "init", "-q"], work)
    run(["git", "add", "-A"], work)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy"], work)
    run([str(BIN / "dvc"), "repro"], work)
    run(["git", "add", "-A"], work)  # as a user would: the lock and metrics of the run
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "repro"], work)
    return work


def tree_digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_repro_builds_every_stage_then_has_nothing_to_do(tiny_repo: Path) -> None:
    for split in ("train", "val", "test"):
        assert (tiny_repo / "data/processed" / f"{split}.json").is_file()
    assert len(list((tiny_repo / "data/synthetic").glob("*.jpg"))) == 12
    assert (tiny_repo / "models/model.ckpt").is_file() and (tiny_repo / "models/checkpoints/step000004.ckpt").is_file()
    assert not (tiny_repo / "models/checkpoints/last.ckpt").exists()  # only an unfinished run keeps one
    report = json.loads((tiny_repo / "metrics/evaluate.json").read_text())
    assert set(report) == {"test"}  # the real sets are not beside this temporary copy
    assert json.loads((tiny_repo / "metrics/evaluate_init.json").read_text()) == {}  # trained from scratch
    for key in ("segm_AP", "segm_AP50", "segm_AP75", "bbox_AP", "bbox_AP50", "precision@0.5", "recall@0.5", "f1@0.5",
                "mean_iou", "modified_iou", "detection_rate", "ms_per_image_p50", "ms_per_image_p95", "images", "instances"):  # fmt: skip
        assert key in report["test"]
    assert (tiny_repo / "metrics/evaluate/plots/pr/test.json").is_file()
    export = json.loads((tiny_repo / "metrics/export.json").read_text())
    assert export["parity"]["passed"] and (tiny_repo / "models/model.onnx").is_file()
    assert "onnxruntime" in export["ms_per_image"] and "torchvision_eager" in export["ms_per_image"]
    assert "TensorRT" in (tiny_repo / "models/trt/SKIPPED.md").read_text()  # no GPU/TensorRT in CI
    assert (tiny_repo / "models/trt/model.trt.onnx").is_file()  # the surgered graph is built anyway
    bento = json.loads((tiny_repo / "models/bento.json").read_text())
    assert bento["tag"].startswith("barcode_segmenter:") and (tiny_repo / "models/barcode_segmenter.bento").is_file()
    assert (tiny_repo / "metrics/evaluate/plots/worst/test").is_dir()
    ignored = subprocess.run(["git", "check-ignore", "-q", "metrics/evaluate/plots/worst"], cwd=tiny_repo)
    assert ignored.returncode == 0  # overlays show evaluation photos: DVC caches them, git must not
    again = run([str(BIN / "dvc"), "repro"], tiny_repo)
    assert "Data and pipelines are up to date." in again, again
    status = run([str(BIN / "dvc"), "status"], tiny_repo)
    assert "up to date" in status, status
    shown = run([str(BIN / "dvc"), "metrics", "show"], tiny_repo)
    assert "valid_images" in shown and "test.recall@0.5" in shown
    plots = json.loads(run([str(BIN / "dvc"), "plots", "show", "--json"], tiny_repo, stdout_only=True))
    assert not plots.get("errors"), plots["errors"]
    assert "metrics/train/plots/metrics/train/loss.tsv" in plots["data"]
    assert "metrics/evaluate/plots/pr/test.json" in plots["data"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1, from its own venv: moto[server] needs a newer botocore
    than dvc-s3's aiobotocore pin allows in the project's environment."""
    python = MOTO_VENV / "bin" / "python"
    if not (MOTO_VENV / "bin" / "moto_server").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(MOTO_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "moto[server]>=5"], check=True)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [str(MOTO_VENV / "bin" / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"moto_server did not start on {url}") from None
                time.sleep(0.3)
        bucket = f"import boto3; boto3.client('s3', endpoint_url={url!r}).create_bucket(Bucket='barseg-test')"
        subprocess.run([str(python), "-c", bucket], check=True, env={**os.environ, **AWS_ENV})
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def test_dvc_push_and_pull_through_an_s3_remote(tiny_repo: Path, s3_server: str) -> None:
    dvc = str(BIN / "dvc")
    run([dvc, "remote", "add", "--local", "-f", "-d", "store", "s3://barseg-test/dvc"], tiny_repo)
    run([dvc, "remote", "modify", "--local", "store", "endpointurl", s3_server], tiny_repo)
    before = tree_digests(tiny_repo / "data/processed")
    pushed = run([dvc, "push"], tiny_repo, env=AWS_ENV)
    assert "pushed" in pushed, pushed
    shutil.rmtree(tiny_repo / "data/processed")
    shutil.rmtree(tiny_repo / ".dvc/cache")
    run([dvc, "pull", "preprocess"], tiny_repo, env=AWS_ENV)
    assert tree_digests(tiny_repo / "data/processed") == before


def test_an_experiment_with_a_changed_param(tiny_repo: Path) -> None:
    dvc = str(BIN / "dvc")
    out = run([dvc, "exp", "run", "-n", "lr-sweep", "-S", "train.lr=0.002"], tiny_repo)
    assert "Running stage 'train'" in out and "Running stage 'evaluate'" in out
    shown = json.loads(run([dvc, "exp", "show", "--json"], tiny_repo, stdout_only=True))
    experiments = [exp for entry in shown for exp in (entry.get("experiments") or [])]
    names = [exp.get("name") for exp in experiments]
    assert "lr-sweep" in names, names


def test_an_experiment_in_a_temporary_copy_still_evaluates_the_real_sets(tiny_repo: Path) -> None:
    """Queued and --temp experiments run in a copy under .dvc/tmp: a set named by a path
    relative to the repository (as ../shared/data/real is) must still be found there."""
    outside = tiny_repo.parent / "outside_set"
    shutil.copytree(tiny_repo / "data/processed/images", outside / "images")
    shutil.copyfile(tiny_repo / "data/processed/test.json", outside / "annotations.json")
    params = OmegaConf.load(tiny_repo / "params.yaml")
    original = (tiny_repo / "params.yaml").read_text()
    params.evaluate.extra_sets = [{"name": "outside", "coco": "../outside_set/annotations.json"}]
    OmegaConf.save(params, tiny_repo / "params.yaml")
    dvc = str(BIN / "dvc")
    try:
        out = run([dvc, "exp", "run", "--temp", "-n", "real-sets", "-S", "evaluate.threshold=0.4"], tiny_repo)
        assert "Running stage 'evaluate'" in out and "Running stage 'train'" not in out, out
    finally:
        (tiny_repo / "params.yaml").write_text(original)
    shown = json.loads(run([dvc, "exp", "show", "--json"], tiny_repo, stdout_only=True))
    (experiment,) = [
        exp for entry in shown for exp in (entry.get("experiments") or []) if exp.get("name") == "real-sets"
    ]
    metrics = json.dumps(experiment)
    assert '"outside"' in metrics and "recall@0.5" in metrics, metrics[:2000]


def test_fine_tuning_evaluates_the_init_weights_beside_the_result(tiny_repo: Path) -> None:
    # A plain state dict outside the repository, as a user's file may be.
    init = tiny_repo.parent / "init.pth"
    checkpoint = torch.load(tiny_repo / "models/model.ckpt", map_location="cpu", weights_only=True)
    torch.save({k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items()}, init)
    dvc = str(BIN / "dvc")
    # Up to evaluate: export's parity on a model this untrained is the DAG test's business, not this one's.
    out = run(
        [dvc, "exp", "run", "--temp", "-n", "finetune", "-S", f"model.init_weights={init}", "evaluate"], tiny_repo
    )
    assert "Running stage 'train'" in out and "evaluate: init_weights: test:" in out, out
    assert "evaluate: test recall@0.5: trained" in out, out
    shown = json.loads(run([dvc, "exp", "show", "--json"], tiny_repo, stdout_only=True))
    metrics = find_experiment(shown, "finetune")["metrics"]
    assert set(metrics["metrics/evaluate_init.json"]["data"]) == {"test"}
    assert set(metrics["metrics/evaluate.json"]["data"]) == {"test"}


def test_the_ab_harness_runs_two_arms_for_the_same_time(tiny_repo: Path) -> None:
    out = tiny_repo / "metrics/ab/tiny.json"
    harness = [str(BIN / "python"), str(REPO / "benchmarks/ab.py"), "--minutes", "0.1", "--seeds", "0",
               "--b", "train.ema_decay=0.5", "--name", "tiny", "--out", str(out)]  # fmt: skip
    first = run(harness, tiny_repo)
    # Only what an arm changes runs again: the data stages come from the cache.
    assert "Running stage 'train'" in first and "Running stage 'synthesize'" not in first
    run(harness, tiny_repo)  # the same names again replace the first run's experiments
    report = json.loads(out.read_text())
    assert report["arms"]["B"]["overrides"] == ["train.ema_decay=0.5"]
    for arm in ("A", "B"):
        assert report["arms"][arm]["steps"][0] > 0
        assert set(report["arms"][arm]["sets"]["test"]) == {"recall@0.5", "precision@0.5", "detection_rate"}
    # A second candidate against the same control: arm A is read back, not trained again.
    reuse = [str(BIN / "python"), str(REPO / "benchmarks/ab.py"), "--minutes", "0.1", "--seeds", "0",
             "--reuse-a", "tiny", "--b", "train.ema_decay=0.9", "--name", "tiny2", "--out", str(out)]  # fmt: skip
    second = run(reuse, tiny_repo)
    assert second.count("Running stage 'train'") == 1 and "ab-tiny2-A" not in second, second
    reused = json.loads(out.read_text())["arms"]["A"]
    assert reused["reused"] == ["ab-tiny-A-s0"]
    assert {k: v for k, v in reused.items() if k != "reused"} == report["arms"]["A"]
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    mismatch = subprocess.run([*reuse[:3], "0.2", *reuse[4:]], cwd=tiny_repo, env=env, capture_output=True, text=True)
    assert mismatch.returncode != 0 and "ab-tiny-A-s0 ran with train.max_minutes=0.1" in mismatch.stderr
