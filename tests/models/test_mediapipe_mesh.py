"""Tests of the PyTorch port of MediaPipe's face mesh (``mvface.models.mediapipe_mesh``).

Parity is checked against outputs of the TFLite interpreter (``ai-edge-litert``):

* always, against ``fixtures/facemesh_parity.npz`` (3 synthetic 192 x 192 inputs and the
  interpreter's outputs for them);
* live, when the interpreter can run: ``ai_edge_litert`` importable here, or
  ``MVFACE_LITERT_PYTHON`` naming a Python that has it (e.g. a separate venv, so the interpreter's
  protobuf never enters the main one), and ``face_landmark.tflite`` found
  (``MVFACE_FACEMESH_TFLITE`` or an installed mediapipe wheel).

The conversion itself (``tools/convert_facemesh.py``) is tested in
``tests/tools/test_convert_facemesh.py``.

Regenerate the fixture (numpy + ai-edge-litert in the interpreter's Python)::

    MVFACE_LITERT_PYTHON=/work/mpref-venv/bin/python \\
    MVFACE_FACEMESH_TFLITE=.../mediapipe/modules/face_landmark/face_landmark.tflite \\
    python tests/models/test_mediapipe_mesh.py --regenerate-fixture
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from _litert import LITERT_PYTHON_ENV, litert_python, run_litert_script
from _scripts import load_tool
from _shared import SHARED
from mvface.models.mediapipe_mesh import (
    DEFAULT_WEIGHTS_PATH,
    FACEMESH_CONFIG,
    FaceMeshNet,
    build_facemesh,
    head_kernel,
    interpolation_matrix,
    resize_facemesh,
)

#: Finds MediaPipe's ``face_landmark.tflite`` for the live parity test (the converter's search).
find_mediapipe_tflite = load_tool("convert_facemesh").find_mediapipe_tflite

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "facemesh_parity.npz"
SAMPLES = SHARED / "data" / "samples"
PARITY_TOL_PX = 1e-3  # max abs difference allowed on mesh values (pixels) and on the logit

# MediaPipe mesh vertices of the outer eye corners (subject's right, subject's left) and the
# iBUG 68 points they correspond to (0-based).
MESH_OUTER_EYE_CORNERS = (33, 263)
IBUG_OUTER_EYE_CORNERS = (36, 45)


# --------------------------------------------------------------------------------------------
# Reference outputs from the TFLite interpreter (also used to regenerate the fixture)
# --------------------------------------------------------------------------------------------


def synthetic_parity_inputs() -> np.ndarray:
    """Deterministic test crops: seeded noise, smooth gradients, a drawn cartoon face.

    Returns:
        (3, 192, 192, 3) float16 NHWC RGB in [0, 1] (float16 keeps the fixture small; the exact
        same values, cast to float32, go to both networks).
    """
    size = FACEMESH_CONFIG.input_size
    rng = np.random.default_rng(20240611)
    noise = rng.random((size, size, 3))
    v, u = np.mgrid[0:size, 0:size] / (size - 1)
    gradients = np.stack([u, v, 0.5 + 0.5 * np.sin(2 * np.pi * (1.5 * u + 0.75 * v))], axis=-1)

    # Cartoon face: skin ellipse, dark eyes, a mouth, on a grey background; blurred edges.
    def blob(cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
        r = ((u - cx) / rx) ** 2 + ((v - cy) / ry) ** 2
        return 0.5 - 0.5 * np.tanh(20.0 * (r - 1.0))  # 1 inside, 0 outside

    face = np.full((size, size, 3), 0.35)
    face += blob(0.5, 0.52, 0.32, 0.42)[..., None] * (np.array([0.85, 0.65, 0.55]) - 0.35)
    for cx in (0.36, 0.64):
        face -= blob(cx, 0.42, 0.06, 0.03)[..., None] * 0.6
    face -= blob(0.5, 0.72, 0.12, 0.03)[..., None] * np.array([0.3, 0.5, 0.5])
    inputs = np.stack([noise, gradients, face])
    return np.clip(inputs, 0.0, 1.0).astype(np.float16)


_LITERT_SCRIPT = """
import sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter

tflite_path, in_path, out_path = sys.argv[1:4]
inputs = np.load(in_path)
interpreter = Interpreter(model_path=tflite_path, num_threads=1)
interpreter.allocate_tensors()
index = interpreter.get_input_details()[0]["index"]
outputs = {d["name"]: d["index"] for d in interpreter.get_output_details()}
mesh, logit = [], []
for image in inputs:
    interpreter.set_tensor(index, image[None].astype(np.float32))
    interpreter.invoke()
    mesh.append(interpreter.get_tensor(outputs["conv2d_21"]).reshape(468, 3))
    logit.append(interpreter.get_tensor(outputs["conv2d_31"]).reshape(()))
