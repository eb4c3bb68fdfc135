"""Comparison figures: several models' landmarks on the same faces, side by side.

Pure functions over images (``(H, W, 3)`` uint8 RGB), point arrays (``(68, 2+)`` 0-based pixels
of the image, pixel centres at integers) and labels; nothing here reads files or runs models.

* :func:`error_region` — the square where the models differ most from the ground truth (or, with
  no ground truth, from each other).
* :func:`draw_cell` — one square cell: a region of an image resampled to ``size`` px with the
  ground truth (green dots) and a prediction (red contours) drawn, plus text lines.
* :func:`comparison_figure` — the paper-style grid: one column per model, per image a row of
  faces (the error region boxed in white) and a row with that region enlarged.
* :func:`tile_cells` — a plain grid of equal cells under a header of column labels.

Example:
    >>> row = CompareRow(image, predictions=[pred_a, pred_b], gt=gt)  # doctest: +SKIP
    >>> figure = comparison_figure([row], labels=["dlib", "base"])  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from mvface.data.record import landmark_box
from mvface.errors import BadInputError
from mvface.eval.metrics import bbox_normalizer, nme
from mvface.viz.overlay import Color, draw_box, draw_landmarks

#: Colour of ground-truth points (RGB).
GT_COLOR: Color = (40, 230, 40)
#: Colour of predicted points and contours (RGB).
PRED_COLOR: Color = (255, 60, 60)
#: Colour of the error-region box and of text (RGB).
BOX_COLOR: Color = (255, 255, 255)
#: Colour of the lines joining each predicted point to its ground truth in enlarged cells (RGB).
ERROR_COLOR: Color = (255, 220, 0)
#: Background of cells and of the padding outside the image (RGB).
BACKGROUND: Color = (40, 40, 40)

#: Side of the error region as a fraction of the face's larger side.
REGION_FRACTION = 0.45
#: Margin around the face in the face cells, as a fraction of the face's larger side.
FACE_MARGIN = 0.25


def _points(points: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(points, np.float64)
    if arr.ndim != 2 or arr.shape[0] != 68 or arr.shape[1] < 2:
        raise BadInputError(what, f"expected (68, 2+) points, got {arr.shape}")
    if not np.all(np.isfinite(arr[:, :2])):
        raise BadInputError(what, "points contain NaN or infinite values")
    return arr[:, :2]


def nme_percent(pred: np.ndarray, gt: np.ndarray) -> float:
    """2D NME in % of ``sqrt(w·h)`` of the ground truth's tight box (AFLW2000-3D protocol).

    Args:
        pred: ``(68, 2+)`` predicted points, pixels.
        gt: ``(68, 2+)`` ground-truth points in the same frame, pixels.
    """
    p, g = _points(pred, "prediction"), _points(gt, "ground truth")
    return float(nme(p[None], g[None], bbox_normalizer(g[None]))[0] * 100.0)


def point_disagreement(
    predictions: Sequence[np.ndarray], gt: np.ndarray | None = None
) -> np.ndarray:
    """How wrong each of the 68 points is: mean over models of the distance to the reference.

    Args:
        predictions: ``M ≥ 1`` arrays ``(68, 2+)`` in pixels (one per model).
        gt: ``(68, 2+)`` ground truth; ``None`` measures each model against the models' median.

    Returns:
        ``(68,)`` float64 distances in pixels.
    """
    if len(predictions) == 0:
        raise BadInputError("predictions", "need at least one model's points")
    stack = np.stack([_points(p, f"prediction {i}") for i, p in enumerate(predictions)])
    ref = np.median(stack, axis=0) if gt is None else _points(gt, "ground truth")
    return np.asarray(np.linalg.norm(stack - ref[None], axis=-1).mean(axis=0), np.float64)


def error_region(
    predictions: Sequence[np.ndarray],
    gt: np.ndarray | None = None,
    fraction: float = REGION_FRACTION,
) -> np.ndarray:
    """The square of the face where the models are furthest from the ground truth.

    Each point ``k`` sits at its reference position (the ground truth, or the models' median
    without one) and weighs its :func:`point_disagreement`. Among the squares of side
    ``fraction`` x the larger side of the reference's tight box centred on a reference point,
    the one holding the most weight wins; it is then re-centred on the weighted mean of the
    points inside it. With no error anywhere it is centred on the face.

    Args:
        predictions: ``M ≥ 1`` arrays ``(68, 2+)``, pixels (with no ground truth, ``M ≥ 2``
            is needed for the models to disagree at all).
        gt: ``(68, 2+)`` ground truth, pixels, or ``None``.
        fraction: side of the square relative to the face's larger side, in ``(0, 1]``.

    Returns:
        ``(4,)`` float64 square box ``[x0, y0, x1, y1]`` in pixels of the image.
    """
    if not 0.0 < fraction <= 1.0:
        raise BadInputError("fraction", f"must be in (0, 1], got {fraction}")
    weights = point_disagreement(predictions, gt)
    stack = np.stack([_points(p, "prediction") for p in predictions])
    ref = np.median(stack, axis=0) if gt is None else _points(gt, "ground truth")
    box = landmark_box(ref)
    side = max(float(max(box[2] - box[0], box[3] - box[1])) * fraction, 4.0)
    half = side / 2.0
    # inside[c, j]: point j lies in the square centred on point c
    inside = np.all(np.abs(ref[None, :, :] - ref[:, None, :]) <= half, axis=-1)
    score = inside @ weights
    best = int(np.argmax(score))
    members = inside[best]
    w = weights[members]
    if w.sum() > 0:
        centre = (ref[members] * w[:, None]).sum(0) / w.sum()
    else:  # no error anywhere (a single model and no ground truth): the face's centre
        centre = (box[:2] + box[2:]) / 2
    return np.array([centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half])


def face_square(point_sets: Sequence[np.ndarray], margin: float = FACE_MARGIN) -> np.ndarray:
    """A square box ``[x0, y0, x1, y1]`` (pixels) around all given ``(68, 2+)`` point sets.

    Its side is ``(1 + 2·margin)`` x the larger side of their common tight box.
    """
    if len(point_sets) == 0:
        raise BadInputError("points", "need at least one point set")
    allpts = np.concatenate([_points(p, "points") for p in point_sets])
    box = landmark_box(allpts)
    centre = (box[:2] + box[2:]) / 2
    half = max(float(max(box[2] - box[0], box[3] - box[1])), 8.0) * (0.5 + margin)
    return np.array([centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half])


def crop_square(image: np.ndarray, box: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Resample the square ``box`` (pixels) of ``image`` to ``(size, size, 3)``.

    Parts outside the image are filled with :data:`BACKGROUND`.

    Returns:
        The crop and the ``(2, 3)`` affine taking image pixels to crop pixels.
    """
    b = np.asarray(box, np.float64).reshape(4)
    side = float(b[2] - b[0])
    if not np.all(np.isfinite(b)) or side <= 0 or size < 8:
        raise BadInputError("crop", f"bad square {b.tolist()} or size {size}")
    s = size / side
    affine = np.array([[s, 0.0, -b[0] * s], [0.0, s, -b[1] * s]])
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    crop = cv2.warpAffine(
        image,
        affine,
        (size, size),
        flags=interp,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=BACKGROUND,
    )
    return crop, affine


