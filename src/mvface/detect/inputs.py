"""What the path arguments of ``mvface detect`` expand to: the image and video files, and why not.

Files, folders (walked, each entry once) and glob patterns become :class:`Inputs`. A walk lists,
with a reason, every entry it cannot use (a pipe, a socket, a broken or looping symbolic link,
an unreadable sub-folder) instead of skipping it silently; files that are neither images nor
videos (by extension, or by their first bytes when the extension says nothing) are counted.
:func:`iter_video_frames` reads a video's frames, checking its frame size before decoding.
"""

from __future__ import annotations

import errno
import glob
import os
import stat
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from mvface._io import check_readable_file
from mvface.data.image import IMAGE_SUFFIXES, check_image_size
from mvface.errors import BadInputError

__all__ = [
    "VIDEO_SUFFIXES",
    "Inputs",
    "collect_inputs",
    "find_inputs",
    "iter_video_frames",
    "media_kind",
]


VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"})


#: File signatures (offset, bytes) of images and videos, for files whose extension says nothing.
_IMAGE_MAGIC: tuple[tuple[int, bytes], ...] = (
    (0, b"\xff\xd8\xff"),  # JPEG
    (0, b"\x89PNG\r\n\x1a\n"),
    (0, b"GIF87a"),
    (0, b"GIF89a"),
    (0, b"BM"),
    (0, b"II*\x00"),  # TIFF
    (0, b"MM\x00*"),
    (8, b"WEBP"),
    (0, b"\x00\x00\x00\x0cjP  "),  # JPEG 2000
)
_VIDEO_MAGIC: tuple[tuple[int, bytes], ...] = (
    (8, b"AVI "),
    (0, b"\x1aE\xdf\xa3"),  # Matroska / WebM
    (4, b"ftyp"),  # MP4 / MOV (HEIF/AVIF images are told apart by their brand)
)
_IMAGE_BRANDS = frozenset({b"heic", b"heix", b"mif1", b"msf1", b"avif", b"avis"})


@dataclass
class Inputs:
    """What the path arguments expand to.

    Attributes:
        files: image and video files to process, in a stable order, each once.
        problems: one line ``"<path>: <reason>"`` per argument or folder entry that cannot be
            used (missing, a pipe or device, a broken or looping link, unreadable).
        ignored: regular files in walked folders that are neither images nor videos.
    """

    files: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    ignored: list[Path] = field(default_factory=list)


def _sniff(path: Path) -> str | None:
    """``"image"``, ``"video"`` or ``None`` from a regular file's first bytes."""
    try:
        # non-blocking: a file swapped for a pipe since the walk must not hang the run
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            head = os.read(fd, 16)
        finally:
            os.close(fd)
    except OSError:
        return "image"  # unreadable: processed, so that the reason is listed
    for offset, magic in _IMAGE_MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return "image"
    if head[:2] in {b"P1", b"P2", b"P3", b"P4", b"P5", b"P6"} and head[2:3].isspace():
        return "image"
    for offset, magic in _VIDEO_MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return "image" if head[8:12] in _IMAGE_BRANDS else "video"
    return None


def media_kind(path: Path) -> str | None:
    """``"image"`` / ``"video"`` by extension, else by content; ``None`` for other files."""
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    return _sniff(path)


def _special_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _stat_problem(path: Path, exc: OSError) -> str:
    """The reason a path that ``os.stat`` refused cannot be used."""
    if exc.errno == errno.ENOENT and os.path.islink(path):
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        return f"{path}: broken symbolic link (its target {target} does not exist)"
    if exc.errno == errno.ELOOP:
        return f"{path}: symbolic link loop"
    if exc.errno == errno.ENOENT:
        return f"{path}: does not exist"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"{path}: permission denied"
    return f"{path}: cannot be read ({exc.strerror or exc})"


