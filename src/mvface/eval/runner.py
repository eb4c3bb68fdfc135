"""Run a model over a dataset under that dataset's protocol: the library side of ``mvface eval``.

The runner reads the dataset with its reader, crops each face from the ground-truth box or from a
face detector, runs the model, scores the predictions with the dataset's protocol and returns an
:class:`~mvface.eval.report.EvalReport` (predictions in the protocol's order, 0-based pixels of
the original images).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from mvface.data.image import load_image
from mvface.data.readers import read_dataset
from mvface.data.record import FaceSample, landmark_box
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


def _ground_truth(
    cfg: EvalConfig, samples: list[FaceSample]
) -> tuple[list[np.ndarray], list[float], list[np.ndarray] | None]:
    """Ground truth, yaw (degrees) and protocol crop boxes (if asked for) per sample."""
    if cfg.dataset == "aflw2000-3d" and (cfg.root / "3ddfa_protocol").is_dir():
        proto = load_aflw2000_3d_protocol(
            cfg.root / "3ddfa_protocol", cfg.ground_truth, cfg.yaw_file
        )
        index = {Path(n).stem: i for i, n in enumerate(proto.names)}
        rows = []
        for s in samples:
            if s.name not in index:
                raise BadInputError(s.image_path or s.name, "not in the protocol's list.txt")
            rows.append(index[s.name])
        rois = None
        if cfg.crop == "protocol":
            if proto.roi_box is None:
                raise BadInputError(cfg.root / "3ddfa_protocol", "has no ROI box file")
            rois = [proto.roi_box[i] for i in rows]
        return [proto.gt[i] for i in rows], [float(proto.yaw_deg[i]) for i in rows], rois
    gts, yaws = [], []
    for s in samples:
        if s.landmarks is None:
            reason = s.meta.get("landmarks_unavailable_reason", "no landmarks")
            raise BadInputError(s.image_path or s.name, f"cannot evaluate: {reason}")
        gts.append(s.landmarks)
        yaws.append(float(np.degrees(s.pose[1])) if s.pose is not None else float("nan"))
    if cfg.crop == "protocol":
        raise BadInputError(cfg.root / "3ddfa_protocol", "needed for --crop protocol")
    return gts, yaws, None


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
    samples: list[FaceSample],
    on_step: Callable[[], None],
) -> _Scored:
    gts, yaws, rois = _ground_truth(cfg, samples)
    detector = create_face_detector(cfg.detector) if cfg.crop == "detector" else None
    out = _Scored()
    for i, (sample, gt, yaw) in enumerate(zip(samples, gts, yaws, strict=True)):
        try:
            image = (
                sample.image if isinstance(sample.image, np.ndarray) else load_image(sample.image)
            )
            if rois is not None:
                missed = False
                start = time.perf_counter()
                pred = model.predict_crops(image, rois[i][None]).points[0]
            else:
                box, missed = _crop_box(image, gt, detector)
                start = time.perf_counter()
                pred = model.predict(image, box[None]).points[0]
            out.seconds += time.perf_counter() - start
        except BadInputError as exc:
            out.skipped.append(str(exc))
        else:
            out.names.append(sample.name)
            out.gt.append(gt)
            out.yaw.append(yaw)
            out.pred.append(pred)
            out.detector_missed += int(missed)
        on_step()
    return out


def _score(cfg: EvalConfig, scored: _Scored, crop: str) -> ProtocolResult:
    pred, gt = np.stack(scored.pred), np.stack(scored.gt)
    protocol = DATASETS[cfg.dataset][1]
    yaw = np.asarray(scored.yaw)
    if protocol == "aflw2000-3d" or (protocol == "bbox" and np.all(np.isfinite(yaw))):
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
    model = model or create_model(cfg.model, weights=cfg.weights)
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
    with Progress(*columns, disable=not progress, transient=True) as bar:
        task = bar.add_task("eval", total=len(samples))
        scored = _run_model(cfg, model, samples, lambda: bar.advance(task))
    if not scored.pred:
        raise BadInputError(
            cfg.root, "no face could be evaluated: " + "; ".join(scored.skipped[:3])
        )
    crop = {
        "gt": "tight box of the ground-truth 68 points, mapped by the model's crop policy",
        "detector": f"{cfg.detector} face detector (ground-truth box where it found nothing)",
        "protocol": "3DDFA ROI boxes (AFLW2000-3D_crop.roi_box.npy) used as the model's crop",
    }[cfg.crop]
    result = _score(cfg, scored, crop)
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
            "skipped": dataset.skipped + scored.skipped,
        },
    )
