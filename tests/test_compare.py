"""benchmarks/compare.py's handling of peer workers: every photo answered, failed or blamed
once, whatever the worker does (a stand-in worker replaces the peer's venv)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO

FAKE_WORKER = """
import json, os, sys, time
print("noise {not json}", flush=True)
if os.environ.get("FAKE_NOT_READY"):
    sys.exit("model file missing")
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    path = line.strip()
    if path.endswith("crash.jpg"):
        os._exit(139)
    if path.endswith("hang.jpg"):
        time.sleep(3600)
    if path.endswith("raise.jpg"):
        print(json.dumps({"path": path, "error": "ValueError: bad quad"}), flush=True)
        continue
    corners = [[0, 0], [10, 0], [10, 10], [0, 10]]
    print(json.dumps({"path": path, "seconds": 0.01, "codes": [{"corners": corners, "text": "A"}]}), flush=True)
"""


@pytest.fixture()
def compare(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("compare", REPO / "benchmarks/compare.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "compare", module)  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    worker = tmp_path / "worker.py"
    worker.write_text(FAKE_WORKER)
    monkeypatch.setattr(module, "WORKER", worker)
    monkeypatch.setattr(module, "ensure_venv", lambda peer: Path(sys.executable))
    monkeypatch.setattr(module, "PHOTO_SECONDS", 1)
    monkeypatch.setattr(module, "STARTUP_SECONDS", 5)
    return module


def test_crashes_hangs_and_errors_cost_their_own_photo_only(compare: ModuleType) -> None:
    names = ["a.jpg", "crash.jpg", "b.jpg", "raise.jpg", "hang.jpg", "c.jpg"]
    paths = [Path(f"/photos/{n}") for n in names]
    run = compare.run_peer(compare.PEERS[0], paths, threads=1)
    assert run.error is None
    assert sorted(p.name for p in run.found) == ["a.jpg", "b.jpg", "c.jpg"]
    assert {p.name: reason.split(":")[0] for p, reason in run.failed.items()} == {
        "crash.jpg": "worker exit 139",
        "raise.jpg": "ValueError",
        "hang.jpg": "worker timed out",
    }
    assert run.found[paths[0]][0].text == "A"


def test_a_peer_that_cannot_start_is_one_error_not_a_failure_per_photo(
    compare: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_NOT_READY", "1")
    run = compare.run_peer(compare.PEERS[0], [Path("/photos/a.jpg"), Path("/photos/b.jpg")], threads=1)
    assert run.error is not None and "model file missing" in run.error
    assert not run.failed and not run.found
