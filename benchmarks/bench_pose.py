"""Head-pose error of every model on the AFLW2000-3D dev half, against the ``Pose_Para`` truth.

Each model runs on ground-truth-box crops (``landmark_box`` of the annotated 68 points); the
error is the mean absolute difference of pitch, yaw and roll in degrees (wrapped to ±180°) from
the ``.mat`` ``Pose_Para`` angles, read back from their rotation in the canonical range
(:func:`~mvface.geometry.head_pose.rotation_to_euler_np`: |yaw| ≤ 90°). The same rotation has
two Euler triples; a few ``Pose_Para`` have |yaw| > 90° (e.g. yaw 119° = yaw 61° with pitch and
roll turned by 180°), which would count a right answer as 120° wrong. Columns per model:

* ``pose``: what the model returns as ``Landmarks.pose`` (:func:`mvface.geometry.head_pose.
  head_pose` of its points);
* ``fit 2D``: :func:`~mvface.geometry.head_pose.head_pose_2d` of its x, y alone;
* ``fit 3D``: :func:`~mvface.geometry.head_pose.head_pose_3d`, the pose its own 3D points imply
  (68x3 models);
* ``3DMM``: ``3ddfa-v2``'s own 3DMM pose (``extras["pose_3dmm"]``).

Two rows fit the ground-truth points themselves (3D and 2D): the floor set by the mean face.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_pose.py --limit 200 \
        --weights-3ddfa ../shared/models/3ddfa_v2 [--json runs/pose.json] [--cache runs/pose.npz]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mvface.data.image import load_image
from mvface.data.readers import read_dataset
from mvface.data.record import FaceSample, landmark_box
from mvface.errors import NotAvailableError
from mvface.geometry.head_pose import (
    head_pose,
    head_pose_2d,
    head_pose_3d,
    rotation_from_euler,
    rotation_to_euler_np,
)
from mvface.models import create_model

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "aflw2000_3d_dev"
DEFAULT_MODELS = ("fast", "base", "base+", "3ddfa-v2", "dlib")


def angle_error_deg(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``(N, 3)`` absolute angle differences in degrees, wrapped to [0, 180]."""
    diff = (np.asarray(pred) - np.asarray(truth) + np.pi) % (2 * np.pi) - np.pi
    return np.degrees(np.abs(diff))


def run_model(name: str, samples: list[FaceSample], weights: str | None) -> dict[str, np.ndarray]:
    """Points, reported pose and extras of ``name`` on every sample (GT-box crops)."""
    model = create_model(name, weights=weights) if weights else create_model(name)
    points, pose, pose_3dmm = [], [], []
    start = time.perf_counter()
    for sample in samples:
        assert sample.landmarks is not None
        image = load_image(sample.image) if isinstance(sample.image, Path) else sample.image
        pred = model.predict(image, landmark_box(sample.landmarks)[None])
        points.append(pred.points[0])
        pose.append(pred.pose[0] if pred.pose is not None else np.full(3, np.nan))
        if "pose_3dmm" in pred.extras:
            pose_3dmm.append(pred.extras["pose_3dmm"][0])
    out = {"points": np.stack(points), "pose": np.stack(pose)}
    if pose_3dmm:
        out["pose_3dmm"] = np.stack(pose_3dmm)
    out["seconds"] = np.array(time.perf_counter() - start)
    return out


