"""Image files and bytes to the RGB uint8 array every runtime expects, and resizing: the one
image decoder of validation, training, evaluation, the CLI and the service (torch-free), so
they all see the same pixels of the same file.

Photos arrive as whatever a camera or scanner wrote: 16-bit greys, CMYK JPEGs, palettes,
transparency, EXIF-rotated phone photos. Each is converted rather than refused; only what
cannot be an image (empty, unreadable, truncated) or would exhaust memory (a decompression
bomb, judged from the header before any pixel is decoded) is refused, with a message naming
the problem.
"""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Raster formats a camera, scanner or browser produces (JPEG includes phones' MPO). Pillow
# can open more, but some of them (EPS) run external programs on the upload.
FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "BMP", "GIF", "PPM")
HIGH_DEPTH_MODES = ("I", "F", "I;16", "I;16L", "I;16B", "I;16N")
ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


class ImageError(ValueError):
    """The file or upload is not an image we can read."""


class ImageTooLarge(ImageError):
    """The image has more pixels than the service decodes (a decompression-bomb guard)."""


def decode_image(data: bytes, max_pixels: int | None) -> np.ndarray:
    """``data`` (any format in ``FORMATS``) as an RGB uint8 (H, W, 3) array, upright;
    ``max_pixels`` None leaves only Pillow's own decompression-bomb guard."""
    if not data:
        raise ImageError("the image is empty (0 bytes)")
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
    except Image.DecompressionBombError as exc:  # Pillow's own, higher guard
        raise ImageTooLarge(f"the image is too large to decode: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"not a readable image ({len(data)} bytes); supported formats: {', '.join(FORMATS)}") from exc
    except (OSError, SyntaxError, ValueError) as exc:  # a known format whose header is broken
        raise ImageError(f"the image header is damaged ({exc})") from exc
    width, height = image.size  # from the header: nothing decoded yet
    if max_pixels is not None and width * height > max_pixels:
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


def read_image(path: Path, max_pixels: int | None = None) -> np.ndarray:
    """The image file at ``path`` as RGB uint8, upright (EXIF orientation applied); errors
    name the file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ImageError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc
    try:
        return decode_image(data, max_pixels)
    except ImageError as exc:
        raise type(exc)(f"{path}: {exc}") from exc


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` at ``width`` x ``height``: area-averaged when shrinking (a photo reduced 3x
    keeps its fine bars as grey instead of aliasing them into false stripes), bilinear when
    enlarging."""
    if (width, height) == (image.shape[1], image.shape[0]):
        return image
    shrinking = width * height < image.shape[0] * image.shape[1]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
