"""Serve settings from params.yaml, and the model stored with them: content-versioned,
reused when nothing changed."""

from __future__ import annotations

from pathlib import Path

import bentoml
import pytest

from barseg.serve.package import content_hash, model_files, save_model, settings_from_params
from barseg.serve.settings import ServeSettings
from tests.conftest import params_section


def test_params_serve_section_is_read_whole() -> None:
    name, settings = settings_from_params(params_section("serve"))
    assert name == "barcode_segmenter"
    assert settings.batching and settings.max_batch_size >= 2
    assert settings.max_upload_bytes == int(settings.max_upload_mb * 1024 * 1024)


def test_unknown_or_mistyped_serve_keys_are_errors() -> None:
    with pytest.raises(ValueError, match="unknown keys"):
        settings_from_params({"name": "x", "treshold": 0.3})
    with pytest.raises(ValueError, match="true or false"):
        ServeSettings.from_mapping({"decode": "false"})  # a string would read as True
    with pytest.raises(ValueError, match="integer"):
        ServeSettings.from_mapping({"max_batch_size": 2.5})
    with pytest.raises(ValueError, match="min_threshold <= threshold <= 1"):
        ServeSettings(threshold=1.5)
    with pytest.raises(ValueError, match="min_threshold <= threshold"):
        ServeSettings(threshold=0.01)  # below the floor requests are held to
    with pytest.raises(ValueError, match=r"serve\.decode_budget_s"):
        ServeSettings(decode_budget_s=0)
    with pytest.raises(ValueError, match="2 or more"):
        ServeSettings(max_batch_size=1)


def test_batching_can_be_switched_off_at_serve_time() -> None:
    settings = ServeSettings()
    assert settings.with_environment({}).batching
    assert not settings.with_environment({"BARSEG_BATCHING": "0"}).batching
    assert not settings.with_environment({"BARSEG_BATCHING": "False"}).batching
    assert settings.with_environment({"BARSEG_BATCHING": "1"}).batching
    assert ServeSettings.from_mapping(settings.to_metadata()) == settings  # metadata round trip


def test_content_hash_follows_bytes_and_texts(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    a, b = tmp_path / "one" / "model.onnx", tmp_path / "two" / "model.onnx"
    a.write_bytes(b"weights")
    b.write_bytes(b"weights")
    assert content_hash([a], "x") == content_hash([b], "x")  # where the file lies does not count
    assert content_hash([a], "x") != content_hash([a], "y")
    b.write_bytes(b"weightz")
    assert content_hash([a], "x") != content_hash([b], "x")


def test_model_files_take_the_engine_only_when_built(tmp_path: Path) -> None:
    onnx, trt = tmp_path / "model.onnx", tmp_path / "trt"
    trt.mkdir()
    (trt / "SKIPPED.md").write_text("no GPU")
    with pytest.raises(FileNotFoundError, match="export_onnx"):
        model_files(onnx, trt)
    onnx.write_bytes(b"onnx")
    assert model_files(onnx, trt) == [onnx]
    (trt / "model.engine").write_bytes(b"engine")
    assert model_files(onnx, trt) == [onnx, trt / "model.engine"]


def test_saved_model_holds_the_files_and_settings_and_is_reused(
    bentoml_home: Path, tiny_onnx: Path, tiny_checkpoint: Path
) -> None:
    settings = ServeSettings(threshold=0.25, max_batch_size=4)
    tag = save_model("package_test", [tiny_onnx], settings)
    model = bentoml.models.get(tag)
    assert (Path(model.path) / "model.onnx").read_bytes() == tiny_onnx.read_bytes()
    assert ServeSettings.from_mapping(model.info.metadata) == settings
    assert save_model("package_test", [tiny_onnx], settings) == tag  # same content: same model
    other = save_model("package_test", [tiny_onnx], ServeSettings(threshold=0.3))
    assert other != tag and len(bentoml.models.list("package_test")) == 2
    for not_served in (tiny_checkpoint, tiny_onnx.with_suffix(".pt")):  # a checkpoint needs torch: not in a Bento
        with pytest.raises(ValueError, match="not a model file"):
            save_model("package_test", [not_served], settings)
