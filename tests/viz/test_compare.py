import numpy as np
import pytest

from mvface.data.record import landmark_box
from mvface.errors import BadInputError
from mvface.viz.compare import (
    CompareRow,
    comparison_figure,
    crop_square,
    draw_cell,
    error_region,
    face_square,
    nme_percent,
    point_disagreement,
    tile_cells,
)

MOUTH = list(range(48, 68))
RIGHT_EYE = list(range(36, 42))


def face_points(cx: float = 100.0, cy: float = 100.0, s: float = 60.0) -> np.ndarray:
    """A hand-made frontal 68-point layout (jaw, brows, nose, eyes, lips) in pixels."""
    t = np.linspace(0, np.pi, 17)
    jaw = np.c_[cx - s * np.cos(t), cy + 0.9 * s * np.sin(t)]
    brow_r = np.c_[np.linspace(cx - 0.75 * s, cx - 0.15 * s, 5), np.full(5, cy - 0.45 * s)]
    brow_l = np.c_[np.linspace(cx + 0.15 * s, cx + 0.75 * s, 5), np.full(5, cy - 0.45 * s)]
    bridge = np.c_[np.full(4, cx), np.linspace(cy - 0.3 * s, cy + 0.1 * s, 4)]
    base = np.c_[np.linspace(cx - 0.2 * s, cx + 0.2 * s, 5), np.full(5, cy + 0.2 * s)]

    def ring(x: float, y: float, rx: float, ry: float, n: int) -> np.ndarray:
        a = np.linspace(np.pi, -np.pi, n, endpoint=False)
        return np.c_[x + rx * np.cos(a), y + ry * np.sin(a)]

    eye_r = ring(cx - 0.45 * s, cy - 0.25 * s, 0.15 * s, 0.06 * s, 6)
    eye_l = ring(cx + 0.45 * s, cy - 0.25 * s, 0.15 * s, 0.06 * s, 6)
    outer = ring(cx, cy + 0.5 * s, 0.35 * s, 0.12 * s, 12)
    inner = ring(cx, cy + 0.5 * s, 0.25 * s, 0.05 * s, 8)
    return np.concatenate([jaw, brow_r, brow_l, bridge, base, eye_r, eye_l, outer, inner])


def contains(box: np.ndarray, points: np.ndarray) -> bool:
    p = np.asarray(points)[:, :2]
    return bool(np.all((p >= box[:2]) & (p <= box[2:])))


class TestNmePercent:
    def test_known_value(self) -> None:
        gt = face_points()
        box = landmark_box(gt)
        norm = np.sqrt((box[2] - box[0]) * (box[3] - box[1]))
        pred = gt + np.array([3.0, 4.0]) * norm / 100  # every point 5 % of sqrt(w*h) away
        assert nme_percent(pred, gt) == pytest.approx(5.0)

    def test_rejects_nan(self) -> None:
        pred = face_points()
        pred[3] = np.nan
        with pytest.raises(BadInputError, match="NaN"):
            nme_percent(pred, face_points())


class TestPointDisagreement:
    def test_against_ground_truth_is_mean_over_models(self) -> None:
        gt = face_points()
        a, b = gt.copy(), gt.copy()
        b[MOUTH] += [6.0, 8.0]  # 10 px
        d = point_disagreement([a, b], gt)
        assert d[MOUTH] == pytest.approx(5.0)
        assert np.all(d[:48] == 0)

    def test_without_ground_truth_uses_the_median(self) -> None:
        gt = face_points()
        c = gt.copy()
        c[RIGHT_EYE] += [0.0, 9.0]
        d = point_disagreement([gt, gt.copy(), c])
        assert d[RIGHT_EYE] == pytest.approx(3.0)
        assert np.all(np.delete(d, RIGHT_EYE) == 0)


