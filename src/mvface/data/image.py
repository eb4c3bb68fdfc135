"""Load any image file as an ``(H, W, 3)`` uint8 RGB array, or read its size from the header.

Conventions (every reader and the CLI rely on them):

- The format is found from the file's content, not its extension (a PNG named ``.jpg`` loads).
- EXIF orientation is applied, so the array is the image as a viewer shows it;
  :func:`image_size` reports the size of that array (orientations 5-8 swap width and height).
- Colour modes become 8-bit RGB:

  - grey (``L``, ``1``), palette (``P``), ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``: Pillow's
    conversion (CMYK naively, without an ICC profile).
  - alpha (``RGBA``, ``LA``, ``PA``, ``P`` with a transparent colour): **composited on black**,
    ``rgb * alpha / 255`` rounded, so fully transparent pixels are black whatever colour they
    store (renders with a transparent background get a clean black one).
  - ``I;16`` (16-bit): scaled by the 16-bit range, ``round(v / 257)`` (65535 -> 255), so
    absolute brightness is kept.
  - ``I`` (32-bit integer): the same 16-bit scaling when every value is in ``[0, 65535]`` (how
    Pillow opens many 16-bit files), else a min-max stretch of the image's own values.
  - ``F`` (32-bit float): ``round(v * 255)`` when every value is in ``[0, 1]``, else a min-max
    stretch. A constant image stretches to 0.

- Multi-frame files (GIF, TIFF): the first frame.
- Images over :data:`MAX_PIXELS` are refused from their header, before any pixel is decoded.
- Every failure (missing, directory, permission, empty, truncated, corrupt, unsupported) is a
  :class:`~mvface.errors.BadInputError` ``"<file>: <problem>"``, never an exception from Pillow.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from mvface._io import check_readable_file
from mvface.errors import BadInputError

#: Largest image accepted, in pixels (width x height): 100 megapixels.
MAX_PIXELS = 100_000_000

#: File extensions (lower case) treated as images by readers and commands.
IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".pnm", ".bmp", ".tif", ".tiff", ".webp"}
)

# EXIF orientations that transpose the image (rotate by 90 or 270 degrees, maybe mirrored).
_TRANSPOSING_ORIENTATIONS = frozenset({5, 6, 7, 8})
_EXIF_ORIENTATION_TAG = 0x0112


def _open(path: Path) -> Image.Image:
    """Open the file lazily (header only) and apply the megapixel guard."""
    check_readable_file(path, "image file")
    try:
        with warnings.catch_warnings():
            # We apply our own (larger) limit below; Pillow's warning would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
    except Image.DecompressionBombError:
        raise BadInputError(
            path, f"image is too large (more than {MAX_PIXELS // 1_000_000} megapixels)"
        ) from None
    except PermissionError:
        raise BadInputError(path, "permission denied") from None
    except Image.UnidentifiedImageError:
        raise BadInputError(
            path, "not a recognised image (unsupported format or corrupt)"
        ) from None
    except Exception as exc:  # Pillow raises many types on corrupt headers
        raise BadInputError(
            path, f"cannot read image header ({type(exc).__name__}: {exc})"
        ) from None
    width, height = im.size
    if width <= 0 or height <= 0:
        im.close()
        raise BadInputError(path, f"image has no pixels ({width}x{height})")
    if width * height > MAX_PIXELS:
        im.close()
        raise BadInputError(
            path,
            f"image is {width}x{height} = {width * height / 1e6:.0f} megapixels, more than the "
            f"{MAX_PIXELS // 1_000_000}-megapixel limit (refused without decoding)",
        )
    return im


def _exif_orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(_EXIF_ORIENTATION_TAG, 1)
        return int(value)
    except Exception:  # a broken EXIF block is ignored, as viewers do
        return 1


def image_size(path: str | Path) -> tuple[int, int]:
    """Size ``(width, height)`` in pixels of the array :func:`load_image` would return.

    Reads the header only (no pixel decoding); EXIF orientations 5-8 swap width and height.

    Raises:
        BadInputError: the file is missing, unreadable, not an image or over :data:`MAX_PIXELS`.
    """
    path = Path(path)
    im = _open(path)
    try:
        width, height = im.size
        if _exif_orientation(im) in _TRANSPOSING_ORIENTATIONS:
            width, height = height, width
        return int(width), int(height)
    finally:
        im.close()


def _scale_to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    """Scale a 16/32-bit integer or float single-channel image to uint8 (see module doc)."""
    v = values.astype(np.float64)
    finite = np.isfinite(v)
    if not finite.all():
        v = np.where(finite, v, 0.0)
    lo, hi = (float(v.min()), float(v.max())) if v.size else (0.0, 0.0)
    if mode.startswith("I;16") or (mode == "I" and lo >= 0 and hi <= 65535):
        out = v / 257.0
    elif mode == "F" and lo >= 0 and hi <= 1:
        out = v * 255.0
    elif hi > lo:
        out = (v - lo) * (255.0 / (hi - lo))
    else:
        out = np.zeros_like(v)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _to_rgb(im: Image.Image) -> np.ndarray:
    """Convert a decoded Pillow image of any mode to ``(H, W, 3)`` uint8 RGB."""
    mode = im.mode
    if mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        if mode in ("RGBa", "La"):  # premultiplied: un-premultiply through Pillow first
            im = im.convert("RGBA")
        rgba = np.asarray(im.convert("RGBA"), dtype=np.uint16)
        alpha = rgba[..., 3:4]
        rgb = (rgba[..., :3] * alpha + 127) // 255
        return np.ascontiguousarray(rgb.astype(np.uint8))
    if mode.startswith("I") or mode == "F":
        grey = _scale_to_uint8(np.asarray(im), mode)
        if grey.ndim == 3:  # unusual multi-channel high-bit-depth data: keep the first channel
            grey = grey[..., 0]
        return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))
    if mode != "RGB":
        im = im.convert("RGB")
    return np.ascontiguousarray(np.asarray(im, dtype=np.uint8))


def load_image(path: str | Path) -> np.ndarray:
    """Load an image file as an ``(H, W, 3)`` uint8 RGB array (EXIF orientation applied).

    The format is detected from the content. Alpha is composited on black; 16-bit and 32-bit
    images are scaled to 8 bits as the module docstring describes.

    Args:
        path: the image file (JPEG, PNG, PPM/PGM, BMP, TIFF, WebP, GIF, ... what Pillow reads).

    Returns:
        ``(H, W, 3)`` uint8 array, RGB, row 0 at the top of the (oriented) image.

    Raises:
        BadInputError: ``"<file>: <problem>"`` for a missing file, a directory, permission
            denied, an empty, truncated or corrupt file, an unsupported format, or an image
            larger than :data:`MAX_PIXELS` (checked from the header, before decoding).

    Example:
        >>> img = load_image("face.jpg")  # doctest: +SKIP
        >>> img.shape, img.dtype  # doctest: +SKIP
        ((450, 450, 3), dtype('uint8'))
    """
    path = Path(path)
    im = _open(path)
    try:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                im.load()
                oriented = ImageOps.exif_transpose(im)
        except Image.DecompressionBombError:
            raise BadInputError(
                path, f"image is too large (more than {MAX_PIXELS // 1_000_000} megapixels)"
            ) from None
        except MemoryError:
            raise BadInputError(path, "not enough memory to decode the image") from None
        except Exception as exc:  # truncated or corrupt data: OSError, SyntaxError, ...
            problem = str(exc) or type(exc).__name__
            raise BadInputError(path, f"image data is truncated or corrupt ({problem})") from None
        try:
            return _to_rgb(oriented if oriented is not None else im)
        except Exception as exc:
            raise BadInputError(
                path, f"cannot convert image mode {im.mode!r} to RGB ({exc})"
            ) from None
    finally:
        im.close()
