import json
from pathlib import Path

import numpy as np
import pytest

from barseg.data.formats import ImageRecord, Instance
from barseg.metrics.decoding import decode_matches, decode_rate, expected_texts, load_decode_truth


def test_same_text_twice_needs_two_reads() -> None:
    assert decode_matches(["ABC", "ABC"], ["ABC"]) == 1
    assert decode_matches(["ABC", "ABC"], ["ABC", "ABC", "ABC"]) == 2
    assert decode_matches(["ABC"], ["ABD"]) == 0
    assert decode_matches([], ["ABC"]) == 0


def test_upc_a_is_an_ean13_with_a_leading_zero() -> None:
    assert decode_matches(["036602301467"], ["0036602301467"]) == 1
    assert decode_matches(["0036602301467"], ["036602301467"]) == 1
    assert decode_matches(["4005401285991"], ["005401285991"]) == 0  # only a leading 0 goes


def test_upc_e_matches_its_expansion() -> None:
    assert decode_matches(["01234565"], ["0012345000065"]) == 1  # zxing-cpp's 13-digit expansion
    assert decode_matches(["01234565"], ["012345000065"]) == 1
    assert decode_matches(["01234565"], ["01234565"]) == 1
    assert decode_matches(["01234564"], ["0012345000065"]) == 0  # wrong check digit: not a UPC-E


def test_codabar_guards_are_ignored() -> None:
    assert decode_matches(["A40156B"], ["40156"]) == 1
    assert decode_matches(["40156"], ["C40156D"]) == 1
    assert decode_matches(["a40156b"], ["D40156A"]) == 1
    assert decode_matches(["A40156B"], ["40157"]) == 0


def test_gs1_brackets_are_ignored() -> None:
    assert decode_matches(["(01)98898765432106(3103)001750"], ["(01)98898765432106(3103)001751"]) == 0
    assert decode_matches(["(01)98898765432106(3103)001750"], ["01988987654321063103001750"]) == 1
    assert decode_matches(["04412345678909"], ["(01)04412345678909"]) == 1  # DataBar: bare GTIN


def test_line_breaks_and_surrounding_whitespace_are_ignored() -> None:
    assert decode_matches(["hello\nworld"], ["helloworld"]) == 1
    assert decode_matches(["  hello world\r\n"], ["hello world"]) == 1
    assert decode_matches(["hello world"], ["helloworld"]) == 0  # inner spaces count
    assert decode_matches(["{GS}78292798"], ["78292798"]) == 1
    assert decode_matches(["\x1d78292798"], ["78292798"]) == 1


def test_control_characters_written_out_are_the_characters() -> None:
    raw = "[)>\x1e01\x1d96123450000\x1d222"
    assert decode_matches([raw], ["[)>\u241e01\u241d96123450000\u241d222"]) == 1  # zxing-cpp HRI pictures
    assert decode_matches([raw], ["[)><RS>01<GS>96123450000<GS>222"]) == 1  # zxing-cpp HRI names
    assert decode_matches([raw], ["[)><RS>01<GS>96123450000<GS>223"]) == 0
    assert decode_matches(["ABC\x1c"], ["<CR>ABC<FS>"]) == 1  # ends are whitespace


def test_decode_rate_counts_every_expected_text(tmp_path: Path) -> None:
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    expected = {a: ["1", "2"], b: ["3", "3"], tmp_path / "c.png": []}
    assert decode_rate(expected, {a: ["2", "9"], b: ["3"]}) == pytest.approx(2 / 4)
    with pytest.raises(ValueError, match="no expected texts"):
        decode_rate({a: []}, {})


def _truth(tmp_path: Path, doc: object) -> Path:
    path = tmp_path / "decode_truth.json"
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return path


def test_decode_truth_paths_are_relative_to_the_images_folder(tmp_path: Path) -> None:
    doc = {"images": {"qr/1.png": [{"text": "hi", "symbology": "qrcode"}], "none.png": []}}
    path = _truth(tmp_path, doc)
    assert load_decode_truth(path) == {tmp_path / "qr/1.png": ["hi"], tmp_path / "none.png": []}
    (tmp_path / "images").mkdir()
    assert set(load_decode_truth(path)) == {tmp_path / "images/qr/1.png", tmp_path / "images/none.png"}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("{not json", "cannot read decode truth"),
        ({"files": {}}, '"images"'),
        ({"images": {"a.png": "text"}}, "images\\['a.png'\\]: expected a list"),
        ({"images": {"a.png": ["text"]}}, "images\\['a.png'\\]\\[0\\]: expected"),
        ({"images": {"a.png": [{"symbology": "qrcode"}]}}, "images\\['a.png'\\]\\[0\\].text"),
        ({"images": {"a.png": [{"text": ""}]}}, "images\\['a.png'\\]\\[0\\].text"),
    ],
)
def test_bad_decode_truth_names_the_file_and_field(tmp_path: Path, doc: object, message: str) -> None:
    path = _truth(tmp_path, doc)
    with pytest.raises(ValueError, match=message) as info:
        load_decode_truth(path)
    assert str(path) in str(info.value)


def test_expected_texts_of_coco_records(tmp_path: Path) -> None:
    ring = [np.array([[0, 0], [10, 0], [10, 5], [0, 5]], np.float64)]
    good = ImageRecord(tmp_path / "a.jpg", 20, 20, [Instance(ring, text="X"), Instance(ring, text="X")])
    empty = ImageRecord(tmp_path / "b.jpg", 20, 20, [])
    assert expected_texts([good, empty]) == {good.path: ["X", "X"], empty.path: []}
    unlabelled = ImageRecord(tmp_path / "c.jpg", 20, 20, [Instance(ring, text="X"), Instance(ring)])
    with pytest.raises(ValueError, match=r"c\.jpg: annotation 1 .*attributes\.text"):
        expected_texts([unlabelled])
