"""A text file listing images, one path per line (a hand-picked selection of source faces).

Lines are paths relative to the list file's folder (or absolute); blank lines and lines starting
with ``#`` are ignored. An image with an iBUG ``.pts`` file next to it gets its landmarks;
otherwise it has none (``mvface synth`` then marks it with its landmark model). The list is the
user's own selection, so its paths may point anywhere the user can read.
"""

from __future__ import annotations

from pathlib import Path

from mvface._io import read_small_file
from mvface.data.readers._common import (
    check_limit,
    guard_os_errors,
    header_meta,
    os_error_line,
    sample_name,
)
from mvface.data.readers._registry import register_reader
from mvface.data.readers.pts import read_pts
from mvface.data.record import Dataset, FaceSample
from mvface.errors import BadInputError

#: Largest list file read (bytes): a million paths.
MAX_LIST_BYTES = 256 * 1024 * 1024


@register_reader("list")
@guard_os_errors
def read_image_list(root: Path, limit: int | None = None) -> Dataset:
    """Read the images named by the list file ``root``, with ``.pts`` landmarks where present.

    Args:
        root: the list file (UTF-8 text).
        limit: stop after this many samples (``None``: all).

    Returns:
        A Dataset named ``"list"``: samples in list order; ``name`` = the path relative to
        the list's folder without extension (the file name for paths outside it);
        ``landmarks`` ``(68, 2)`` 0-based pixels or ``None``; meta ``line``, ``width``,
        ``height`` (and ``pts_file``). Missing, unreadable or duplicate entries and bad ``.pts``
        files are skipped with a reason naming the list line.

    Raises:
        BadInputError: ``root`` is not a readable UTF-8 text file.
    """
    root = Path(root)
    limit = check_limit(limit)
    try:
        text = read_small_file(root, MAX_LIST_BYTES, "list file").decode("utf-8")
    except UnicodeDecodeError:
        raise BadInputError(root, "list file is not UTF-8 text") from None
    samples: list[FaceSample] = []
    skipped: list[str] = []
    seen: set[Path] = set()
    for line_no, line in enumerate(text.splitlines(), start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        if limit is not None and len(samples) >= limit:
            break
        image = Path(entry) if Path(entry).is_absolute() else root.parent / entry
        where = f"{root}:{line_no}"
        try:
            if image.resolve() in seen:
                raise BadInputError(where, f"{entry} is listed twice")
            if not image.is_file():
                raise BadInputError(where, f"{entry} is not a file")
            meta = {"dataset": "list", "line": line_no, **header_meta(image)}
            pts_file = image.with_suffix(".pts")
            landmarks = None
            if pts_file.is_file():
                landmarks = read_pts(pts_file)
                meta["pts_file"] = pts_file
                meta["landmarks_from"] = str(pts_file)
            seen.add(image.resolve())
            name = sample_name(image, root.parent)  # the file name for paths outside its folder
            samples.append(FaceSample(image=image, landmarks=landmarks, name=name, meta=meta))
        except BadInputError as exc:
            skipped.append(str(exc))
        except OSError as exc:
            skipped.append(os_error_line(exc, where))
    return Dataset(samples=samples, skipped=skipped, name="list", root=root)


__all__ = ["read_image_list"]
