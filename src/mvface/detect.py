"""Detect faces and their 68 landmarks in files, folders, globs and videos: ``mvface detect``.

Every input is processed independently: an unreadable file is one line in the summary and the
batch goes on. Images are decoded in a background thread while the face detector runs on the
previous ones; the landmarks of all faces of :attr:`DetectConfig.batch` images come from one
``predict`` call (the model batches its network calls across images). Results are listed in
input order whatever order they complete in. Folder walks list, with a reason, every entry
they cannot use (a pipe, a socket, a broken or looping symbolic link, an unreadable sub-folder)
instead of skipping it silently; files that are neither images nor videos (by extension, or by
their first bytes when the extension says nothing) are counted in one note.

Results are written atomically once every input is done: ``detections.json`` (or ``.csv`` /
COCO keypoints ``coco.json``). Overlays (``draw``) are drawn afterwards, from the saved results,
so a full disk while drawing loses nothing computed. Overlays a previous run wrote into the same
folder are listed in ``overlays/.mvface-overlays.txt`` and removed before new ones are drawn;
no other file there is touched.
"""

from __future__ import annotations

import csv
import errno
import glob
import io
import json
import os
import re
import stat
import struct
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from mvface._io import atomic_write_bytes, atomic_write_text, check_readable_file
from mvface.api import FaceLandmarker, Faces, split_landmarks
from mvface.data.image import IMAGE_SUFFIXES, check_image_size, image_size, load_image
from mvface.data.scheme import LANDMARK_NAMES
from mvface.errors import BadInputError
from mvface.models.boxes import box_iou
from mvface.viz.overlay import draw_box, draw_landmarks

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"})

OutputFormat = Literal["json", "csv", "coco"]


@dataclass
class DetectConfig:
    """Options of one detection run (each a CLI option).

    Attributes:
        out: output folder.
        format: ``"json"``, ``"csv"`` or ``"coco"`` (COCO keypoints, 68 points per face).
        draw: write an overlay PNG per image / frame under ``out/overlays``.
        min_score: drop detections below this detector score.
        smooth: video only: exponential smoothing factor in [0, 1) for landmarks of a face
            matched across consecutive frames (0 = off; 0.5 averages each frame with the past).
        every: video only: process every N-th frame.
        batch: images whose faces are landmarked in one ``predict`` call.
    """

    out: Path
    format: OutputFormat = "json"
    draw: bool = False
    min_score: float = 0.0
    smooth: float = 0.0
    every: int = 1
    batch: int = 16

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if self.format not in ("json", "csv", "coco"):
            raise ValueError(f"format must be json, csv or coco, got {self.format!r}")
        if not 0.0 <= self.smooth < 1.0:
            raise ValueError(f"smooth must be in [0, 1), got {self.smooth}")
        if self.every < 1:
            raise ValueError(f"every must be at least 1, got {self.every}")
        if self.batch < 1:
            raise ValueError(f"batch must be at least 1, got {self.batch}")


@dataclass
class FrameResult:
    """The faces of one image or video frame."""

    source: str
    frame: int | None
    width: int
    height: int
    faces: Faces


@dataclass
class DetectSummary:
    """What a run did: results per image/frame and one line per failed input.

    Attributes:
        results: faces of every image and processed video frame.
        failed: one line ``"<file>: <problem>"`` per input (or overlay) that failed.
        files: the input files found.
        output: the results file written.
        overlays: overlay images written.
    """

    results: list[FrameResult] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    output: Path | None = None
    overlays: int = 0

    @property
    def n_faces(self) -> int:
        """Faces found in all images and frames."""
        return sum(len(r.faces) for r in self.results)


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


def _media_kind(path: Path) -> str | None:
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
        if named or _media_kind(path) is not None:
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