def error_row(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Mean |pitch|, |yaw|, |roll| error (degrees) and yaw error on faces turned over 60°."""
    err = angle_error_deg(pred, truth)
    big = np.abs(np.degrees(truth[:, 1])) > 60
    return {
        "pitch": float(err[:, 0].mean()),
        "yaw": float(err[:, 1].mean()),
        "roll": float(err[:, 2].mean()),
        "yaw_over_60": float(err[big, 1].mean()) if big.any() else float("nan"),
    }


def evaluate(predictions: dict[str, dict[str, np.ndarray]], truth: np.ndarray, gt: np.ndarray):  # type: ignore[no-untyped-def]
    """Rows ``{model: {column: errors}}`` of every pose estimate available."""
    rows: dict[str, dict[str, dict[str, float]]] = {
        "ground truth points": {
            "fit 3D": error_row(head_pose_3d(gt), truth),
            "fit 2D": error_row(head_pose_2d(gt[..., :2]), truth),
        }
    }
    for name, pred in predictions.items():
        pts = pred["points"]
        row: dict[str, dict[str, float]] = {}
        if np.isfinite(pred["pose"]).all():
            row["pose"] = error_row(pred["pose"], truth)
        row["fit 2D"] = error_row(head_pose_2d(pts[..., :2]), truth)
        if pts.shape[-1] == 3:
            row["fit 3D"] = error_row(head_pose_3d(pts), truth)
        if "pose_3dmm" in pred:
            row["3DMM"] = error_row(pred["pose_3dmm"], truth)
        rows[name] = row
    return rows


def time_head_pose(gt: np.ndarray, sizes: tuple[int, ...] = (1, 16, 256)) -> dict[int, float]:
    """Microseconds per face of :func:`~mvface.geometry.head_pose.head_pose` for N faces a call
    (best of 5 repeats, on the ground-truth points tiled to N)."""
    out = {}
    for n in sizes:
        pts = np.resize(gt, (n, *gt.shape[1:]))
        calls = max(10, 2000 // n)
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(calls):
                head_pose(pts)
            best = min(best, (time.perf_counter() - start) / calls / n)
        out[n] = best * 1e6
    return out


def markdown(rows: dict[str, dict[str, dict[str, float]]]) -> str:
    """One line per (model, column): mean |error| in degrees."""
    lines = [
        "| model | pose from | pitch ° | yaw ° | roll ° | yaw ° (\\|yaw\\| > 60°) |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        for column, e in row.items():
            lines.append(
                f"| {name} | {column} | {e['pitch']:.2f} | {e['yaw']:.2f} | {e['roll']:.2f} "
                f"| {e['yaw_over_60']:.2f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--weights-3ddfa", help="3DDFA_V2 release folder")
    parser.add_argument("--limit", type=int, default=None, help="first N images (list order)")
    parser.add_argument("--json", type=Path, help="write the rows here")
    parser.add_argument("--cache", type=Path, help="save the predictions here (.npz)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    samples = [
        s
        for s in read_dataset("aflw2000-3d", args.data, limit=args.limit).samples
        if s.pose is not None and s.landmarks is not None
    ]
    pose_para = np.stack([s.pose for s in samples if s.pose is not None])
    truth = rotation_to_euler_np(rotation_from_euler(pose_para))  # canonical: |yaw| <= 90°
    gt = np.stack([s.landmarks for s in samples if s.landmarks is not None])
    predictions: dict[str, dict[str, np.ndarray]] = {}
    for name in args.models:
        weights = args.weights_3ddfa if name == "3ddfa-v2" else None
        try:
            predictions[name] = run_model(name, samples, weights)
        except NotAvailableError as exc:
            print(f"skipped {name}: {exc}")
    if args.cache:
        flat = {f"{m}/{k}": v for m, p in predictions.items() for k, v in p.items()}
        np.savez(args.cache, truth=pose_para, gt=gt, **flat)  # type: ignore[arg-type]
    rows = evaluate(predictions, truth, gt)
    print(
        f"AFLW2000-3D dev: {len(samples)} faces, GT-box crops, mean |error| in degrees "
        "(truth: Pose_Para, canonical Euler range)"
    )
    print(markdown(rows))
    cost = time_head_pose(gt)
    print("head_pose cost, µs per face: " + ", ".join(f"N={n}: {us:.1f}" for n, us in cost.items()))
    if args.json:
        report: dict[str, Any] = {
            "faces": len(samples),
            "data": str(args.data),
            "rows": rows,
            "head_pose_us_per_face": cost,
        }
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