np.savez(out_path, mesh=np.stack(mesh), logit=np.stack(logit))
"""


def run_tflite_reference(
    tflite_path: Path, inputs: np.ndarray, python: str
) -> tuple[np.ndarray, np.ndarray]:
    """Run ``face_landmark.tflite`` in the TFLite interpreter (in a subprocess of ``python``).

    Args:
        tflite_path: MediaPipe's ``face_landmark.tflite``.
        inputs: (N, 192, 192, 3) NHWC RGB in [0, 1].
        python: interpreter executable with numpy and ai-edge-litert.

    Returns:
        mesh (N, 468, 3) float32 pixels of the crop, logit (N,) float32.
    """
    out = run_litert_script(_LITERT_SCRIPT, tflite_path, inputs, python)
    return out["mesh"], out["logit"]


def regenerate_parity_fixture(tflite_path: Path, python: str, out_path: Path = FIXTURE) -> None:
    """Write ``fixtures/facemesh_parity.npz``: synthetic inputs and the interpreter's outputs.

    Args:
        tflite_path: MediaPipe's ``face_landmark.tflite``.
        python: interpreter executable with numpy and ai-edge-litert.
        out_path: the ``.npz`` to write (keys ``inputs`` float16 NHWC, ``mesh``, ``logit``).
    """
    inputs = synthetic_parity_inputs()
    mesh, logit = run_tflite_reference(tflite_path, inputs, python)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out_path, inputs=inputs, mesh=mesh, logit=logit)


# --------------------------------------------------------------------------------------------
# Helpers and fixtures
# --------------------------------------------------------------------------------------------


def _run_torch(net: FaceMeshNet, inputs_nhwc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = torch.from_numpy(np.asarray(inputs_nhwc, dtype=np.float32)).permute(0, 3, 1, 2)
    with torch.no_grad():
        mesh, logit = net(x)
    return mesh.numpy(), logit.numpy()


def _read_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB image."""
    image = cv2.imread(str(path))
    assert image is not None, path
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _read_pts(path: Path) -> np.ndarray:
    """iBUG ``.pts`` (1-based pixel centres) -> (68, 2) continuous coordinates (pixel edges at
    integers, the convention of the mesh output)."""
    text = path.read_text()
    values = text[text.index("{") + 1 : text.index("}")].split()
    return np.asarray(values, dtype=np.float64).reshape(-1, 2) - 0.5


