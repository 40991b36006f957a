"""Uploaded bytes to the RGB uint8 array every runtime expects.

Clients send whatever their camera or scanner wrote: 16-bit greys, CMYK JPEGs, palettes,
transparency, EXIF-rotated phone photos. Each is converted rather than refused; only what
cannot be an image (empty, unreadable, truncated) or would exhaust memory (a decompression
bomb, judged from the header before any pixel is decoded) is refused, with a message naming
the problem.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Raster formats a camera, scanner or browser produces (JPEG includes phones' MPO). Pillow
# can open more, but some of them (EPS) run external programs on the upload.
FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "BMP", "GIF", "PPM")
HIGH_DEPTH_MODES = ("I", "F", "I;16", "I;16L", "I;16B", "I;16N")
ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


class ImageError(ValueError):
    """The upload is not an image this service can read."""


class ImageTooLarge(ImageError):
    """The image has more pixels than the service decodes (a decompression-bomb guard)."""


def decode_image(data: bytes, max_pixels: int) -> np.ndarray:
    """``data`` (any format in ``FORMATS``) as an RGB uint8 (H, W, 3) array, upright."""
    if not data:
        raise ImageError("the image is empty (0 bytes)")
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
    except Image.DecompressionBombError as exc:  # Pillow's own, higher guard
        raise ImageTooLarge(f"the image is too large to decode: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"not a readable image ({len(data)} bytes); supported formats: {', '.join(FORMATS)}") from exc
    width, height = image.size  # from the header: nothing decoded yet
    if width * height > max_pixels:
        raise ImageTooLarge(f"the image is {width}x{height} = {width * height} pixels, above the limit of {max_pixels}")
    if width == 0 or height == 0:
        raise ImageError(f"the image has no pixels ({width}x{height})")
    try:
        image.load()
        upright = ImageOps.exif_transpose(image)
    except Exception as exc:  # Pillow's decoders raise OSError, SyntaxError, ValueError, EOFError, ...
        raise ImageError(f"the {image.format} image is damaged or truncated: {exc}") from exc
    return to_rgb(upright)


def to_rgb(image: Image.Image) -> np.ndarray:
    """Any Pillow mode as RGB uint8. Pillow clips 16-bit and float greys to 255 instead of
    scaling them, so those are stretched over the range they use (a 12-bit sensor stores
    0..4095 in 16 bits); transparency is laid over white, since codes print dark on light."""
    if image.mode in HIGH_DEPTH_MODES:
        values = np.asarray(image, dtype=np.float64)
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
        grey = np.round(scaled).astype(np.uint8)
        return np.stack([grey] * 3, axis=-1)
    if image.mode in ALPHA_MODES or "transparency" in image.info:
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, image.convert("RGBA"))
    return np.asarray(image.convert("RGB"))
