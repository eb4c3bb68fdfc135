"""The paper's comparison figure for a folder of images: ``mvface compare``.

:func:`run_compare` runs every model of ``--models`` on the same face of each image (the ground
truth's tight box when a reader gives ground truth, else the detector's largest face) and draws
:func:`mvface.viz.compare.comparison_figure`: one column per model, per image the face and the
enlarged region where the models are furthest from the ground truth (or from each other). It
also writes ``<figure>.json`` with each model's NME per image and the regions chosen.
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
from mvface.api import create_auto_detector
from mvface.demo.items import DemoItem, predict_item, read_items, round_list
from mvface.demo.models import ModelSpec, load_models, parse_model_specs
from mvface.detection import FaceDetector
from mvface.errors import BadInputError
from mvface.viz.compare import CompareRow, comparison_figure

#: Figure file types written.
FIGURE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass
class CompareConfig:
    """Options of one comparison figure (each a CLI option).

    Attributes:
        input: folder of images (or what the ``gt_format`` reader takes).
        output: the figure file (``.png`` or ``.jpg``).
        models: ``--models`` entries (see :mod:`mvface.demo.models`).
        gt_format: reader giving ground truth; ``None``: a plain image folder.
        names: keep only these sample names, in this order.
        limit: at most this many images.
        detector: face detector for images without ground truth.
        cell_size: side of each cell in pixels.
        quality: JPEG quality when ``output`` is a JPEG.
    """

    input: Path
    output: Path
    models: tuple[str, ...]
    gt_format: str | None = None
    names: tuple[str, ...] = ()
    limit: int | None = 8
    detector: str = "auto"
    cell_size: int = 256
    quality: int = 90

    def __post_init__(self) -> None:
        self.input, self.output = Path(self.input), Path(self.output)
        self.models, self.names = tuple(self.models), tuple(self.names)
        if self.output.suffix.lower() not in FIGURE_SUFFIXES:
            raise BadInputError(self.output, "the figure must be a .png or .jpg file")
        if self.limit is not None and self.limit < 1:
            raise BadInputError("limit", f"must be >= 1, got {self.limit}")
        if self.cell_size < 64:
            raise BadInputError("cell_size", f"must be >= 64, got {self.cell_size}")


@dataclass
class CompareImage:
    """One row of the figure: the image's name, each model's NME (%) and the region shown."""

    name: str
    source: str
    nme: dict[str, float | None]
    region: np.ndarray
    box_from: str


@dataclass
class CompareResult:
    """What :func:`run_compare` did.

    Attributes:
        figure: the figure written.
        report: the ``.json`` next to it.
        models: models shown (columns).
        skipped_models: ``(spec, reason)`` of models that could not be loaded here.
        images: one entry per row.
        failed: one line per image that could not be used.
        seconds: wall time.
    """

    figure: Path
    report: Path
    models: list[ModelSpec]
    skipped_models: list[tuple[ModelSpec, str]]
    images: list[CompareImage] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0


def write_figure(path: Path, figure_rgb: np.ndarray, quality: int = 90) -> None:
    """Write an RGB figure as PNG or JPEG (by suffix), atomically."""
    suffix = path.suffix.lower()
    jpeg = suffix in (".jpg", ".jpeg")
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if jpeg else [cv2.IMWRITE_PNG_COMPRESSION, 9]
    ok, buf = cv2.imencode(suffix, cv2.cvtColor(figure_rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:  # pragma: no cover - OpenCV fails only on invalid arrays
        raise BadInputError(path, "could not encode the figure")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buf.tobytes())


def run_compare(
    cfg: CompareConfig, progress: Callable[[int, int, str], None] | None = None
) -> CompareResult:
    """Build the comparison figure of ``cfg`` (see the module docstring).

    Args:
        cfg: the options.
        progress: ``progress(done, total, name)`` as images are finished.

    Raises:
        BadInputError: bad options, an unreadable input, or no image with a face.
        NotAvailableError: no model could be loaded, or no face detector when one is needed.
    """
    start = time.perf_counter()
    report = progress or (lambda done, total, what: None)
    loaded = load_models(parse_model_specs(cfg.models))
    labels = loaded.labels
    items, failed = read_items(cfg.input, cfg.gt_format, cfg.limit, cfg.names)
    if not items:
        raise BadInputError(cfg.input, "no usable image found")
    found: dict[str, FaceDetector] = {}

    def detector() -> FaceDetector:
        if "d" not in found:
            found["d"] = create_auto_detector(cfg.detector)
        return found["d"]

    rows: list[CompareRow] = []
    shown: list[tuple[DemoItem, str]] = []
    for index, item in enumerate(items):
        report(index, len(items), item.name)
        try:
            pred = predict_item(item, labels, loaded.models, detector, largest_only=True)
        except BadInputError as exc:
            failed.append(str(exc))
            continue
        if not pred.faces:
            failed.append(f"{item.source}: no face found")
            continue
        face = pred.faces[0]
        points = [face.points.get(label) for label in labels]
        rows.append(CompareRow(pred.image, points, item.gt, item.name))
        shown.append((item, pred.box_from))
    report(len(items), len(items), "figure")
    if not rows:
        raise BadInputError(cfg.input, "no image with a face to compare")
    figure, layouts = comparison_figure(rows, labels, cfg.cell_size)
    write_figure(cfg.output, figure, cfg.quality)
    result = CompareResult(
        figure=cfg.output,
        report=cfg.output.with_suffix(".json"),
        models=loaded.specs,
        skipped_models=loaded.skipped,
        failed=failed,
    )
    for (item, box_from), lay in zip(shown, layouts, strict=True):
        nmes = dict(zip(labels, lay.nme, strict=True))
        result.images.append(CompareImage(item.name, item.source, nmes, lay.region, box_from))
    result.seconds = time.perf_counter() - start
    payload: dict[str, Any] = {
        "figure": cfg.output.name,
        "input": str(cfg.input),
        "gt_format": cfg.gt_format,
        "models": [s.to_dict() for s in loaded.specs],
        "skipped_models": [{**s.to_dict(), "reason": why} for s, why in loaded.skipped],
        "nme": "mean 2D point error / sqrt(w*h) of the ground truth's tight box, in %",
        "region": "square [x0, y0, x1, y1] (0-based image pixels) enlarged under each image: "
        "where the models are furthest from the ground truth (or each other without it)",
        "images": [
            {
                "name": im.name,
                "source": im.source,
                "boxes_from": im.box_from,
                "nme_percent": {k: (None if v is None else round(v, 3)) for k, v in im.nme.items()},
                "region": round_list(im.region, 1),
            }
            for im in result.images
        ],
        "failed": failed,
    }
    atomic_write_text(result.report, json.dumps(payload, indent=1) + "\n")
    return result
