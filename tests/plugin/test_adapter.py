"""The plug-in's detector adapter: crops in, image-frame points out, for any trainable family."""

from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import nn

from _shared import SHARED, requires_shared
from mvface.data.record import landmark_box
from mvface.geometry.cameras import eg3d_intrinsics, look_at
from mvface.models import create_model
from mvface.models.base import Landmarks, ModelConfig
from mvface.models.boxes import BoxTransform
from mvface.models.trainable import TorchLandmarkModel, apply_affine
from mvface.plugin.adapter import (
    CropBatch,
    DetectorAdapter,
    crop_to_image,
    flip_crop_matrices,
    jitter_boxes,
)
from mvface.plugin.loss import MultiviewLossConfig, multiview_losses

VIEW = 48


@pytest.fixture(autouse=True)
def _one_thread() -> object:
    """Tiny models run far faster on one intra-op thread on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class TinyRegressor(TorchLandmarkModel):
    """A family registered nowhere and unknown to the plug-in: conv, pool, linear."""

    def __init__(self, size: int = 32) -> None:
        torch.manual_seed(0)
        self.config = ModelConfig(
            name="tiny",
            input_size=size,
            mean=(127.5,) * 3,
            std=(64.0,) * 3,
            crop=BoxTransform(1.4, 1.4, square="max"),
        )
        self.net = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(128, 136),
        )

    def forward_points(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x).view(-1, 68, 2)
        return out * self.config.input_size / 4 + (self.config.input_size - 1) / 2


class NotTrainable:
    config = ModelConfig(name="frozen", input_size=32)

    def predict(self, images: object, boxes: object) -> Landmarks:  # pragma: no cover
        raise NotImplementedError


def _mvnet() -> TorchLandmarkModel:
    model = create_model("mvnet", seed=0, input_size=64, width=0.25, head_channels=8)
    assert isinstance(model, TorchLandmarkModel)
    return model


def _tddfa() -> TorchLandmarkModel:
    model = create_model("3ddfa-v2", weights=str(SHARED / "models" / "3ddfa_v2"))
    assert isinstance(model, TorchLandmarkModel)
    return model


FAMILIES: list[object] = [
    pytest.param(TinyRegressor, id="tiny-test-family"),
    pytest.param(_mvnet, id="mvnet"),
    pytest.param(_tddfa, id="3ddfa-v2", marks=requires_shared("models/3ddfa_v2")),
]


def _multiview_batch(
    identities: int = 2, views: int = 4, seed: int = 0
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Random views of random 3D point sets: images, ``(B, V, 3, 4)`` cameras, pseudo GT."""
    rng = np.random.default_rng(seed)
    images, projections, points = [], [], []
    K = eg3d_intrinsics(VIEW, VIEW, dtype=torch.float64)
    for _ in range(identities):
        X = torch.from_numpy(rng.normal(scale=0.08, size=(68, 3)))
        yaw = torch.from_numpy(np.linspace(-0.7, 0.7, views) + rng.uniform(-0.05, 0.05, views))
        eye = torch.stack([2.7 * yaw.sin(), torch.full_like(yaw, -0.2), 2.7 * yaw.cos()], -1)
        c2w = look_at(eye, torch.zeros(views, 3))
        R = c2w[:, :3, :3].transpose(1, 2)
        t = -(R @ c2w[:, :3, 3:])
        P = K @ torch.cat([R, t], -1)
        h = X @ P[:, :, :3].transpose(1, 2) + P[:, None, :, 3]
        projections.append(P.numpy())
        points.append((h[..., :2] / h[..., 2:]).numpy())
        images += list(rng.integers(0, 255, (views, VIEW, VIEW, 3), dtype=np.uint8))
    return images, np.stack(projections), np.stack(points)


