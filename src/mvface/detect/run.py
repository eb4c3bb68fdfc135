"""The detection run: inputs decoded, faces found and landmarked in batches, results written.

Images are decoded in a background thread (at most :data:`HELD_BYTES` of decoded pixels held)
while the face detector runs on the previous ones; the landmarks of all faces of
:attr:`~mvface.detect.records.DetectConfig.batch` images come from one ``predict`` call.
Results are listed in input order whatever order they complete in, then written
(:mod:`mvface.detect.writers`) and, on request, drawn (:mod:`mvface.detect.overlays`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mvface.api import FaceLandmarker, Faces, split_landmarks
from mvface.data.image import image_size, load_image
from mvface.detect.inputs import Inputs, find_inputs, iter_video_frames, media_kind
from mvface.detect.overlays import draw_overlays
from mvface.detect.records import DetectConfig, DetectSummary, FrameResult
from mvface.detect.writers import write_results
from mvface.errors import BadInputError
from mvface.models.boxes import box_iou

__all__ = [
    "HELD_BYTES",
    "decoded_inputs",
    "run_detect",
    "smooth_faces",
]


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
        inputs: the already expanded ``paths`` (:func:`~mvface.detect.inputs.find_inputs`), to
            expand them once.
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
        draw_overlays(files, per_file, cfg, summary)
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
    if media_kind(path) == "video":
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
    if media_kind(path) == "video":
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
