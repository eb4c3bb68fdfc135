"""Small helpers shared by the dataset readers (private: not part of the public API).

Coordinate conventions used by every reader:

- Landmarks and boxes are in 0-based pixel coordinates of the image as :func:`load_image`
  returns it, pixel centres at integers (``(0, 0)`` is the centre of the top-left pixel).
  Sources that store 1-based (MATLAB / iBUG ``.pts``) positions are shifted by -1.
- A source box ``[x, y, w, h]`` becomes ``[x, y, x + w, y + h]`` in the same frame (and with
  the same shift) as that source's landmarks; half-pixel edge conventions of boxes are not
  modelled (a face box is not that precise).
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import numpy as np

from mvface._io import read_small_file
from mvface.data.image import image_size
from mvface.errors import BadInputError

_P = ParamSpec("_P")
_R = TypeVar("_R")


def os_error_line(exc: OSError, fallback: str | Path) -> str:
    """A one-line ``"file: problem"`` for an ``OSError`` (permission denied, I/O error...)."""
    source = exc.filename if exc.filename is not None else fallback
    problem = "permission denied" if isinstance(exc, PermissionError) else exc.strerror
    return str(BadInputError(source, problem or str(exc)))


def guard_os_errors(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Turn an ``OSError`` escaping a reader (a locked sub-folder...) into BadInputError."""

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return fn(*args, **kwargs)
        except OSError as exc:
            root = args[0] if args else kwargs.get("root", "dataset")
            line = os_error_line(exc, str(root))
            source, _, problem = line.partition(": ")
            raise BadInputError(source, problem) from None

    return wrapper


def check_limit(limit: int | None) -> int | None:
    """Validate a reader's ``limit`` argument (``None`` or an int >= 0)."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise BadInputError("limit", f"must be None or an integer >= 0, got {limit!r}")
    return limit


def check_dir(root: Path) -> Path:
    """Return ``root`` if it is a readable folder; raise BadInputError otherwise."""
    root = Path(root)
    if not root.exists():
        raise BadInputError(root, "does not exist")
    if not root.is_dir():
        raise BadInputError(root, "is not a folder")
    try:
        next(iter(root.iterdir()), None)
    except PermissionError:
        raise BadInputError(root, "permission denied") from None
    except OSError as exc:
        raise BadInputError(root, f"cannot be listed ({exc.strerror or exc})") from None
    return root


def _list_folder(folder: Path) -> list[os.DirEntry[str]]:
    """The entries of ``folder``; PermissionError / OSError when it cannot be listed."""
    if not os.access(folder, os.R_OK | os.X_OK):
        raise PermissionError(13, "Permission denied", str(folder))
    with os.scandir(folder) as entries:
        return sorted(entries, key=lambda e: e.name)


def iter_files(
    root: Path, suffixes: frozenset[str] | None = None, skipped: list[str] | None = None
) -> Iterator[Path]:
    """Files under ``root`` (recursive, sorted by relative path), optionally by extension.

    Symlinked folders are followed, each real folder once: a link back to a folder on its own
    path (a loop) or to one already read is not entered again. Every folder that is not read
    gets a one-line reason in ``skipped`` (when given): ``permission denied``, ``cannot be
    listed``, ``symlink loop``, ``same folder as ...``. Files that cannot be read are still
    yielded: their reader reports them.

    Args:
        root: the folder (itself readable: see :func:`check_dir`).
        suffixes: lower-case extensions to keep (``None``: every file).
        skipped: a list the reasons for folders that are not read are appended to.
    """
    reasons = skipped if skipped is not None else []
    found: list[Path] = []
    first_seen: dict[str, Path] = {}
    # depth first in name order, so which of two links to one folder is read is stable;
    # each entry carries the real paths of the folders above it (to tell a loop from a copy)
    stack: list[tuple[Path, tuple[str, ...]]] = [(Path(root), ())]
    while stack:
        folder, above = stack.pop()
        real = os.path.realpath(folder)
        if real in above:
            reasons.append(str(BadInputError(folder, "symlink loop (links to a folder above it)")))
            continue
        if real in first_seen:
            reasons.append(
                str(BadInputError(folder, f"same folder as {first_seen[real]} (read once)"))
            )
            continue
        first_seen[real] = folder
        try:
            entries = _list_folder(folder)
        except OSError as exc:
            line = os_error_line(exc, folder)
            if not isinstance(exc, PermissionError):
                line = str(BadInputError(folder, f"cannot be listed ({exc.strerror or exc})"))
            reasons.append(line)
            continue
        sub: list[Path] = []
        for entry in entries:
            path = folder / entry.name
            try:
                is_dir = entry.is_dir()  # follows symlinks; a broken link is a file here
            except OSError:
                is_dir = False
            if is_dir:
                sub.append(path)
            elif suffixes is None or Path(entry.name).suffix.lower() in suffixes:
                found.append(path)
        stack += [(p, (*above, real)) for p in reversed(sub)]
    yield from sorted(found)


def sample_name(path: Path, root: Path) -> str:
    """A stable sample name: ``path`` relative to ``root``, POSIX style, without extension."""
    try:
        rel = path.relative_to(root)
    except ValueError:
        rel = Path(path.name)
    return rel.with_suffix("").as_posix()


def header_meta(path: Path) -> dict[str, Any]:
    """``{"width": W, "height": H}`` from the image header (raises BadInputError)."""
    width, height = image_size(path)
    return {"width": width, "height": height}


def xywh_to_box(values: Any, shift: float = 0.0) -> np.ndarray | None:
    """``[x, y, w, h]`` -> ``[x0, y0, x1, y1]`` minus ``shift``; ``None`` if empty or bad."""
    try:
        x, y, w, h = (float(v) for v in values)
    except (TypeError, ValueError):
        return None
    if not all(math.isfinite(v) for v in (x, y, w, h)) or w <= 0 or h <= 0:
        return None
    return np.array([x, y, x + w, y + h], dtype=np.float64) - shift


def finite_array(value: Any, shape: tuple[int, ...], source: str | Path, what: str) -> np.ndarray:
    """``value`` as a finite float64 array of exactly ``shape``; BadInputError otherwise."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise BadInputError(source, f"{what} is not numeric") from None
    if arr.shape != shape:
        raise BadInputError(source, f"{what} has shape {arr.shape}, expected {shape}")
    if not np.all(np.isfinite(arr)):
        raise BadInputError(source, f"{what} contains NaN or infinite values")
    return arr