class TestCropGeometry:
    def test_to_image_inverts_the_crop(self) -> None:
        adapter = DetectorAdapter(TinyRegressor())
        rng = np.random.default_rng(0)
        boxes = np.array([[10.0, 12.0, 30.0, 36.0], [5.0, 5.0, 40.0, 25.0]])
        m = adapter.crop_matrices(boxes, jitter=(0.2, 0.1), angles=np.array([0.3, -0.2]), rng=rng)
        batch = adapter.prepare(
            np.zeros((VIEW, VIEW, 3), np.uint8),
            boxes,
            jitter=(0.2, 0.1),
            angles=np.array([0.3, -0.2]),
            rng=np.random.default_rng(0),
        )
        image_pts = rng.uniform(0, VIEW, (2, 68, 2))
        crop_pts = torch.from_numpy(apply_affine(m, image_pts))
        back = crop_to_image(crop_pts, batch.to_image.double())
        np.testing.assert_allclose(back.numpy(), image_pts, atol=1e-3)

    def test_prepare_uses_the_model_crop_policy(self) -> None:
        model = TinyRegressor()
        adapter = DetectorAdapter(model)
        batch = adapter.prepare(np.zeros((VIEW, VIEW, 3), np.uint8), np.array([[10, 10, 30, 30]]))
        assert isinstance(batch, CropBatch) and len(batch) == 1
        assert batch.x.shape == (1, 3, 32, 32) and batch.x.dtype == torch.float32
        # the crop box is 1.4x the canonical box: 28 px -> 32 crop px, centred on (20, 20)
        corners = crop_to_image(torch.tensor([[[-0.5, -0.5], [31.5, 31.5]]]), batch.to_image)
        np.testing.assert_allclose(corners[0].numpy(), [[6.0, 6.0], [34.0, 34.0]], atol=1e-4)
        torch.testing.assert_close(batch.x[0, 0, 0, 0], torch.tensor(-127.5 / 64.0))

    def test_jitter_and_flip(self) -> None:
        boxes = np.array([[0.0, 0.0, 10.0, 20.0]])
        same = jitter_boxes(boxes, 0.0, 0.0, np.random.default_rng(0))
        np.testing.assert_array_equal(same, boxes)
        moved = jitter_boxes(boxes, 0.5, 0.5, np.random.default_rng(0))
        ratio = (moved[0, 2] - moved[0, 0]) / (moved[0, 3] - moved[0, 1])
        assert ratio == pytest.approx(0.5) and not np.allclose(moved, boxes)
        m = np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
        flipped = flip_crop_matrices(m, 8, np.array([True]))
        assert apply_affine(flipped, np.array([[[0.0, 3.0]]]))[0, 0].tolist() == [7.0, 3.0]

    def test_refuses_models_without_a_training_view(self) -> None:
        with pytest.raises(TypeError, match="trainable model"):
            DetectorAdapter(NotTrainable())  # type: ignore[arg-type]


@pytest.mark.parametrize("family", FAMILIES)
def test_one_finetuning_step_lowers_the_consistency_loss(
    family: Callable[[], TorchLandmarkModel],
) -> None:
    model = family()
    model.net.train()
    adapter = DetectorAdapter(model)
    images, P, gt = _multiview_batch()
    b, v = P.shape[:2]
    boxes = landmark_box(gt.reshape(b * v, 68, 2))
    batch = adapter.prepare(images, boxes)
    cfg = MultiviewLossConfig(num_source_views=2, w_consistency=1.0, w_anchor=0.0)
    P_t, gt_t = torch.from_numpy(P).float(), torch.from_numpy(gt).float()

    def loss() -> dict[str, torch.Tensor]:
        pred = adapter(batch).view(b, v, 68, 2)
        return multiview_losses(pred, P_t, gt_t, float(VIEW), None, cfg)

    before = loss()
    params = [p for p in model.net.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=1e-3)
    opt.zero_grad()
    before["consistency"].backward()
    assert all(p.grad is not None for p in params[-2:])  # gradients reach the head
    grad_norm = torch.sqrt(sum((p.grad**2).sum() for p in params if p.grad is not None))
    for group in opt.param_groups:  # a step of fixed length along the gradient
        group["lr"] = 1e-3 / float(grad_norm)
    opt.step()
    with torch.no_grad():
        after = loss()
    assert float(after["consistency"]) < float(before["consistency"])
