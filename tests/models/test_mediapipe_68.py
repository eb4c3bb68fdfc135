"""Tests of ``mediapipe-68``: MediaPipe face mesh + learned 468 -> 68 head, two-pass crop."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from _fakes import synthetic_mesh
from _shared import SHARED, requires_shared
from mvface.data.image import load_image
from mvface.data.readers.pts import read_pts
from mvface.data.record import landmark_box
from mvface.errors import BadInputError, NotAvailableError
from mvface.eval.metrics import interocular_normalizer, nme
from mvface.models import create_model, list_models
from mvface.models._weights import load_weights, save_weights
from mvface.models.base import LandmarkModel, Landmarks
from mvface.models.mediapipe_68 import (
    DEFAULT_HEAD_PATH,
    FACE_OVAL,
    IBUG_JAW,
    LICENCE,
    MESH_OUTER_EYE_CORNERS,
    MediaPipe68,
    MeshTo68Head,
    eye_angles,
    load_head,
    mesh_to_crop_pixels,
    recrop_from_mesh,
)
from mvface.models.mediapipe_mesh import DEFAULT_WEIGHTS_PATH
from mvface.models.trainable import apply_affine, crop_matrices

HELEN = SHARED / "data" / "300w" / "helen_testset"
AFW = SHARED / "data" / "300w" / "afw"
SAMPLES = SHARED / "data" / "samples"

needs_weights = pytest.mark.skipif(
    not (DEFAULT_WEIGHTS_PATH.is_file() and DEFAULT_HEAD_PATH.is_file()),
    reason=f"weights absent: {DEFAULT_WEIGHTS_PATH} / {DEFAULT_HEAD_PATH}",
)


@pytest.fixture(scope="module")
def model() -> MediaPipe68:
    if not (DEFAULT_WEIGHTS_PATH.is_file() and DEFAULT_HEAD_PATH.is_file()):
        pytest.skip(f"weights absent: {DEFAULT_WEIGHTS_PATH} / {DEFAULT_HEAD_PATH}")
    m = create_model("mediapipe-68")
    assert isinstance(m, MediaPipe68)
    return m


def _helen(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    paths = sorted(HELEN.glob("*.jpg"))[:n]
    return [(load_image(p), read_pts(p.with_suffix(".pts"))) for p in paths]


def _batch_and_loop(
    model: LandmarkModel, n: int, threads: int
) -> tuple[Landmarks, list[Landmarks]]:
    """``predict`` on the first ``n`` HELEN faces at once (``threads`` torch threads), and on
    each face alone."""
    faces = _helen(n)
    images = [img for img, _ in faces]
    boxes = np.stack([landmark_box(gt) for _, gt in faces])
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        batch = model.predict(images, boxes)
        assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(before)
    return batch, [model.predict(img, box[None]) for img, box in zip(images, boxes, strict=True)]


# --------------------------------------------------------------------------------------------
# Pieces without weights
# --------------------------------------------------------------------------------------------


class TestMeshToCropPixels:
    def test_shift_and_depth_sign(self) -> None:
        mesh = torch.tensor([[[0.5, 192.0, 3.0]]])
        out = mesh_to_crop_pixels(mesh)
        torch.testing.assert_close(out, torch.tensor([[[0.0, 191.5, -3.0]]]))


class TestMeshTo68Head:
    def test_smoke_and_uniform_init(self) -> None:
        head = MeshTo68Head()
        out = head(torch.ones(2, 468, 3))
        assert out.shape == (2, 68, 3)
        torch.testing.assert_close(out, torch.ones(2, 68, 3))

    def test_convex_rows_commute_with_affine_maps(self) -> None:
        head = MeshTo68Head()
        w = torch.rand(68, 468, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            head.weight.copy_(w / w.sum(1, keepdim=True))
        mesh = torch.randn(3, 468, 3, dtype=torch.float64)
        a = torch.randn(3, 3, dtype=torch.float64)
        b = torch.randn(3, dtype=torch.float64)
        torch.testing.assert_close(head(mesh @ a.T + b), head(mesh) @ a.T + b)


class TestEyeAnglesAndRecrop:
    @pytest.mark.parametrize("degrees", [-40.0, 0.0, 25.0])
    def test_recrop_levels_the_eyes(self, degrees: float) -> None:
        mesh = synthetic_mesh(1)
        a = np.deg2rad(degrees)
        # tilt counter-clockwise on screen (y down): x' = x cos + y sin, y' = -x sin + y cos
        rot = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
        tilted = mesh.copy()
        tilted[..., :2] = mesh[..., :2] @ rot.T + [200.0, 150.0]
        np.testing.assert_allclose(eye_angles(tilted), [a], atol=1e-12)
        boxes, angles = recrop_from_mesh(tilted, scale=1.5)
        np.testing.assert_allclose(angles, [a], atol=1e-12)
        # the box is the square around the untilted extent, moved and scaled like the mesh
        ext = mesh[0, :, :2].max(0) - mesh[0, :, :2].min(0)
        side = boxes[0, 2] - boxes[0, 0]
        assert side == pytest.approx(1.5 * ext.max())
        assert boxes[0, 3] - boxes[0, 1] == pytest.approx(side)
        centre = (mesh[0, :, :2].max(0) + mesh[0, :, :2].min(0)) / 2 @ rot.T + [200.0, 150.0]
        np.testing.assert_allclose((boxes[0, :2] + boxes[0, 2:]) / 2, centre, atol=1e-9)
        # in the crop, the eye corners are level and the mesh is centred
        m = crop_matrices(boxes, 192, angles)
        crop = apply_affine(m, tilted[..., :2])
        right, left = MESH_OUTER_EYE_CORNERS
        assert crop[0, right, 1] == pytest.approx(crop[0, left, 1])
        assert crop[0, right, 0] < crop[0, left, 0]
        lo, hi = crop[0].min(0), crop[0].max(0)
        np.testing.assert_allclose((lo + hi) / 2, [95.5, 95.5], atol=1e-9)


class TestHeadFile:
    def test_wrong_shape_is_refused(self, tmp_path: Path) -> None:
        path = save_weights(tmp_path / "bad.safetensors", {"weight": torch.zeros(5, 468)})
        with pytest.raises(BadInputError, match=r"\(68, 468\)"):
            load_head(path)


# --------------------------------------------------------------------------------------------
# The shipped model
# --------------------------------------------------------------------------------------------


@needs_weights
class TestShippedHead:
    def test_registered_with_its_contract(self, model: MediaPipe68) -> None:
        assert "mediapipe-68" in list_models()
        assert model.config.name == "mediapipe-68"
        assert model.config.output == "68x3" and model.config.input_size == 192
        assert model.config.crop.scale_w == 1.5 and model.config.crop.square == "max"
        assert "non-commercial" in model.config.licence

    def test_weights_are_convex_and_jaw_on_the_oval(self) -> None:
        head, config = load_head()
        w = head.weight.detach().double().numpy()
        assert (w >= 0).all()
        np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-5)
        off_oval = np.setdiff1d(np.arange(468), FACE_OVAL)
        assert not w[np.asarray(IBUG_JAW)][:, off_oval].any()
        assert config["fit"]["seed"] == 0 and config["train_data"] == "afw"
        assert json.loads(json.dumps(config)) == config
        meta = load_weights(DEFAULT_HEAD_PATH)[2]
        assert meta["licence"] == LICENCE
        # recorded when the fit lived in this module; `python -m mvface.train.head_fit fit-head`
        # runs the same fit now
        assert meta["recipe"].startswith("python -m mvface.models.mediapipe_68 fit-head")


@needs_weights
class TestForwardPoints:
    def test_shapes_and_finite_backward(self, model: MediaPipe68) -> None:
        x = torch.rand(2, 3, 192, 192, generator=torch.Generator().manual_seed(0))
        x.requires_grad_(True)
        model.net.zero_grad()
        points = model.forward_points(x)
        assert points.shape == (2, 68, 3) and points.dtype == torch.float32
        points.square().mean().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all()
        for name, param in model.net.named_parameters():
            if name.startswith("mesh.score_head."):  # face presence: frozen, off the path
                assert not param.requires_grad and param.grad is None, name
                continue
            assert param.grad is not None and torch.isfinite(param.grad).all(), name
        assert model.net.head.weight.grad is not None
        assert model.net.head.weight.grad.abs().sum() > 0
        model.net.zero_grad()


@requires_shared("data/300w/helen_testset")
@needs_weights
class TestOnHelen:
    @pytest.mark.parametrize("threads", [1, 2])
    def test_batch_equals_loop(self, model: MediaPipe68, threads: int) -> None:
        batch, loop = _batch_and_loop(model, 3, threads)  # with 2 threads: 2 faces at a time
        assert batch.points.shape == (3, 68, 3)
        # predict runs face by face, so a face's points do not depend on its batch
        np.testing.assert_array_equal(batch.points, np.concatenate([p.points for p in loop]))
        scores = batch.extras["face_score"]
        np.testing.assert_array_equal(scores, [p.extras["face_score"][0] for p in loop])
        assert (scores > 0.5).all()

    def test_nme_on_20_faces(self, model: MediaPipe68) -> None:
        faces = _helen(20)
        boxes = np.stack([landmark_box(gt) for _, gt in faces])
        pred = model.predict([img for img, _ in faces], boxes).points
        gt = np.stack([gt for _, gt in faces])
        err = 100 * nme(pred[..., :2], gt, interocular_normalizer(gt))
        # Measured 4.29 % over all 330 HELEN test faces (docs/models/mediapipe-68.md).
        assert float(err.mean()) < 6.0, err
        assert float(err.max()) < 12.0, err

    def test_second_pass_beats_first_pass(self, model: MediaPipe68) -> None:
        faces = _helen(10)
        boxes = np.stack([landmark_box(gt) for _, gt in faces])
        images = [img for img, _ in faces]
        gt = np.stack([gt for _, gt in faces])
        one = MediaPipe68(head=model.net.head, passes=1)
        errors = [
            nme(m.predict(images, boxes).points[..., :2], gt, interocular_normalizer(gt)).mean()
            for m in (one, model)
        ]
        assert errors[1] < errors[0]


def _rotate_image(image: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotate counter-clockwise on screen about the centre, onto a canvas that holds it all.

    Returns the rotated image and the ``(2, 3)`` image -> rotated-image affine.
    """
    h, w = image.shape[:2]
    side = int(np.ceil(np.hypot(h, w)))
    rot = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), degrees, 1.0)
    rot[:, 2] += [(side - w) / 2, (side - h) / 2]
    return cv2.warpAffine(image, rot, (side, side), flags=cv2.INTER_LINEAR), rot


