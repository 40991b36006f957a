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
