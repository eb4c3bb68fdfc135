"""Tests of the ``3ddfa-v2`` family (mvface.models.tddfa).

Tests without the release files use a random keypoint basis; those that need the real files
(``shared/models/3ddfa_v2``) or AFLW2000-3D (``shared/data/aflw2000_3d_dev``) skip cleanly.
The reproduction test compares against an independent re-implementation of the published
pipeline written here from the shared README's formulas (NumPy + ``torch.nn.functional``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.nn import functional as nnf

from _shared import SHARED, requires_shared
from mvface.errors import BadInputError, NotAvailableError
from mvface.geometry.rotations import euler_to_rotation
from mvface.models import create_model, list_models
from mvface.models._weights import save_weights
from mvface.models.tddfa import (
    BASIS_FILE,
    CHECKPOINT_FILE,
    ENV_VAR,
    LANDMARK_ROI,
    PARAM_STATS_FILE,
    TDDFAV2,
    KeypointBasis,
    MobileNetV1,
    TDDFANet,
    crop_roi,
    default_config,
    pose_from_params,
)

RELEASE = SHARED / "models" / "3ddfa_v2"
AFLW = SHARED / "data" / "aflw2000_3d_dev"
requires_release = requires_shared("models/3ddfa_v2")


def _random_basis(seed: int = 0) -> KeypointBasis:
    """A basis of the right shapes with plausible magnitudes (a face ~100 crop pixels wide)."""
    g = torch.Generator().manual_seed(seed)
    return KeypointBasis(
        param_mean=torch.randn(62, generator=g) * 0.1,
        param_std=torch.rand(62, generator=g) + 0.5,
        u_base=torch.randn(204, generator=g) * 50,
        w_shp_base=torch.randn(204, 40, generator=g),
        w_exp_base=torch.randn(204, 10, generator=g),
    )


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """One intra-op thread: these small batches run faster than with several on a busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def random_model() -> TDDFAV2:
    torch.manual_seed(0)
    return TDDFAV2(TDDFANet(_random_basis()))


@pytest.fixture(scope="module")
def release_model() -> TDDFAV2:
    if not RELEASE.is_dir():
        pytest.skip(f"shared data not found: {RELEASE}")
    model = create_model("3ddfa-v2", weights=str(RELEASE))
    assert isinstance(model, TDDFAV2)
    return model


def _write_release_bases(folder: Path, basis: KeypointBasis) -> None:
    np.savez(folder / PARAM_STATS_FILE, mean=basis.param_mean.numpy(), std=basis.param_std.numpy())
    np.savez(
        folder / BASIS_FILE,
        u_base=basis.u_base.numpy()[:, None],  # 3DDFA_V2 keeps it as a (204, 1) column
        w_shp_base=basis.w_shp_base.numpy(),
        w_exp_base=basis.w_exp_base.numpy(),
    )


# --------------------------------------------------------------------------------------------
# Network and training view (no files needed)
# --------------------------------------------------------------------------------------------


