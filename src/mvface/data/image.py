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
- Images over :data:`MAX_PIXELS` or whose decoded data would take more than
  :data:`MAX_IMAGE_BYTES` (width x height x channels x bytes per sample) are refused from their
  header, before any pixel is decoded. Converting to RGB goes band by band, so the memory a
  load needs is bounded by the decoded image plus the uint8 result (a 16-bit image is never
  copied whole as floating point).
- Every failure (missing, directory, permission, empty, truncated, corrupt, unsupported) is a
  :class:`~mvface.errors.BadInputError` ``"<file>: <problem>"``, never an exception from Pillow.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageMode, ImageOps

from mvface._io import check_readable_file
from mvface.errors import BadInputError

#: Largest image accepted, in pixels (width x height): 100 megapixels.
MAX_PIXELS = 100_000_000

#: Largest decoded image or video frame accepted, in bytes (width x height x channels x bytes
#: per sample): 400 MB, a 100-megapixel RGBA image. The uint8 RGB result takes at most 300 MB
#: more, and converting takes only band-sized temporaries.
MAX_IMAGE_BYTES = 400_000_000

#: File extensions (lower case) treated as images by readers and commands.
IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".pnm", ".bmp", ".tif", ".tiff", ".webp", ".gif"}
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
    try:
        check_image_size(path, width, height, decoded_bytes(width, height, im.mode))
    except BadInputError:
        im.close()
        raise
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


#: Rows of an image converted at a time hold about this many pixels, so converting a 16-bit or
#: RGBA image needs the decoded image, the uint8 result and a few band-sized temporaries
#: (``float64``: 2 MB each) instead of several whole-image ``float64`` copies.
_BAND_PIXELS = 1 << 18


