import json
from pathlib import Path

import pytest

from barseg.metrics.sets import EvalSet, evaluation_sets


def test_relative_paths_are_taken_from_the_repository_dvc_names(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared/a.json").write_text("{}")
    repo = tmp_path / "repo"
    (repo / ".dvc/tmp/exps/run").mkdir(parents=True)
    monkeypatch.chdir(repo / ".dvc/tmp/exps/run")  # where a queued experiment runs
    monkeypatch.setenv("DVC_ROOT", str(repo))
    entries = [
        {"name": "a", "coco": "../shared/a.json", "recall_only": True},
        {"name": "b", "decode_truth": "../shared/absent.json"},
    ]
    found, skipped = evaluation_sets(entries)
    assert found == [EvalSet("a", coco=repo / "../shared/a.json", recall_only=True)]
    assert skipped == [f"'b' skipped: {repo / '../shared/absent.json'} not found"]


def test_an_entry_without_files_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="'c' names neither"):
        evaluation_sets([{"name": "c"}])


def test_a_set_whose_photos_are_in_the_training_split_is_found_by_content(tmp_path: Path) -> None:
    """A real set also listed in ``data.sources`` (e.g. fine-tuning on your own photos) would
    otherwise be reported as if it measured the model; renaming a photo does not hide it."""
    import cv2
    import numpy as np

    from barseg.data.formats import ImageRecord, Instance, write_coco
    from barseg.data.split import SplitFractions, process
    from barseg.data.validate import Source
    from barseg.metrics.sets import photos_trained_on, training_digests

    rng = np.random.default_rng(0)
    for name in ("seen.png", "unseen.png"):
        cv2.imwrite(str(tmp_path / name), rng.integers(0, 255, (40, 60, 3), dtype=np.uint8))
    square = Instance(polygons=[np.array([[5.0, 5.0], [30.0, 5.0], [30.0, 30.0], [5.0, 30.0]])])
    own = tmp_path / "own"
    own.mkdir()
    (own / "renamed.png").write_bytes((tmp_path / "seen.png").read_bytes())
    write_coco([ImageRecord(own / "renamed.png", 60, 40, [square])], own / "annotations.json", own)
    process([Source("own", own / "annotations.json")], set(), tmp_path / "processed", SplitFractions(1, 0, 0), None, 92)
    records = [ImageRecord(tmp_path / n, 60, 40, [square]) for n in ("seen.png", "unseen.png")]
    write_coco(records, tmp_path / "real.json", tmp_path)

    trained_on = training_digests(tmp_path / "processed/train.json")
    assert photos_trained_on(EvalSet("real", coco=tmp_path / "real.json"), trained_on) == (1, 2)
    assert photos_trained_on(EvalSet("real", coco=tmp_path / "real.json"), set()) == (0, 2)
    texts = {"images": {"seen.png": [{"text": "123"}], "unseen.png": [], "elsewhere/seen.png": []}}
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere/seen.png").write_bytes((tmp_path / "seen.png").read_bytes())
    (tmp_path / "decode_truth.json").write_text(json.dumps(texts))
    reading = EvalSet("reading", decode_truth=tmp_path / "decode_truth.json")
    assert photos_trained_on(reading, trained_on) == (2, 3)  # a decode-only set, two copies of the photo
