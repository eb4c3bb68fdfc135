import math

import pytest
import torch

from mvface.geometry.cameras import (
    cam2world_to_extrinsics,
    intrinsics_matrix,
    look_at,
    projection_matrix,
)
from mvface.geometry.projection import project_points
from mvface.plugin.loss import MultiviewLossConfig, compiled_multiview_losses, multiview_losses

SIZE = 256.0


def _scene(
    b: int = 2, v: int = 6, dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cameras on a circle around a random 68-point face; returns (P, gt 2D, X)."""
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(b, 68, 3, generator=gen, dtype=dtype) * 0.1
    yaw = torch.linspace(-0.8, 0.8, v, dtype=dtype)
    eye = torch.stack([2.7 * torch.sin(yaw), torch.zeros_like(yaw), 2.7 * torch.cos(yaw)], -1)
    c2w = look_at(eye, torch.zeros(v, 3, dtype=dtype))
    R, t = cam2world_to_extrinsics(c2w)
    K = intrinsics_matrix(
        *(
            torch.tensor(val, dtype=dtype)
            for val in (4.2647 * SIZE, 4.2647 * SIZE, SIZE / 2, SIZE / 2)
        )
    )
    P = projection_matrix(K, R, t).expand(b, v, 3, 4)
    gt = project_points(X[:, None], P)
    return P, gt, X


def test_zero_for_consistent_predictions() -> None:
    P, gt, _ = _scene()
    out = multiview_losses(gt, P, gt, SIZE)
    for name, value in out.items():
        assert value.item() == pytest.approx(0.0, abs=1e-9), name


def test_closed_form_shift_in_one_target_view() -> None:
    P, gt, _ = _scene(b=1, v=3)
    d = 6.0
    pred = gt.clone()
    pred[:, 2, :, 0] += d  # a target view off by d px in x; sources (views 0, 1) exact
    cfg = MultiviewLossConfig(num_source_views=2, w_consistency=1, w_anchor=1, w_supervision=1)
    out = multiview_losses(pred, P, gt, SIZE, config=cfg)
    # |dx| = d in 1 of 3 views, |dy| = 0: mean over (views, points, 2 coords) = d / 6 / size
    assert out["consistency"].item() == pytest.approx(d / 6 / SIZE, rel=1e-6)
    assert out["anchor"].item() == pytest.approx(0.0, abs=1e-9)
    assert out["supervision"].item() == pytest.approx(d / 6 / SIZE, rel=1e-6)
    assert out["total"].item() == pytest.approx(2 * d / 6 / SIZE, rel=1e-6)


def test_anchor_sees_consistent_but_wrong_sources() -> None:
    P, gt, X = _scene(b=1, v=4)
    shifted = project_points((X + torch.tensor([0.05, 0.0, 0.0], dtype=X.dtype))[:, None], P)
    cfg = MultiviewLossConfig(num_source_views=2)
    out = multiview_losses(shifted, P, gt, SIZE, config=cfg)
    assert out["consistency"].item() == pytest.approx(0.0, abs=1e-9)  # consistent...
    assert out["anchor"].item() > 1e-3  # ...but away from the pseudo ground truth
    expected = ((shifted[:, :2] - gt[:, :2]).abs().mean() / SIZE).item()
    assert out["anchor"].item() == pytest.approx(expected, rel=1e-6)


def test_jaw_weight() -> None:
    P, gt, _ = _scene(b=1, v=4)
    pred = gt.clone()
    pred[..., :17, 1] += 4.0  # only jaw points off
    low = multiview_losses(pred, P, gt, SIZE, config=MultiviewLossConfig(jaw_weight=0.0))
    one = multiview_losses(pred, P, gt, SIZE, config=MultiviewLossConfig(jaw_weight=1.0))
    assert low["supervision"].item() == pytest.approx(0.0, abs=1e-12)
    assert one["supervision"].item() == pytest.approx(4.0 * 17 / 68 / 2 / SIZE, rel=1e-6)


def test_hidden_points_can_be_dropped() -> None:
    P, gt, _ = _scene(b=1, v=4)
    pred = gt.clone()
    pred[:, 3, 5] += 10.0
    vis = torch.ones(1, 4, 68, dtype=torch.bool)
    vis[:, 3, 5] = False
    dropped = multiview_losses(pred, P, gt, SIZE, vis, MultiviewLossConfig(hidden_weight=0.0))
    kept = multiview_losses(pred, P, gt, SIZE, vis, MultiviewLossConfig(hidden_weight=1.0))
    assert dropped["supervision"].item() == pytest.approx(0.0, abs=1e-12)
    assert kept["supervision"].item() > 0


def test_stop_gradient_blocks_the_source_path() -> None:
    P, gt, _ = _scene(b=1, v=5)
    pred = (gt + torch.randn_like(gt)).requires_grad_(True)
    cfg = MultiviewLossConfig(w_anchor=0, w_supervision=0, stop_gradient=True)
    multiview_losses(pred, P, gt, SIZE, config=cfg)["total"].backward()
    assert pred.grad is not None
    # with the triangulation detached, each view's gradient is sign(pred - reprojection) / count
    expected = 0.1 / (5 * 68 * 2) / SIZE
    torch.testing.assert_close(
        pred.grad.abs(), torch.full_like(pred, expected), rtol=1e-6, atol=1e-12
    )


def test_gradcheck() -> None:
    P, gt, _ = _scene(b=1, v=3)
    gt = gt[:, :, :18].contiguous()  # 18 points (jaw + one) keep gradcheck cheap
    pred = (gt + torch.randn_like(gt) * 2).requires_grad_(True)
    cfg = MultiviewLossConfig(num_source_views=2, jaw_weight=0.5)
    assert torch.autograd.gradcheck(
        lambda p: multiview_losses(p, P, gt, SIZE, config=cfg)["total"], (pred,), atol=1e-6
    )


def test_descent_lowers_consistency() -> None:
    P, gt, _ = _scene(b=2, v=8, dtype=torch.float32)
    pred = (gt + torch.randn_like(gt) * 3).requires_grad_(True)
    opt = torch.optim.Adam([pred], lr=0.5)
    first = None
    for _ in range(30):
        loss = multiview_losses(pred, P, gt, SIZE, config=MultiviewLossConfig(w_supervision=0.0))
        first = first if first is not None else loss["consistency"].item()
        opt.zero_grad()
        loss["total"].backward()
        opt.step()
    assert loss["consistency"].item() < 0.5 * first
    assert math.isfinite(loss["total"].item())


def test_bad_arguments() -> None:
    P, gt, _ = _scene(b=1, v=3)
    with pytest.raises(ValueError, match="num_source_views"):
        multiview_losses(gt, P, gt, SIZE)  # 3 views < default S = 4
    with pytest.raises(ValueError, match="at least 2"):
        MultiviewLossConfig(num_source_views=1)
    with pytest.raises(ValueError, match="shapes disagree"):
        multiview_losses(gt, P[:, :2], gt, SIZE, config=MultiviewLossConfig(num_source_views=2))


def test_compiled_loss_matches_eager() -> None:
    """The torch.compile path (what GPU training runs) computes the same terms and gradients."""
    P, gt, _ = _scene(b=2, v=6, dtype=torch.float32)
    visibility = torch.rand(gt.shape[:3], generator=torch.Generator().manual_seed(1)) > 0.2
    cfg = MultiviewLossConfig(jaw_weight=0.5, hidden_weight=0.3)
    pred = gt + torch.randn_like(gt) * 3
    results = []
    for fn in (multiview_losses, compiled_multiview_losses()):
        p = pred.clone().requires_grad_(True)
        terms = fn(p, P, gt, SIZE, visibility, cfg)
        terms["total"].backward()
        results.append(({k: t.detach() for k, t in terms.items()}, p.grad))
    (eager, eager_grad), (compiled, compiled_grad) = results
    assert eager["consistency"] > 0
    for name in ("consistency", "anchor", "supervision", "total"):
        torch.testing.assert_close(compiled[name], eager[name], rtol=1e-5, atol=1e-9)
    torch.testing.assert_close(compiled_grad, eager_grad, rtol=1e-4, atol=1e-10)
