"""Every registered model gets the same contract tests (like timm's registry-wide tests)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from _shared import SHARED
from mvface.errors import NotAvailableError
from mvface.models import LandmarkModel, create_model, list_models
from mvface.models.trainable import TorchLandmarkModel

#: Options a family needs to load here (external weights live in ../shared, never in the repo).
LOAD_OPTIONS: dict[str, dict[str, object]] = {
    "3ddfa-v2": {"weights": str(SHARED / "models" / "3ddfa_v2")},
    "teacher": {"weights": str(SHARED / "models" / "3ddfa_v2")},
    "mvnet": {"allow_untrained": True},  # no shipped weights: its random init runs the contract
}


def _load(name: str) -> LandmarkModel:
    try:
        return create_model(name, **LOAD_OPTIONS.get(name, {}))  # type: ignore[arg-type]
    except NotAvailableError as exc:
        pytest.skip(f"{name} not available here: {exc}")


def _face_image(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic 'face' (bright ellipse on noise) and its canonical box."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 60, (160, 200, 3), dtype=np.uint8)
    yy, xx = np.mgrid[:160, :200]
    img[((xx - 100) / 40) ** 2 + ((yy - 80) / 50) ** 2 < 1] = (200, 160, 140)
    return img, np.array([60.0, 30.0, 140.0, 130.0])


@pytest.fixture(params=list_models())
def model(request: pytest.FixtureRequest) -> LandmarkModel:
    return _load(request.param)


def test_predict_shapes_and_batch_equals_loop(model: LandmarkModel) -> None:
    faces = [_face_image(i) for i in range(3)]
    images = [f[0] for f in faces]
    boxes = np.stack([f[1] for f in faces])
    batch = model.predict(images, boxes).points
    dims = 3 if model.config.output == "68x3" else 2
    assert batch.shape == (3, 68, dims) and np.all(np.isfinite(batch))
    loop = np.concatenate(
        [model.predict(i, b[None]).points for i, b in zip(images, boxes, strict=True)]
    )
    np.testing.assert_allclose(batch, loop, atol=1e-3)


def test_config_round_trips(model: LandmarkModel) -> None:
    cfg = model.config.to_dict()
    assert cfg["name"] and cfg["output"] in ("68x2", "68x3")
    assert type(model.config)(**{**cfg, "crop": model.config.crop}) == model.config


def _trainable(model: LandmarkModel) -> TorchLandmarkModel:
    if not isinstance(model, TorchLandmarkModel):
        pytest.skip(f"{model.config.name} is not trainable")
    return model


def test_forward_backward(model: LandmarkModel) -> None:
    tm = _trainable(model)
    size = tm.config.input_size
    x = tm.normalize(torch.rand(2, 3, size, size) * 255)
    tm.net.train()
    pts = tm.forward_points(x)
    assert pts.shape[:2] == (2, 68)
    pts[..., :2].sum().backward()
    grads = [p.grad for p in tm.net.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads if g is not None)


def test_onnx_export(model: LandmarkModel, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from mvface.export import export_onnx, onnx_parity

    tm = _trainable(model)
    path = export_onnx(tm, tmp_path / "m.onnx")
    assert onnx_parity(tm, path) < 1e-2  # crop pixels