@requires_shared("data/samples/einstein.jpg")
@needs_weights
class TestRotatedRecrop:
    def test_rotated_crop_maps_points_back(self, model: MediaPipe68) -> None:
        """The same crop cut from the image turned 90 deg gives the same points back.

        ``np.rot90`` is lossless, so both crops hold the same pixels: this checks the rotation
        direction, the pixel-centre convention and the mapping of x, y and z to the image.
        """
        image = load_image(SAMPLES / "einstein.jpg")
        gt = read_pts(SAMPLES / "einstein.pts")
        boxes, angles = model.track_crops([image], model.config.crop(landmark_box(gt)[None]))
        assert angles is not None
        points, mesh, _ = model.run_crops([image], boxes, angles)
        # np.rot90 turns the picture 90 deg counter-clockwise: (x, y) -> (y, W - 1 - x)
        rotated = np.ascontiguousarray(np.rot90(image))
        rot = np.array([[[0.0, 1.0, 0.0], [-1.0, 0.0, image.shape[1] - 1.0]]])
        centre = apply_affine(rot, ((boxes[:, :2] + boxes[:, 2:]) / 2)[:, None])[:, 0]
        half = (boxes[:, 2:] - boxes[:, :2]) / 2
        boxes_rot = np.concatenate([centre - half, centre + half], axis=1)
        points_rot, mesh_rot, _ = model.run_crops([rotated], boxes_rot, angles + np.pi / 2)
        np.testing.assert_allclose(apply_affine(rot, points), points_rot, atol=0.05)
        np.testing.assert_allclose(apply_affine(rot, mesh), mesh_rot, atol=0.05)
        interocular = float(np.linalg.norm(gt[45] - gt[36]))
        # measured 7.3 % of the inter-ocular distance on this face
        assert np.linalg.norm(points[0, :, :2] - gt, axis=1).mean() < 0.10 * interocular

    def test_full_policy_on_a_tilted_face(self, model: MediaPipe68) -> None:
        """Predict on the image rotated 15 deg: the re-crop follows, the points map back."""
        image = load_image(SAMPLES / "einstein.jpg")
        gt = read_pts(SAMPLES / "einstein.pts")
        upright = model.predict(image, landmark_box(gt)[None]).points[0]
        rotated, rot = _rotate_image(image, 15.0)
        gt_rot = apply_affine(rot[None], gt[None])[0]
        box_rot = landmark_box(gt_rot)[None]
        _, angles = model.track_crops([rotated], model.config.crop(box_rot))
        _, angles_upright = model.track_crops([image], model.config.crop(landmark_box(gt)[None]))
        assert angles is not None and angles_upright is not None
        # the re-crop turns with the face (the first pass underestimates roll, see the card)
        assert np.rad2deg(angles[0] - angles_upright[0]) == pytest.approx(15.0, abs=7.0)
        pred_rot = model.predict(rotated, box_rot).points[0]
        back = apply_affine(cv2.invertAffineTransform(rot)[None], pred_rot[None, :, :2])[0]
        interocular = float(np.linalg.norm(gt[45] - gt[36]))
        consistency = np.linalg.norm(back - upright[:, :2], axis=1).mean() / interocular
        accuracy = np.linalg.norm(back - gt, axis=1).mean() / interocular
        print(f"tilted-face round trip: {consistency:.3f} / {accuracy:.3f} inter-ocular")
        # Measured 0.053 / 0.089. A wrong sign or centre would be off by tens of percent; the
        # residual tilt of the crops differs (the first pass halves the roll), so the two
        # predictions differ a little.
        assert consistency < 0.08
        assert accuracy < 0.12


