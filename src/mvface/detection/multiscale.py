"""BlazeFace over several scales and tiles: finds small faces in large images, each face once.

One BlazeFace pass sees the whole image letterboxed into 128 px (short range) or 192 px (full
range), so a 34 px face in a 500 px photo shrinks to 13 px and is missed. Measured on 40 HELEN
faces pasted at known sizes onto a grey canvas: both models find >= 95 % of faces 20 input
pixels wide or more (canonical box width), so a pass over a square of side ``S`` image pixels
finds faces down to ``0.16 S`` (short, 128 px input) or ``0.105 S`` (full, 192 px).

:class:`MultiScaleBlazeFace` (registered as ``"blazeface"``, the default) runs:

1. the short-range model on the whole image, and on its mirror image (the two boxes of a face are
   averaged; mirroring rescues profile faces the model scores below threshold one way round);
2. the full-range model on the whole image (smaller faces);
3. when the image's long side is at least :attr:`MultiScaleConfig.tile_trigger` pixels, levels of
   overlapping square tiles through the short-range model (all tiles of a level in one batch):
   each level halves the smallest face found, until it is below ``min_face``. The overlap is the
   largest face the coarser passes may miss, so such a face lies whole inside some tile;
   detections cut by an inner tile edge are dropped, and a tile mostly covered by faces found
   confidently already is skipped;
4. the short-range model on the image turned by a quarter turn (or half) when a face found is
   rolled by more than 45 degrees (from its eye keypoints), so its box comes from an upright
   face; if nothing was found at all, turned by 90 degrees both ways.

All candidates go through one non-maximum suppression (:func:`~mvface.detection.merge.
group_duplicates`: overlap *or* containment). A face's box comes from the short-range model when
it saw the face (its boxes fit the 68-point box better: mean IoU 0.83 against 0.71 for the
full-range model on 855 AFLW2000-3D faces both found), from the coarsest such pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from mvface.detection.blazeface import BlazeFaceDetections, BlazeFaceDetector
from mvface.detection.blazeface_decode import KEYPOINT_NAMES
from mvface.detection.core import FaceDetector, register_face_detector
from mvface.detection.merge import box_intersection_over_smaller, group_duplicates
from mvface.errors import BadInputError
from mvface.models.boxes import IDENTITY, BoxTransform

__all__ = ["MultiScaleBlazeFace", "MultiScaleConfig", "tile_grid", "tile_levels"]

#: Keypoint order of a mirrored image's detection (left and right swap).
_MIRRORED = tuple(
    KEYPOINT_NAMES.index(n.replace("right", "@").replace("left", "right").replace("@", "left"))
    for n in KEYPOINT_NAMES
)

#: Pass priorities: which pass's box stands for a face (lowest first): the short-range model on
#: the image turned so a rolled face is upright (the box calibration assumes upright faces), on
#: the image and its tiles (coarsest pass first), then the full-range model, then boxes below
#: their pass's reliable range.
_UPRIGHT, _SHORT, _FULL, _OUT_OF_RANGE = -1, 0, 50, 100

#: A face's box comes from candidates scored at least this fraction of its best score.
_REPRESENTATIVE_SCORE = 0.8


@dataclass(frozen=True)
class MultiScaleConfig:
    """How :class:`MultiScaleBlazeFace` looks for faces.

    Attributes:
        min_face: smallest face to look for, canonical box width in pixels.
        tile_trigger: tiles only when the image's long side is at least this, pixels
            (2.5 x the full-range input: below it the whole-image passes reach ~50 px faces).
        max_levels: most tile levels (each has ~4x the tiles of the one before).
        min_tile: smallest tile side, pixels (the short-range input: no upsampling).
        short_reach, full_reach: smallest face each model finds reliably, as a fraction of the
            side of the square it sees (20 / 128 and 20 / 192 input pixels, measured).
        confident: score above which a face counts as found for skipping tiles.
        skip_covered: a tile is skipped when confident faces cover this fraction of it.
        mirror: also run the short-range model on the mirror image.
        rotate_when_empty: try the image turned by +-90 degrees when nothing was found.
        upright_rolled: when a face's eyes say it is rolled by more than 45 degrees, run the
            short-range model again on the image turned by the nearest quarter turn (the box
            calibration holds for upright faces: for a face on its side the box is off).
        confident_roll: score from which a detection's roll is trusted.
        iou_threshold, containment_threshold, min_area_ratio: duplicate rule
            (:func:`~mvface.detection.merge.group_duplicates`).
        min_score_short, min_score_full: score thresholds of the whole-image passes (MediaPipe's
            are 0.5 and 0.6; 0.45 for the short range keeps profile faces scored 0.45-0.5, at the
            price of one false face in ``dogs.jpg``, scored 0.46).
        min_score_tiles: score threshold in tiles (higher: many more windows, so more chances
            of a false face; faces in tiles of ``2007_007763.jpg`` score 0.68-0.98, fur in
            ``dogs.jpg`` up to 0.73).
    """

    min_face: float = 40.0
    tile_trigger: float = 480.0
    max_levels: int = 3
    min_tile: int = 128
    short_reach: float = 0.13
    full_reach: float = 0.105
    confident: float = 0.75
    skip_covered: float = 0.5
    mirror: bool = True
    rotate_when_empty: bool = True
    upright_rolled: bool = True
    confident_roll: float = 0.6
    iou_threshold: float = 0.3
    containment_threshold: float = 0.6
    min_area_ratio: float = 0.15
    min_score_short: float = 0.45
    min_score_full: float = 0.6
    min_score_tiles: float = 0.7


def tile_levels(width: int, height: int, config: MultiScaleConfig) -> list[tuple[int, float]]:
    """Tile levels for an image: ``(tile side, overlap)`` in pixels, coarsest first.

    Level ``l`` puts ``2 ** l`` tiles along the long side; its overlap is the smallest face the
    coarser passes find reliably (a face they may miss fits whole in one tile).
    """
    long_side = max(width, height)
    if long_side < config.tile_trigger:
        return []
    finest = config.full_reach * long_side
    levels: list[tuple[int, float]] = []
    per_side = 2
    while finest > config.min_face and len(levels) < config.max_levels:
        tile = (long_side + (per_side - 1) * finest) / per_side
        if tile < config.min_tile:
            break
        levels.append((math.ceil(tile), finest))
        finest = config.short_reach * tile
        per_side *= 2
    return levels


def tile_grid(width: int, height: int, tile: int, overlap: float) -> np.ndarray:
    """Square tiles covering a ``width`` x ``height`` image, neighbours overlapping by at least
    ``overlap`` pixels; ``(K, 4)`` int ``[x0, y0, x1, y1]`` (x1, y1 exclusive)."""

    def starts(size: int) -> np.ndarray:
        if size <= tile:
            return np.zeros(1, int)
        count = math.ceil((size - overlap) / (tile - overlap))
        return np.round(np.linspace(0, size - tile, count)).astype(int)

    xs, ys = starts(width), starts(height)
    return np.array(
        [[x, y, min(x + tile, width), min(y + tile, height)] for y in ys for x in xs], int
    ).reshape(-1, 4)


@dataclass
class _Candidates:
    """Canonical boxes ``(N, 4)``, scores ``(N,)``, keypoints ``(N, 6, 2)`` and pass priorities
    ``(N,)`` (image pixels), gathered over passes."""

    boxes: list[np.ndarray] = field(default_factory=list)
    scores: list[np.ndarray] = field(default_factory=list)
    keypoints: list[np.ndarray] = field(default_factory=list)
    priority: list[np.ndarray] = field(default_factory=list)

    def add(
        self,
        found: BlazeFaceDetections,
        to_canonical: BoxTransform,
        priority: int,
        min_width: float = 0.0,
    ) -> None:
        """Add one pass's detections; those narrower than ``min_width`` pixels (below the
        pass's reliable range: their boxes are poor) get the lowest priority."""
        if len(found.boxes):
            boxes = to_canonical(found.boxes)
            self.boxes.append(boxes)
            self.scores.append(found.scores)
            self.keypoints.append(found.keypoints)
            in_range = boxes[:, 2] - boxes[:, 0] >= min_width
            self.priority.append(np.where(in_range, priority, _OUT_OF_RANGE))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if not self.boxes:
            return np.zeros((0, 4)), np.zeros(0), np.zeros((0, 6, 2)), np.zeros(0, int)
        return (
            np.concatenate(self.boxes),
            np.concatenate(self.scores),
            np.concatenate(self.keypoints),
            np.concatenate(self.priority),
        )


