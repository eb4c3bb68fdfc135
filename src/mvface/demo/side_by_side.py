"""The paper's demo: every image through the base and the "+" model, drawn side by side.

:func:`run_demo` writes into ``cfg.output``:

* ``NNN_<name>.jpg`` — per image, one column per model: its points (red) on the face, the
  ground truth (green) when known, the NME and the time.
* ``overview.jpg`` — the first :data:`OVERVIEW_MAX` images as columns, one row per model.
* ``results.json`` — per image: the models, face boxes, 68 points, timings, and NMEs when the
  ground truth is known.

Without an input folder it shows the point on a fresh machine: ``skimage.data.astronaut()`` and
novel views of it at yaw −75°…+75° (:func:`~mvface.demo.items.packaged_views`), whose
transferred landmarks are the ground truth. The README's picture is that run's overview::

    mvface demo --output out/demo && cp out/demo/overview.jpg docs/demo_astronaut.jpg
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from mvface._io import atomic_write_bytes, atomic_write_text
from mvface._version import __version__
from mvface.api import create_auto_detector
from mvface.demo.items import (
    DemoItem,
    ItemPrediction,
    packaged_views,
    predict_item,
    read_items,
    round_list,
)
from mvface.demo.models import ModelSpec, load_models, parse_model_specs
from mvface.detection import FaceDetector
from mvface.errors import BadInputError
from mvface.viz.compare import blank_cell, draw_cell, face_square, tile_cells

#: Models of the demo: the base model and the "+" model fine-tuned with the plug-in.
DEMO_MODELS: tuple[str, ...] = ("base", "base+")
#: Images shown in ``overview.jpg``.
OVERVIEW_MAX = 12

#: ``progress(done, total, what)``: images finished so far, images in all (0 until known).
ProgressFn = Callable[[int, int, str], None]


@dataclass
class DemoConfig:
    """Options of one demo run (each a CLI option).

    Attributes:
        output: output folder.
        input: folder of images; ``None`` uses the packaged photo and its synthesized views.
        models: ``--models`` entries (see :mod:`mvface.demo.models`).
        gt_format: reader giving ground truth for ``input`` (``pts``, ``aflw2000-3d``, ...);
            ``None`` reads a plain image folder.
        limit: at most this many input images.
        views: synthesized views of the packaged photo.
        max_yaw_deg: the views span yaw ``[-max_yaw_deg, +max_yaw_deg]`` degrees.
        view_size: side of the synthesized views, pixels.
        cell_size: side of each drawn cell, pixels.
        detector: face detector for images without ground truth (``auto`` or a name).
        source_model: model marking the packaged photo's landmarks (the views' ground truth).
        quality: JPEG quality of the drawings.
    """

    output: Path
    input: Path | None = None
    models: tuple[str, ...] = DEMO_MODELS
    gt_format: str | None = None
    limit: int | None = None
    views: int = 7
    max_yaw_deg: float = 75.0
    view_size: int = 256
    cell_size: int = 256
    detector: str = "auto"
    source_model: str = "base"
    quality: int = 90

    def __post_init__(self) -> None:
        self.output = Path(self.output)
        self.input = None if self.input is None else Path(self.input)
        self.models = tuple(self.models)
        checks = [
            (1 <= self.views <= 64, f"views must be in 1..64, got {self.views}"),
            (0 <= self.max_yaw_deg <= 90, f"max_yaw_deg must be in 0..90, got {self.max_yaw_deg}"),
            (self.view_size >= 64, f"view_size must be >= 64, got {self.view_size}"),
            (self.cell_size >= 64, f"cell_size must be >= 64, got {self.cell_size}"),
            (self.limit is None or self.limit >= 1, f"limit must be >= 1, got {self.limit}"),
            (1 <= self.quality <= 100, f"quality must be in 1..100, got {self.quality}"),
        ]
        for ok, message in checks:
            if not ok:
                raise BadInputError("demo", message)


@dataclass
class DemoResult:
    """What :func:`run_demo` did.

    Attributes:
        models: the models that ran.
        skipped_models: ``(spec, reason)`` of models that could not be loaded here.
        images: one prediction record per image shown.
        failed: one line per image that could not be used.
        files: the drawings written (per image, then the overview).
        results: path of ``results.json``.
        mean_nme: model label → mean NME in % over the images with ground truth.
        seconds: wall time of the run.
    """

    models: list[ModelSpec]
    skipped_models: list[tuple[ModelSpec, str]]
    images: list[ItemPrediction] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    results: Path | None = None
    mean_nme: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


def _cells(pred: ItemPrediction, labels: list[str], size: int) -> list[list[np.ndarray]]:
    """One row of cells (one per model) per face; a single cell when no face was found."""
    if not pred.faces:
        return [[blank_cell(size, [pred.item.name, "no face found"]) for _ in labels]]
    rows = []
    for face in pred.faces:
        shown = [p for p in face.points.values()]
        if pred.item.gt is not None:
            shown.append(pred.item.gt)
        square = face_square(shown) if shown else face.box
        row = []
        for label in labels:
            lines = [label]
            if label in face.nme:
                lines.append(f"NME {face.nme[label]:.2f}%")
            lines.append(f"{pred.ms[label]:.0f} ms")
            points = face.points.get(label)
            row.append(draw_cell(pred.image, square, size, points, pred.item.gt, lines=lines))
        rows.append(row)
    return rows


def _write_jpeg(path: Path, image_rgb: np.ndarray, quality: int) -> None:
    bgr = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - OpenCV fails only on invalid arrays
        raise BadInputError(path, "could not encode the drawing")
    atomic_write_bytes(path, buf.tobytes())


def _column_title(item: DemoItem) -> str:
    if "yaw_deg" in item.meta:
        return f"yaw {item.meta['yaw_deg']:+.0f} deg"
    return item.name if len(item.name) <= 18 else item.name[:17] + "~"


def overview_figure(preds: list[ItemPrediction], labels: list[str], size: int) -> np.ndarray:
    """Images as columns (first face each), one row per model, titled by image (or yaw)."""
    columns = [_cells(p, labels, size)[0] for p in preds]
    rows = [[col[m] for col in columns] for m in range(len(labels))]
    return tile_cells(rows, [_column_title(p.item) for p in preds])


def _record(pred: ItemPrediction, labels: list[str], panel: Path) -> dict[str, Any]:
    h, w = pred.image.shape[:2]
    return {
        "name": pred.item.name,
        "source": pred.item.source,
        "width": w,
        "height": h,
        "meta": pred.item.meta,
        "boxes_from": pred.box_from,
        "ground_truth": None if pred.item.gt is None else round_list(pred.item.gt),
        "ms": {label: round(pred.ms[label], 2) for label in labels},
        "faces": [
            {
                "box": round_list(face.box),
                "landmarks": {k: round_list(v) for k, v in face.points.items()},
                "nme_percent": {k: round(v, 3) for k, v in face.nme.items()},
            }
            for face in pred.faces
        ],
        "drawing": panel.name,
    }


def run_demo(cfg: DemoConfig, progress: ProgressFn | None = None) -> DemoResult:
    """Run the demo (see the module docstring) and write its drawings and ``results.json``.

    Args:
        cfg: the options.
        progress: called as images are read and finished (see :data:`ProgressFn`).

    Raises:
        BadInputError: bad options or an unreadable input folder.
        NotAvailableError: no model could be loaded, or no face detector when one is needed.
    """
    start = time.perf_counter()
    report = progress or (lambda done, total, what: None)
    loaded = load_models(parse_model_specs(cfg.models))
    labels = loaded.labels
    result = DemoResult(models=loaded.specs, skipped_models=loaded.skipped)
    if cfg.input is None:
        report(0, 0, f"synthesizing {cfg.views} views")
        items = packaged_views(cfg.views, cfg.max_yaw_deg, cfg.view_size, cfg.source_model)
    else:
        items, result.failed = read_items(cfg.input, cfg.gt_format, cfg.limit)
        if not items:
            raise BadInputError(cfg.input, "no usable image found")
    cfg.output.mkdir(parents=True, exist_ok=True)
    found: dict[str, FaceDetector] = {}

    def detector() -> FaceDetector:
        if "d" not in found:
            found["d"] = create_auto_detector(cfg.detector)
        return found["d"]

    records: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        report(index, len(items), item.name)
        try:
            pred = predict_item(item, labels, loaded.models, detector)
        except BadInputError as exc:
            result.failed.append(str(exc))
            continue
        result.images.append(pred)
        panel = cfg.output / f"{index:03d}_{item.name.replace('/', '_')}.jpg"
        _write_jpeg(panel, tile_cells(_cells(pred, labels, cfg.cell_size), gap=2), cfg.quality)
        result.files.append(panel)
        records.append(_record(pred, labels, panel))
    report(len(items), len(items), "overview")
    if result.images:
        overview = cfg.output / "overview.jpg"
        figure = overview_figure(result.images[:OVERVIEW_MAX], labels, cfg.cell_size)
        _write_jpeg(overview, figure, cfg.quality)
        result.files.append(overview)
    for label in labels:
        values = [f.nme[label] for p in result.images for f in p.faces if label in f.nme]
        if values:
            result.mean_nme[label] = float(np.mean(values))
    result.seconds = time.perf_counter() - start
    payload = {
        "mvface_version": __version__,
        "input": str(cfg.input) if cfg.input is not None else "skimage.data.astronaut() + views",
        "models": [s.to_dict() for s in loaded.specs],
        "skipped_models": [{**s.to_dict(), "reason": why} for s, why in loaded.skipped],
        "coordinates": "0-based pixels of each image, pixel centres at integers",
        "nme": "mean 2D point error / sqrt(w*h) of the ground truth's tight box, in % "
        "(AFLW2000-3D protocol); all 68 points, hidden ones included",
        "ms": "wall time of each model on the whole image (all its faces), milliseconds",
        "mean_nme_percent": {k: round(v, 3) for k, v in result.mean_nme.items()},
        "images": records,
        "failed": result.failed,
        "seconds": round(result.seconds, 2),
    }
    result.results = cfg.output / "results.json"
    atomic_write_text(result.results, json.dumps(payload, indent=1) + "\n")
    return result