class TestErrorRegion:
    def test_boxes_the_mouth_when_one_model_misses_it(self) -> None:
        gt = face_points()
        good, bad = gt + 0.5, gt.copy()
        bad[MOUTH] += [12.0, 0.0]
        region = error_region([good, bad], gt)
        assert region[2] - region[0] == pytest.approx(region[3] - region[1])  # square
        centre = (region[:2] + region[2:]) / 2
        assert np.linalg.norm(centre - gt[MOUTH].mean(0)) < 5.0
        assert contains(region, gt[[48, 54, 51, 57]])  # corners and middle of the lips
        assert not contains(region, gt[RIGHT_EYE])

    def test_boxes_where_models_disagree_without_ground_truth(self) -> None:
        gt = face_points()
        off = gt.copy()
        off[RIGHT_EYE] += [0.0, -7.0]
        region = error_region([gt, gt + 0.2, off])
        assert contains(region, gt[RIGHT_EYE])
        assert not contains(region, gt[MOUTH])

    def test_jaw_error_on_one_side(self) -> None:
        gt = face_points()
        bad = gt.copy()
        bad[0:4] -= [15.0, 0.0]  # the jaw's start (image left) pulled outwards
        region = error_region([bad], gt)
        assert contains(region, gt[0:3])
        assert not contains(region, gt[14:17])

    def test_single_model_without_ground_truth_is_centred_on_the_face(self) -> None:
        pts = face_points()
        region = error_region([pts])
        box = landmark_box(pts)
        assert np.allclose((region[:2] + region[2:]) / 2, (box[:2] + box[2:]) / 2)

    def test_side_follows_fraction(self) -> None:
        gt = face_points(s=50)
        box = landmark_box(gt)
        region = error_region([gt + 1], gt, fraction=0.5)
        assert region[2] - region[0] == pytest.approx(0.5 * max(box[2] - box[0], box[3] - box[1]))

    def test_bad_inputs(self) -> None:
        with pytest.raises(BadInputError):
            error_region([], face_points())
        with pytest.raises(BadInputError, match="68"):
            error_region([np.zeros((5, 2))])
        with pytest.raises(BadInputError, match="fraction"):
            error_region([face_points()], fraction=0.0)


def test_face_square_holds_every_point_set() -> None:
    a, b = face_points(), face_points(cx=130)
    square = face_square([a, b])
    assert square[2] - square[0] == pytest.approx(square[3] - square[1])
    assert contains(square, a) and contains(square, b)


def test_crop_square_maps_the_box_onto_the_cell() -> None:
    image = np.zeros((100, 100, 3), np.uint8)
    image[40:60, 40:60] = 255
    cell, affine = crop_square(image, np.array([30.0, 30.0, 70.0, 70.0]), 80)
    assert cell.shape == (80, 80, 3)
    assert np.allclose(affine @ [50.0, 50.0, 1.0], [40.0, 40.0])
    assert cell[40, 40].min() > 200 and cell[5, 5].max() < 100
    outside, _ = crop_square(image, np.array([-50.0, -50.0, -10.0, -10.0]), 16)
    assert np.all(outside == outside[0, 0])  # padding only


def test_draw_cell_marks_prediction_and_region() -> None:
    image = np.full((200, 200, 3), 90, np.uint8)
    gt = face_points()
    cell = draw_cell(image, face_square([gt]), 128, gt + 2, gt, region=error_region([gt + 2], gt))
    assert cell.shape == (128, 128, 3)
    assert (cell.min(axis=-1) > 230).any()  # the white region box
    assert (cell[..., 0] > 200).any() and (cell[..., 1] > 200).any()  # red and green marks
    assert image.max() == 90  # input untouched


class TestComparisonFigure:
    def test_layout_and_nmes(self) -> None:
        image = np.full((200, 200, 3), 120, np.uint8)
        gt = face_points()
        rows = [
            CompareRow(image, [gt + 1.0, None, gt + np.array([0.0, 5.0])], gt, "a"),
            CompareRow(image, [gt, gt + 2.0, gt], None, "b"),
        ]
        figure, layouts = comparison_figure(rows, ["m1", "m2", "m3"], size=96)
        assert figure.dtype == np.uint8 and figure.shape[2] == 3
        assert figure.shape[1] == 3 * 96 + 4 * 4  # 3 columns and 4 gaps
        assert figure.shape[0] > 4 * 96  # a header and two rows per image
        assert layouts[0].nme[1] is None and layouts[1].nme == [None, None, None]
        assert layouts[0].nme[0] == pytest.approx(nme_percent(gt + 1.0, gt))
        assert layouts[0].nme[2] > layouts[0].nme[0]

    def test_wrong_number_of_predictions(self) -> None:
        image = np.zeros((50, 50, 3), np.uint8)
        row = CompareRow(image, [face_points(25, 25, 10)], None, "x")
        with pytest.raises(BadInputError, match="2 models"):
            comparison_figure([row], ["a", "b"])

    def test_nothing_to_show(self) -> None:
        with pytest.raises(BadInputError):
            comparison_figure([], ["a"])
        row = CompareRow(np.zeros((50, 50, 3), np.uint8), [None], None, "x")
        with pytest.raises(BadInputError, match="no prediction"):
            comparison_figure([row], ["a"])


def test_tile_cells_checks_its_grid() -> None:
    cell = np.zeros((32, 32, 3), np.uint8)
    out = tile_cells([[cell, cell], [cell, cell]], ["a", "b"], gap=2)
    assert out.shape[1] == 2 * 32 + 3 * 2
    with pytest.raises(BadInputError):
        tile_cells([[cell, cell], [cell]])
    with pytest.raises(BadInputError, match="labels"):
        tile_cells([[cell]], ["a", "b"])
