"""The images a demo or comparison shows, their ground truth, and every model's points on them.

* :func:`read_items` — a folder through a dataset reader (``folder``: no ground truth;
  ``pts``, ``aflw2000-3d``, ...: with it).
* :func:`packaged_views` — for a machine with no data: ``skimage.data.astronaut()`` and novel
  views of it synthesized at yaw −75°…+75° with :mod:`mvface.synth`, whose transferred landmarks
  are the ground truth.
* :func:`predict_item` — the faces of one image (the ground truth's tight box when known, else
  every face the detector finds), each model's points and its time.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mvface.data.image import load_image
from mvface.data.readers import read_dataset
from mvface.data.record import FaceSample, landmark_box
from mvface.detection import FaceDetector
from mvface.errors import BadInputError, NotAvailableError
from mvface.models import LandmarkModel
from mvface.viz.compare import nme_percent

#: Name under which the packaged photo appears.
PACKAGED_NAME = "astronaut"


@dataclass
class DemoItem:
    """One image to show.

    Attributes:
        name: a short stable name (file stem, view name).
        source: where it came from (a path, or a description).
        image: ``(H, W, 3)`` uint8 RGB, or the path to load it from.
        gt: ``(68, 2)`` ground truth in 0-based pixels, or ``None``.
        meta: JSON-able extras (e.g. ``yaw_deg`` of a synthetic view).
    """

    name: str
    source: str
    image: np.ndarray | Path
    gt: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def load(self) -> np.ndarray:
        """The image as ``(H, W, 3)`` uint8 RGB (raises BadInputError for unreadable files)."""
        return self.image if isinstance(self.image, np.ndarray) else load_image(self.image)


def read_items(
    root: str | Path,
    gt_format: str | None = None,
    limit: int | None = None,
    names: Sequence[str] = (),
) -> tuple[list[DemoItem], list[str]]:
    """The images under ``root``, with ground truth when ``gt_format`` names a reader.

    Args:
        root: a folder (or the file a single-file reader takes).
        gt_format: a reader from :func:`mvface.data.readers.list_readers`; ``None`` reads a
            plain image folder (no ground truth).
        limit: at most this many images (after ``names``).
        names: keep only samples with these names (reader sample names, e.g. file stems).

    Returns:
        The items and one line per item the reader skipped (or name not found).
    """
    reader = gt_format or "folder"
    dataset = read_dataset(reader, root, limit=None if names else limit)
    problems = list(dataset.skipped)
    samples: list[FaceSample] = dataset.samples
    if names:
        by_name = {s.name: s for s in samples}
        problems += [f"{root}: no sample named {n!r}" for n in names if n not in by_name]
        samples = [by_name[n] for n in names if n in by_name]
        samples = samples[:limit] if limit is not None else samples
    items = []
    for s in samples:
        gt = None if s.landmarks is None else np.asarray(s.landmarks, np.float64)[:, :2]
        source = str(s.image) if isinstance(s.image, Path) else s.name
        meta: dict[str, Any] = {}
        if s.pose is not None:
            meta["pose_pitch_yaw_roll_deg"] = np.round(np.degrees(s.pose), 2).tolist()
        items.append(DemoItem(s.name or Path(source).stem, source, s.image, gt, meta))
    return items, problems


def packaged_image() -> np.ndarray:
    """``skimage.data.astronaut()``: a 512x512 RGB portrait that ships with scikit-image."""
    try:
        from skimage import data
    except ImportError:  # pragma: no cover - scikit-image is a runtime dependency
        raise NotAvailableError(
            "scikit-image is not installed (pip install scikit-image)"
        ) from None
    return np.ascontiguousarray(data.astronaut()[..., :3], dtype=np.uint8)


def yaw_sweep(views: int, max_yaw_deg: float) -> np.ndarray:
    """``(views,)`` camera yaws in degrees, evenly from ``-max_yaw_deg`` to ``+max_yaw_deg``."""
    if views < 1:
        raise BadInputError("views", f"need at least 1 view, got {views}")
    if not 0 <= max_yaw_deg <= 90:
        raise BadInputError("max_yaw_deg", f"must be in 0..90, got {max_yaw_deg}")
    return np.linspace(-max_yaw_deg, max_yaw_deg, views) if views > 1 else np.zeros(1)


def packaged_views(
    views: int = 7,
    max_yaw_deg: float = 75.0,
    size: int = 256,
    landmark_model: str = "base",
    backend: str = "mesh",
) -> list[DemoItem]:
    """The packaged photo and novel views of it, rendered by the synth pipeline.

    The photo has no annotation: its 68 points come from ``landmark_model`` (with the automatic
    face detector), the head is built on its aligned crop (:func:`mvface.synth.identity.
    synthesize_identity`, ``backend``), and the views come from cameras at pitch 0 and the
    yaws of :func:`yaw_sweep` (degrees; positive turns the head towards the image's left).
    Each view's ground truth is the photo's landmarks lifted in 3D and projected into it, the
    far side included (as AFLW2000-3D's 3D-aware annotation).

    Returns:
        The photo (no ground truth) then one item per view (``meta["yaw_deg"]``).
    """
    from mvface.synth import create_backend, grid_rig, rig_labels
    from mvface.synth.config import SynthConfig
    from mvface.synth.identity import synthesize_identity

    photo = packaged_image()
    yaws = yaw_sweep(views, max_yaw_deg)
    cameras = rig_labels(grid_rig(np.radians(yaws), [0.0]).to(torch.float64)).numpy()
    cfg = SynthConfig(
        source=f"skimage.data.{PACKAGED_NAME}",
        out=".",
        views=views,
        size=size,
        landmark_model=landmark_model,
        backend=backend,
    )
    sample = FaceSample(image=photo, name=PACKAGED_NAME)
    record = synthesize_identity(sample, cfg, create_backend(backend), cameras)
    source = f"skimage.data.{PACKAGED_NAME}()"
    items = [DemoItem(PACKAGED_NAME, source, photo, None, {"landmarks_from": landmark_model})]
    for v, yaw in enumerate(yaws):
        meta = {
            "yaw_deg": round(float(yaw), 2),
            "synthetic": True,
            "gt_from": f"{landmark_model} on the photo, lifted and transferred",
            "visible_points": int(record.visibility[v].sum()),
        }
        name = f"{PACKAGED_NAME}_yaw{round(float(yaw)):+03d}"
        items.append(
            DemoItem(name, f"{source} view {v}", record.images[v], record.landmarks[v], meta)
        )
    return items


@dataclass
class FacePrediction:
    """One face of one image: its box and each model's points.

    Attributes:
        box: ``(4,)`` canonical face box ``[x0, y0, x1, y1]``, 0-based pixels.
        points: model label → ``(68, 2|3)`` points in image pixels.
        nme: model label → NME in % (``sqrt(w·h)`` of the ground truth's box); empty without
            ground truth.
    """

    box: np.ndarray
    points: dict[str, np.ndarray] = field(default_factory=dict)
    nme: dict[str, float] = field(default_factory=dict)


@dataclass
class ItemPrediction:
    """All faces of one item, and each model's time on the whole image in milliseconds."""

    item: DemoItem
    image: np.ndarray
    faces: list[FacePrediction]
    ms: dict[str, float]
    box_from: str


def predict_item(
    item: DemoItem,
    labels: Sequence[str],
    models: Sequence[LandmarkModel],
    detector: Callable[[], FaceDetector],
    largest_only: bool = False,
) -> ItemPrediction:
    """Every model's points on the faces of one item.

    All models see the same face boxes: the ground truth's tight box when the item has ground
    truth (as ``mvface eval --crop gt``), else the detector's faces (all of them, or the
    largest with ``largest_only``).

    Args:
        item: the image and its ground truth.
        labels: one label per model.
        models: the landmark models.
        detector: returns the face detector (called only when needed).
        largest_only: keep only the largest detected face.

    Raises:
        BadInputError: the image cannot be read.
    """
    image = item.load()
    if item.gt is not None:
        boxes, box_from = landmark_box(item.gt)[None], "ground truth"
    else:
        det = detector()
        boxes, box_from = det.detect(image).boxes, f"detector {det.name}"
        if largest_only and len(boxes) > 1:
            areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
            boxes = boxes[[int(np.argmax(areas))]]
    faces = [FacePrediction(box=np.asarray(b, np.float64)) for b in boxes]
    ms: dict[str, float] = {}
    for label, model in zip(labels, models, strict=True):
        start = time.perf_counter()
        marks = model.predict(image, boxes) if len(boxes) else None
        ms[label] = (time.perf_counter() - start) * 1000.0
        if marks is None:
            continue
        for face, pts in zip(faces, marks.points, strict=True):
            face.points[label] = np.asarray(pts, np.float64)
            if item.gt is not None and np.all(np.isfinite(pts[:, :2])):
                face.nme[label] = nme_percent(pts, item.gt)
    return ItemPrediction(item, image, faces, ms, box_from)


def round_list(values: np.ndarray, digits: int = 2) -> list[Any]:
    """A float array as nested lists rounded to ``digits`` (NaN → ``None``), for JSON."""
    arr = np.round(np.asarray(values, np.float64), digits)
    return (
        [round_list(v, digits) for v in arr]
        if arr.ndim > 1
        else [None if not math.isfinite(x) else float(x) for x in arr]
    )