def smooth_faces(previous: Faces | None, current: Faces, alpha: float) -> Faces:
    """Blend each face's landmarks with the best-overlapping face of the previous frame.

    ``new = (1 - alpha) * current + alpha * previous`` for faces matched with IoU ≥ 0.3.
    """
    if previous is None or alpha == 0.0 or len(previous) == 0 or len(current) == 0:
        return current
    iou = box_iou(current.boxes, previous.boxes)
    points = current.points.copy()
    for i in range(len(current)):
        j = int(np.argmax(iou[i]))
        if iou[i, j] >= 0.3 and previous.points.shape[-1] == points.shape[-1]:
            points[i] = (1 - alpha) * points[i] + alpha * previous.points[j]
    current.landmarks.points = points
    return current


def _overlay(image: np.ndarray, faces: Faces) -> np.ndarray:
    out = image
    for k in range(len(faces)):
        out = draw_box(out, faces.boxes[k], label=f"{faces.scores[k]:.2f}")
        out = draw_landmarks(out, faces.points[k])
    return out


def _overlay_name(source: Path, frame: int | None, root_index: int) -> str:
    stem = f"{root_index:05d}_{source.stem}"
    return f"{stem}_f{frame:06d}.png" if frame is not None else f"{stem}.png"


#: Overlays written into ``<out>/overlays``, one name per line, so the next run removes exactly
#: these (and never a file it did not write).
OVERLAY_MANIFEST = ".mvface-overlays.txt"
_OVERLAY_NAME = re.compile(r"\d{5}_[^/\\]*\.png")


def remove_previous_overlays(overlays: Path) -> int:
    """Delete the overlays a previous run listed in ``overlays/.mvface-overlays.txt``.

    Only plain files named as mvface names overlays (``NNNNN_<stem>[_fNNNNNN].png``) directly
    inside ``overlays`` are removed; other files are never touched. Returns how many were.
    """
    manifest = overlays / OVERLAY_MANIFEST
    try:
        names = manifest.read_text(encoding="utf-8", errors="surrogateescape").splitlines()
    except FileNotFoundError:
        return 0
    removed = 0
    for name in dict.fromkeys(names):
        target = overlays / name
        if not _OVERLAY_NAME.fullmatch(name) or target.is_symlink() or not target.is_file():
            continue
        target.unlink()
        removed += 1
    manifest.unlink()
    return removed


def run_detect(
    landmarker: FaceLandmarker,
    paths: Sequence[str | Path],
    cfg: DetectConfig,
    on_file: Callable[[Path], None] | None = None,
    inputs: Inputs | None = None,
) -> DetectSummary:
    """Detect faces and landmarks in every input and write the results into ``cfg.out``.

    Args:
        landmarker: model and face detector.
        paths: files, folders and glob patterns (ignored when ``inputs`` is given).
        cfg: options.
        on_file: called once per input file when its results are known (progress; files of
            one landmark batch complete together).
        inputs: the already expanded ``paths`` (:func:`find_inputs`), to expand them once.
    """
    if inputs is None:
        inputs = find_inputs(paths)
    files = inputs.files
    summary = DetectSummary(failed=list(inputs.problems), files=files)
    cfg.out.mkdir(parents=True, exist_ok=True)
    done: dict[int, list[FrameResult] | str] = {}
    for index, outcome in _detect_files(landmarker, files, cfg):
        done[index] = outcome
        if on_file is not None:
            on_file(files[index])
    per_file: dict[int, list[FrameResult]] = {}
    for index in sorted(done):  # input order, whatever order the files completed in
        outcome = done[index]
        if isinstance(outcome, str):
            summary.failed.append(outcome)
        else:
            per_file[index] = outcome
            summary.results.extend(outcome)
    summary.output = write_results(summary, cfg.out, cfg.format, model=landmarker.model.config.name)
    if cfg.draw:
        _draw_all(files, per_file, cfg, summary)
    return summary


@dataclass
class _Decoded:
    """One input as the decoding thread leaves it: an image, a video to read later, or why not."""

    index: int
    path: Path
    image: np.ndarray | None = None
    video: bool = False
    error: str | None = None