# -- whole-network weights (fine-tunes) and the shipped defaults ------------------------------


def test_whole_network_save_round_trip(tmp_path: Path) -> None:
    """A fine-tuned network saved with ``save`` loads by the family name, mesh included."""
    model = create_model("mediapipe-68")
    with torch.no_grad():
        next(model.net.mesh.parameters()).add_(0.01)  # a "fine-tuned" mesh
        model.net.head.weight.mul_(0.5)
    path = model.save(tmp_path / "ft.safetensors", recipe="test")
    loaded = create_model("mediapipe-68", weights=str(path))
    x = torch.rand(2, 3, 192, 192)
    assert torch.equal(loaded.forward_points(x), model.forward_points(x))
    assert load_weights(path)[2]["recipe"] == "test"
    with pytest.raises(BadInputError, match="carries its own mesh"):
        create_model("mediapipe-68", weights=str(path), mesh=str(DEFAULT_WEIGHTS_PATH))


def test_smaller_crop_network_saves_and_loads_its_size(tmp_path: Path) -> None:
    """``input_size=128`` resizes the network; its saved file loads back at 128 px unasked."""
    model = create_model("mediapipe-68", input_size=128, passes=1)
    assert model.config.input_size == 128
    path = model.save(tmp_path / "small.safetensors")
    loaded = create_model("mediapipe-68", weights=str(path))
    assert loaded.config.input_size == 128
    x = torch.rand(2, 3, 128, 128)
    assert torch.equal(loaded.forward_points(x), model.forward_points(x))
    with pytest.raises(ValueError, match="multiple of 64"):
        create_model("mediapipe-68", input_size=100)


