"""Test-time flip averaging (``LandmarkModel.flip_average``), on a model that reads pixels."""

import numpy as np
import pytest

from mvface.data.scheme import FLIP_PERMUTATION
from mvface.geometry.head_pose import head_pose
from mvface.models import LandmarkModel, Landmarks, ModelConfig, create_model
from mvface.models._registry import _MODELS, register_model
from mvface.models.base import mirror_boxes

PERM = list(FLIP_PERMUTATION)
BIAS = np.array([2.5, -1.0])  # the toy model's error, in pixels


def _symmetric_shape(seed: int = 0) -> np.ndarray:
    """``(68, 2)`` offsets that equal their own mirror image (point k ↔ FLIP_PERMUTATION[k])."""
    t = np.random.default_rng(seed).normal(scale=8.0, size=(68, 2))
    mirrored = t[PERM] * np.array([-1.0, 1.0])
    return (t + mirrored) / 2


SHAPE = _symmetric_shape()


class _BrightSpot(LandmarkModel):
    """Finds the brightest pixel inside the box and puts a fixed face shape there, off by BIAS."""

    def __init__(self) -> None:
        self.config = ModelConfig(name="bright-spot")

    def _predict(self, images, boxes):  # type: ignore[no-untyped-def]
        points, poses = [], []
        for image, box in zip(images, boxes, strict=True):
            x0, y0, x1, y1 = np.rint(box).astype(int)
            patch = image[y0 : y1 + 1, x0 : x1 + 1, 0]
            y, x = np.unravel_index(np.argmax(patch), patch.shape)
            points.append(np.array([x0 + x, y0 + y]) + SHAPE + BIAS)
            poses.append([0.1, 0.3, -0.2])
        return Landmarks(points=np.stack(points), pose=np.array(poses))


@pytest.fixture
def spot_model():  # type: ignore[no-untyped-def]
    register_model("test-bright-spot")(lambda weights=None, **cfg: _BrightSpot())
    yield "test-bright-spot"
    del _MODELS["test-bright-spot"]


def _image(width: int, spot: tuple[int, int]) -> np.ndarray:
    image = np.zeros((50, width, 3), np.uint8)
    image[spot[1], spot[0]] = 255
    return image


class TestMirrorBoxes:
    def test_mirrors_and_round_trips(self) -> None:
        boxes = np.array([[3.0, 4.0, 20.0, 30.0], [0.0, 0.0, 9.0, 9.0]])
        widths = np.array([41.0, 10.0])
        out = mirror_boxes(boxes, widths)
        np.testing.assert_allclose(out, [[20.0, 4.0, 37.0, 30.0], [0.0, 0.0, 9.0, 9.0]])
        np.testing.assert_allclose(mirror_boxes(out, widths), boxes)


class TestFlipAverage:
    def test_off_by_default_and_set_by_create_model(self, spot_model: str) -> None:
        assert create_model(spot_model).flip_average is False
        assert create_model(spot_model, flip_average=True).flip_average is True

    @pytest.mark.parametrize("width", [61, 64])
    def test_left_right_bias_cancels(self, spot_model: str, width: int) -> None:
        images = [_image(width, (17, 21)), _image(width, (40, 30))]
        boxes = np.array([[5.0, 5.0, 35.0, 45.0], [25.0, 10.0, width - 3.0, 45.0]])
        plain = create_model(spot_model).predict(images, boxes)
        spots = np.array([[17.0, 21.0], [40.0, 30.0]])
        np.testing.assert_allclose(plain.points, spots[:, None] + SHAPE + BIAS, atol=1e-9)
        out = create_model(spot_model, flip_average=True).predict(images, boxes)
        # x bias cancels between the two passes; y bias is the same in both
        expected = spots[:, None] + SHAPE + np.array([0.0, BIAS[1]])
        np.testing.assert_allclose(out.points, expected, atol=1e-9)
        # the pose comes from the averaged points (the model's own [0.1, 0.3, -0.2] is replaced)
        assert out.pose is not None
        np.testing.assert_allclose(out.pose, head_pose(out.points), atol=1e-12)

    def test_faces_sharing_one_image(self, spot_model: str) -> None:
        image = _image(64, (12, 20))
        image[30, 50] = 255
        boxes = np.array([[2.0, 10.0, 25.0, 28.0], [40.0, 25.0, 60.0, 40.0]])
        out = create_model(spot_model, flip_average=True).predict(image, boxes)
        spots = np.array([[12.0, 20.0], [50.0, 30.0]])
        expected = spots[:, None] + SHAPE + np.array([0.0, BIAS[1]])
        np.testing.assert_allclose(out.points, expected, atol=1e-9)

    def test_mirrored_labels_keep_their_side(self, spot_model: str) -> None:
        # the subject's right eye corner (36) stays left of the left one (45) in the image
        out = create_model(spot_model, flip_average=True).predict(
            _image(64, (30, 25)), np.array([[10.0, 5.0, 50.0, 45.0]])
        )
        assert out.points[0, 36, 0] - out.points[0, 45, 0] == pytest.approx(
            SHAPE[36, 0] - SHAPE[45, 0]
        )


def test_base_plus_averages_flips() -> None:
    assert create_model("base+").flip_average is True  # the weights ship with mvface
    assert create_model("base+", flip_average=False).flip_average is False
    assert create_model("base").flip_average is False
