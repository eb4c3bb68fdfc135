"""A plain folder of images, without annotations (inference, demos, detector input)."""

from __future__ import annotations

from pathlib import Path

from mvface.data.image import IMAGE_SUFFIXES
from mvface.data.readers._common import (
    check_dir,
    check_limit,
    guard_os_errors,
    header_meta,
    iter_files,
    os_error_line,
    sample_name,
)
from mvface.data.readers._registry import register_reader
from mvface.data.record import Dataset, FaceSample
from mvface.errors import BadInputError


@register_reader("folder")
@guard_os_errors
def read_image_folder(root: Path, limit: int | None = None) -> Dataset:
    """Read every image under ``root`` (recursive, sorted by relative path), no landmarks.

    Files are chosen by extension (``.jpg .jpeg .png .ppm .pgm .pnm .bmp .tif .tiff .webp``,
    any case); other files are ignored silently. An image-named file whose header cannot be
    read (corrupt, empty, over the megapixel limit) is skipped with a reason, and so is a
    sub-folder that cannot be listed or that a symlink loops back to (symlinked folders are
    followed: see :func:`~mvface.data.readers._common.iter_files`).

    Args:
        root: the folder.
        limit: stop after this many samples (``None``: all).

    Returns:
        A Dataset named ``"folder"``: ``name`` the relative path without extension,
        ``landmarks``/``box``/``pose`` ``None``, meta ``width``, ``height``.

    Raises:
        BadInputError: ``root`` is not a readable folder.
    """
    root = check_dir(Path(root))
    limit = check_limit(limit)
    samples: list[FaceSample] = []
    skipped: list[str] = []
    for image in iter_files(root, IMAGE_SUFFIXES, skipped):
        if limit is not None and len(samples) >= limit:
            break
        try:
            meta = {"dataset": "folder", **header_meta(image)}
        except BadInputError as exc:
            skipped.append(str(exc))
        except OSError as exc:
            skipped.append(os_error_line(exc, image))
        else:
            samples.append(FaceSample(image=image, name=sample_name(image, root), meta=meta))
    return Dataset(samples=samples, skipped=skipped, name="folder", root=root)


__all__ = ["read_image_folder"]