def _apply(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points[:, :2] @ affine[:, :2].T + affine[:, 2]


def put_text(
    image: np.ndarray,
    text: str,
    origin: tuple[int, int],
    scale: float = 0.5,
    color: Color = BOX_COLOR,
) -> np.ndarray:
    """Write ``text`` (bottom-left at ``origin``, pixels) on a half-dark backdrop, in place."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    thick = max(1, round(scale * 2.5))
    (tw, th), base = cv2.getTextSize(text, font, scale, thick)
    x, y = origin
    y0, y1 = max(0, y - th - 3), min(image.shape[0], y + base)
    x0, x1 = max(0, x - 3), min(image.shape[1], x + tw + 3)
    if y1 > y0 and x1 > x0:
        image[y0:y1, x0:x1] = (image[y0:y1, x0:x1].astype(np.uint16) * 2 // 5).astype(np.uint8)
    cv2.putText(image, text, origin, font, scale, color, thick, cv2.LINE_AA)
    return image


def text_scale(size: int) -> float:
    """Font scale of cell text for a cell of ``size`` px."""
    return max(0.4, size / 520)


def draw_cell(
    image: np.ndarray,
    box: np.ndarray,
    size: int,
    pred: np.ndarray | None = None,
    gt: np.ndarray | None = None,
    region: np.ndarray | None = None,
    lines: Sequence[str] = (),
    error_lines: bool = False,
    pred_color: Color = PRED_COLOR,
) -> np.ndarray:
    """One square cell: ``box`` of ``image`` at ``size`` px with landmarks and text drawn.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        box: square ``[x0, y0, x1, y1]`` of the image shown, pixels.
        size: side of the cell in pixels.
        pred: ``(68, 2+)`` predicted points (image pixels), drawn with contours; ``None``: the
            cell says "no prediction".
        gt: ``(68, 2+)`` ground truth (image pixels), drawn as dots under the prediction.
        region: a box (image pixels) outlined in white (the error region).
        lines: text lines written top-left.
        error_lines: join every predicted point to its ground truth (for enlarged cells).
        pred_color: RGB colour of the prediction.

    Returns:
        ``(size, size, 3)`` uint8 RGB.
    """
    cell, affine = crop_square(image, box, size)
    if gt is not None:
        cell = draw_landmarks(
            cell, _apply(affine, _points(gt, "ground truth")), GT_COLOR, lines=False
        )
    if pred is not None:
        p = _apply(affine, _points(pred, "prediction"))
        if error_lines and gt is not None:
            g = _apply(affine, _points(gt, "ground truth"))
            ends = np.round(np.stack([p, g], axis=1) * 16).astype(int)  # 4 bits sub-pixel
            for (ax, ay), (bx, by) in ends:
                cv2.line(
                    cell, (int(ax), int(ay)), (int(bx), int(by)), ERROR_COLOR, 1, cv2.LINE_AA, 4
                )
        cell = draw_landmarks(cell, p, pred_color)
    if region is not None:
        r = np.asarray(region, np.float64).reshape(2, 2)
        cell = draw_box(cell, _apply(affine, r).reshape(4), BOX_COLOR)
    scale = text_scale(size)
    step = int(32 * scale) + 4
    texts = list(lines) if pred is not None else [*lines, "no prediction"]
    for i, text in enumerate(texts):
        put_text(cell, text, (4, step * (i + 1)), scale)
    return cell


def blank_cell(size: int, lines: Sequence[str] = ()) -> np.ndarray:
    """A :data:`BACKGROUND` cell with text lines (a model that gave nothing for an image)."""
    cell = np.empty((size, size, 3), np.uint8)
    cell[:] = BACKGROUND
    scale = text_scale(size)
    for i, text in enumerate(lines):
        put_text(cell, text, (4, (int(32 * scale) + 4) * (i + 1)), scale)
    return cell


def tile_cells(
    rows: Sequence[Sequence[np.ndarray]],
    header: Sequence[str] = (),
    gap: int = 4,
    group_gaps: Sequence[int] = (),
) -> np.ndarray:
    """Paste equal square cells into a grid under an optional header of column labels.

    Args:
        rows: ``R`` rows of ``C`` cells, each ``(S, S, 3)`` uint8.
        header: ``C`` column labels (empty: no header).
        gap: pixels between cells.
        group_gaps: row indices after which an extra ``2·gap`` of space separates groups.

    Returns:
        ``(H, W, 3)`` uint8 RGB figure.
    """
    if not rows or not rows[0]:
        raise BadInputError("figure", "no cells to draw")
    size = rows[0][0].shape[0]
    n_cols = len(rows[0])
    if any(len(r) != n_cols for r in rows) or any(
        c.shape != (size, size, 3) for r in rows for c in r
    ):
        raise BadInputError("figure", "every row needs the same number of equal square cells")
    if header and len(header) != n_cols:
        raise BadInputError("figure", f"{len(header)} labels for {n_cols} columns")
    head_h = int(48 * text_scale(size)) + 8 if header else 0
    extra = [2 * gap if i in set(group_gaps) else 0 for i in range(len(rows))]
    height = head_h + len(rows) * (size + gap) + sum(extra) + gap
    width = n_cols * (size + gap) + gap
    fig = np.full((height, width, 3), 255, np.uint8)
    scale = text_scale(size) * 1.2
    for c, label in enumerate(header):
        (tw, _), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
        x = gap + c * (size + gap) + max(0, (size - tw) // 2)
        cv2.putText(
            fig, label, (x, head_h - 8), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 2, cv2.LINE_AA
        )
    y = head_h + gap
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            x = gap + c * (size + gap)
            fig[y : y + size, x : x + size] = cell
        y += size + gap + extra[r]
    return fig


@dataclass
class CompareRow:
    """One image of a comparison figure.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB.
        predictions: one entry per model: ``(68, 2+)`` points in image pixels, or ``None`` when
            the model gave nothing for this image.
        gt: ``(68, 2+)`` ground truth in image pixels, or ``None``.
        name: shown in the first cell.
    """

    image: np.ndarray
    predictions: Sequence[np.ndarray | None]
    gt: np.ndarray | None = None
    name: str = ""


@dataclass
class RowLayout:
    """What :func:`comparison_figure` chose for one row: the face square, the error region and
    each model's NME in % (``None`` without ground truth or prediction)."""

    face: np.ndarray
    region: np.ndarray
    nme: list[float | None]


def layout_row(row: CompareRow) -> RowLayout:
    """The face square, error region and NMEs of one row (see :func:`comparison_figure`)."""
    given = [p for p in row.predictions if p is not None]
    if not given and row.gt is None:
        raise BadInputError(row.name or "row", "no prediction and no ground truth to show")
    reference = [row.gt] if row.gt is not None else given
    face = face_square(reference)
    region = error_region(given, row.gt) if given else face_square(reference, margin=-0.3)
    nmes = [
        None if (p is None or row.gt is None) else nme_percent(p, row.gt) for p in row.predictions
    ]
    return RowLayout(face=face, region=region, nme=nmes)


def comparison_figure(
    rows: Sequence[CompareRow], labels: Sequence[str], size: int = 256
) -> tuple[np.ndarray, list[RowLayout]]:
    """The paper-style comparison grid.

    One column per model (``labels``); per image two rows of cells: the face with the ground
    truth (green dots, when known) and the model's points (red), the error region outlined in
    white and the NME printed; under it the error region enlarged, with yellow lines from
    each predicted point to its ground truth.

    Args:
        rows: the images, each with one prediction (or ``None``) per label.
        labels: model labels, the column headers.
        size: side of each cell in pixels.

    Returns:
        The ``(H, W, 3)`` uint8 RGB figure and each row's :class:`RowLayout`.
    """
    if not rows:
        raise BadInputError("figure", "no images to compare")
    if not labels:
        raise BadInputError("figure", "no models to compare")
    cells: list[list[np.ndarray]] = []
    layouts: list[RowLayout] = []
    for row in rows:
        if len(row.predictions) != len(labels):
            raise BadInputError(
                row.name or "row", f"{len(row.predictions)} predictions for {len(labels)} models"
            )
        lay = layout_row(row)
        layouts.append(lay)
        faces, zooms = [], []
        for i, pred in enumerate(row.predictions):
            text = [row.name] if (i == 0 and row.name) else []
            if lay.nme[i] is not None:
                text.append(f"NME {lay.nme[i]:.2f}%")
            faces.append(draw_cell(row.image, lay.face, size, pred, row.gt, lay.region, text))
            zooms.append(draw_cell(row.image, lay.region, size, pred, row.gt, error_lines=True))
        cells += [faces, zooms]
    figure = tile_cells(cells, labels, group_gaps=list(range(1, len(cells), 2)))
    return figure, layouts
