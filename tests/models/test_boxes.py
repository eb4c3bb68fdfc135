import numpy as np
import pytest

from mvface.models.boxes import BoxTransform, box_iou


class TestBoxTransform:
    def test_identity(self) -> None:
        boxes = np.array([[10.0, 20.0, 50.0, 80.0]])
        np.testing.assert_allclose(BoxTransform()(boxes), boxes)

    def test_closed_form(self) -> None:
        # centre (30, 50), size (40, 60) -> centre (30 + 4, 50 - 6), size (80, 30)
        out = BoxTransform(scale_w=2.0, scale_h=0.5, shift_x=0.1, shift_y=-0.1)(
            np.array([10.0, 20.0, 50.0, 80.0])
        )
        np.testing.assert_allclose(out, [34 - 40, 44 - 15, 34 + 40, 44 + 15])

    def test_square(self) -> None:
        out = BoxTransform(square="mean")(np.array([0.0, 0.0, 4.0, 9.0]))
        assert out[2] - out[0] == pytest.approx(6.0)
        assert out[3] - out[1] == pytest.approx(6.0)
        out = BoxTransform(square="max")(np.array([0.0, 0.0, 4.0, 9.0]))
        np.testing.assert_allclose(out, [-2.5, 0.0, 6.5, 9.0])

    def test_inverse_round_trip(self) -> None:
        rng = np.random.default_rng(0)
        xy = rng.uniform(0, 100, (20, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(5, 50, (20, 2))], axis=1)
        t = BoxTransform(1.3, 0.8, 0.05, -0.2)
        np.testing.assert_allclose(t.inverse()(t(boxes)), boxes, atol=1e-9)

    def test_then_composes(self) -> None:
        boxes = np.array([[3.0, 4.0, 30.0, 50.0]])
        a, b = BoxTransform(1.3, 0.8, 0.05, -0.2), BoxTransform(0.5, 2.0, -0.3, 0.1)
        np.testing.assert_allclose(a.then(b)(boxes), b(a(boxes)), atol=1e-9)

    def test_fit_recovers_transform(self) -> None:
        rng = np.random.default_rng(1)
        xy = rng.uniform(0, 100, (30, 2))
        src = np.concatenate([xy, xy + rng.uniform(5, 50, (30, 2))], axis=1)
        t = BoxTransform(1.1, 1.2, -0.02, 0.1)
        fitted = BoxTransform.fit(src, t(src))
        assert fitted.scale_w == pytest.approx(1.1)
        assert fitted.scale_h == pytest.approx(1.2)
        assert fitted.shift_x == pytest.approx(-0.02)
        assert fitted.shift_y == pytest.approx(0.1)


class TestBoxIou:
    def test_closed_form(self) -> None:
        a = np.array([[0.0, 0.0, 2.0, 2.0]])
        b = np.array([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 2.0, 2.0], [5.0, 5.0, 6.0, 6.0]])
        np.testing.assert_allclose(box_iou(a, b), [[1 / 7, 1.0, 0.0]])