def _upright_crop(
    image: np.ndarray, points: np.ndarray, scale: float = FACEMESH_CONFIG.crop_scale
) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe-style crop: eyes level, square of ``scale`` x the long side of the point box.

    Args:
        image: (H, W, 3) uint8 RGB.
        points: (68, 2) iBUG points, continuous pixel coordinates.
        scale: crop side / long side of the rotated point box.

    Returns:
        crop (192, 192, 3) uint8 and the points in continuous pixels of the crop (68, 2).
    """
    size = FACEMESH_CONFIG.input_size
    right, left = points[IBUG_OUTER_EYE_CORNERS[0]], points[IBUG_OUTER_EYE_CORNERS[1]]
    angle = np.arctan2(left[1] - right[1], left[0] - right[0])
    rot = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    upright = points @ rot.T
    low, high = upright.min(0), upright.max(0)
    factor = size / (scale * (high - low).max())
    A = factor * rot
    b = size / 2 - factor * (low + high) / 2
    # cv2 works in pixel-centre coordinates: x_c = x - 0.5.
    M = np.hstack([A, (A @ np.full(2, 0.5) + b - 0.5)[:, None]])
    crop = cv2.warpAffine(image, M, (size, size), flags=cv2.INTER_LINEAR)
    return crop, points @ A.T + b


# --------------------------------------------------------------------------------------------
# Architecture
# --------------------------------------------------------------------------------------------


class TestFaceMeshNet:
    def test_smoke_random_init(self) -> None:
        net = FaceMeshNet().eval()
        mesh, logit = net(torch.rand(2, 3, 192, 192))
        assert mesh.shape == (2, 468, 3) and logit.shape == (2,)
        assert 5e5 < sum(p.numel() for p in net.parameters()) < 7e5

    def test_rejects_wrong_shape(self) -> None:
        with pytest.raises(ValueError, match="192"):
            FaceMeshNet()(torch.rand(1, 3, 128, 128))

    def test_shipped_weights_forward(self, facemesh: FaceMeshNet) -> None:
        x = torch.rand(3, 3, 192, 192, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            mesh, logit = facemesh(x)
        assert mesh.shape == (3, 468, 3) and logit.shape == (3,)
        assert mesh.dtype == torch.float32
        assert torch.isfinite(mesh).all() and torch.isfinite(logit).all()

    def test_batch_equals_loop(self, facemesh: FaceMeshNet) -> None:
        x = torch.rand(4, 3, 192, 192, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            mesh, logit = facemesh(x)
            for i in range(len(x)):
                mesh_i, logit_i = facemesh(x[i : i + 1])
                torch.testing.assert_close(mesh[i : i + 1], mesh_i, atol=1e-4, rtol=1e-6)
                torch.testing.assert_close(logit[i : i + 1], logit_i, atol=1e-4, rtol=1e-6)

    def test_backward_finite_gradients(self, facemesh: FaceMeshNet) -> None:
        net = copy.deepcopy(facemesh).train()
        x = torch.rand(2, 3, 192, 192, generator=torch.Generator().manual_seed(2))
        x.requires_grad_(True)
        mesh, logit = net(x)
        loss = mesh.square().mean() + logit.sum()
        loss.backward()
        for name, param in net.named_parameters():
            assert param.grad is not None, name
            assert torch.isfinite(param.grad).all(), name
        assert x.grad is not None and torch.isfinite(x.grad).all()

    def test_safetensors_metadata(self) -> None:
        if not DEFAULT_WEIGHTS_PATH.is_file():
            pytest.skip(f"{DEFAULT_WEIGHTS_PATH} absent")
        from safetensors import safe_open

        with safe_open(str(DEFAULT_WEIGHTS_PATH), "pt") as f:
            meta = f.metadata()
            keys = set(f.keys())
        assert meta["license"] == "Apache-2.0 (MediaPipe face mesh)"
        assert len(meta["source_sha256"]) == 64
        assert keys == set(FaceMeshNet().state_dict())


# --------------------------------------------------------------------------------------------
# Parity with the TFLite interpreter
# --------------------------------------------------------------------------------------------


class TestParity:
    def test_fixture(self, facemesh: FaceMeshNet) -> None:
        with np.load(FIXTURE) as data:
            inputs, mesh_ref, logit_ref = data["inputs"], data["mesh"], data["logit"]
        assert inputs.shape == (3, 192, 192, 3)
        mesh, logit = _run_torch(facemesh, inputs)
        assert np.abs(mesh - mesh_ref).max() < PARITY_TOL_PX
        assert np.abs(logit - logit_ref).max() < PARITY_TOL_PX

    def test_fixture_inputs_are_reproducible(self) -> None:
        with np.load(FIXTURE) as data:
            # Within an fp16 step: libm's sin/tanh may differ in the last bit across platforms.
            np.testing.assert_allclose(data["inputs"], synthetic_parity_inputs(), atol=1e-3)

    def test_live(self, facemesh: FaceMeshNet, tflite_path: Path) -> None:
        python = litert_python()
        if python is None:
            pytest.skip(
                f"no TFLite interpreter (install ai-edge-litert or set {LITERT_PYTHON_ENV})"
            )
        rng = np.random.default_rng(7)
        inputs = [rng.random((2, 192, 192, 3), dtype=np.float32), synthetic_parity_inputs()]
        if (SAMPLES / "einstein.jpg").is_file():
            image = _read_rgb(SAMPLES / "einstein.jpg")
            crop, _ = _upright_crop(image, _read_pts(SAMPLES / "einstein.pts"))
            inputs.append(crop[None].astype(np.float32) / 255.0)
        batch = np.concatenate([np.asarray(x, dtype=np.float32) for x in inputs])
        mesh_ref, logit_ref = run_tflite_reference(tflite_path, batch, python)
        mesh, logit = _run_torch(facemesh, batch)
        assert np.abs(mesh - mesh_ref).max() < PARITY_TOL_PX
        assert np.abs(logit - logit_ref).max() < PARITY_TOL_PX


class TestInterpolationMatrix:
    @pytest.mark.parametrize(("source", "target"), [(2, 3), (3, 2), (1, 3), (3, 3), (2, 4)])
    def test_rows_are_convex(self, source: int, target: int) -> None:
        matrix = interpolation_matrix(source, target)
        assert matrix.shape == (target, source)
        assert (matrix >= 0).all()
        torch.testing.assert_close(matrix.sum(1), torch.ones(target, dtype=torch.float64))

    def test_two_to_three_is_linear(self) -> None:
        expected = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]], dtype=torch.float64)
        torch.testing.assert_close(interpolation_matrix(2, 3), expected)

    def test_same_size_is_identity(self) -> None:
        torch.testing.assert_close(interpolation_matrix(3, 3), torch.eye(3, dtype=torch.float64))


class TestResizeFacemesh:
    def test_head_kernel(self) -> None:
        assert (head_kernel(192), head_kernel(128), head_kernel(64)) == (3, 2, 1)
        for bad in (0, 32, 100, 160):
            with pytest.raises(ValueError, match="multiple of 64"):
                head_kernel(bad)

    def test_build_smoke(self) -> None:
        net = build_facemesh(128).eval()
        mesh, logit = net(torch.rand(2, 3, 128, 128))
        assert mesh.shape == (2, 468, 3) and logit.shape == (2,)
        with pytest.raises(ValueError, match="128"):
            net(torch.rand(1, 3, 192, 192))

    def test_mismatched_heads_are_refused(self) -> None:
        config = dataclasses.replace(FACEMESH_CONFIG, input_size=128)
        with pytest.raises(ValueError, match="output_kernel=2"):
            FaceMeshNet(config=config)

    def test_keeps_every_other_weight(self) -> None:
        net = FaceMeshNet()
        small = resize_facemesh(net, 128)
        assert small.config.input_size == 128
        for key, value in net.state_dict().items():
            if ".output." not in key:
                assert torch.equal(small.state_dict()[key], value), key

    def test_output_conv_on_interpolated_features(self) -> None:
        """Closed form: on a 3 x 3 map that interpolates a 2 x 2 one, the 2 x 2 kernel gives
        the old head's output, the mesh scaled by 128 / 192 and the face logit unchanged."""
        torch.manual_seed(0)
        net = FaceMeshNet()
        small = resize_facemesh(net, 128)
        features = torch.randn(3, 32, 2, 2)
        matrix = interpolation_matrix(2, 3).float()
        upsampled = torch.einsum("pi,ncij,qj->ncpq", matrix, features, matrix)
        with torch.no_grad():
            for head, scale in (("mesh_head", 128 / 192), ("score_head", 1.0)):
                old = getattr(net, head).output(upsampled)
                new = getattr(small, head).output(features)
                torch.testing.assert_close(new, scale * old, atol=1e-5, rtol=1e-5)

    def test_round_trip_of_the_same_size_is_exact(self) -> None:
        net = FaceMeshNet()
        again = resize_facemesh(net, 192)
        for key, value in net.state_dict().items():
            torch.testing.assert_close(again.state_dict()[key], value, atol=0, rtol=0)


