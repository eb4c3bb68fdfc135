"""Detect faces and their 68 landmarks in files, folders, globs and videos: ``mvface detect``.

Every input is processed independently: an unreadable file is one line in the summary and the
batch goes on. Results are written once at the end, atomically: ``detections.json`` (or
``.csv`` / COCO keypoints ``coco.json``), plus one drawn overlay per image (per frame for
videos) with ``draw``.
"""

from __future__ import annotations

import csv
import glob
import io
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from mvface._io import atomic_write_bytes, atomic_write_text
from mvface.api import FaceLandmarker, Faces
from mvface.data.image import IMAGE_SUFFIXES, load_image
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
    """

    out: Path
    format: OutputFormat = "json"
    draw: bool = False
    min_score: float = 0.0
    smooth: float = 0.0
    every: int = 1

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if self.format not in ("json", "csv", "coco"):
            raise ValueError(f"format must be json, csv or coco, got {self.format!r}")
        if not 0.0 <= self.smooth < 1.0:
            raise ValueError(f"smooth must be in [0, 1), got {self.smooth}")
        if self.every < 1:
            raise ValueError(f"every must be at least 1, got {self.every}")


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
    """What a run did: results per image/frame and one line per failed input."""

    results: list[FrameResult] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    @property
    def n_faces(self) -> int:
        """Faces found in all images and frames."""
        return sum(len(r.faces) for r in self.results)


def collect_inputs(paths: Sequence[str | Path]) -> tuple[list[Path], list[str]]:
    """Expand files, folders (recursive) and glob patterns into image and video files.

    Returns:
        The files in a stable order, and one line for each argument that matched nothing.
    """
    known = IMAGE_SUFFIXES | VIDEO_SUFFIXES
    files: list[Path] = []
    problems: list[str] = []
    for arg in paths:
        p = Path(arg)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in known)
            if not found:
                problems.append(f"{p}: folder holds no image or video files")
            files.extend(found)
        elif p.exists():
            files.append(p)
        elif any(ch in str(arg) for ch in "*?["):
            matched = sorted(Path(m) for m in glob.glob(str(arg), recursive=True))
            matched = [m for m in matched if m.is_file()]
            if not matched:
                problems.append(f"{arg}: pattern matched no file")
            files.extend(matched)
        else:
            problems.append(f"{arg}: does not exist")
    unique = list(dict.fromkeys(files))
    return unique, problems


def iter_video_frames(path: Path, every: int = 1) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(frame_index, RGB frame)`` of a video file.

    Raises:
        BadInputError: the file cannot be opened as a video or has no frame.
    """
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise BadInputError(path, "cannot be opened as a video")
    index, produced = 0, 0
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if index % every == 0:
                produced += 1
                yield index, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
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


def run_detect(
    landmarker: FaceLandmarker,
    paths: Sequence[str | Path],
    cfg: DetectConfig,
    on_file: Callable[[Path], None] | None = None,
) -> DetectSummary:
    """Detect faces and landmarks in every input and write the results into ``cfg.out``."""
    files, problems = collect_inputs(paths)
    summary = DetectSummary(failed=list(problems), files=files)
    cfg.out.mkdir(parents=True, exist_ok=True)
    overlays = cfg.out / "overlays"
    if cfg.draw:
        overlays.mkdir(exist_ok=True)
    for index, path in enumerate(files):
        try:
            if path.suffix.lower() in VIDEO_SUFFIXES:
                previous: Faces | None = None
                for frame_index, frame in iter_video_frames(path, cfg.every):
                    faces = smooth_faces(
                        previous, landmarker.detect(frame, cfg.min_score), cfg.smooth
                    )
                    previous = faces
                    h, w = frame.shape[:2]
                    summary.results.append(FrameResult(str(path), frame_index, w, h, faces))
                    if cfg.draw:
                        _write_png(
                            overlays / _overlay_name(path, frame_index, index),
                            _overlay(frame, faces),
                        )
            else:
                image = load_image(path)
                faces = landmarker.detect(image, cfg.min_score)
                h, w = image.shape[:2]
                summary.results.append(FrameResult(str(path), None, w, h, faces))
                if cfg.draw:
                    _write_png(overlays / _overlay_name(path, None, index), _overlay(image, faces))
        except BadInputError as exc:
            summary.failed.append(str(exc))
        if on_file is not None:
            on_file(path)
    write_results(summary, cfg.out, cfg.format, model=landmarker.model.config.name)
    return summary


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
            rec["pose_pitch_yaw_roll_rad"] = np.round(r.faces.landmarks.pose[k], 4).tolist()
        faces.append(rec)
    return faces


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
        coords = [f"{a}{i}" for i in range(68) for a in ("x", "y")]
        writer.writerow(["file", "frame", "face", "score", "x0", "y0", "x1", "y1", *coords])
        for r in summary.results:
            for k in range(len(r.faces)):
                writer.writerow(
                    [r.source, "" if r.frame is None else r.frame, k, f"{r.faces.scores[k]:.4f}"]
                    + [f"{v:.2f}" for v in r.faces.boxes[k]]
                    + [f"{v:.2f}" for v in r.faces.points[k][:, :2].reshape(-1)]
                )
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
