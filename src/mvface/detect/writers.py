"""The results file of ``mvface detect``: ``detections.json``, ``detections.csv`` or COCO keypoints.

One file for the whole run, written atomically (:func:`write_results`). Coordinates are 0-based
pixels of the input image, pixel centres at integers.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from mvface._io import atomic_write_text
from mvface.data.scheme import LANDMARK_NAMES
from mvface.detect.records import DetectSummary, FrameResult, OutputFormat

__all__ = [
    "CSV_COLUMNS",
    "write_results",
]


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
