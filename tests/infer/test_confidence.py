"""Reading as evidence: reads lift a detection's score, failed reads lower it, untried keep it."""

from __future__ import annotations

import time

import numpy as np
import pytest

from barseg.infer.confidence import network_floor, verified_score
from barseg.infer.detections import RawDetections
from barseg.infer.network import InputSpec, NetworkInput
from barseg.infer.predictor import Predictor, network_cut, to_prediction
from tests.infer.test_decode import _neighbours

CLUTTER_BOX = (40.0, 30.0, 400.0, 150.0)  # the lines of print at the top of every test scene


@pytest.mark.parametrize("threshold", [0.05, 0.3, 0.5, 0.9])
def test_a_read_lifts_the_floor_score_exactly_to_the_threshold(threshold: float) -> None:
    floor = network_floor(threshold)
    assert floor < threshold
    assert verified_score(floor, read=True) == pytest.approx(threshold)


def test_an_unread_detection_needs_a_near_certain_network_score() -> None:
    assert verified_score(20 / 21, read=False) == pytest.approx(0.5)  # odds 20 against the ratio 1/20
    assert verified_score(0.9, read=False) < 0.5 < verified_score(0.97, read=False)
    scores = np.linspace(0.01, 0.99, 50)
    for read in (True, False):  # the order among detections alike in reading is the network's
        assert np.all(np.diff([verified_score(s, read) for s in scores]) > 0)


def _scene_and_raw() -> tuple[np.ndarray, RawDetections]:
    """Two codes the network scored low (0.2, 0.3) and a block of print it scored high (0.9)."""
    scene, _, polygons = _neighbours()
    boxes = [[*p.min(axis=0), *p.max(axis=0)] for p in polygons] + [list(CLUTTER_BOX)]
    raw = RawDetections(
        np.array(boxes, np.float32), np.array([0.2, 0.3, 0.9]), np.ones((3, 28, 28), np.float32), scene.shape[:2]
    )
    return scene, raw


def test_codes_that_read_are_kept_and_print_that_does_not_is_dropped() -> None:
    scene, raw = _scene_and_raw()
    verified = to_prediction(raw, scene, 0.5, decode=True).detections
    assert [d.symbology for d in verified] == ["DataMatrix", "Code128"]  # by score: 0.3 read beats 0.2 read
    assert [d.network_score for d in verified] == pytest.approx([0.3, 0.2])
    assert [d.score for d in verified] == pytest.approx([verified_score(0.3, True), verified_score(0.2, True)])

    unverified = to_prediction(raw, scene, 0.5, decode=True, verify=False).detections
    model = [d for d in unverified if d.source == "model"]
    assert [(d.score, d.text, d.network_score) for d in model] == [(pytest.approx(0.9), None, None)]
    assert sorted(d.symbology for d in unverified if d.source == "reader") == ["Code128", "DataMatrix"]


def test_detections_the_budget_left_untried_keep_the_network_score() -> None:
    scene, raw = _scene_and_raw()
    late = to_prediction(raw, scene, 0.5, decode=True, deadline=time.monotonic() - 1).detections
    assert [(d.score, d.network_score) for d in late] == [(pytest.approx(0.9), None)]


class _Recording(Predictor):
    """Records the cut the network is run at; finds nothing."""

    spec = InputSpec(64, 64, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))

    def __init__(self) -> None:
        super().__init__(0.5)
        self.cuts: list[float] = []

    def raw(self, inputs: list[NetworkInput], score_threshold: float) -> list[RawDetections]:
        self.cuts.append(score_threshold)
        empty = (np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 28, 28), np.float32))
        return [RawDetections(*empty, x.photo_shape) for x in inputs]


def test_the_network_runs_down_to_what_a_read_can_lift_only_when_reads_score() -> None:
    predictor, image = _Recording(), np.zeros((64, 64, 3), np.uint8)
    for decode, verify, cut in ((True, True, network_floor(0.5)), (True, False, 0.5), (False, True, 0.5)):
        predictor.predict([image], decode=decode, verify=verify)
        assert predictor.cuts[-1] == pytest.approx(cut) == network_cut(0.5, decode and verify)