def _add(path: Path, inputs: Inputs, ancestors: frozenset[tuple[int, int]], named: bool) -> None:
    """Classify one path (an argument when ``named``, else a folder entry) into ``inputs``."""
    try:
        st = os.stat(path)
    except OSError as exc:
        inputs.problems.append(_stat_problem(path, exc))
        return
    if stat.S_ISDIR(st.st_mode):
        key = (st.st_dev, st.st_ino)
        if key in ancestors:
            inputs.problems.append(f"{path}: symbolic link loop (a folder that contains it)")
            return
        before = (len(inputs.files), len(inputs.problems))
        _walk(path, inputs, ancestors | {key})
        if named and (len(inputs.files), len(inputs.problems)) == before:
            inputs.problems.append(f"{path}: folder holds no image or video files")
    elif stat.S_ISREG(st.st_mode):
        if named or media_kind(path) is not None:
            inputs.files.append(path)
        else:
            inputs.ignored.append(path)
    else:
        inputs.problems.append(f"{path}: is {_special_kind(st.st_mode)}, not read")


def _walk(folder: Path, inputs: Inputs, ancestors: frozenset[tuple[int, int]]) -> None:
    """Add every entry of ``folder`` (sorted by name), following folder links without looping."""
    try:
        with os.scandir(folder) as it:
            names = sorted(entry.name for entry in it)
    except OSError as exc:
        reason = _stat_problem(folder, exc).split(": ", 1)[-1]
        inputs.problems.append(f"{folder}: {reason} (folder not searched)")
        return
    for name in names:
        _add(folder / name, inputs, ancestors, named=False)


def find_inputs(paths: Sequence[str | Path]) -> Inputs:
    """Expand files, folders (recursive, following links) and glob patterns (a matched folder
    is walked like a named one).

    A named regular file is always an input (its content decides whether it is an image); in
    folders, files are inputs by extension or, without a known one, by their first bytes. Every
    argument or entry that cannot be used is one line of :attr:`Inputs.problems`.
    """
    inputs = Inputs()
    for arg in paths:
        p = Path(arg)
        if not os.path.lexists(p) and any(ch in str(arg) for ch in "*?["):
            matched = sorted(Path(m) for m in glob.glob(str(arg), recursive=True))
            if not matched:
                inputs.problems.append(f"{arg}: pattern matched no file")
            for m in matched:
                _add(m, inputs, frozenset(), named=True)
        else:
            _add(p, inputs, frozenset(), named=True)
    inputs.files = list(dict.fromkeys(inputs.files))
    return inputs


def collect_inputs(paths: Sequence[str | Path]) -> tuple[list[Path], list[str]]:
    """:func:`find_inputs` as ``(files, problems)``."""
    inputs = find_inputs(paths)
    return inputs.files, inputs.problems


def _avi_frame_size(head: bytes) -> tuple[int, int] | None:
    """Frame size ``(width, height)`` from an AVI main header (``avih``), if ``head`` has one."""
    if head[:4] != b"RIFF" or head[8:12] != b"AVI " or head[12:16] != b"LIST":
        return None
    if head[20:24] != b"hdrl" or head[24:28] != b"avih" or len(head) < 72:
        return None
    width, height = struct.unpack("<ii", head[64:72])
    return abs(width), abs(height)


def iter_video_frames(path: Path, every: int = 1) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(frame_index, RGB frame)`` of a video file.

    The frame size is checked against :data:`~mvface.data.image.MAX_PIXELS` and
    :data:`~mvface.data.image.MAX_IMAGE_BYTES` before any frame is decoded: from the AVI header
    when there is one, and from what the container declares once opened.

    Raises:
        BadInputError: not a readable regular file (a pipe named ``.mp4`` is refused, never
            opened), cannot be opened as a video, has no frame, or frames over the limits.
    """
    check_readable_file(path, "video file")
    try:
        with open(path, "rb") as f:
            declared = _avi_frame_size(f.read(72))
    except OSError as exc:
        raise BadInputError(path, f"cannot be read ({exc.strerror or exc})") from None
    if declared is not None:
        check_image_size(path, *declared, declared[0] * declared[1] * 3, "video frames")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise BadInputError(path, "cannot be opened as a video")
    index, produced = 0, 0
    try:
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if width > 0 and height > 0:
            check_image_size(path, width, height, width * height * 3, "video frames")
        while True:
            if index % every == 0:
                ok, frame = cap.read()
            else:
                ok, frame = cap.grab(), None  # skipped frames are not converted
            if not ok:
                break
            if frame is not None:
                h, w = frame.shape[:2]
                check_image_size(path, w, h, frame.nbytes, "video frames")
                produced += 1
                yield index, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB, dst=frame)
            index += 1
    finally:
        cap.release()
    if produced == 0:
        raise BadInputError(path, "video has no readable frame")