def _lexical(path: Path) -> Path:
    """``path`` made absolute and normalised (``..`` removed) without following symlinks."""
    return Path(os.path.normpath(os.path.abspath(path)))


def is_inside(path: Path, root: Path) -> bool:
    """Whether ``path`` lies in ``root`` once both are made absolute and ``..`` is removed.

    Symlinks are not followed: a link the dataset's owner put inside the folder is theirs to
    place; what this guards against is a manifest *naming* a file elsewhere.
    """
    return _lexical(path).is_relative_to(_lexical(root))


def resolve_relative(
    path_str: str, bases: list[Path], roots: list[Path], source: str | Path
) -> Path | None:
    """The first existing ``base / path_str`` that stays inside one of ``roots``.

    ``path_str`` comes from a manifest (a JSON ``file_name``, an XML ``file=``, a list line):
    it may be relative (tried against each of ``bases`` in turn) or absolute, but the file it
    names must lie inside one of the dataset's ``roots`` (see :func:`is_inside`).

    Returns:
        The first existing candidate inside the roots, or ``None`` when there is none and no
        candidate left the roots.

    Raises:
        BadInputError: ``source``: the path is absolute or has ``..`` parts, leaves the roots
            from some base, and no candidate inside them exists; or it contains a NUL.
    """
    if "\x00" in path_str:
        raise BadInputError(source, f"path {path_str[:60]!r} contains a NUL character")
    p = Path(path_str)
    candidates = [p] if p.is_absolute() else [base / p for base in bases]
    inside = [c for c in candidates if any(is_inside(c, r) for r in roots)]
    found = next((Path(os.path.normpath(c)) for c in inside if c.exists()), None)
    escapes = p.is_absolute() or ".." in p.parts
    if found is None and escapes and len(inside) < len(candidates):
        where = ", ".join(str(r) for r in roots)
        raise BadInputError(source, f"path {path_str[:80]!r} leaves the dataset folder ({where})")
    return found


def read_file_bytes(path: Path, max_bytes: int, what: str) -> bytes:
    """The bytes of a small annotation file; BadInputError naming the file otherwise.

    :func:`mvface._io.read_small_file` (missing, folder, device, too large, permission, I/O
    error: one clear line), and a whitespace-only file is refused as empty. ``what`` names the
    kind of file in messages (e.g. ``".pts file"``).
    """
    data = read_small_file(path, max_bytes, what)
    if not data.strip():
        raise BadInputError(path, "file is empty")
    return data


def find_single_file(root: Path, suffix: str) -> Path:
    """``root`` if it is a file, else the one ``*suffix`` file directly inside the folder."""
    if root.is_file():
        return root
    if not root.is_dir():
        raise BadInputError(root, "does not exist")
    try:
        found = sorted(p for p in root.iterdir() if p.suffix.lower() == suffix and p.is_file())
    except OSError as exc:
        raise BadInputError(root, f"cannot be listed ({exc.strerror or exc})") from None
    if not found:
        raise BadInputError(root, f"holds no {suffix} file")
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise BadInputError(root, f"holds several {suffix} files ({names}); pass one of them")
    return found[0]