def _decode(index: int, path: Path) -> _Decoded:
    if _media_kind(path) == "video":
        return _Decoded(index, path, video=True)
    try:
        return _Decoded(index, path, image=load_image(path))
    except BadInputError as exc:
        return _Decoded(index, path, error=str(exc))
    except MemoryError:
        return _Decoded(index, path, error=f"{path}: not enough memory to process it")


#: Decoded pixels (bytes) that read-ahead, and separately a landmark batch, may hold besides the
#: image in hand: both stop at it, so a folder of 100-megapixel photos is held one or two at a
#: time, not ``ahead + batch`` at a time (300 MB each).
HELD_BYTES = 256 * 2**20


def _decoded_size(path: Path) -> int:
    """Bytes :func:`load_image` will return for ``path``, from its header (0 if unknown)."""
    if _media_kind(path) == "video":
        return 0
    try:
        width, height = image_size(path)
    except BadInputError:
        return 0  # the decoding says why
    return width * height * 3


def decoded_inputs(files: Sequence[Path], ahead: int = 8) -> Iterator[_Decoded]:
    """Each file decoded in a background thread, up to ``ahead`` files (and at most
    :data:`HELD_BYTES` of pixels, from the headers) ahead of the caller, in order.

    Videos are only recognised here (their frames are read by the caller, one at a time).
    """
    pool = ThreadPoolExecutor(1, thread_name_prefix="mvface-decode")
    queue: deque[tuple[Future[_Decoded], int]] = deque()
    remaining = list(enumerate(files))
    position, held = 0, 0

    def read_ahead() -> None:
        nonlocal position, held
        while position < len(remaining) and len(queue) < ahead:
            index, path = remaining[position]
            size = _decoded_size(path)
            if queue and held + size > HELD_BYTES:
                return
            queue.append((pool.submit(_decode, index, path), size))
            position += 1
            held += size

    try:
        read_ahead()
        while queue:
            future, size = queue.popleft()
            item = future.result()
            held -= size
            read_ahead()
            yield item
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@dataclass
class _Found:
    """An image whose faces are found and whose landmarks are still to come."""

    index: int
    path: Path
    image: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray


def _detect_files(
    landmarker: FaceLandmarker, files: Sequence[Path], cfg: DetectConfig
) -> Iterator[tuple[int, list[FrameResult] | str]]:
    """``(file index, its results or "<file>: <problem>")`` for every file, as each completes.

    Images: faces found one image at a time, landmarks of ``cfg.batch`` images per call.
    Videos: frame by frame (smoothing follows the frames).
    """
    pending: list[_Found] = []
    for item in decoded_inputs(files):
        if item.error is not None:
            yield item.index, item.error
        elif item.video:
            try:
                yield item.index, _detect_video(landmarker, item.path, cfg)
            except BadInputError as exc:
                yield item.index, str(exc)
            except MemoryError:
                yield item.index, f"{item.path}: not enough memory to process it"
        elif item.image is not None:
            try:
                found = landmarker.detector.detect(item.image)
            except BadInputError as exc:
                yield item.index, str(exc)
                continue
            except MemoryError:
                yield item.index, f"{item.path}: not enough memory to process it"
                continue
            keep = found.scores >= cfg.min_score
            pending.append(
                _Found(item.index, item.path, item.image, found.boxes[keep], found.scores[keep])
            )
            if len(pending) >= cfg.batch or sum(f.image.nbytes for f in pending) >= HELD_BYTES:
                yield from _landmarks(landmarker, pending)
                pending = []
    yield from _landmarks(landmarker, pending)


