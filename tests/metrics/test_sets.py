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
    from barseg.data.split import SplitFractions, process
    from barseg.data.validate import Source
    from barseg.metrics.sets import photos_trained_on, training_digests
    from tests.conftest import labelled_photos

    real = labelled_photos(tmp_path, ["seen.png", "unseen.png"])
    (tmp_path / "own").mkdir()
    (tmp_path / "own/renamed.png").write_bytes((tmp_path / "seen.png").read_bytes())
    own = labelled_photos(tmp_path / "own", ["renamed.png"])
    process([Source("own", own)], set(), tmp_path / "processed", SplitFractions(1, 0, 0), None, 92)

    trained_on = training_digests(tmp_path / "processed/train.json")
    assert photos_trained_on(EvalSet("real", coco=real), trained_on) == (1, 2)
    assert photos_trained_on(EvalSet("real", coco=real), set()) == (0, 2)
    texts = {"images": {"seen.png": [{"text": "123"}], "unseen.png": [], "elsewhere/seen.png": []}}
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere/seen.png").write_bytes((tmp_path / "seen.png").read_bytes())
    (tmp_path / "decode_truth.json").write_text(json.dumps(texts))
    reading = EvalSet("reading", decode_truth=tmp_path / "decode_truth.json")
    assert photos_trained_on(reading, trained_on) == (2, 3)  # a decode-only set, two copies of the photo
