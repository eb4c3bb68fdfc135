"""Tests of the multi-scale, tiled BlazeFace (``mvface.detection.multiscale``) and of the
duplicate rule it merges with (``mvface.detection.merge``)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from _shared import SHARED, requires_shared
from mvface.data.image import load_image
from mvface.data.readers.pts import read_pts
from mvface.data.record import landmark_box
from mvface.detection import create_face_detector
from mvface.detection.blazeface_net import DEFAULT_WEIGHTS_PATHS
from mvface.detection.merge import box_intersection_over_smaller, group_duplicates
from mvface.detection.multiscale import (
    MultiScaleBlazeFace,
    MultiScaleConfig,
    _unrotated,
    tile_grid,
    tile_levels,
)

SAMPLES = SHARED / "data" / "samples"
needs_weights = pytest.mark.skipif(
    not all(p.is_file() for p in DEFAULT_WEIGHTS_PATHS.values()), reason="BlazeFace weights absent"
)


@pytest.fixture(autouse=True)
def _one_thread() -> object:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def duplicates(boxes: np.ndarray) -> int:
    """Boxes beyond the first of each face, by the merge's own rule."""
    return len(boxes) - len(group_duplicates(boxes, np.ones(len(boxes))))


def best_iou(reference: np.ndarray, boxes: np.ndarray) -> float:
    if len(boxes) == 0:
        return 0.0
    return float(box_intersection_over_smaller(reference[None], boxes)[1].max())


class TestGroupDuplicates:
    def test_box_inside_a_box_is_one_face(self) -> None:
        # IoU 0.25: plain NMS at 0.3 keeps both; the containment rule merges them.
        boxes = np.array([[0.0, 0.0, 100.0, 100.0], [10.0, 10.0, 60.0, 60.0]])
        groups = group_duplicates(boxes, np.array([0.6, 0.9]))
        assert [g.tolist() for g in groups] == [[1, 0]]

    def test_small_faces_inside_a_large_box_stay(self) -> None:
        # Two 20 px faces inside a 100 px box: area ratio 0.04 < 0.15, not duplicates.
        boxes = np.array([[0.0, 0.0, 100.0, 100.0], [10, 10, 30, 30], [60, 10, 80, 30]], float)
        assert len(group_duplicates(boxes, np.array([0.9, 0.8, 0.7]))) == 3

    def test_overlap(self) -> None:
        boxes = np.array([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [20, 20, 30, 30]], float)
        groups = group_duplicates(boxes, np.array([0.5, 0.9, 0.7]))
        assert [g.tolist() for g in groups] == [[1, 0], [2]]

    def test_empty(self) -> None:
        assert group_duplicates(np.zeros((0, 4)), np.zeros(0)) == []


class TestTiles:
    def test_no_tiles_for_small_images(self) -> None:
        assert tile_levels(450, 450, MultiScaleConfig()) == []

    def test_levels_shrink_to_min_face(self) -> None:
        cfg = MultiScaleConfig()
        levels = tile_levels(2000, 1500, cfg)
        assert 1 <= len(levels) <= cfg.max_levels
        sides = [side for side, _ in levels]
        assert sides == sorted(sides, reverse=True)
        assert cfg.short_reach * sides[-1] <= cfg.min_face or len(levels) == cfg.max_levels

    @pytest.mark.parametrize(("width", "height", "tile", "overlap"), [(1000, 700, 300, 60.0)])
    def test_grid_covers_with_overlap(
        self, width: int, height: int, tile: int, overlap: float
    ) -> None:
        grid = tile_grid(width, height, tile, overlap)
        covered = np.zeros((height, width), bool)
        for x0, y0, x1, y1 in grid:
            assert x1 - x0 == tile and y1 - y0 == tile
            covered[y0:y1, x0:x1] = True
        assert covered.all()
        xs = np.unique(grid[:, 0])
        assert np.all(xs[:-1] + tile - xs[1:] >= overlap)  # neighbours overlap enough

    def test_unrotated_round_trip(self) -> None:
        image = np.zeros((30, 50, 3), np.uint8)
        box = np.array([[5.0, 8.0, 12.0, 20.0]])  # x0, y0, x1, y1 in the original
        image[8:21, 5:13] = 255
        for turns in (1, 2, 3):
            rotated = np.rot90(image, turns)
            ys, xs = np.nonzero(rotated[..., 0])
            found = np.array([[xs.min(), ys.min(), xs.max(), ys.max()]], float)
            back, _ = _unrotated(found, np.zeros((1, 1, 2)), turns, image.shape)
            np.testing.assert_allclose(back, box)


def _paste_face(
    canvas: np.ndarray, face: np.ndarray, box: np.ndarray, width: float, x: int, y: int
):
    """Paste ``face`` (its canonical ``box``) scaled so the box is ``width`` px wide, its crop's
    top-left at (x, y); returns the face's canonical box in the canvas."""
    k = width / (box[2] - box[0])
    side = 2.0 * max(box[2] - box[0], box[3] - box[1])
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    x0, y0 = int(max(cx - side / 2, 0)), int(max(cy - side / 2, 0))
    crop = face[y0 : int(cy + side / 2), x0 : int(cx + side / 2)]
    small = cv2.resize(crop, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
    h, w = small.shape[:2]
    canvas[y : y + h, x : x + w] = small
    return (box - np.array([x0, y0, x0, y0])) * k + np.array([x, y, x, y])


@needs_weights
@requires_shared("data/samples/breakingbad.jpg")
def test_tiles_find_a_small_face_the_single_pass_misses() -> None:
    face = load_image(SAMPLES / "breakingbad.jpg")
    box = landmark_box(read_pts(SAMPLES / "breakingbad.pts") - 1.0)
    rng = np.random.default_rng(0)
    canvas = rng.integers(90, 150, (800, 1000, 3)).astype(np.uint8)
    canvas = cv2.GaussianBlur(canvas, (0, 0), 3)
    large = _paste_face(canvas, face, box, 220.0, 60, 120)
    small = _paste_face(canvas, face, box, 56.0, 760, 560)
    single = create_face_detector("blazeface-single-scale").detect(canvas)
    multi = MultiScaleBlazeFace().detect(canvas)
    assert best_iou(large, single.boxes) >= 0.5
    assert best_iou(small, single.boxes) < 0.5  # too small for one whole-image pass
    assert best_iou(large, multi.boxes) >= 0.5
    assert best_iou(small, multi.boxes) >= 0.5
    assert duplicates(multi.boxes) == 0
    assert multi.keypoints.shape == (len(multi.boxes), 6, 2)
    assert np.all(np.diff(multi.scores) <= 0)


@needs_weights
@requires_shared("data/samples/dlib_examples/2008_007676.jpg")
def test_no_face_twice_on_a_shared_photo() -> None:
    # The single-scale pair returns one face of this photo twice, a box inside a box.
    image = load_image(SAMPLES / "dlib_examples" / "2008_007676.jpg")
    assert duplicates(create_face_detector("blazeface-single-scale").detect(image).boxes) == 1
    found = create_face_detector("blazeface").detect(image)
    assert duplicates(found.boxes) == 0
    assert len(found.boxes) >= 6


@needs_weights
def test_blank_and_bad_images() -> None:
    from mvface.errors import BadInputError

    detector = MultiScaleBlazeFace()
    found = detector.detect(np.zeros((600, 900, 3), np.uint8))
    assert found.boxes.shape == (0, 4) and found.keypoints.shape == (0, 6, 2)
    with pytest.raises(BadInputError):
        detector.detect(np.zeros((10, 10), np.uint8))
