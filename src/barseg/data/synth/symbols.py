"""Real barcode symbols from zxing-cpp's writer, as module grids with random valid payloads."""

from __future__ import annotations

import string
from dataclasses import dataclass

import numpy as np
import zxingcpp

from barseg.data.symbology import ONE_D

# Symbologies the generator renders: canonical name -> (zxing format, quiet zone in modules).
WRITERS: dict[str, tuple[zxingcpp.BarcodeFormat, int]] = {
    "EAN13": (zxingcpp.BarcodeFormat.EAN13, 9),
    "EAN8": (zxingcpp.BarcodeFormat.EAN8, 7),
    "UPCA": (zxingcpp.BarcodeFormat.UPCA, 9),
    "UPCE": (zxingcpp.BarcodeFormat.UPCE, 9),
    "Code128": (zxingcpp.BarcodeFormat.Code128, 10),
    "Code39": (zxingcpp.BarcodeFormat.Code39, 10),
    "Code93": (zxingcpp.BarcodeFormat.Code93, 10),
    "ITF": (zxingcpp.BarcodeFormat.ITF, 10),
    "Codabar": (zxingcpp.BarcodeFormat.Codabar, 10),
    "QRCode": (zxingcpp.BarcodeFormat.QRCode, 4),
    "DataMatrix": (zxingcpp.BarcodeFormat.DataMatrix, 2),
    "PDF417": (zxingcpp.BarcodeFormat.PDF417, 2),
    "Aztec": (zxingcpp.BarcodeFormat.Aztec, 2),
}

_WORDS = [
    "lot",
    "batch",
    "serial",
    "ref",
    "exp",
    "mfg",
    "part",
    "order",
    "ship",
    "box",
    "pallet",
    "item",
    "sku",
    "store",
    "net",
    "weight",
    "www",
    "example",
    "com",
    "shop",
    "id",
    "code",
    "qty",
    "unit",
    "price",
    "best",
    "before",
]


@dataclass(frozen=True)
class Symbol:
    symbology: str
    text: str  # what a reader should return (canonical form, before normalisation)
    modules: np.ndarray  # bool, True = dark; 1D codes are one row

    @property
    def is_1d(self) -> bool:
        return self.symbology in ONE_D


def _digits(rng: np.random.Generator, n: int) -> str:
    return "".join(str(d) for d in rng.integers(0, 10, n))


def _chars(rng: np.random.Generator, alphabet: str, lo: int, hi: int) -> str:
    n = int(rng.integers(lo, hi + 1))
    return "".join(alphabet[i] for i in rng.integers(0, len(alphabet), n))


def _free_text(rng: np.random.Generator, lo: int, hi: int) -> str:
    """Serial numbers, URLs or short phrases, as 2D codes carry in the wild."""
    kind = rng.integers(0, 3)
    if kind == 0:
        return _chars(rng, string.ascii_uppercase + string.digits, lo, hi)
    if kind == 1:
        return (
            "https://"
            + _chars(rng, string.ascii_lowercase, 4, 10)
            + ".com/"
            + _chars(rng, string.ascii_letters + string.digits, 2, max(3, hi - 20))
        )
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < lo:
        words.append(_WORDS[int(rng.integers(0, len(_WORDS)))])
    return " ".join(words)[:hi]


def random_payload(symbology: str, rng: np.random.Generator) -> str:
    """A valid payload for ``symbology`` (check digits are added by the writer)."""
    if symbology == "EAN13":
        return _digits(rng, 12)
    if symbology == "EAN8":
        return _digits(rng, 7)
    if symbology == "UPCA":
        return _digits(rng, 11)
    if symbology == "UPCE":
        # Last digit 5-9 with a non-zero digit before it: the zero-suppression form that is
        # valid for any other digits.
        return "0" + _digits(rng, 4) + str(int(rng.integers(1, 10))) + str(int(rng.integers(5, 10)))
    if symbology == "Code128":
        return _chars(rng, string.ascii_uppercase + string.digits + "-./ ", 4, 18).strip() or "A1"
    if symbology == "Code39":
        return _chars(rng, string.ascii_uppercase + string.digits + "-.", 3, 12)
    if symbology == "Code93":
        return _chars(rng, string.ascii_uppercase + string.digits, 3, 12)
    if symbology == "ITF":
        return _digits(rng, 2 * int(rng.integers(3, 8)))
    if symbology == "Codabar":
        guards = "ABCD"
        return guards[rng.integers(0, 4)] + _chars(rng, string.digits + "-$:/.+", 4, 12) + guards[rng.integers(0, 4)]
    if symbology == "QRCode":
        return _free_text(rng, 4, 60)
    if symbology == "DataMatrix":
        return _free_text(rng, 4, 30)
    if symbology == "PDF417":
        return _free_text(rng, 8, 60)
    return _free_text(rng, 4, 40)  # Aztec


def check_symbologies(names: list[str]) -> None:
    unknown = [n for n in names if n not in WRITERS]
    if unknown:
        raise ValueError(f"synth.symbologies: the generator cannot render {unknown}; choose from {sorted(WRITERS)}")


def make_symbol(symbology: str, rng: np.random.Generator) -> Symbol:
    fmt, _ = WRITERS[symbology]
    payload = random_payload(symbology, rng)
    barcode = zxingcpp.create_barcode(payload, fmt)
    image = np.asarray(zxingcpp.write_barcode_to_image(barcode, scale=1, add_quiet_zones=False))
    dark = image < 128
    text = barcode.text
    if symbology == "UPCA" and len(text) == 13:  # zxing reports UPC-A as EAN-13
        text = text[1:]
    elif symbology == "UPCE":  # zxing reports the expanded form; the label prints 8 digits
        text = payload + text[-1]
    modules = dark[dark.shape[0] // 2][None, :] if symbology in ONE_D else dark
    return Symbol(symbology, text, modules)


def quiet_zone(symbology: str) -> int:
    return WRITERS[symbology][1]