class TestNetwork:
    def test_registered(self) -> None:
        assert "3ddfa-v2" in list_models()

    def test_forward_shapes(self, random_model: TDDFAV2) -> None:
        x = torch.randn(2, 3, 120, 120)
        with torch.no_grad():
            assert random_model.net(x).shape == (2, 62)
            assert random_model.net.params(x).shape == (2, 62)
            assert random_model.forward_points(x).shape == (2, 68, 3)

    def test_backbone_feature_size(self) -> None:
        net = MobileNetV1().eval()
        assert net.fc_param.in_features == 512
        assert sum(p.numel() for p in net.parameters()) == 850_398

    def test_forward_points_backward_is_finite(self, random_model: TDDFAV2) -> None:
        net = random_model.net
        net.train()
        try:
            x = torch.randn(3, 3, 120, 120, requires_grad=True)
            random_model.forward_points(x).square().mean().backward()
        finally:
            net.eval()
        grads = [p.grad for p in net.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert x.grad is not None and torch.isfinite(x.grad).all()
        assert not any(b.requires_grad for b in net.basis.buffers())
        net.zero_grad()

    def test_input_is_rgb_and_flipped_inside(self, random_model: TDDFAV2) -> None:
        x = torch.randn(1, 3, 120, 120)
        with torch.no_grad():
            torch.testing.assert_close(random_model.net(x), random_model.net.backbone(x.flip(1)))

    def test_basis_follows_readme_formula(self) -> None:
        basis = _random_basis(1)
        params = torch.randn(4, 62, dtype=torch.float64)
        X = basis(params).numpy()
        u, ws, we = (t.double().numpy() for t in (basis.u_base, basis.w_shp_base, basis.w_exp_base))
        for p, got in zip(params.numpy(), X, strict=True):
            P = p[:12].reshape(3, 4)
            verts = (u + ws @ p[12:52] + we @ p[52:62]).reshape(3, 68, order="F")
            np.testing.assert_allclose(got.T, P[:, :3] @ verts + P[:, 3:], rtol=1e-6, atol=1e-6)

    def test_bad_basis_shape(self) -> None:
        with pytest.raises(BadInputError, match="w_exp_base"):
            KeypointBasis(
                torch.zeros(62),
                torch.ones(62),
                torch.zeros(204),
                torch.zeros(204, 40),
                torch.zeros(204, 9),
            )


class TestCropAndPose:
    def test_landmark_roi_is_3ddfa_rule(self) -> None:
        # 3DDFA_V2 utils/functions.py parse_roi_box_from_landmark, written out literally
        def parse_roi_box_from_landmark(pts: np.ndarray) -> list[float]:
            bbox = [min(pts[0, :]), min(pts[1, :]), max(pts[0, :]), max(pts[1, :])]
            center = [(bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2]
            radius = max(bbox[2] - bbox[0], bbox[3] - bbox[1]) / 2
            bbox = [center[0] - radius, center[1] - radius, center[0] + radius, center[1] + radius]
            llength = math.sqrt((bbox[2] - bbox[0]) ** 2 + (bbox[3] - bbox[1]) ** 2)
            cx, cy = (bbox[2] + bbox[0]) / 2, (bbox[3] + bbox[1]) / 2
            return [cx - llength / 2, cy - llength / 2, cx + llength / 2, cy + llength / 2]

        rng = np.random.default_rng(0)
        for _ in range(5):
            pts = rng.uniform(0, 300, (2, 68)) * rng.uniform(0.2, 1.0, (2, 1))
            tight = np.array([pts[0].min(), pts[1].min(), pts[0].max(), pts[1].max()])
            np.testing.assert_allclose(LANDMARK_ROI(tight), parse_roi_box_from_landmark(pts))

    def test_crop_roi_pads_with_zeros(self) -> None:
        image = np.arange(5 * 6 * 3, dtype=np.uint8).reshape(5, 6, 3) + 1
        crop = crop_roi(image, np.array([-2.0, -1.0, 3.0, 7.0]))
        assert crop.shape == (8, 5, 3)
        assert (crop[:1] == 0).all() and (crop[:, :2] == 0).all() and (crop[6:] == 0).all()
        np.testing.assert_array_equal(crop[1:6, 2:5], image[0:5, 0:3])

    def test_crop_roi_rounds_like_python(self) -> None:
        image = np.full((10, 10, 3), 7, np.uint8)
        assert crop_roi(image, np.array([0.5, 1.5, 4.5, 5.4])).shape == (3, 4, 3)  # 2..5, 0..4
        with pytest.raises(BadInputError, match="empty"):
            crop_roi(image, np.array([3.0, 3.0, 3.2, 8.0]))

    def test_pose_recovers_scaled_rotation(self) -> None:
        angles = torch.tensor([[0.2, -0.7, 0.4], [-0.3, 0.1, -1.0]], dtype=torch.float64)
        R = 0.0013 * euler_to_rotation(angles).numpy()
        params = np.zeros((2, 62))
        params[:, :12] = np.concatenate([R, np.ones((2, 3, 1))], axis=2).reshape(2, 12)
        np.testing.assert_allclose(pose_from_params(params), angles.numpy(), atol=1e-9)
        # a non-square crop: image rows scale differently; the pose is read in image pixels
        R_img = euler_to_rotation(angles).numpy()
        crop = R_img / np.array([2.0, 1.0, 1.5])[None, :, None]
        params[:, :12] = np.concatenate([crop, np.ones((2, 3, 1))], axis=2).reshape(2, 12)
        np.testing.assert_allclose(
            pose_from_params(params, np.array([[2.0, 1.0]] * 2)), angles.numpy(), atol=1e-9
        )


class TestPredict:
    def test_batch_equals_loop(self, random_model: TDDFAV2) -> None:
        rng = np.random.default_rng(0)
        images = [rng.integers(0, 256, (90, 110, 3), dtype=np.uint8) for _ in range(3)]
        boxes = np.array([[10.0, 5.0, 80.0, 75.0], [-20.0, 30.0, 60.0, 120.0], [0, 0, 110, 90]])
        batch = random_model.predict_crops(images, boxes)
        for i in range(3):
            one = random_model.predict_crops(images[i], boxes[i : i + 1])
            np.testing.assert_allclose(one.points[0], batch.points[i], atol=1e-3)
            assert one.pose is not None and batch.pose is not None
            np.testing.assert_allclose(one.pose[0], batch.pose[i], atol=1e-5)
        assert batch.points.shape == (3, 68, 3)
        assert batch.extras["params62"].shape == (3, 62)
        assert (batch.points[..., 2].min(axis=1) == 0).all()  # 3DDFA: z minus its minimum

    def test_predict_uses_the_crop_policy(self, random_model: TDDFAV2) -> None:
        image = np.random.default_rng(1).integers(0, 256, (100, 100, 3), dtype=np.uint8)
        box = np.array([[30.0, 20.0, 70.0, 80.0]])
        a = random_model.predict(image, box).points
        b = random_model.predict_crops(image, LANDMARK_ROI(box)).points
        np.testing.assert_array_equal(a, b)

    def test_points_follow_the_published_back_mapping(self, random_model: TDDFAV2) -> None:
        image = np.random.default_rng(2).integers(0, 256, (100, 100, 3), dtype=np.uint8)
        box = np.array([10.3, 12.6, 70.3, 62.6])  # rounds to 10, 13, 70, 63
        pts = random_model.predict_crops(image, box[None]).points[0]
        crop = cv2.resize(crop_roi(image, box), (120, 120), interpolation=cv2.INTER_LINEAR)
        x = torch.from_numpy(crop).permute(2, 0, 1)[None].float()
        with torch.no_grad():
            uv = random_model.forward_points(random_model.normalize(x))[0, :, :2].double().numpy()
        expected = uv * [(box[2] - box[0]) / 120, (box[3] - box[1]) / 120] + box[:2]
        np.testing.assert_allclose(pts[:, :2], expected, atol=1e-3)


# --------------------------------------------------------------------------------------------
# Loading, saving, errors
# --------------------------------------------------------------------------------------------


class TestLoading:
    def test_not_available_without_folder(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv(ENV_VAR, raising=False)
        with pytest.raises(NotAvailableError, match=r"mb05_120x120\.pth.*3DDFA_V2.*MIT"):
            create_model("3ddfa-v2")

    def test_not_available_lists_missing_files(self, tmp_path: Path) -> None:
        with pytest.raises(NotAvailableError) as info:
            create_model("3ddfa-v2", weights=str(tmp_path))
        for name in (CHECKPOINT_FILE, PARAM_STATS_FILE, BASIS_FILE):
            assert name in str(info.value)

    def test_random_init_needs_only_the_bases(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        basis = _random_basis(3)
        _write_release_bases(tmp_path, basis)
        monkeypatch.setenv(ENV_VAR, str(tmp_path))
        model = create_model("3ddfa-v2", pretrained=False)
        assert isinstance(model, TDDFAV2)
        torch.testing.assert_close(model.net.basis.u_base, basis.u_base)
        with pytest.raises(NotAvailableError, match=CHECKPOINT_FILE):
            create_model("3ddfa-v2")

    def test_unknown_option(self) -> None:
        with pytest.raises(ValueError, match="pretrained"):
            create_model("3ddfa-v2", weights="x", pretraind=False)

    def test_config_round_trip(self, random_model: TDDFAV2, tmp_path: Path) -> None:
        path = random_model.save(tmp_path / "ft.safetensors", note="test")
        loaded = create_model("3ddfa-v2", weights=str(path))
        assert isinstance(loaded, TDDFAV2)
        assert loaded.config == random_model.config == default_config()
        x = torch.randn(2, 3, 120, 120)
        with torch.no_grad():
            torch.testing.assert_close(loaded.forward_points(x), random_model.forward_points(x))

    def test_renamed_fine_tune_keeps_its_config(
        self, random_model: TDDFAV2, tmp_path: Path
    ) -> None:
        tuned = TDDFAV2(random_model.net, default_config("3ddfa-v2+"))
        loaded = create_model("3ddfa-v2", weights=str(tuned.save(tmp_path / "plus.safetensors")))
        assert loaded.config.name == "3ddfa-v2+"

    def test_foreign_safetensors_is_refused(self, tmp_path: Path) -> None:
        path = save_weights(tmp_path / "x.safetensors", {"a": torch.zeros(1)}, {"family": "other"})
        with pytest.raises(BadInputError, match="not a 3ddfa-v2"):
            create_model("3ddfa-v2", weights=str(path))

    @pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::torch.jit.TracerWarning")
    def test_onnx_export(self, random_model: TDDFAV2, tmp_path: Path) -> None:
        pytest.importorskip("onnx")
        ort = pytest.importorskip("onnxruntime")
        path = tmp_path / "3ddfa_v2.onnx"
        x = torch.randn(2, 3, 120, 120)
        torch.onnx.export(
            random_model.net,
            (x,),
            str(path),
            input_names=["crops"],
            output_names=["params"],
            dynamo=False,  # the TorchScript exporter: 1 s here, the dynamo one 15 s
        )
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (got,) = session.run(None, {"crops": x.numpy()})
        with torch.no_grad():
            np.testing.assert_allclose(got, random_model.net(x).numpy(), atol=1e-4)


# --------------------------------------------------------------------------------------------
# The released weights (shared files)
# --------------------------------------------------------------------------------------------

#: MobileNet-V1 blocks of 3DDFA_V2's models/mobilenet_v1.py: (name, stride of the depthwise conv).
_REFERENCE_BLOCKS = [
    ("dw2_1", 1),
    ("dw2_2", 2),
    ("dw3_1", 1),
    ("dw3_2", 2),
    ("dw4_1", 1),
    ("dw4_2", 2),
    ("dw5_1", 1),
    ("dw5_2", 1),
    ("dw5_3", 1),
    ("dw5_4", 1),
    ("dw5_5", 1),
    ("dw5_6", 2),
    ("dw6", 1),
]


def _reference_net(sd: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The MobileNet written with ``torch.nn.functional`` straight from the checkpoint dict."""

    def bn(t: torch.Tensor, p: str) -> torch.Tensor:
        return nnf.batch_norm(
            t,
            sd[f"{p}.running_mean"],
            sd[f"{p}.running_var"],
            sd[f"{p}.weight"],
            sd[f"{p}.bias"],
            False,
            0.0,
            1e-5,
        )

    x = nnf.relu(bn(nnf.conv2d(x, sd["conv1.weight"], stride=2, padding=1), "bn1"))
    for name, stride in _REFERENCE_BLOCKS:
        w = sd[f"{name}.conv_dw.weight"]
        x = nnf.conv2d(x, w, stride=stride, padding=1, groups=w.shape[0])
        x = nnf.relu(bn(x, f"{name}.bn_dw"))
        x = nnf.relu(bn(nnf.conv2d(x, sd[f"{name}.conv_sep.weight"]), f"{name}.bn_sep"))
    return nnf.linear(x.mean(dim=(2, 3)), sd["fc_param.weight"], sd["fc_param.bias"])


def _reference_points(
    sd: dict[str, torch.Tensor], image_bgr: np.ndarray, roi: np.ndarray
) -> np.ndarray:
    """Shared README pipeline, literally: crop, resize, BGR, normalize, params, bases, back."""
    stats = np.load(RELEASE / PARAM_STATS_FILE)
    bfm = np.load(RELEASE / BASIS_FILE)
    h, w = image_bgr.shape[:2]
    sx, sy, ex, ey = (round(float(v)) for v in roi)
    res = np.zeros((ey - sy, ex - sx, 3), np.uint8)
    ys, xs = slice(max(sy, 0), min(ey, h)), slice(max(sx, 0), min(ex, w))
    res[ys.start - sy : ys.stop - sy, xs.start - sx : xs.stop - sx] = image_bgr[ys, xs]
    img = cv2.resize(res, dsize=(120, 120), interpolation=cv2.INTER_LINEAR)
    inp = torch.from_numpy(img.transpose(2, 0, 1)[None].astype(np.float32))
    out = _reference_net(sd, (inp - 127.5) / 128).numpy()[0]
    param = out * stats["std"] + stats["mean"]
    P = param[:12].reshape(3, 4)
    shape = (
        bfm["u_base"].reshape(-1)
        + bfm["w_shp_base"] @ param[12:52]
        + bfm["w_exp_base"] @ param[52:62]
    )
    X = P[:, :3] @ shape.reshape(3, 68, order="F") + P[:, 3:]
    sx_f, sy_f, ex_f, ey_f = roi
    x = (X[0] - 1) * (ex_f - sx_f) / 120 + sx_f
    y = (120 - X[1]) * (ey_f - sy_f) / 120 + sy_f
    return np.stack([x, y], axis=1)


def _nme(pred: np.ndarray, gt: np.ndarray) -> float:
    """AFLW2000-3D NME (percent): mean 2D error / sqrt(w h) of the ground-truth box."""
    size = np.sqrt(np.prod(gt.max(axis=0) - gt.min(axis=0)))
    return float(np.linalg.norm(pred[:, :2] - gt, axis=1).mean() / size * 100)


@requires_release
class TestRelease:
    def test_checkpoint_keys_match(self) -> None:
        sd = torch.load(RELEASE / CHECKPOINT_FILE, map_location="cpu", weights_only=True)
        ours = MobileNetV1().state_dict()
        theirs = {k.removeprefix("module."): v for k, v in sd["state_dict"].items()}
        assert set(theirs) - set(ours) == {"fc_lm.weight", "fc_lm.bias"}
        assert all(ours[k].shape == theirs[k].shape for k in ours)

    @requires_shared("data/aflw2000_3d_dev")
    def test_protocol_nme_equals_independent_pipeline(self, release_model: TDDFAV2) -> None:
        n = 30
        names = (AFLW / "list.txt").read_text().split()[:n]
        rois = np.load(AFLW / "3ddfa_protocol" / "AFLW2000-3D_crop.roi_box.npy")[:n]
        gts = np.load(AFLW / "3ddfa_protocol" / "AFLW2000-3D.pts68.npy")[:n, :2]
        gts = gts.transpose(0, 2, 1) - 1.0  # 1-based MATLAB -> 0-based
        sd = torch.load(RELEASE / CHECKPOINT_FILE, map_location="cpu", weights_only=True)
        sd = {k.removeprefix("module."): v for k, v in sd["state_dict"].items()}
        bgr = [cv2.imread(str(AFLW / "images" / name)) for name in names]
        rgb = [np.ascontiguousarray(b[:, :, ::-1]) for b in bgr]
        ours = release_model.predict_crops(rgb, rois).points
        theirs = [_reference_points(sd, b, r) for b, r in zip(bgr, rois, strict=True)]
        for p, q in zip(ours, theirs, strict=True):
            np.testing.assert_allclose(p[:, :2], q, atol=2e-3)
        nme_ours = [_nme(p, g) for p, g in zip(ours, gts, strict=True)]
        nme_theirs = [_nme(q, g) for q, g in zip(theirs, gts, strict=True)]
        assert np.mean(nme_ours) == pytest.approx(np.mean(nme_theirs), abs=1e-4)
        assert np.mean(nme_ours) < 4.0  # a working model, not just two equal bugs

    @requires_shared("data/aflw2000_3d_dev")
    def test_pose_agrees_with_pose_para(self, release_model: TDDFAV2) -> None:
        from mvface.data.readers import read_dataset

        samples = read_dataset("aflw2000-3d", AFLW, limit=30).samples
        rois = np.load(AFLW / "3ddfa_protocol" / "AFLW2000-3D_crop.roi_box.npy")
        rows = [int(s.meta["protocol_index"]) for s in samples]
        images = [cv2.imread(str(s.image_path))[:, :, ::-1].copy() for s in samples]
        pred = release_model.predict_crops(images, rois[rows])
        truth = np.stack([s.pose for s in samples if s.pose is not None])
        # Landmarks.pose (from the points) and the network's own 3DMM pose alike
        for pose in (pred.pose, pred.extras["pose_3dmm"]):
            assert pose is not None
            err = np.degrees(np.abs((pose - truth + np.pi) % (2 * np.pi) - np.pi))
            assert (np.median(err, axis=0) < 6.0).all()  # pitch, yaw, roll, same convention
            big = np.abs(truth[:, 1]) > np.radians(20)
            assert (np.sign(pose[big, 1]) == np.sign(truth[big, 1])).all()
