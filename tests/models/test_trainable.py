import numpy as np
import pytest
import torch
from torch import nn

from mvface.errors import NotAvailableError
from mvface.models.base import ModelConfig
from mvface.models.boxes import BoxTransform
from mvface.models.trainable import (
    TorchLandmarkModel,
    apply_affine,
    crop_matrices,
    invert_affine,
    warp_crops,
)


class TestCropMatrices:
    def test_box_centre_and_edges(self) -> None:
        m = crop_matrices(np.array([[10.0, 20.0, 50.0, 60.0]]), 8)
        pts = np.array([[[30.0, 40.0], [10.0, 20.0], [50.0, 60.0]]])
        np.testing.assert_allclose(apply_affine(m, pts)[0], [[3.5, 3.5], [-0.5, -0.5], [7.5, 7.5]])

    def test_rotation_levels_a_tilted_segment(self) -> None:
        # a segment tilted by +30 degrees (counter-clockwise on screen: y goes up)
        angle = np.deg2rad(30)
        a, b = np.array([0.0, 0.0]), np.array([np.cos(angle), -np.sin(angle)]) * 10
        m = crop_matrices(np.array([[-20.0, -20.0, 20.0, 20.0]]), 40, np.array([angle]))
        ua, ub = apply_affine(m, np.stack([a, b])[None])[0]
        assert ub[1] == pytest.approx(ua[1])  # level in the crop
        assert ub[0] - ua[0] == pytest.approx(10.0)

    def test_inverse_round_trip(self) -> None:
        rng = np.random.default_rng(0)
        m = crop_matrices(np.array([[5.0, 7.0, 60.0, 55.0]] * 3), 32, rng.normal(size=3))
        pts = rng.uniform(0, 60, (3, 10, 2))
        np.testing.assert_allclose(apply_affine(invert_affine(m), apply_affine(m, pts)), pts)

    def test_warp_matches_matrix(self) -> None:
        image = np.zeros((50, 50, 3), np.uint8)
        image[30, 20] = 255  # one bright pixel at x=20, y=30
        box = np.array([[9.5, 19.5, 29.5, 39.5]])  # edges on pixel edges: scale 1, no blur
        m = crop_matrices(box, 20)
        crop = warp_crops([image], m, 20)[0]
        u, v = apply_affine(m, np.array([[[20.0, 30.0]]]))[0, 0]
        assert (u, v) == (10.0, 10.0)
        assert crop[10, 10].max() == 255


class _FixedPoints(TorchLandmarkModel):
    """Predicts the same crop-pixel points for every input (times a trainable scale of 1)."""

    def __init__(self) -> None:
        self.config = ModelConfig(name="fixed", input_size=16, crop=BoxTransform(square="max"))
        self.net = nn.Linear(1, 1, bias=False)
        nn.init.ones_(self.net.weight)
        grid = torch.meshgrid(torch.arange(4.0), torch.arange(17.0), indexing="ij")
        self.points = torch.stack(grid, -1).reshape(-1, 2)[:68]

    def forward_points(self, x: torch.Tensor) -> torch.Tensor:
        return (self.net.weight * self.points).expand(x.shape[0], 68, 2)


def test_predict_maps_crop_points_back_to_image() -> None:
    model = _FixedPoints()
    image = np.zeros((100, 100, 3), np.uint8)
    boxes = np.array([[10.0, 10.0, 42.0, 42.0], [-0.5, -0.5, 15.5, 15.5]])
    out = model.predict(image, boxes).points
    crop_pts = model.points.numpy()
    # box 2 is the crop itself (edges on pixel edges, scale 1); box 1 is twice as large
    np.testing.assert_allclose(out[1], crop_pts, atol=1e-9)
    np.testing.assert_allclose(out[0], (crop_pts + 0.5) * 2 + 10, atol=1e-9)


class TestRequireTrained:
    """A network without trained weights refuses to predict: its points would mean nothing."""

    def test_untrained_refuses_with_one_line(self) -> None:
        model = _FixedPoints()
        model.trained = False
        image, boxes = np.zeros((32, 32, 3), np.uint8), np.array([[0.0, 0.0, 16.0, 16.0]])
        for call in (model.predict, model.predict_crops):
            with pytest.raises(NotAvailableError, match="'fixed' has no trained weights") as info:
                call(image, boxes)
            assert "\n" not in str(info.value) and "--weights" in str(info.value)
        with pytest.raises(NotAvailableError, match="cannot be exported"):
            model.require_trained("be exported")

    def test_allowed_on_purpose_and_trained_by_default(self) -> None:
        model = _FixedPoints()
        assert model.trained and not model.allow_untrained  # families that always load weights
        model.trained, model.allow_untrained = False, True  # e.g. validation during training
        image, boxes = np.zeros((32, 32, 3), np.uint8), np.array([[0.0, 0.0, 16.0, 16.0]])
        assert model.predict(image, boxes).points.shape == (1, 68, 2)
