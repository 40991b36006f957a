"""Uploaded bytes to RGB: every common mode converted, every unreadable upload refused with
its reason, bombs refused from the header."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from barseg.data.images import ImageError, ImageTooLarge, decode_image, read_image, resize
from tests.serve.conftest import encode

LIMIT = 10_000_000


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header announces ``width`` x ``height`` and whose pixel data is garbage:
    only a decoder that judges the header before decoding refuses it as too large."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"not zlib") + chunk(b"IEND", b"")


def test_rgb_jpeg_passes_through() -> None:
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[:, :15] = (200, 30, 30)
    out = decode_image(encode(Image.fromarray(rgb), "PNG"), LIMIT)
    assert out.dtype == np.uint8 and out.shape == (20, 30, 3)
    np.testing.assert_array_equal(out, rgb)


@pytest.mark.parametrize("top", [65535, 4095])  # full 16 bits, and a 12-bit sensor's range
def test_16_bit_grey_is_stretched_not_clipped(top: int) -> None:
    ramp = np.linspace(0, top, 64).astype(np.uint16)[None].repeat(8, axis=0)
    out = decode_image(encode(Image.fromarray(ramp), "PNG"), LIMIT)
    assert out.shape == (8, 64, 3) and out.dtype == np.uint8
    assert out[0, 0, 0] == 0 and out[0, -1, 0] == 255
    assert np.all(np.diff(out[0, :, 0].astype(int)) >= 0)  # still a ramp, not a step at 255
    assert (out[..., 0] == out[..., 2]).all()


def test_float_tiff_is_stretched() -> None:
    values = np.linspace(-1.0, 3.0, 50, dtype=np.float32)[None].repeat(4, axis=0)
    out = decode_image(encode(Image.fromarray(values, mode="F"), "TIFF"), LIMIT)
    assert out[0, 0, 1] == 0 and out[0, -1, 1] == 255


def test_cmyk_jpeg_becomes_rgb() -> None:
    red = Image.new("CMYK", (16, 16), (0, 255, 255, 0))
    out = decode_image(encode(red, "JPEG", quality=95), LIMIT)
    assert out.shape == (16, 16, 3)
    assert out[8, 8, 0] > 200 and out[8, 8, 1] < 60 and out[8, 8, 2] < 60


@pytest.mark.parametrize("fmt", ["GIF", "PNG"])
def test_palette_with_transparency_lies_on_white(fmt: str) -> None:
    image = Image.new("P", (10, 10), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.paste(1, (0, 0, 5, 10))
    image.info["transparency"] = 0  # palette entry 0 (black) is transparent
    out = decode_image(encode(image, fmt, transparency=0), LIMIT)
    assert tuple(out[5, 8]) == (255, 255, 255)  # transparent: white, not black
    assert out[5, 2, 0] > 200 and out[5, 2, 1] < 50  # opaque red stays red


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_lies_on_white(mode: str) -> None:
    rgba = np.zeros((10, 10, 4), np.uint8)  # black everywhere ...
    rgba[:, :5, 3] = 255  # ... opaque on the left, transparent on the right
    image = Image.fromarray(rgba, "RGBA").convert(mode)
    out = decode_image(encode(image, "PNG"), LIMIT)
    assert tuple(out[5, 2]) == (0, 0, 0) and tuple(out[5, 8]) == (255, 255, 255)


@pytest.mark.parametrize("mode", ["1", "L"])
def test_grey_and_bilevel_become_three_channels(mode: str) -> None:
    grey = np.zeros((6, 8), np.uint8)
    grey[:, 4:] = 255
    out = decode_image(encode(Image.fromarray(grey).convert(mode), "PNG"), LIMIT)
    assert out.shape == (6, 8, 3)
    assert tuple(out[0, 0]) == (0, 0, 0) and tuple(out[0, 7]) == (255, 255, 255)


def test_exif_orientation_is_applied() -> None:
    rgb = np.zeros((20, 40, 3), np.uint8)  # landscape, stored as the sensor saw it
    rgb[:4, :4] = 255  # a white mark top-left
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    out = decode_image(encode(Image.fromarray(rgb), "JPEG", quality=100, exif=exif), LIMIT)
    assert out.shape == (40, 20, 3)  # portrait, as displayed
    assert out[:4, -4:].mean() > 200  # the mark moved to the top-right


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"name,score\nean,0.9\n" * 10, "not a readable image"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "not a readable image"),  # no Ghostscript for uploads
        (b"\xff\xd8\xff\xe0 this is not really a jpeg", "header is damaged"),  # Pillow raises OSError opening it
    ],
)
def test_non_images_are_refused(data: bytes, reason: str) -> None:
    with pytest.raises(ImageError, match=reason):
        decode_image(data, LIMIT)


def test_truncated_jpeg_is_refused() -> None:
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise), "JPEG")
    with pytest.raises(ImageError, match="truncated"):
        decode_image(data[: len(data) // 2], LIMIT)


def test_bomb_is_refused_from_its_header() -> None:
    with pytest.raises(ImageTooLarge, match="8000x8000 = 64000000 pixels"):
        decode_image(png_header_only(8000, 8000), LIMIT)
    with pytest.raises(ImageError, match="damaged or truncated"):  # the same garbage, under the limit
        decode_image(png_header_only(100, 100), LIMIT)


def test_pillows_own_bomb_guard_also_reads_as_too_large() -> None:
    with pytest.raises(ImageTooLarge, match="too large"):
        decode_image(png_header_only(20000, 20000), 10**12)


def test_read_image_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "scan.png"
    bad.write_bytes(b"garbage")
    with pytest.raises(ImageError, match=r"scan\.png: not a readable image"):
        read_image(bad)
    with pytest.raises(ImageError, match=r"missing\.jpg: cannot read the file"):
        read_image(tmp_path / "missing.jpg")


def test_shrinking_averages_fine_bars_instead_of_aliasing_them() -> None:
    """1-px bars reduced 3x: area averaging leaves low-contrast grey (what training images get,
    std 42.5); bilinear sampling picks single columns and keeps full-contrast false stripes
    (std 127.5)."""
    bars = np.zeros((300, 300, 3), np.uint8)
    bars[:, ::2] = 255
    small = resize(bars, 100, 100)
    assert small.shape == (100, 100, 3) and small.std() < 50
    assert resize(bars, 600, 600).shape == (600, 600, 3)
