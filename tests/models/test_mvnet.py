import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from mvface.errors import BadInputError, NotAvailableError
from mvface.export import export_onnx
from mvface.models import BoxTransform, create_model, list_models
from mvface.models._weights import save_weights
from mvface.models.mvnet import (
    CANONICAL_TO_MVNET_CROP,
    MvNet,
    MvNetConfig,
    RegressionHead,
    SoftArgmaxHead,
    load_mvnet,
    make_divisible,
)

#: Small configs that cover both backbones and both heads (fast on CPU).
SMALL_CONFIGS: list[dict[str, Any]] = [
    {"input_size": 64, "width": 0.35},
    {"input_size": 96, "backbone": "mobilenetv3_small", "width": 0.5, "head": "heatmap"},
    {"input_size": 64, "width": 0.35, "head": "heatmap", "head_channels": 32},
]
SMALL_IDS = ["v2-regression", "v3-heatmap", "v2-heatmap"]


def _model(seed: int = 0, **cfg: Any) -> MvNet:
    """A seeded model whose zero-initialized last layer is randomized, so outputs vary (it
    predicts although untrained)."""
    model = create_model("mvnet", seed=seed, allow_untrained=True, **cfg)
    assert isinstance(model, MvNet)
    head = model.net.head
    last = head.fc if isinstance(head, RegressionHead) else head.out
    assert isinstance(last, nn.Linear | nn.Conv2d)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        last.weight.copy_(torch.randn(last.weight.shape, generator=gen) * 0.02)
    return model


def _crops(model: MvNet, n: int, seed: int = 0) -> torch.Tensor:
    size = model.config.input_size
    gen = torch.Generator().manual_seed(seed)
    return model.normalize(torch.rand(n, 3, size, size, generator=gen) * 255)