@requires_shared("data/300w/helen_testset")
@needs_weights
@pytest.mark.parametrize("threads", [1, 2])
def test_one_pass_runs_faces_in_chunks(threads: int) -> None:
    """One pass: faces share network calls; a face's points still match its own call."""
    batch, loop = _batch_and_loop(create_model("mediapipe-68", passes=1), 5, threads)
    np.testing.assert_allclose(batch.points, np.concatenate([p.points for p in loop]), atol=1e-3)
    assert batch.pose is not None and batch.pose.shape == (5, 3)


def test_defaults_are_registered() -> None:
    base = create_model("base")
    assert base.config.name == "base"
    x = torch.rand(1, 3, 192, 192)
    assert torch.equal(base.forward_points(x), create_model("mediapipe-68").forward_points(x))
    assert {"base", "base+", "fast"} <= set(list_models())


def test_fast_is_the_128_px_one_pass_network() -> None:
    fast = create_model("fast")
    assert isinstance(fast, MediaPipe68)
    assert fast.config.name == "fast" and fast.config.input_size == 128
    assert fast.passes == 1 and not fast.flip_average
    assert create_model("fast", passes=2).passes == 2
    with pytest.raises(NotAvailableError, match="fast weights not found"):
        create_model("fast", weights="/nonexistent/fast.safetensors")


@requires_shared("data/300w/helen_testset")
def test_fast_on_20_helen_faces() -> None:
    """``fast`` keeps most of ``base``'s accuracy on frontal faces (docs/models/fast.md)."""
    faces = _helen(20)
    boxes = np.stack([landmark_box(gt) for _, gt in faces])
    pred = create_model("fast").predict([img for img, _ in faces], boxes).points
    gt = np.stack([gt for _, gt in faces])
    err = 100 * nme(pred[..., :2], gt, interocular_normalizer(gt))
    assert float(err.mean()) < 6.5, err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("name", ["fast", "base"])
def test_gpu_predict_matches_the_cpu(name: str) -> None:
    """The network on a GPU, crops and mapping on the CPU: the same points (cuDNN's TF32
    convolutions move them by a few hundredths of a pixel) and head pose."""
    from skimage import data

    image = data.astronaut()
    box = np.array([[178.0, 86.0, 272.0, 175.0]])  # the tight 68-point box of its face
    cpu = create_model(name).predict(image, box)
    model = create_model(name)
    model.net.to("cuda")
    gpu = model.predict(image, box)
    assert model.device.type == "cuda"
    np.testing.assert_allclose(gpu.points, cpu.points, atol=0.25)
    np.testing.assert_allclose(gpu.pose, cpu.pose, atol=1e-2)
