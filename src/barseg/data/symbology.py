"""Canonical symbology names (DESIGN §3) and the text normalisation used to compare reads."""

from __future__ import annotations

import re

CANONICAL = (
    "EAN13", "EAN8", "UPCA", "UPCE", "Code128", "Code39", "Code93", "Codabar", "ITF",
    "DataBar", "QRCode", "MicroQR", "DataMatrix", "PDF417", "Aztec", "MaxiCode",
)  # fmt: skip

ONE_D = frozenset({"EAN13", "EAN8", "UPCA", "UPCE", "Code128", "Code39", "Code93", "Codabar", "ITF", "DataBar"})


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


# Spellings seen in other tools (zxing-cpp's "EAN-13", "QR Code", "Data Matrix", ...).
_ALIASES = {_key(n): n for n in CANONICAL} | {
    "upc": "UPCA",
    "qr": "QRCode",
    "microqrcode": "MicroQR",
    "interleaved2of5": "ITF",
    "itf14": "ITF",
    "code3of9": "Code39",
    "code39extended": "Code39",
    "databaromni": "DataBar",
    "databarexpanded": "DataBar",
    "databarlimited": "DataBar",
    "gs1databar": "DataBar",
    "pdf417compact": "PDF417",
    "compactpdf417": "PDF417",
    "azteccode": "Aztec",
}


def canonical_symbology(name: str) -> str | None:
    """Return the canonical name for ``name`` (any common spelling), or None if unknown."""
    return _ALIASES.get(_key(name))


def normalize_text(text: str, symbology: str | None = None) -> str:
    """Normalise a decoded or expected text so equal codes compare equal (DESIGN §6).

    Line breaks and surrounding whitespace are ignored; a 13-digit EAN-13 starting with 0 is
    its 12-digit UPC-A; Codabar start/stop letters and GS1 ``(AI)`` brackets are dropped.
    """
    out = "".join(text.split("\n")).replace("\r", "").strip()
    sym = canonical_symbology(symbology) if symbology else None
    if out.isdigit() and len(out) == 13 and out.startswith("0") and sym in (None, "EAN13", "UPCA", "UPCE"):
        out = out[1:]
    if sym == "UPCE" and out.isdigit() and len(out) == 8:
        out = upce_to_upca(out)
    if sym == "Codabar" and len(out) >= 2 and out[0] in "ABCDabcd" and out[-1] in "ABCDabcd":
        out = out[1:-1]
    if sym in (None, "DataBar") and out.startswith("("):
        out = re.sub(r"\((\d{2,4})\)", r"\1", out)
    return out


def upce_to_upca(upce: str) -> str:
    """Expand an 8-digit UPC-E (number system, 6 digits, check) to its 12-digit UPC-A."""
    ns, d, check = upce[0], upce[1:7], upce[7]
    last = d[5]
    if last in "012":
        body = d[0:2] + last + "0000" + d[2:5]
    elif last == "3":
        body = d[0:3] + "00000" + d[3:5]
    elif last == "4":
        body = d[0:4] + "00000" + d[4]
    else:
        body = d[0:5] + "0000" + last
    return ns + body + check