def _scale_to_uint8(
    values: np.ndarray, mode: str, lo: float | None = None, hi: float | None = None
) -> np.ndarray:
    """Scale 16/32-bit integer or float single-channel values to uint8 (see module doc).

    ``lo``/``hi`` are the finite minimum and maximum of the whole image (default: of ``values``).
    """
    if mode.startswith("I;16") or (
        mode == "I" and lo is not None and hi is not None and lo >= 0 and hi <= 65535
    ):
        # round(v / 257) in integers: (v + 128) // 257 equals it for every integer v.
        return ((values.astype(np.int64) + 128) // 257).clip(0, 255).astype(np.uint8)
    v = values.astype(np.float64)
    finite = np.isfinite(v)
    if not finite.all():
        v = np.where(finite, v, 0.0)
    if lo is None or hi is None:
        lo, hi = (float(v.min()), float(v.max())) if v.size else (0.0, 0.0)
    if mode == "I" and lo >= 0 and hi <= 65535:
        out = v / 257.0
    elif mode == "F" and lo >= 0 and hi <= 1:
        out = v * 255.0
    elif hi > lo:
        out = (v - lo) * (255.0 / (hi - lo))
    else:
        out = np.zeros_like(v)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _composite_on_black(rgba: np.ndarray) -> np.ndarray:
    """``(..., 4)`` uint8 RGBA -> ``(..., 3)`` uint8 RGB, ``rgb * alpha / 255`` rounded."""
    wide = rgba.astype(np.uint16)
    return ((wide[..., :3] * wide[..., 3:4] + 127) // 255).astype(np.uint8)


def _bands(height: int, width: int) -> list[tuple[int, int]]:
    rows = max(1, _BAND_PIXELS // max(1, width))
    return [(y0, min(height, y0 + rows)) for y0 in range(0, height, rows)]


def _finite_range(im: Image.Image) -> tuple[float, float]:
    """Finite minimum and maximum of a single-channel ``I``/``F`` image, band by band."""
    lo, hi = np.inf, -np.inf
    width, height = im.size
    for y0, y1 in _bands(height, width):
        band = np.asarray(im.crop((0, y0, width, y1)))
        finite = band[np.isfinite(band)] if band.dtype.kind == "f" else band
        if finite.size:
            lo, hi = min(lo, float(finite.min())), max(hi, float(finite.max()))
    return (0.0, 0.0) if lo > hi else (lo, hi)


def _band_to_rgb(band: Image.Image, mode: str, lo: float | None, hi: float | None) -> np.ndarray:
    """One band of rows of a decoded image (``mode`` as opened) to ``(h, W, 3)`` uint8 RGB."""
    if mode == "P" and "transparency" in band.info:
        return _composite_on_black(np.asarray(band.convert("RGBA")))
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        # premultiplied modes are un-premultiplied by Pillow's conversion first
        return _composite_on_black(np.asarray(band.convert("RGBA")))
    if mode.startswith("I") or mode == "F":
        grey = _scale_to_uint8(np.asarray(band), mode, lo, hi)
        if grey.ndim == 3:  # unusual multi-channel high-bit-depth data: keep the first channel
            grey = grey[..., 0]
        return np.repeat(grey[..., None], 3, axis=2)
    if mode != "RGB":
        band = band.convert("RGB")
    return np.asarray(band, dtype=np.uint8)


def _to_rgb(im: Image.Image) -> np.ndarray:
    """Convert a decoded Pillow image of any mode to ``(H, W, 3)`` uint8 RGB, band by band.

    Memory: the result (3 bytes per pixel) plus temporaries of about :data:`_BAND_PIXELS`
    pixels, whatever the mode (a 16-bit or float image is never copied whole as ``float64``).
    """
    mode = im.mode
    width, height = im.size
    lo = hi = None
    if mode in ("I", "F") or (mode.startswith("I") and not mode.startswith("I;16")):
        lo, hi = _finite_range(im)
    out = np.empty((height, width, 3), np.uint8)
    for y0, y1 in _bands(height, width):
        out[y0:y1] = _band_to_rgb(im.crop((0, y0, width, y1)), mode, lo, hi)
    return out


def decoded_bytes(width: int, height: int, mode: str) -> int:
    """Bytes of a decoded ``width x height`` image in Pillow ``mode`` (channels x sample size)."""
    try:
        bands = Image.getmodebands(mode)
        sample = np.dtype(ImageMode.getmode(mode).typestr).itemsize
    except (KeyError, TypeError, ValueError):
        bands, sample = 4, 4  # an unknown mode: assume the widest common layout
    return int(width) * int(height) * bands * sample


def check_image_size(
    source: str | Path, width: int, height: int, nbytes: int, what: str = "image"
) -> None:
    """Refuse an image or video frame over :data:`MAX_PIXELS` or :data:`MAX_IMAGE_BYTES`.

    Args:
        source: the file, for the message.
        width, height: size in pixels, from a header (nothing decoded yet).
        nbytes: bytes the decoded image or frame takes (width x height x channels x bytes per
            sample).
        what: ``"image"`` or ``"video frames"``, for the message.

    Raises:
        BadInputError: ``"<file>: <what> is WxH ..., more than the ... limit"``.
    """
    if width <= 0 or height <= 0:
        raise BadInputError(source, f"{what} has no pixels ({width}x{height})")
    verb = "are" if what.endswith("s") else "is"
    if width * height > MAX_PIXELS:
        raise BadInputError(
            source,
            f"{what} {verb} {width}x{height} = {width * height / 1e6:.0f} megapixels, more than "
            f"the {MAX_PIXELS // 1_000_000}-megapixel limit (refused without decoding)",
        )
    if nbytes > MAX_IMAGE_BYTES:
        raise BadInputError(
            source,
            f"{what} {verb} {width}x{height} taking {nbytes / 1e6:.0f} MB decoded, more than the "
            f"{MAX_IMAGE_BYTES // 1_000_000} MB limit (refused without decoding)",
        )


def to_rgb_array(image: object, source: str = "image") -> np.ndarray:
    """Any image the API accepts as an ``(H, W, 3)`` uint8 RGB array.

    Accepted: a file path (``str`` / :class:`~pathlib.Path`, via :func:`load_image`), a
    :class:`PIL.Image.Image` (any mode, EXIF orientation applied), or an array of shape
    ``(H, W)``, ``(H, W, 1)`` (grey), ``(H, W, 3)`` (RGB) or ``(H, W, 4)`` (RGBA, composited on
    black) with dtype uint8, uint16 (scaled by the 16-bit range), another integer type with
    values in [0, 255], or float with values in [0, 1]. Returns ``image`` itself when it is
    already a C-contiguous ``(H, W, 3)`` uint8 array.

    Raises:
        BadInputError: ``"<source>: <problem>"`` naming the shape, dtype or value range found.
    """
    if isinstance(image, (str, Path)):
        return load_image(image)
    if isinstance(image, Image.Image):
        width, height = image.size
        check_image_size(source, width, height, decoded_bytes(width, height, image.mode))
        oriented = ImageOps.exif_transpose(image)
        return _to_rgb(oriented if oriented is not None else image)
    if not isinstance(image, np.ndarray):
        try:
            image = np.asarray(image)
        except Exception:
            raise BadInputError(
                source, f"expected a file path, a PIL image or an array, got {type(image).__name__}"
            ) from None
    arr: np.ndarray = image
    shape = tuple(arr.shape)
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
        hint = ""
        if arr.ndim == 3 and arr.shape[0] in (1, 3, 4):
            hint = " (channels first? pass image.transpose(1, 2, 0))"
        raise BadInputError(
            source,
            f"expected an array of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got shape "
            f"{shape}{hint}",
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise BadInputError(source, f"image has no pixels (shape {shape})")
    channels = 1 if arr.ndim == 2 else arr.shape[2]
    height, width = arr.shape[:2]
    check_image_size(source, width, height, height * width * max(3, channels))
    if arr.dtype == np.uint8:
        values = arr
    elif arr.dtype == np.uint16:
        values = _scale_to_uint8(arr, "I;16")
    elif arr.dtype.kind in "iu":
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 255:
            raise BadInputError(
                source,
                f"integer image values must be in [0, 255] (or dtype uint16), found [{lo}, {hi}] "
                f"in dtype {arr.dtype}",
            )
        values = arr.astype(np.uint8)
    elif arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise BadInputError(source, "float image has NaN or infinite values")
        lo_f, hi_f = float(arr.min()), float(arr.max())
        if lo_f < 0.0 or hi_f > 1.0:
            raise BadInputError(
                source,
                f"float image values must be in [0, 1], found [{lo_f:.4g}, {hi_f:.4g}] (for "
                "values in [0, 255] pass image.astype(np.uint8))",
            )
        values = np.rint(arr * 255.0).astype(np.uint8)
    else:
        raise BadInputError(
            source, f"unsupported dtype {arr.dtype} (use uint8, uint16 or float in [0, 1])"
        )
    if values.ndim == 2:
        values = values[..., None]
    if channels == 1:
        values = np.repeat(values, 3, axis=2)
    elif channels == 4:
        values = _composite_on_black(values)
    return np.ascontiguousarray(values)


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
