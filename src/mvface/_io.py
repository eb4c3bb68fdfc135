"""Safe file access: atomic writes, and one check of an input file before it is read.

Writes: each goes to a temporary file in the same folder (same file system), is flushed to disk,
then moved onto the final name with :func:`os.replace`, so a reader never sees a half-written
file under its final name. A failure (a full disk, a killed process) leaves the old file intact
and removes the temporary one (a ``kill -9`` may leave a hidden ``.<name>.*.tmp*`` file, never a
half-written ``<name>``).

Reads: :func:`check_readable_file` and :func:`read_small_file` map every way a file can be
unusable (missing, a folder, a device, empty, too large, permission denied, I/O error) to one
:class:`~mvface.errors.BadInputError` line naming the file.
"""

from __future__ import annotations

import contextlib
import math
import os
import stat
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from mvface.errors import BadInputError


def _article(what: str) -> str:
    return "an" if what[:1].lower() in "aeio" else "a"


def check_readable_file(path: str | Path, what: str = "file", max_bytes: int | None = None) -> int:
    """The size in bytes of ``path`` if it is a non-empty regular file this process may read.

    Args:
        path: the file.
        what: the kind of file, for messages (e.g. ``"image file"``, ``".pts file"``).
        max_bytes: refuse larger files (``None``: no limit).

    Raises:
        BadInputError: ``"<path>: <problem>"``: does not exist, is a directory, is not a regular
            file, is empty, is too large, permission denied, or cannot be read (I/O error).
    """
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise BadInputError(path, "does not exist") from None
    except PermissionError:
        raise BadInputError(path, "permission denied") from None
    except OSError as exc:  # ENAMETOOLONG, ELOOP, EIO, ENOTDIR...
        raise BadInputError(path, f"cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise BadInputError(path, f"is a directory, not {_article(what)} {what}")
    if not stat.S_ISREG(st.st_mode):
        raise BadInputError(path, f"is not a regular file (a device, pipe or socket), not {what}")
    if st.st_size == 0:
        raise BadInputError(path, "file is empty")
    if max_bytes is not None and st.st_size > max_bytes:
        raise BadInputError(path, f"is {st.st_size} bytes, too large for {_article(what)} {what}")
    if not os.access(path, os.R_OK):
        raise BadInputError(path, "permission denied")
    return int(st.st_size)


def read_small_file(path: str | Path, max_bytes: int, what: str = "file") -> bytes:
    """The bytes of a small file (an annotation), after :func:`check_readable_file`.

    Raises:
        BadInputError: as :func:`check_readable_file`, or the read itself fails.
    """
    path = Path(path)
    check_readable_file(path, what, max_bytes)
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except PermissionError:
        raise BadInputError(path, "permission denied") from None
    except OSError as exc:
        raise BadInputError(path, f"cannot be read ({exc.strerror or exc})") from None
    if len(data) > max_bytes:  # grew since the stat
        raise BadInputError(
            path, f"is over {max_bytes} bytes, too large for {_article(what)} {what}"
        )
    return data


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` if the block succeeds."""
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}"
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o644)  # mkstemp creates 0600 files
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (flushed and fsynced before the rename).

    Raises:
        OSError: with ``filename`` set to ``path`` (not the hidden temporary file, and also when
            the failing call, such as a ``write`` on a full disk, names no file), so the message
            says which output was lost.
    """
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        if exc.filename == str(path) or exc.errno is None:
            raise
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically.

    File names that are not valid UTF-8 (Python's surrogate escapes, as ``os.listdir`` gives
    them) are written back as their original bytes instead of failing the whole write.
    """
    atomic_write_bytes(path, text.encode("utf-8", errors="surrogateescape"))


def json_ready(value: Any) -> Any:
    """A copy of ``value`` that strict JSON can hold: what every JSON file mvface writes goes
    through (reports, benchmark results).

    NaN and infinities become ``None`` (strict JSON has no ``NaN`` token); mappings get string
    keys; tuples and arrays (anything with ``tolist``) become lists and scalars with ``item``
    (numpy, torch) numbers; paths and any other object become their string.

    >>> json_ready({"a": float("nan"), 1: (2.5, Path("x"))})
    {'a': None, '1': [2.5, 'x']}
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    ndim: Any = getattr(value, "ndim", None)
    if ndim and hasattr(value, "tolist"):  # numpy / torch arrays (0-d ones are scalars)
        return json_ready(value.tolist())
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return json_ready(value.item())
    return str(value)
