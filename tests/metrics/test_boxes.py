"""A peer's codes (corners and texts, as the comparison's workers report them) and our
detections of the same codes get the same scores."""

from pathlib import Path

import pytest

from barseg.infer.detections import Detection, Prediction
from barseg.metrics.boxes import BoxTally, Found, found_in, read_decode_rate

PHOTO = Path("shelf.jpg")
TRUTHS = [(10.0, 10.0, 110.0, 50.0), (200.0, 20.0, 260.0, 80.0), (300.0, 100.0, 400.0, 140.0)]
TEXTS = ["4006381333931", "HELLO", "0123456789"]


def detection(box: tuple[float, float, float, float], score: float, text: str | None) -> Detection:
    x0, y0, x1, y1 = box
    ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
    return Detection(score, list(box), ring, {"center": [0, 0], "size": [0, 0], "angle": 0}, text=text)


# The same four codes: the first code found and read, the second found but unread, a box overlapping
# the third too little (IoU 0.33), and a false find; one detection below the 0.5 cut.
OURS = Prediction(
    [
        detection((12.0, 11.0, 108.0, 52.0), 0.9, "4006381333931"),
        detection((200.0, 20.0, 260.0, 80.0), 0.8, None),
        detection((350.0, 100.0, 450.0, 140.0), 0.7, "0123456789"),
        detection((500.0, 10.0, 540.0, 30.0), 0.6, None),
        detection((300.0, 100.0, 400.0, 140.0), 0.3, "0123456789"),
    ],
    (640, 480),
)
PEER = [  # a peer worker's JSON: corners clockwise from any corner, no score
    {"corners": [[108, 11], [108, 52], [12, 52], [12, 11]], "text": "4006381333931"},
    {"corners": [[200, 20], [260, 20], [260, 80], [200, 80]], "text": ""},
    {"corners": [[350, 100], [450, 100], [450, 140], [350, 140]], "text": "0123456789"},
    {"corners": [[500, 10], [540, 10], [540, 30], [500, 30]], "text": None},
]


def test_a_peer_and_our_pipeline_are_scored_alike() -> None:
    ours, peer = BoxTally(), BoxTally()
    found_ours = found_in(OURS, 0.5)
    found_peer = [Found.from_corners(p["corners"], text=p["text"]) for p in PEER]
    ours.add(TRUTHS, found_ours)
    peer.add(TRUTHS, found_peer)
    assert (ours.truths, ours.found, ours.matched) == (peer.truths, peer.found, peer.matched) == (3, 4, 2)
    assert ours.recall == peer.recall == pytest.approx(2 / 3)
    assert ours.precision == peer.precision == 0.5
    expected = {PHOTO: TEXTS}
    # Texts count wherever they were read (decode rate is per image, docs/design.md §6): 2 of 3.
    assert read_decode_rate(expected, {PHOTO: found_ours}) == read_decode_rate(expected, {PHOTO: found_peer})
    assert read_decode_rate(expected, {PHOTO: found_peer}) == pytest.approx(2 / 3)


def test_nothing_reported_scores_zero_recall_and_no_precision() -> None:
    tally = BoxTally()
    tally.add(TRUTHS, [])
    assert tally.recall == 0.0 and tally.precision != tally.precision  # nan: nothing to be precise about
    assert read_decode_rate({PHOTO: TEXTS}, {}) == 0.0
