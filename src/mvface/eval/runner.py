"""Run a model over a dataset under that dataset's protocol: the library side of ``mvface eval``.

The runner reads the dataset with its reader, crops each face from the ground-truth box or from a
face detector, runs the model, scores the predictions with the dataset's protocol and returns an
:class:`~mvface.eval.report.EvalReport` (predictions in the protocol's order, 0-based pixels of
the original images).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from mvface.data.image import load_image
from mvface.data.readers import read_dataset
from mvface.data.record import MAX_COORDINATE, FaceSample, degenerate_problem, landmark_box
from mvface.data.scheme import NUM_LANDMARKS, OUTER_EYE_CORNERS
from mvface.detection import FaceDetector, create_face_detector, match_detection
from mvface.errors import BadInputError
from mvface.eval.protocols import (
    ProtocolResult,
    aflw2000_3d_protocol,
    ibug_300w_protocol,
    load_aflw2000_3d_protocol,
)
from mvface.eval.report import EvalReport
from mvface.models import LandmarkModel, create_model

#: Datasets ``mvface eval`` knows: name -> (reader, protocol).
DATASETS: dict[str, tuple[str, str]] = {
    "aflw2000-3d": ("aflw2000-3d", "aflw2000-3d"),
    "300w": ("pts", "300w"),
    "folder-pts": ("pts", "300w"),
    "dad3dheads": ("dad3dheads", "bbox"),
}


@dataclass
class EvalConfig:
    """Everything one evaluation run depends on (each field is a CLI option).

    Attributes:
        dataset: one of :data:`DATASETS`.
        root: dataset folder.
        model: registered model name.
        weights: weights file/folder for models that load external weights.
        limit: evaluate only the first ``limit`` faces (protocol order).
        crop: ``"gt"``: crop from the tight box of the ground-truth landmarks;
            ``"detector"``: from the face detector's box overlapping it most (the ground-truth
            box is used where the detector finds nothing; counted in ``detector_missed``);
            ``"protocol"``: the protocol's own crop boxes given to the model as its crop
            (AFLW2000-3D: 3DDFA's ``AFLW2000-3D_crop.roi_box.npy``).
        detector: face detector for ``crop="detector"``.
        ground_truth: AFLW2000-3D only: ``"original"`` or ``"reannotated"``.
        yaw_file: AFLW2000-3D only: the yaw array defining the bins.
        engine: what runs the network: ``"auto"`` (ONNX Runtime on the CPU, torch on CUDA),
            ``"onnx"`` or ``"torch"`` (:mod:`mvface.models.onnx_engine`).
        device: ``"cpu"`` or ``"cuda"``.
    """

    dataset: str
    root: Path
    model: str
    weights: str | None = None
    limit: int | None = None
    crop: Literal["gt", "detector", "protocol"] = "gt"
    detector: str = "dlib-hog"
    ground_truth: Literal["original", "reannotated"] = "original"
    yaw_file: str = "AFLW2000-3D.pose.npy"
    engine: str = "auto"
    device: str = "cpu"

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; known: {', '.join(DATASETS)}")
        if self.crop not in ("gt", "detector", "protocol"):
            raise ValueError(f"crop must be 'gt', 'detector' or 'protocol', got {self.crop!r}")
        if self.crop == "protocol" and self.dataset != "aflw2000-3d":
            raise ValueError("--crop protocol exists only for aflw2000-3d (3DDFA's ROI boxes)")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be at least 1, got {self.limit}")


#: Largest ``|yaw|`` accepted from a pose annotation or a yaw file, in degrees: ten turns. The
#: 3DDFA yaw file itself holds -351 and 188 degrees (binned as ``|yaw| > 60``), so only values
#: no pose fit produces are refused.
MAX_YAW_DEG = 3600.0


@dataclass
class _Face:
    """One face to evaluate: its sample, ground truth, yaw and where each came from."""

    sample: FaceSample
    gt: np.ndarray
    gt_source: str
    yaw: float = math.nan
    yaw_source: str = ""
    roi: np.ndarray | None = None
    roi_source: str = ""


@dataclass
class _Scored:
    """Faces that were predicted, in protocol order, and those that were skipped."""

    names: list[str] = field(default_factory=list)
    gt: list[np.ndarray] = field(default_factory=list)
    yaw: list[float] = field(default_factory=list)
    pred: list[np.ndarray] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0
    detector_missed: int = 0


def _faces(cfg: EvalConfig, samples: list[FaceSample]) -> tuple[list[_Face], list[str]]:
    """Ground truth, yaw (degrees) and protocol crop box of each sample, with their sources.

    A sample that has none (no landmarks, not in the protocol's list) is skipped with a line.
    """
    faces: list[_Face] = []
    skipped: list[str] = []
    if cfg.dataset == "aflw2000-3d" and (cfg.root / "3ddfa_protocol").is_dir():
        proto = load_aflw2000_3d_protocol(
            cfg.root / "3ddfa_protocol", cfg.ground_truth, cfg.yaw_file, keep_nonfinite_rows=True
        )
        if cfg.crop == "protocol" and proto.roi_box is None:
            raise BadInputError(proto.files["roi_box"], "protocol ROI box file not found")
        index = {Path(n).stem: i for i, n in enumerate(proto.names)}
        for s in samples:
            if s.name not in index:
                skipped.append(str(BadInputError(s.source, "not in the protocol's list.txt")))
                continue
            i = index[s.name]
            row = f"row {i} ({s.name})"
            roi = proto.roi_box[i] if cfg.crop == "protocol" and proto.roi_box is not None else None
            faces.append(
                _Face(
                    sample=s,
                    gt=proto.gt[i],
                    gt_source=f"{proto.files['gt']} {row}",
                    yaw=float(proto.yaw_deg[i]),
                    yaw_source=f"{proto.files['yaw']} {row}",
                    roi=roi,
                    roi_source=f"{proto.files['roi_box']} {row}",
                )
            )
        return faces, skipped
    if cfg.crop == "protocol":
        raise BadInputError(cfg.root / "3ddfa_protocol", "needed for --crop protocol")
    for s in samples:
        if s.landmarks is None:
            reason = s.meta.get("landmarks_unavailable_reason", "no landmarks")
            skipped.append(str(BadInputError(s.source, f"cannot evaluate: {reason}")))
            continue
        yaw = float(np.degrees(s.pose[1])) if s.pose is not None else math.nan
        faces.append(_Face(sample=s, gt=s.landmarks, gt_source=s.source, yaw=yaw))
        faces[-1].yaw_source = s.source
    return faces, skipped


def _uses_yaw_bins(cfg: EvalConfig, faces: list[_Face]) -> bool:
    """AFLW2000-3D always bins by yaw; ``bbox`` datasets do when every face has a pose."""
    protocol = DATASETS[cfg.dataset][1]
    return protocol == "aflw2000-3d" or (
        protocol == "bbox" and bool(faces) and all(math.isfinite(f.yaw) for f in faces)
    )


def face_problem(gt: np.ndarray, normalizer: str) -> str | None:
    """Why ground truth ``gt`` (``(68, 2|3)`` pixels) cannot be scored, or ``None``.

    Args:
        gt: one face's ground truth.
        normalizer: ``"box"`` (``sqrt(w * h)`` of the tight box) or ``"interocular"`` (outer
            eye corners, points 36 and 45): the one the protocol divides by.

    Returns:
        A short problem (non-finite or absurd coordinates, a face without size, coinciding
        eye corners), or ``None`` when the face can be scored.
    """
    g = np.asarray(gt, dtype=np.float64)
    if g.ndim != 2 or g.shape[0] != NUM_LANDMARKS or g.shape[1] < 2:
        return f"ground truth has shape {g.shape}, expected (68, 2|3)"
    if not np.all(np.isfinite(g)):
        return "ground truth has NaN or infinite coordinates"
    worst = float(np.abs(g).max())
    if worst > MAX_COORDINATE:
        return f"ground-truth coordinate {worst:.3g} is absurd (beyond ±{MAX_COORDINATE:g} pixels)"
    problem = degenerate_problem(g)
    if problem is not None:
        return f"{problem}: the NME normalizer would be 0"
    if normalizer == "interocular":
        a, b = OUTER_EYE_CORNERS
        if not np.linalg.norm(g[a, :2] - g[b, :2]) > 0:
            return (
                f"outer eye corners (points {a} and {b}) coincide: the inter-ocular "
                "normalizer would be 0"
            )
    return None


def _yaw_problem(yaw: float) -> str | None:
    if not math.isfinite(yaw):
        return "no finite yaw (pose missing or NaN); the protocol bins faces by yaw"
    if abs(yaw) > MAX_YAW_DEG:
        return f"yaw {yaw:.3g} degrees is absurd (beyond ten turns)"
    return None


def _roi_problem(roi: np.ndarray) -> str | None:
    """Why a protocol crop box ``[x0, y0, x1, y1]`` (pixels) cannot be used, or ``None``."""
    r = np.asarray(roi, dtype=np.float64).reshape(-1)
    if r.shape != (4,) or not np.all(np.isfinite(r)) or np.abs(r).max() > MAX_COORDINATE:
        return f"ROI box {r.tolist()} is not 4 finite pixel coordinates"
    if not (r[2] > r[0] and r[3] > r[1]):
        return f"ROI box {r.tolist()} has no area"
    return None


def _check_faces(faces: list[_Face], binned: bool) -> tuple[list[_Face], list[str]]:
    """The faces that can be scored, and ``"<file>: <problem>"`` for each other one."""
    good: list[_Face] = []
    skipped: list[str] = []
    normalizer = "box" if binned else "interocular"
    for face in faces:
        problems = [(face.gt_source, face_problem(face.gt, normalizer))]
        if binned:
            problems.append((face.yaw_source, _yaw_problem(face.yaw)))
        if face.roi is not None:
            problems.append((face.roi_source, _roi_problem(face.roi)))
        bad = [(source, problem) for source, problem in problems if problem is not None]
        if bad:
            skipped.append(str(BadInputError(*bad[0])))
        else:
            good.append(face)
    return good, skipped


def _crop_box(
    image: np.ndarray, gt: np.ndarray, detector: FaceDetector | None
) -> tuple[np.ndarray, bool]:
    """Canonical face box for one face; the flag says whether the detector missed it."""
    gt_box = landmark_box(gt)
    if detector is None:
        return gt_box, False
    found = detector.detect(image)
    idx = match_detection(found, gt_box)
    return (gt_box, True) if idx < 0 else (found.boxes[idx], False)


def _run_model(
    cfg: EvalConfig,
    model: LandmarkModel,
    faces: list[_Face],
    on_step: Callable[[], None],
) -> _Scored:
    detector = create_face_detector(cfg.detector) if cfg.crop == "detector" else None
    out = _Scored()
    for face in faces:
        sample = face.sample
        try:
            image = (
                sample.image if isinstance(sample.image, np.ndarray) else load_image(sample.image)
            )
            if face.roi is not None:
                missed = False
                start = time.perf_counter()
                pred = model.predict_crops(image, face.roi[None]).points[0]
            else:
                box, missed = _crop_box(image, face.gt, detector)
                start = time.perf_counter()
                pred = model.predict(image, box[None]).points[0]
            out.seconds += time.perf_counter() - start
            if not np.all(np.isfinite(np.asarray(pred, dtype=np.float64))):
                where = sample.image_path or sample.source
                raise BadInputError(where, f"{cfg.model} predicted NaN or infinite points")
        except BadInputError as exc:
            out.skipped.append(str(exc))
        else:
            out.names.append(sample.name)
            out.gt.append(face.gt)
            out.yaw.append(face.yaw)
            out.pred.append(pred)
            out.detector_missed += int(missed)
        on_step()
    return out


def _score(cfg: EvalConfig, scored: _Scored, crop: str, binned: bool) -> ProtocolResult:
    pred, gt = np.stack(scored.pred), np.stack(scored.gt)
    yaw = np.asarray(scored.yaw)
    if binned:
        uses_files = (cfg.root / "3ddfa_protocol").is_dir()
        return aflw2000_3d_protocol(
            pred,
            gt,
            yaw,
            ground_truth=cfg.ground_truth if uses_files else "annotation files of the dataset",
            yaw_file=cfg.yaw_file if uses_files else "yaw of each sample's pose annotation",
            crop=crop,
        )
    return ibug_300w_protocol(pred, gt, subset=f"{cfg.dataset} at {cfg.root}")


def evaluate(
    cfg: EvalConfig, model: LandmarkModel | None = None, progress: bool = True
) -> EvalReport:
    """Evaluate ``cfg.model`` (or an already built ``model``) on ``cfg.dataset``.

    Returns:
        The report; ``report.extras`` holds ``skipped`` (one line per unusable face),
        ``ms_per_face`` (model time only) and ``detector_missed``.

    Raises:
        BadInputError: the dataset cannot be read, or no face could be evaluated.
    """
    model = model or create_model(
        cfg.model, weights=cfg.weights, engine=cfg.engine, device=cfg.device
    )
    dataset = read_dataset(DATASETS[cfg.dataset][0], cfg.root, limit=cfg.limit)
    samples = dataset.samples
    if not samples:
        raise BadInputError(cfg.root, f"no usable faces for {cfg.dataset}")
    columns = (
        TextColumn(f"eval {cfg.model} on {cfg.dataset}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    faces, skipped = _faces(cfg, samples)
    binned = _uses_yaw_bins(cfg, faces)
    faces, bad = _check_faces(faces, binned)
    skipped = dataset.skipped + skipped + bad
    stderr = Console(stderr=True)  # progress is a diagnostic: stdout carries the summary only
    with Progress(*columns, console=stderr, disable=not progress, transient=True) as bar:
        task = bar.add_task("eval", total=len(faces))
        scored = _run_model(cfg, model, faces, lambda: bar.advance(task))
    skipped += scored.skipped
    if not scored.pred:
        raise BadInputError(
            cfg.root,
            f"no face could be evaluated ({len(skipped)} skipped): " + "; ".join(skipped[:3]),
        )
    crop = {
        "gt": "tight box of the ground-truth 68 points, mapped by the model's crop policy",
        "detector": f"{cfg.detector} face detector (ground-truth box where it found nothing)",
        "protocol": "3DDFA ROI boxes (AFLW2000-3D_crop.roi_box.npy) used as the model's crop",
    }[cfg.crop]
    result = _score(cfg, scored, crop, binned)
    return EvalReport(
        dataset=cfg.dataset,
        model=cfg.model,
        result=result,
        names=scored.names,
        predictions=np.stack(scored.pred),
        extras={
            "root": str(cfg.root),
            "limit": cfg.limit,
            "weights": cfg.weights,
            "model_config": model.config.to_dict(),
            "ms_per_face": 1000.0 * scored.seconds / len(scored.pred),
            "detector_missed": scored.detector_missed,
            "skipped": skipped,
        },
    )
