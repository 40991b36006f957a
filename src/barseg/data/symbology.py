"""Canonical symbology names (docs/design.md §3) and the text normalisation used to compare reads."""

from __future__ import annotations

import re

CANONICAL = (
    "EAN13", "EAN8", "UPCA", "UPCE", "Code128", "Code39", "Code93", "Codabar", "ITF",
    "DataBar", "QRCode", "MicroQR", "DataMatrix", "PDF417", "Aztec", "MaxiCode",
)  # fmt: skip

GS = "\x1d"  # GS1 group separator (FNC1 inside a code)
# ASCII control characters by name: zxing-cpp's HRI text shows them as <GS>, <CR>, ...
_CONTROL_NAMES = (
    "NUL", "SOH", "STX", "ETX", "EOT", "ENQ", "ACK", "BEL", "BS", "HT", "LF", "VT", "FF", "CR", "SO", "SI",
    "DLE", "DC1", "DC2", "DC3", "DC4", "NAK", "SYN", "ETB", "CAN", "EM", "SUB", "ESC", "FS", "GS", "RS", "US",
)  # fmt: skip
_CONTROL_CODE = {name: chr(i) for i, name in enumerate(_CONTROL_NAMES)} | {"DEL": "\x7f"}
_CONTROL_TEXT = re.compile(r"<(" + "|".join(_CONTROL_CODE) + r")>|\{GS\}|[\u2400-\u241f\u2421]")

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
    "databarstacked": "DataBar",
    "databarstackedomni": "DataBar",
    "databarexpandedstacked": "DataBar",
    "gs1databar": "DataBar",
    "rss14": "DataBar",  # the older name, used by zxing's test images
    "rssexpanded": "DataBar",
    "rssexpandedstacked": "DataBar",
    "rsslimited": "DataBar",
    "code39standard": "Code39",
    "qrcodemodel1": "QRCode",
    "qrcodemodel2": "QRCode",
    "isbn": "EAN13",
    "pdf417compact": "PDF417",
    "compactpdf417": "PDF417",
    "azteccode": "Aztec",
}


def canonical_symbology(name: str) -> str | None:
    """Return the canonical name for ``name`` (any common spelling), or None if unknown."""
    return _ALIASES.get(_key(name))


def normalize_text(text: str, symbology: str | None = None) -> str:
    """Normalise a decoded or expected text so equal codes compare equal (docs/design.md §6).

    Control characters written out are the characters (zxing-cpp's HRI text shows them as
    ``<GS>`` or ``␝``, some label tools as ``{GS}``). Line breaks and surrounding whitespace
    are ignored (so is a leading or trailing GS1 group separator, which Python counts as
    whitespace); a 13-digit EAN-13 starting with 0 is its 12-digit UPC-A; Codabar start/stop
    letters and GS1 ``(AI)`` brackets are dropped, and a GS1 DataBar holding only a GTIN,
    ``(01)`` + 14 digits, is the bare GTIN (how labels and zxing's test images write it).
    """
    out = _CONTROL_TEXT.sub(_control_char, text)
    out = "".join(out.split("\n")).replace("\r", "").strip()
    sym = canonical_symbology(symbology) if symbology else None
    if out.isdigit() and len(out) == 13 and out.startswith("0") and sym in (None, "EAN13", "UPCA", "UPCE"):
        out = out[1:]
    if sym == "UPCE" and out.isdigit() and len(out) == 8:
        out = upce_to_upca(out)
    if sym == "Codabar" and len(out) >= 2 and out[0] in "ABCDabcd" and out[-1] in "ABCDabcd":
        out = out[1:-1]
    if sym in (None, "DataBar") and out.startswith("("):
        gtin = re.fullmatch(r"\(01\)(\d{14})", out)
        out = gtin.group(1) if gtin else re.sub(r"\((\d{2,4})\)", r"\1", out)
    return out


def _control_char(match: re.Match[str]) -> str:
    written = match.group(0)
    if written == "{GS}":
        return GS
    if match.group(1):
        return _CONTROL_CODE[match.group(1)]
    return "\x7f" if written == "\u2421" else chr(ord(written) - 0x2400)


_CODABAR = re.compile(r"[ABCD][0-9$:/.+-]+[ABCD]", re.IGNORECASE)


def comparison_key(text: str) -> str:
    """``normalize_text`` for texts compared without a trusted symbology: a truth file's
    "upca" is zxing-cpp's EAN-13, a label's UPC-E its 13-digit expansion. Each symbology rule
    applies where the text's shape admits it: 8 digits that form a valid UPC-E (number system
    0 or 1, check digit of the expansion right) expand, a Codabar-shaped text loses its
    guards. Both sides go through the same key, so a text of another code that happens to
    have such a shape still equals itself; it could only be taken for a different code whose
    text is its expansion (an EAN-8 and a UPC-A), which real sets do not hold together."""
    out = normalize_text(text)
    if len(out) == 8 and out.isdigit() and out[0] in "01":
        upca = upce_to_upca(out)
        if upc_check_digit(upca[:11]) == upca[11]:
            return upca
    if _CODABAR.fullmatch(out):
        return normalize_text(out, "Codabar")
    return out


def upc_check_digit(digits: str) -> str:
    """The UPC-A check digit of its first 11 digits (weights 3, 1, 3, ... from the left)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(digits))
    return str(-total % 10)


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