def _landmarks(
    landmarker: FaceLandmarker, found: list[_Found]
) -> Iterator[tuple[int, list[FrameResult] | str]]:
    """The landmarks of every face of ``found`` in one call (one call per image when a face
    in the batch cannot be predicted, so that only its image fails)."""
    if not found:
        return
    try:
        faces = split_landmarks(
            landmarker.model,
            [f.image for f in found],
            [f.boxes for f in found],
            [f.scores for f in found],
        )
    except (BadInputError, MemoryError) as exc:
        if len(found) > 1:
            for f in found:
                yield from _landmarks(landmarker, [f])
            return
        f = found[0]
        problem = exc.problem if isinstance(exc, BadInputError) else "not enough memory"
        yield f.index, f"{f.path}: {problem}"
        return
    for f, image_faces in zip(found, faces, strict=True):
        h, w = f.image.shape[:2]
        yield f.index, [FrameResult(str(f.path), None, w, h, image_faces)]


def _detect_video(landmarker: FaceLandmarker, path: Path, cfg: DetectConfig) -> list[FrameResult]:
    """The faces of each processed frame of one video (smoothed across frames)."""
    results: list[FrameResult] = []
    previous: Faces | None = None
    for frame_index, frame in iter_video_frames(path, cfg.every):
        faces = smooth_faces(previous, landmarker.detect(frame, cfg.min_score), cfg.smooth)
        previous = faces
        h, w = frame.shape[:2]
        results.append(FrameResult(str(path), frame_index, w, h, faces))
    return results


def _draw_all(
    files: list[Path],
    per_file: dict[int, list[FrameResult]],
    cfg: DetectConfig,
    summary: DetectSummary,
) -> None:
    """Draw the saved results of every input into ``cfg.out/overlays`` (after the results file).

    A write that fails (a full disk) stops the drawing with one line naming the overlay; the
    results file is already complete.
    """
    overlays = cfg.out / "overlays"
    overlays.mkdir(exist_ok=True)
    remove_previous_overlays(overlays)
    with open(overlays / OVERLAY_MANIFEST, "a", encoding="utf-8", errors="surrogateescape") as log:
        for index, results in per_file.items():
            path = files[index]
            try:
                for result, image in _images_of(path, results, cfg):
                    name = _overlay_name(path, result.frame, index)
                    log.write(name + "\n")
                    log.flush()
                    _write_png(overlays / name, _overlay(image, result.faces))
                    summary.overlays += 1
            except BadInputError as exc:  # the input changed since it was read
                summary.failed.append(f"{exc} (no overlay drawn)")
            except OSError as exc:
                where = exc.filename if exc.filename is not None else overlays
                done = summary.output.name if summary.output is not None else "the results file"
                summary.failed.append(
                    f"{where}: {exc.strerror or exc} (overlays stopped; {done} is complete)"
                )
                return


def _images_of(
    path: Path, results: list[FrameResult], cfg: DetectConfig
) -> Iterator[tuple[FrameResult, np.ndarray]]:
    """Each saved result of ``path`` with its image (video frames decoded again)."""
    if not results:
        return
    if results[0].frame is None:
        yield results[0], load_image(path)
        return
    by_frame = {r.frame: r for r in results}
    for frame_index, frame in iter_video_frames(path, cfg.every):
        if frame_index in by_frame:
            yield by_frame[frame_index], frame