def _shifted(found: BlazeFaceDetections, dx: float, dy: float) -> BlazeFaceDetections:
    return BlazeFaceDetections(
        found.boxes + np.array([dx, dy, dx, dy]), found.scores, found.keypoints + np.array([dx, dy])
    )


def _mirrored(found: BlazeFaceDetections, width: int) -> BlazeFaceDetections:
    """Detections of the mirror image, in the original image (0-based pixels)."""
    boxes = found.boxes.copy()
    boxes[:, [0, 2]] = width - 1 - found.boxes[:, [2, 0]]
    points = found.keypoints[:, list(_MIRRORED)].copy()
    points[..., 0] = width - 1 - points[..., 0]
    return BlazeFaceDetections(boxes, found.scores, points)


def _unrotated(
    boxes: np.ndarray, points: np.ndarray, turns: int, shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes ``(N, 4)`` and points ``(N, K, 2)`` of ``np.rot90(image, turns)`` (turns 1, 2, 3)
    back in ``image`` (``shape`` its ``(H, W, ...)``), 0-based pixels."""
    height, width = shape[:2]

    def back(xy: np.ndarray) -> np.ndarray:
        x, y = xy[..., 0], xy[..., 1]
        if turns == 1:
            return np.stack([width - 1 - y, x], axis=-1)
        if turns == 2:
            return np.stack([width - 1 - x, height - 1 - y], axis=-1)
        return np.stack([y, height - 1 - x], axis=-1)

    corners = back(boxes.reshape(-1, 2, 2))
    out = np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1)
    return out, back(points)


class MultiScaleBlazeFace(FaceDetector):
    """BlazeFace short + full range over the whole image, its mirror, and tiles (see module).

    Args:
        config: search settings (default :class:`MultiScaleConfig`).

    Raises:
        NotAvailableError: the BlazeFace weights are absent.
    """

    to_canonical = IDENTITY  # candidates are mapped by their own model's transform

    def __init__(self, config: MultiScaleConfig | None = None) -> None:
        self.config = config or MultiScaleConfig()
        self.name = "blazeface"
        self.short = BlazeFaceDetector("short", min_score=self.config.min_score_short)
        self.full = BlazeFaceDetector("full", min_score=self.config.min_score_full)

    def detect_raw(self, image: np.ndarray) -> BlazeFaceDetections:
        """Canonical boxes (already: see :meth:`detect`), scores and keypoints of every face."""
        return self.detect(image)

    def detect(self, image: np.ndarray) -> BlazeFaceDetections:
        """Every face of an ``(H, W, 3)`` uint8 RGB image once: canonical boxes ``(K, 4)``,
        scores ``(K,)`` (decreasing) and keypoints ``(K, 6, 2)``, 0-based pixels.

        Raises:
            BadInputError: ``image`` is not an ``(H, W, 3)`` uint8 array.
        """
        cfg = self.config
        if not isinstance(image, np.ndarray) or image.ndim != 3:
            raise BadInputError("image", f"expected an (H, W, 3) RGB array, got {np.shape(image)}")
        height, width = image.shape[:2]
        found = _Candidates()
        images = [image, np.ascontiguousarray(image[:, ::-1])] if cfg.mirror else [image]
        whole = self.short.detect_raw_batch(images)
        long_side = max(width, height)
        short_min, full_min = cfg.short_reach * long_side, cfg.full_reach * long_side
        found.add(whole[0], self.short.to_canonical, _SHORT, short_min)
        if cfg.mirror:
            found.add(_mirrored(whole[1], width), self.short.to_canonical, _SHORT, short_min)
        found.add(self.full.detect_raw(image), self.full.to_canonical, _FULL, full_min)
        for level, (tile, overlap) in enumerate(tile_levels(width, height, cfg), start=1):
            self._tiles(image, tile, overlap, level, found)
        turns = self._rolled_turns(found) if cfg.upright_rolled else set()
        if cfg.rotate_when_empty and not found.boxes:
            turns = {1, 3}
        for k in sorted(turns):
            rotated = self.short.detect_raw(np.ascontiguousarray(np.rot90(image, k)))
            if len(rotated.boxes):
                boxes, points = _unrotated(
                    self.short.to_canonical(rotated.boxes), rotated.keypoints, k, image.shape
                )
                found.add(BlazeFaceDetections(boxes, rotated.scores, points), IDENTITY, _UPRIGHT)
        return self._merge(found)

    def _rolled_turns(self, found: _Candidates) -> set[int]:
        """Quarter turns (``np.rot90``'s ``k``) that bring the faces found rolled by more than
        45 degrees upright (roll: angle of the right-eye -> left-eye vector, image y down)."""
        _, scores, points, _ = found.arrays()
        right = KEYPOINT_NAMES.index("right_eye")
        left = KEYPOINT_NAMES.index("left_eye")
        eyes = points[:, left] - points[:, right]
        roll = np.degrees(np.arctan2(eyes[:, 1], eyes[:, 0]))
        rolled = (np.abs(roll) > 45.0) & (scores >= self.config.confident_roll)
        return {int(np.round(r / 90.0)) % 4 for r in roll[rolled]} - {0}

    def _tiles(
        self, image: np.ndarray, tile: int, overlap: float, level: int, found: _Candidates
    ) -> None:
        """Run one tile level through the short-range model, adding its candidates."""
        cfg = self.config
        height, width = image.shape[:2]
        grid = tile_grid(width, height, tile, overlap)
        boxes, scores, _, _ = found.arrays()
        confident = boxes[scores >= cfg.confident]
        if len(confident):
            ios, _ = box_intersection_over_smaller(grid.astype(float), confident)
            tile_area = (grid[:, 2] - grid[:, 0]) * (grid[:, 3] - grid[:, 1])
            box_area = (confident[:, 2] - confident[:, 0]) * (confident[:, 3] - confident[:, 1])
            inter = ios * np.minimum(tile_area[:, None], box_area[None, :])
            grid = grid[inter.sum(axis=1) < cfg.skip_covered * tile_area]
        crops = [image[y0:y1, x0:x1] for x0, y0, x1, y1 in grid]
        for (x0, y0, x1, y1), dets in zip(grid, self.short.detect_raw_batch(crops), strict=True):
            # Drop faces cut by an inner tile edge: a neighbour tile (or a coarser pass) has them.
            b = dets.boxes
            inside = (
                (dets.scores >= cfg.min_score_tiles)
                & ((b[:, 0] >= 0) | (x0 == 0))
                & ((b[:, 1] >= 0) | (y0 == 0))
                & ((b[:, 2] <= x1 - x0 - 1) | (x1 == width))
                & ((b[:, 3] <= y1 - y0 - 1) | (y1 == height))
            )
            kept = BlazeFaceDetections(b[inside], dets.scores[inside], dets.keypoints[inside])
            found.add(
                _shifted(kept, x0, y0),
                self.short.to_canonical,
                _SHORT + level,
                cfg.short_reach * tile,
            )

    def _merge(self, found: _Candidates) -> BlazeFaceDetections:
        """One box per face: the best pass's boxes of the face, averaged by score."""
        cfg = self.config
        boxes, scores, points, priority = found.arrays()
        out_boxes, out_scores, out_points = [], [], []
        for group in group_duplicates(
            boxes, scores, cfg.iou_threshold, cfg.containment_threshold, cfg.min_area_ratio
        ):
            # Candidates for the face's box: those scored near the group's best (a weak box of a
            # coarse pass may straddle two small faces), then the best pass among them.
            group = group[scores[group] >= _REPRESENTATIVE_SCORE * scores[group].max()]
            members = group[priority[group] == priority[group].min()]
            lead = members[np.argmax(scores[members])]
            _, iou = box_intersection_over_smaller(boxes[lead][None], boxes[members])
            members = members[iou[0] > 0.5]
            weights = scores[members] / scores[members].sum()
            out_boxes.append(weights @ boxes[members])
            out_points.append(np.tensordot(weights, points[members], axes=1))
            out_scores.append(scores[group].max())
        merged_boxes = np.asarray(out_boxes, float).reshape(-1, 4)
        merged_scores = np.asarray(out_scores, float).reshape(-1)
        # Averaged boxes move: two faces' final boxes may now overlap by the rule; keep the best.
        keep = [
            g[0]
            for g in group_duplicates(
                merged_boxes,
                merged_scores,
                cfg.iou_threshold,
                cfg.containment_threshold,
                cfg.min_area_ratio,
            )
        ]
        return BlazeFaceDetections(
            boxes=merged_boxes[keep],
            scores=merged_scores[keep],
            keypoints=np.asarray(out_points, float).reshape(-1, len(KEYPOINT_NAMES), 2)[keep],
        )


register_face_detector("blazeface", MultiScaleBlazeFace)