# --------------------------------------------------------------------------------------------
# The mesh lands on a real face
# --------------------------------------------------------------------------------------------


@pytest.mark.shared_data
class TestOnRealFace:
    def test_einstein_eye_corners(self, facemesh: FaceMeshNet) -> None:
        if not (SAMPLES / "einstein.jpg").is_file():
            pytest.skip(f"{SAMPLES / 'einstein.jpg'} absent")
        image = _read_rgb(SAMPLES / "einstein.jpg")
        crop, points = _upright_crop(image, _read_pts(SAMPLES / "einstein.pts"))
        mesh, logit = _run_torch(facemesh, crop[None].astype(np.float32) / 255.0)
        corners_mesh = mesh[0, list(MESH_OUTER_EYE_CORNERS), :2]
        corners_ibug = points[list(IBUG_OUTER_EYE_CORNERS)]
        interocular = np.linalg.norm(corners_ibug[1] - corners_ibug[0])  # ~62 px of the crop
        errors = np.linalg.norm(corners_mesh - corners_ibug, axis=1)
        # Measured 3.9 and 4.3 px; MediaPipe's corner vertices sit slightly inside iBUG's.
        assert errors.max() < 8.0, errors
        assert errors.max() < 0.15 * interocular
        assert 1 / (1 + np.exp(-logit[0])) > 0.9  # face present


# --------------------------------------------------------------------------------------------
# Regenerating the fixture
# --------------------------------------------------------------------------------------------


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Regenerate fixtures/facemesh_parity.npz.")
    parser.add_argument("--regenerate-fixture", action="store_true", required=True)
    parser.add_argument("--tflite", type=Path, default=None, help="face_landmark.tflite")
    parser.add_argument("--python", default=None, help="Python with ai-edge-litert")
    args = parser.parse_args()
    tflite = args.tflite or find_mediapipe_tflite()
    python = args.python or litert_python()
    if tflite is None or python is None:
        parser.error(
            f"need --tflite (or MVFACE_FACEMESH_TFLITE) and --python ({LITERT_PYTHON_ENV})"
        )
    regenerate_parity_fixture(Path(tflite), python)
    print(f"wrote {FIXTURE}")