def _blob_images(n: int, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` grey images with 68 Gaussian dots (sigma 1.5 px) and targets ``(n, 68, 3)``.

    Targets are the dot centres (crop pixels) and a random depth in [-5, 5] pixels.
    """
    gen = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 68, 2, generator=gen) * (size - 20) + 10
    z = (torch.rand(n, 68, 1, generator=gen) - 0.5) * 10
    axis = torch.arange(size, dtype=torch.float32)
    dx = axis[None, None, None, :] - xy[..., 0, None, None]
    dy = axis[None, None, :, None] - xy[..., 1, None, None]
    image = torch.exp(-(dx**2 + dy**2) / (2 * 1.5**2)).amax(1) * 255
    return image[:, None].expand(n, 3, size, size), torch.cat([xy, z], dim=-1)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Run each test on one intra-op thread, then restore the previous count.

    These models are tiny; several threads fighting over a busy machine's cores made this file
    5x slower in wall time.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class TestConfig:
    def test_registered(self) -> None:
        assert "mvnet" in list_models()

    @pytest.mark.parametrize("cfg", [{}, *SMALL_CONFIGS], ids=["default", *SMALL_IDS])
    def test_json_round_trip(self, cfg: dict[str, Any]) -> None:
        config = MvNetConfig.from_dict(cfg)
        again = MvNetConfig.from_dict(json.loads(json.dumps(config.to_dict())))
        assert again == config
        assert isinstance(again.crop, BoxTransform)

    def test_crop_policy_is_square_1_3x(self) -> None:
        crop = MvNetConfig().crop(np.array([[10.0, 20.0, 110.0, 100.0]]))[0]
        assert crop[2] - crop[0] == pytest.approx(130.0)  # 1.3 x the longer side
        assert crop[3] - crop[1] == pytest.approx(130.0)
        np.testing.assert_allclose((crop[:2] + crop[2:]) / 2, [60.0, 60.0])
        assert MvNetConfig().crop == CANONICAL_TO_MVNET_CROP

    def test_model_config(self) -> None:
        model = create_model("mvnet", input_size=96)
        assert model.config.name == "mvnet"
        assert model.config.output == "68x3"
        assert model.config.input_size == 96
        assert model.config.crop == CANONICAL_TO_MVNET_CROP

    @pytest.mark.parametrize(
        ("cfg", "match"),
        [
            ({"depth": 3}, "unknown mvnet options"),
            ({"backbone": "resnet50"}, "unknown mvnet backbone"),
            ({"head": "mesh"}, "unknown mvnet head"),
            ({"input_size": 100}, "multiple of 32"),
            ({"width": 0.0}, "positive"),
        ],
    )
    def test_bad_options(self, cfg: dict[str, Any], match: str) -> None:
        with pytest.raises(ValueError, match=match):
            create_model("mvnet", **cfg)

    def test_make_divisible(self) -> None:
        assert [make_divisible(c) for c in (24.0, 72.0, 5.6, 11.2, 36.0)] == [24, 72, 8, 16, 40]


class TestForward:
    @pytest.mark.parametrize("cfg", SMALL_CONFIGS, ids=SMALL_IDS)
    def test_shapes(self, cfg: dict[str, Any]) -> None:
        model = _model(**cfg)
        out = model.forward_points(_crops(model, 2))
        assert out.shape == (2, 68, 3)
        assert out.dtype == torch.float32
        assert torch.isfinite(out).all()

    @pytest.mark.parametrize("cfg", SMALL_CONFIGS, ids=SMALL_IDS)
    def test_fresh_model_starts_at_crop_centre(self, cfg: dict[str, Any]) -> None:
        model = create_model("mvnet", seed=0, **cfg)
        assert isinstance(model, MvNet)
        out = model.forward_points(_crops(model, 2))
        size = model.config.input_size
        torch.testing.assert_close(out[..., :2], torch.full((2, 68, 2), (size - 1) / 2))
        torch.testing.assert_close(out[..., 2], torch.zeros(2, 68))

    @pytest.mark.parametrize("cfg", SMALL_CONFIGS, ids=SMALL_IDS)
    def test_backward_gives_finite_gradients_everywhere(self, cfg: dict[str, Any]) -> None:
        model = _model(**cfg)
        x = _crops(model, 3)
        model.forward_points(x).square().mean().backward()
        for name, param in model.net.named_parameters():
            assert param.grad is not None, name
            assert torch.isfinite(param.grad).all(), name
        stem_conv = model.net.backbone.stem[0]
        assert isinstance(stem_conv, nn.Conv2d)
        stem = stem_conv.weight.grad
        assert stem is not None and stem.abs().sum() > 0  # gradients reach the input layer

    def test_gradient_reaches_input(self) -> None:
        model = _model(**SMALL_CONFIGS[0])
        x = _crops(model, 2).requires_grad_()
        model.forward_points(x).sum().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0

    def test_seed_is_reproducible_and_leaves_global_rng(self) -> None:
        torch.manual_seed(123)
        expected = torch.rand(3)
        torch.manual_seed(123)
        a = create_model("mvnet", seed=7, **SMALL_CONFIGS[0])
        assert torch.equal(torch.rand(3), expected)  # global RNG untouched
        b = create_model("mvnet", seed=7, **SMALL_CONFIGS[0])
        c = create_model("mvnet", seed=8, **SMALL_CONFIGS[0])
        assert isinstance(a, MvNet) and isinstance(b, MvNet) and isinstance(c, MvNet)
        sa, sb, sc = a.net.state_dict(), b.net.state_dict(), c.net.state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
        assert not all(torch.equal(sa[k], sc[k]) for k in sa)

    def test_default_parameter_count(self) -> None:
        # Pinned: any change breaks weights files saved with the default config.
        model = create_model("mvnet")
        assert isinstance(model, MvNet)
        assert model.num_parameters() == 2_041_420

    def test_soft_argmax_peaks_at_cell_centre(self) -> None:
        head = SoftArgmaxHead((8, 8, 8, 8), 8, 64)
        assert head.grid_x[:3].tolist() == [1.5, 5.5, 9.5]  # crop pixels of cells 0, 1, 2
        assert head.grid_y.reshape(16, 16)[:, 0][5] == pytest.approx(21.5)


class TestPredict:
    @pytest.mark.parametrize("cfg", SMALL_CONFIGS[:2], ids=SMALL_IDS[:2])
    def test_batch_equals_loop(self, cfg: dict[str, Any]) -> None:
        model = _model(**cfg)
        rng = np.random.default_rng(0)
        images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in [(90, 120)] * 4]
        images[2] = rng.integers(0, 256, (60, 70, 3), dtype=np.uint8)
        boxes = np.array(
            [[20, 15, 80, 75], [0, 0, 119, 89], [5, 10, 50, 55], [60.5, 30.2, 100.7, 88.1]]
        )
        batch = model.predict(images, boxes).points
        loop = np.stack(
            [model.predict(i, b[None]).points[0] for i, b in zip(images, boxes, strict=True)]
        )
        assert batch.shape == (4, 68, 3)
        assert np.isfinite(batch).all()
        assert np.ptp(batch[..., 0]) > 1.0  # outputs depend on the input, not a constant
        np.testing.assert_allclose(batch, loop, atol=1e-3)
        assert model.net.training  # predict restores the mode

    def test_points_in_image_pixels(self) -> None:
        model = create_model("mvnet", seed=0, allow_untrained=True, **SMALL_CONFIGS[0])
        boxes = np.array([[10.0, 20.0, 50.0, 60.0], [0.0, 0.0, 99.0, 79.0]])  # fresh: centre
        out = model.predict(np.zeros((80, 100, 3), np.uint8), boxes).points
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        np.testing.assert_allclose(out[..., :2], np.repeat(centres[:, None], 68, 1), atol=1e-4)


class TestUntrained:
    def test_random_initialization_refuses_to_predict(self) -> None:
        model = create_model("mvnet", seed=0, **SMALL_CONFIGS[0])
        assert isinstance(model, MvNet) and not model.trained
        with pytest.raises(NotAvailableError, match="'mvnet' has no trained weights"):
            model.predict(np.zeros((80, 100, 3), np.uint8), np.array([[10.0, 20.0, 50.0, 60.0]]))
        with pytest.raises(NotAvailableError, match="cannot be exported"):
            export_onnx(model, "never-written.onnx")

    def test_saved_and_loaded_it_is_trained(self, tmp_path: Path) -> None:
        path = create_model("mvnet", seed=0, **SMALL_CONFIGS[0]).save(tmp_path / "m.safetensors")
        model = create_model("mvnet", weights=str(path))
        assert isinstance(model, MvNet) and model.trained
        image, box = np.zeros((80, 100, 3), np.uint8), np.array([[10.0, 20.0, 50.0, 60.0]])
        assert model.predict(image, box).points.shape == (1, 68, 3)


class TestWeights:
    @pytest.mark.parametrize("cfg", SMALL_CONFIGS[:2], ids=SMALL_IDS[:2])
    def test_save_load_gives_identical_model(self, tmp_path: Path, cfg: dict[str, Any]) -> None:
        model = _model(**cfg)
        with torch.no_grad():  # move the BatchNorm running statistics away from 0 / 1
            model.net.train()
            model.net(_crops(model, 4, seed=3))
        path = model.save(tmp_path / "mvnet.safetensors")
        loaded = create_model("mvnet", weights=str(path))
        assert isinstance(loaded, MvNet)
        assert loaded.mvnet_config == model.mvnet_config
        assert not loaded.net.training
        model.net.eval()
        x = _crops(model, 3, seed=4)
        with torch.no_grad():
            assert torch.equal(loaded.forward_points(x), model.forward_points(x))

    def test_matching_options_accepted_contradicting_refused(self, tmp_path: Path) -> None:
        path = _model(**SMALL_CONFIGS[0]).save(tmp_path / "w.safetensors")
        assert isinstance(create_model("mvnet", weights=str(path), input_size=64), MvNet)
        with pytest.raises(ValueError, match="contradict"):
            create_model("mvnet", weights=str(path), width=1.0)
        with pytest.raises(ValueError, match="seed"):
            create_model("mvnet", weights=str(path), seed=0)

    def test_other_family_refused(self, tmp_path: Path) -> None:
        model = _model(**SMALL_CONFIGS[0])
        path = save_weights(
            tmp_path / "w.safetensors",
            model.net.state_dict(),
            model.mvnet_config.to_dict(),
            family="facemesh",
        )
        with pytest.raises(BadInputError, match="'facemesh' family"):
            load_mvnet(path)

    def test_missing_config_refused(self, tmp_path: Path) -> None:
        path = save_weights(tmp_path / "w.safetensors", _model(**SMALL_CONFIGS[0]).net.state_dict())
        with pytest.raises(BadInputError, match="no mvnet config"):
            load_mvnet(path)

    def test_tensors_not_fitting_config_refused(self, tmp_path: Path) -> None:
        model = _model(**SMALL_CONFIGS[0])
        config = {**model.mvnet_config.to_dict(), "width": 0.5}
        path = save_weights(tmp_path / "w.safetensors", model.net.state_dict(), config)
        with pytest.raises(BadInputError, match="do not fit"):
            load_mvnet(path)


@pytest.mark.parametrize(
    ("cfg", "lr"),
    [
        ({"input_size": 64, "width": 0.5}, 1e-3),
        (
            {"input_size": 64, "backbone": "mobilenetv3_small", "width": 0.5, "head": "heatmap"},
            3e-3,
        ),
    ],
    ids=["v2-regression", "v3-heatmap"],
)
def test_overfits_four_images(cfg: dict[str, Any], lr: float) -> None:
    """20 Adam steps on 4 blob images: L1 falls far below its start and below a constant guess."""
    model = create_model("mvnet", seed=0, **cfg)
    assert isinstance(model, MvNet)
    images, target = _blob_images(4, model.config.input_size)
    x = model.normalize(images)
    optimizer = torch.optim.Adam(model.net.parameters(), lr=lr)
    first = None
    for _ in range(20):
        loss = (model.forward_points(x) - target).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        first = float(loss.detach()) if first is None else first
    with torch.no_grad():
        final = float((model.forward_points(x) - target).abs().mean())
    constant_guess = float((target - target.median(dim=0).values).abs().mean())
    # seen here (seeds 0, 1): 9-11x (regression), 9-10x (heatmap); a constant guess is 6-8x worse
    assert first is not None and final < first / 5
    assert final < constant_guess / 3  # it tells the four images apart


def test_onnx_export_dynamic_batch(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model = _model(**SMALL_CONFIGS[1])
    path = export_onnx(model, tmp_path / "mvnet.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    model.net.eval()
    for n in (1, 3):
        x = _crops(model, n, seed=n)
        (points,) = session.run(["points"], {"crops": x.numpy()})
        with torch.no_grad():
            np.testing.assert_allclose(points, model.net(x).numpy(), atol=1e-3)


def test_net_is_plain_torch() -> None:
    model = create_model("mvnet")
    assert isinstance(model, MvNet)
    assert isinstance(model.net, nn.Module)
    assert all(type(m).__module__.startswith(("torch.", "mvface.")) for m in model.net.modules())
