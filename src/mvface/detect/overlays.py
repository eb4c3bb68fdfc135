"""Overlay images of ``mvface detect --draw``: boxes and landmarks drawn on every input.

Drawn after the results file is complete, from the saved results (video frames decoded again),
so a full disk while drawing loses nothing computed. The overlays a run writes are listed in
``overlays/.mvface-overlays.txt``; the next run into the same folder removes exactly those
(:func:`remove_previous_overlays`) and touches no other file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from mvface._io import atomic_write_bytes
from mvface.api import Faces
from mvface.data.image import load_image
from mvface.detect.inputs import iter_video_frames
from mvface.detect.records import DetectConfig, DetectSummary, FrameResult
from mvface.errors import BadInputError
from mvface.viz.overlay import draw_box, draw_landmarks

__all__ = [
    "OVERLAY_MANIFEST",
    "draw_overlays",
    "remove_previous_overlays",
]


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


def draw_overlays(
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