def _write_png(path: Path, image_rgb: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
    if not ok:  # pragma: no cover - OpenCV fails only on invalid arrays
        raise BadInputError(path, "could not encode the overlay")
    atomic_write_bytes(path, buf.tobytes())


def _face_records(r: FrameResult) -> list[dict[str, Any]]:
    faces = []
    for k in range(len(r.faces)):
        rec: dict[str, Any] = {
            "box": [round(float(v), 2) for v in r.faces.boxes[k]],
            "score": round(float(r.faces.scores[k]), 4),
            "landmarks": np.round(r.faces.points[k], 2).tolist(),
        }
        if r.faces.landmarks.pose is not None:
            angles = np.round(r.faces.landmarks.pose[k], 4).tolist()  # NaN: points with no pose
            rec["pose_pitch_yaw_roll_rad"] = [v if np.isfinite(v) else None for v in angles]
        faces.append(rec)
    return faces


#: Columns of ``detections.csv``: one row per face. Pixels are 0-based with pixel centres at
#: integers; ``lm<i>_z`` (same pixel scale, larger is farther) and the head pose (radians) are
#: empty for models that do not give them.
CSV_COLUMNS: tuple[str, ...] = (
    "file",
    "frame",
    "face",
    "score",
    "box_x0",
    "box_y0",
    "box_x1",
    "box_y1",
    "pose_pitch_rad",
    "pose_yaw_rad",
    "pose_roll_rad",
    *(f"lm{i}_{axis}" for i in range(68) for axis in ("x", "y", "z")),
)


def _csv_row(r: FrameResult, k: int) -> list[Any]:
    """The :data:`CSV_COLUMNS` values of face ``k`` of one image or frame."""
    pose = r.faces.landmarks.pose
    angles = ["", "", ""]
    if pose is not None:  # NaN: points with no pose (e.g. collinear)
        angles = [f"{v:.4f}" if np.isfinite(v) else "" for v in pose[k]]
    points = r.faces.points[k]
    coords: list[str] = []
    for p in points:
        coords += [f"{p[0]:.2f}", f"{p[1]:.2f}", f"{p[2]:.2f}" if len(p) > 2 else ""]
    frame = "" if r.frame is None else r.frame
    box = [f"{v:.2f}" for v in r.faces.boxes[k]]
    return [r.source, frame, k, f"{r.faces.scores[k]:.4f}", *box, *angles, *coords]


def write_results(summary: DetectSummary, out: Path, fmt: OutputFormat, model: str) -> Path:
    """Write all results in one file of the chosen format; returns its path."""
    if fmt == "json":
        payload = {
            "model": model,
            "coordinates": "0-based pixels of the input image, pixel centres at integers",
            "images": [
                {"file": r.source, "frame": r.frame, "width": r.width, "height": r.height,
                 "faces": _face_records(r)}
                for r in summary.results
            ],
            "failed": summary.failed,
        }  # fmt: skip
        path = out / "detections.json"
        atomic_write_text(path, json.dumps(payload, indent=1) + "\n")
    elif fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(CSV_COLUMNS)
        for r in summary.results:
            for k in range(len(r.faces)):
                writer.writerow(_csv_row(r, k))
        path = out / "detections.csv"
        atomic_write_text(path, buf.getvalue())
    else:
        path = out / "coco.json"
        atomic_write_text(path, json.dumps(_coco(summary), indent=1) + "\n")
    return path


def _coco(summary: DetectSummary) -> dict[str, Any]:
    """COCO keypoints: one category "face" with the 68 iBUG points (v=2: labelled, visible)."""
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, r in enumerate(summary.results, start=1):
        name = r.source if r.frame is None else f"{r.source}#frame={r.frame}"
        images.append({"id": image_id, "file_name": name, "width": r.width, "height": r.height})
        for k in range(len(r.faces)):
            x0, y0, x1, y1 = (float(v) for v in r.faces.boxes[k])
            kps = np.concatenate([r.faces.points[k][:, :2], np.full((68, 1), 2.0)], axis=1)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": 1,
                    "bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
                    "area": round((x1 - x0) * (y1 - y0), 2),
                    "iscrowd": 0,
                    "score": round(float(r.faces.scores[k]), 4),
                    "num_keypoints": 68,
                    "keypoints": np.round(kps, 2).reshape(-1).tolist(),
                }
            )
    return {
        "info": {"description": "mvface detect", "coordinates": "0-based pixel centres"},
        "images": images,
        "annotations": annotations,
        "categories": [
            {"id": 1, "name": "face", "supercategory": "person", "keypoints": list(LANDMARK_NAMES)}
        ],
    }
