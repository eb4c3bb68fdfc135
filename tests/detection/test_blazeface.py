"""Tests of the PyTorch port of MediaPipe's BlazeFace detectors (``mvface.detection.blazeface*``).

Parity of the raw network outputs is checked against the TFLite interpreter (``ai-edge-litert``):

* always, against ``fixtures/blazeface_parity.npz`` (2 synthetic uint8 images per model and the
  interpreter's outputs for them);
* live, when the interpreter can run: ``ai_edge_litert`` importable here, or
  ``MVFACE_LITERT_PYTHON`` naming a Python that has it, and the ``.tflite`` files found
  (``MVFACE_BLAZEFACE_SHORT_TFLITE`` / ``MVFACE_BLAZEFACE_FULL_TFLITE`` or an installed wheel).

Regenerate the fixture (numpy + ai-edge-litert in the interpreter's Python)::

    MVFACE_LITERT_PYTHON=/work/mpref-venv/bin/python \\
    MVFACE_BLAZEFACE_SHORT_TFLITE=.../face_detection/face_detection_short_range.tflite \\
    MVFACE_BLAZEFACE_FULL_TFLITE=.../face_detection/face_detection_full_range_sparse.tflite \\
    python tests/detection/test_blazeface.py --regenerate-fixture
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from _litert import LITERT_PYTHON_ENV, litert_python, run_litert_script
from _scripts import load_tool
from _shared import SHARED
from mvface.detection import create_face_detector, list_face_detectors
from mvface.detection.blazeface import (
    CANONICAL_TRANSFORMS,
    BlazeFaceDetections,
    BlazeFaceDetector,
)
from mvface.detection.blazeface_decode import (
    BLAZEFACE_CONFIGS,
    FULL_RANGE_CONFIG,
    KEYPOINT_NAMES,
    SHORT_RANGE_CONFIG,
    Letterbox,
    decode_regressors,
    encode_regressors,
    letterbox,
    non_max_suppression,
    scores_from_logits,
    ssd_anchors,
)
from mvface.detection.blazeface_net import DEFAULT_WEIGHTS_PATHS, BlazeFaceNet, load_blazeface

#: Finds MediaPipe's ``.tflite`` files for the live parity test (the converter's search; the
#: conversion itself is tested in ``tests/tools/test_convert_blazeface.py``).
find_blazeface_tflite = load_tool("convert_blazeface").find_blazeface_tflite

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "blazeface_parity.npz"
SAMPLES = SHARED / "data" / "samples"
PARITY_TOL = 1e-3  # max abs difference on raw regressors (input pixels) and logits
VARIANTS = ("short", "full")


# --------------------------------------------------------------------------------------------
# Reference outputs from the TFLite interpreter (also used to regenerate the fixture)
# --------------------------------------------------------------------------------------------


def synthetic_parity_inputs(size: int) -> np.ndarray:
    """Deterministic test images: seeded noise, and cartoon faces on a gradient.

    Args:
        size: side of the square network input, pixels.

    Returns:
        (2, size, size, 3) uint8 RGB (normalized to [-1, 1] like real images before both
        networks see them).
    """
    rng = np.random.default_rng(20240612)
    noise = rng.integers(0, 256, (size, size, 3))
    v, u = np.mgrid[0:size, 0:size] / (size - 1)
    scene = np.stack([0.3 + 0.4 * u, 0.5 - 0.3 * v, 0.4 + 0.2 * u * v], axis=-1)

    def blob(cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
        r = ((u - cx) / rx) ** 2 + ((v - cy) / ry) ** 2
        return (0.5 - 0.5 * np.tanh(20.0 * (r - 1.0)))[..., None]  # 1 inside, 0 outside

    # Faces of three sizes: skin ellipse, dark eyes, red mouth.
    for cx, cy, s in ((0.3, 0.35, 0.2), (0.72, 0.6, 0.12), (0.25, 0.8, 0.07)):
        scene += blob(cx, cy, 0.75 * s, s) * (np.array([0.9, 0.7, 0.6]) - scene)
        for dx in (-0.3, 0.3):
            scene -= blob(cx + dx * s, cy - 0.2 * s, 0.15 * s, 0.08 * s) * 0.6
        scene -= blob(cx, cy + 0.5 * s, 0.3 * s, 0.07 * s) * np.array([0.2, 0.5, 0.5])
    scene = np.round(255 * np.clip(scene, 0.0, 1.0))
    return np.stack([noise, scene]).astype(np.uint8)


def normalize(images: np.ndarray) -> np.ndarray:
    """(N, S, S, 3) uint8 -> float32 in [-1, 1], as the detectors feed the networks."""
    return (np.asarray(images, np.float32) - 127.5) / 127.5


_LITERT_SCRIPT = """
import sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter

tflite_path, in_path, out_path = sys.argv[1:4]
inputs = np.load(in_path)
interpreter = Interpreter(model_path=tflite_path, num_threads=1)
interpreter.allocate_tensors()
index = interpreter.get_input_details()[0]["index"]
# Two outputs: regressors (1, A, 16) and classificators (1, A, 1).
outputs = sorted(interpreter.get_output_details(), key=lambda d: -int(d["shape"][-1]))
regressors, logits = [], []
for image in inputs:
    interpreter.set_tensor(index, image[None].astype(np.float32))
    interpreter.invoke()
    regressors.append(interpreter.get_tensor(outputs[0]["index"])[0])
    logits.append(interpreter.get_tensor(outputs[1]["index"])[0, :, 0])
np.savez(out_path, regressors=np.stack(regressors), logits=np.stack(logits))
"""


def run_tflite_reference(
    tflite_path: Path, inputs: np.ndarray, python: str
) -> tuple[np.ndarray, np.ndarray]:
    """Run a face detection ``.tflite`` in the TFLite interpreter (a subprocess of ``python``).

    Args:
        tflite_path: the model file.
        inputs: (N, S, S, 3) NHWC float32 in [-1, 1].
        python: interpreter executable with numpy and ai-edge-litert.

    Returns:
        regressors (N, A, 16) and logits (N, A), float32.
    """
    out = run_litert_script(_LITERT_SCRIPT, tflite_path, inputs, python)
    return out["regressors"], out["logits"]


def regenerate_parity_fixture(python: str, out_path: Path = FIXTURE) -> None:
    """Write ``fixtures/blazeface_parity.npz``: per variant, inputs and the interpreter's outputs.

    Keys ``{variant}_inputs`` (2, S, S, 3) uint8, ``{variant}_regressors`` (2, A, 16) and
    ``{variant}_logits`` (2, A) float32.
    """
    arrays = {}
    for variant in VARIANTS:
        tflite = find_blazeface_tflite(variant)
        if tflite is None:
            raise FileNotFoundError(f"{BLAZEFACE_CONFIGS[variant].tflite_file} not found")
        images = synthetic_parity_inputs(BLAZEFACE_CONFIGS[variant].input_size)
        regressors, logits = run_tflite_reference(tflite, normalize(images), python)
        arrays |= {
            f"{variant}_inputs": images,
            f"{variant}_regressors": regressors,
            f"{variant}_logits": logits,
        }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out_path, **arrays)


# --------------------------------------------------------------------------------------------
# Helpers and fixtures
# --------------------------------------------------------------------------------------------


def _run_torch(net: BlazeFaceNet, inputs_nhwc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = torch.from_numpy(np.asarray(inputs_nhwc, dtype=np.float32)).permute(0, 3, 1, 2)
    with torch.no_grad():
        regressors, logits = net(x)
    return regressors.numpy(), logits.numpy()


def _read_rgb(path: Path) -> np.ndarray:
    from mvface.data.image import load_image

    return load_image(path)


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Small convolutions run faster (and steadier on a busy machine) on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def nets() -> dict[str, BlazeFaceNet]:
    for path in DEFAULT_WEIGHTS_PATHS.values():
        if not path.is_file():
            pytest.skip(f"{path} absent")
    return {variant: load_blazeface(variant) for variant in VARIANTS}


@pytest.fixture(scope="module")
def detectors(nets: dict[str, BlazeFaceNet]) -> dict[str, BlazeFaceDetector]:
    return {variant: BlazeFaceDetector(variant) for variant in VARIANTS}


# --------------------------------------------------------------------------------------------
# Network
# --------------------------------------------------------------------------------------------


class TestBlazeFaceNet:
    @pytest.mark.parametrize("variant", VARIANTS)
    def test_forward_shapes_random_init(self, variant: str) -> None:
        config = BLAZEFACE_CONFIGS[variant]
        net = BlazeFaceNet(config).eval()
        size = config.input_size
        with torch.no_grad():
            regressors, logits = net(torch.zeros(2, 3, size, size))
        assert regressors.shape == (2, config.num_anchors, 16)
        assert logits.shape == (2, config.num_anchors)
        assert torch.isfinite(regressors).all() and torch.isfinite(logits).all()
        assert net.anchors.shape == (config.num_anchors, 4)

    def test_parameter_counts(self) -> None:
        counts = [
            sum(p.numel() for p in BlazeFaceNet(c).parameters())
            for c in (SHORT_RANGE_CONFIG, FULL_RANGE_CONFIG)
        ]
        assert counts == [101_390, 508_308]

    def test_rejects_wrong_shape(self) -> None:
        with pytest.raises(ValueError, match="128"):
            BlazeFaceNet(SHORT_RANGE_CONFIG)(torch.zeros(1, 3, 192, 192))

    def test_state_dict_has_no_anchors(self) -> None:
        # Anchors are computed from the config, never stored with the weights.
        assert not any("anchors" in k for k in BlazeFaceNet().state_dict())

    @pytest.mark.parametrize("variant", VARIANTS)
    def test_shipped_weights_metadata(self, variant: str) -> None:
        path = DEFAULT_WEIGHTS_PATHS[variant]
        if not path.is_file():
            pytest.skip(f"{path} absent")
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            meta = f.metadata()
            keys = set(f.keys())
        assert meta["variant"] == variant
        assert meta["license"] == "Apache-2.0 (MediaPipe face detection)"
        assert len(meta["source_sha256"]) == 64
        assert keys == set(BlazeFaceNet(BLAZEFACE_CONFIGS[variant]).state_dict())

    def test_load_wrong_variant(self) -> None:
        from mvface.errors import BadInputError

        if not DEFAULT_WEIGHTS_PATHS["short"].is_file():
            pytest.skip("weights absent")
        with pytest.raises(BadInputError, match="short"):
            load_blazeface("full", DEFAULT_WEIGHTS_PATHS["short"])


# --------------------------------------------------------------------------------------------
# Parity with the TFLite interpreter
# --------------------------------------------------------------------------------------------


class TestParity:
    @pytest.mark.parametrize("variant", VARIANTS)
    def test_fixture(self, nets: dict[str, BlazeFaceNet], variant: str) -> None:
        with np.load(FIXTURE) as data:
            images = data[f"{variant}_inputs"]
            regressors_ref, logits_ref = data[f"{variant}_regressors"], data[f"{variant}_logits"]
        size = BLAZEFACE_CONFIGS[variant].input_size
        assert images.shape == (2, size, size, 3) and images.dtype == np.uint8
        regressors, logits = _run_torch(nets[variant], normalize(images))
        assert np.abs(regressors - regressors_ref).max() < PARITY_TOL
        assert np.abs(logits - logits_ref).max() < PARITY_TOL

    @pytest.mark.parametrize("variant", VARIANTS)
    def test_fixture_inputs_are_reproducible(self, variant: str) -> None:
        with np.load(FIXTURE) as data:
            stored = data[f"{variant}_inputs"].astype(int)
        fresh = synthetic_parity_inputs(BLAZEFACE_CONFIGS[variant].input_size).astype(int)
        # Within one grey level: libm's tanh may differ in the last bit across platforms.
        assert np.abs(stored - fresh).max() <= 1

    def test_fixture_is_small(self) -> None:
        assert FIXTURE.stat().st_size < 1_000_000

    @pytest.mark.parametrize("variant", VARIANTS)
    def test_live(self, nets: dict[str, BlazeFaceNet], variant: str) -> None:
        python = litert_python()
        tflite = find_blazeface_tflite(variant)
        if python is None or tflite is None:
            pytest.skip(f"no TFLite interpreter ({LITERT_PYTHON_ENV}) or .tflite file")
        size = BLAZEFACE_CONFIGS[variant].input_size
        rng = np.random.default_rng(11)
        batch = [rng.uniform(-1, 1, (1, size, size, 3)), normalize(synthetic_parity_inputs(size))]
        if (SAMPLES / "dlib_examples" / "2009_004587.jpg").is_file():
            pixels, _ = letterbox(_read_rgb(SAMPLES / "dlib_examples" / "2009_004587.jpg"), size)
            batch.append(normalize(pixels[None]))
        inputs = np.concatenate(batch).astype(np.float32)
        regressors_ref, logits_ref = run_tflite_reference(tflite, inputs, python)
        regressors, logits = _run_torch(nets[variant], inputs)
        assert np.abs(regressors - regressors_ref).max() < PARITY_TOL
        assert np.abs(logits - logits_ref).max() < PARITY_TOL


# --------------------------------------------------------------------------------------------
# Anchors, decoding, NMS
# --------------------------------------------------------------------------------------------


def _closed_form_anchors(layers: list[tuple[int, int]]) -> np.ndarray:
    """Fixed-size anchors for (cells per side, anchors per cell) groups: centres at
    ((x + 0.5) / n, (y + 0.5) / n), rows then columns then anchors."""
    rows = []
    for n, per_cell in layers:
        y, x = np.divmod(np.arange(n * n), n)
        centres = np.stack([(x + 0.5) / n, (y + 0.5) / n], axis=1)
        rows.append(np.repeat(centres, per_cell, axis=0))
    centres = np.concatenate(rows)
    return np.hstack([centres, np.ones_like(centres)])


class TestSsdAnchors:
    def test_short_range(self) -> None:
        anchors = SHORT_RANGE_CONFIG.anchors()
        assert anchors.shape == (896, 4) and anchors.dtype == np.float32
        np.testing.assert_allclose(anchors, _closed_form_anchors([(16, 2), (8, 6)]), atol=1e-7)
        assert anchors[:3].tolist() == [
            [0.03125, 0.03125, 1.0, 1.0],
            [0.03125, 0.03125, 1.0, 1.0],
            [0.09375, 0.03125, 1.0, 1.0],
        ]

    def test_full_range(self) -> None:
        anchors = FULL_RANGE_CONFIG.anchors()
        assert anchors.shape == (2304, 4)
        np.testing.assert_allclose(anchors, _closed_form_anchors([(48, 1)]), atol=1e-7)

    def test_anchor_sizes_when_not_fixed(self) -> None:
        anchors = ssd_anchors((128, 128), (8, 16, 16, 16), fixed_anchor_size=False)
        s0 = 0.1484375
        s1 = s0 + (0.75 - s0) / 3
        # Layer 0: scale s0, then the interpolated anchor sqrt(s0 * s1) (aspect ratio 1).
        np.testing.assert_allclose(anchors[0, 2:], [s0, s0], rtol=1e-6)
        np.testing.assert_allclose(anchors[1, 2:], [np.sqrt(s0 * s1)] * 2, rtol=1e-6)
        # Last layer's interpolated anchor uses scale_next = 1.
        np.testing.assert_allclose(anchors[-1, 2:], [np.sqrt(0.75)] * 2, rtol=1e-6)


class TestDecode:
    def test_round_trip(self) -> None:
        config = SHORT_RANGE_CONFIG
        anchors = torch.from_numpy(config.anchors())
        raw = torch.randn(3, config.num_anchors, 16, generator=torch.Generator().manual_seed(0))
        boxes, keypoints = decode_regressors(raw * 20, anchors, config)
        assert boxes.shape == (3, 896, 4) and keypoints.shape == (3, 896, 6, 2)
        again = encode_regressors(boxes, keypoints, anchors, config)
        torch.testing.assert_close(again, raw * 20, atol=1e-4, rtol=1e-5)

    def test_zero_regressors_give_anchor_centres(self) -> None:
        config = FULL_RANGE_CONFIG
        anchors = torch.from_numpy(config.anchors())
        boxes, keypoints = decode_regressors(torch.zeros(config.num_anchors, 16), anchors, config)
        torch.testing.assert_close(boxes[:, :2], anchors[:, :2])
        torch.testing.assert_close(boxes[:, 2:], anchors[:, :2])
        torch.testing.assert_close(keypoints, anchors[:, None, :2].expand(-1, 6, -1))

    def test_units_are_input_pixels(self) -> None:
        # A raw box 64 px wide, centred 16 px right of the first anchor of the 128 px model.
        config = SHORT_RANGE_CONFIG
        anchors = torch.from_numpy(config.anchors())
        raw = torch.zeros(config.num_anchors, 16)
        raw[0, :4] = torch.tensor([16.0, 0.0, 64.0, 32.0])
        boxes, _ = decode_regressors(raw, anchors, config)
        centre = 4.0 + 16.0  # first anchor centre: 0.5 cells of 8 px
        expected = torch.tensor([centre - 32, 4 - 16, centre + 32, 4 + 16]) / 128
        torch.testing.assert_close(boxes[0], expected)

    def test_scores_clip_and_sigmoid(self) -> None:
        scores = scores_from_logits(torch.tensor([-1e4, 0.0, 1e4]), clip=100.0)
        torch.testing.assert_close(scores, torch.sigmoid(torch.tensor([-100.0, 0.0, 100.0])))


class TestNonMaxSuppression:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 30]], float)
    scores = np.array([0.9, 0.6, 0.8, 0.5])
    keypoints = np.arange(4 * 6 * 2, dtype=float).reshape(4, 6, 2)

    def test_weighted(self) -> None:
        boxes, scores, keypoints = non_max_suppression(self.boxes, self.scores, self.keypoints)
        # IoU(A, B) = 81 / 119 > 0.3: merged with weights 0.9, 0.6; IoU(A, D) = 1 / 3 > 0.3 too.
        group = [0, 1, 3]
        w = self.scores[group][:, None]
        np.testing.assert_allclose(boxes[0], (self.boxes[group] * w).sum(0) / w.sum())
        np.testing.assert_allclose(
            keypoints[0], (self.keypoints[group] * w[:, :, None]).sum(0) / w.sum()
        )
        np.testing.assert_allclose(scores, [0.9, 0.8])  # the best score of each group
        np.testing.assert_allclose(boxes[1], self.boxes[2])

    def test_plain(self) -> None:
        boxes, scores, keypoints = non_max_suppression(
            self.boxes, self.scores, self.keypoints, weighted=False
        )
        np.testing.assert_allclose(boxes, self.boxes[[0, 2]])
        np.testing.assert_allclose(scores, [0.9, 0.8])
        np.testing.assert_allclose(keypoints, self.keypoints[[0, 2]])

    def test_threshold_is_strict(self) -> None:
        # IoU(A, D) = 1/3: merged below 1/3, kept apart at exactly 1/3.
        boxes, _, _ = non_max_suppression(
            self.boxes[[0, 3]], self.scores[[0, 3]], self.keypoints[[0, 3]], 1 / 3, weighted=False
        )
        assert len(boxes) == 2

    def test_empty(self) -> None:
        boxes, scores, keypoints = non_max_suppression(
            np.zeros((0, 4)), np.zeros(0), np.zeros((0, 6, 2))
        )
        assert boxes.shape == (0, 4) and scores.shape == (0,) and keypoints.shape == (0, 6, 2)


# --------------------------------------------------------------------------------------------
# Letterbox
# --------------------------------------------------------------------------------------------


class TestLetterbox:
    def test_round_trip(self) -> None:
        _, box = letterbox(np.zeros((100, 200, 3), np.uint8), 128)
        assert box == Letterbox(scale=0.64, offset_x=0.0, offset_y=32.0, size=128)
        points = np.array([[0.0, 0.0], [199.0, 99.0], [12.3, 45.6]])
        np.testing.assert_allclose(box.to_image(box.to_input(points)), points, atol=1e-12)
        # The image's outer pixel edges land on the letterbox edges.
        np.testing.assert_allclose(
            box.to_input(np.array([[-0.5, -0.5], [199.5, 99.5]])), [[0.0, 0.25], [1.0, 0.75]]
        )

    def test_content_lands_where_mapped(self) -> None:
        image = np.zeros((90, 240, 3), np.uint8)
        image[30:50, 150:190] = 255  # a bright rectangle, centre (169.5, 39.5) in 0-based pixels
        pixels, box = letterbox(image, 192)
        assert pixels.shape == (192, 192, 3) and pixels.dtype == np.uint8
        weight = pixels[..., 0].astype(float)
        yy, xx = np.mgrid[0:192, 0:192]
        centroid = [(xx * weight).sum() / weight.sum(), (yy * weight).sum() / weight.sum()]
        expected = box.to_input(np.array([169.5, 39.5])) * 192 - 0.5  # input pixel indices
        np.testing.assert_allclose(centroid, expected, atol=0.05)
        # Padding rows (above and below the 72-row image band) are zero.
        assert pixels[:60].max() == 0 and pixels[132:].max() == 0

    def test_rejects_bad_image(self) -> None:
        from mvface.errors import BadInputError

        with pytest.raises(BadInputError):
            letterbox(np.zeros((10, 10), np.uint8), 128)
        with pytest.raises(BadInputError):
            letterbox(np.zeros((10, 10, 3), np.float32), 128)


# --------------------------------------------------------------------------------------------
# Detector
# --------------------------------------------------------------------------------------------


class TestBlazeFaceDetector:
    def test_registered(self) -> None:
        assert {"blazeface-short", "blazeface-full"} <= set(list_face_detectors())

    def test_create_by_name(self, detectors: dict[str, BlazeFaceDetector]) -> None:
        detector = create_face_detector("blazeface-full")
        assert isinstance(detector, BlazeFaceDetector)
        assert detector.name == "blazeface-full"
        assert detector.to_canonical == CANONICAL_TRANSFORMS["full"]

    @pytest.mark.parametrize("variant", VARIANTS)
    def test_black_image_has_no_faces(
        self, detectors: dict[str, BlazeFaceDetector], variant: str
    ) -> None:
        faces = detectors[variant].detect(np.zeros((240, 320, 3), np.uint8))
        assert isinstance(faces, BlazeFaceDetections)
        assert faces.boxes.shape == (0, 4) and faces.scores.shape == (0,)
        assert faces.keypoints.shape == (0, 6, 2)

    @pytest.mark.shared_data
    @pytest.mark.parametrize(
        ("variant", "photo", "at_least"),
        [("full", "2008_002470.jpg", 5), ("short", "2009_004587.jpg", 2)],
    )
    def test_multi_face_photo(
        self, detectors: dict[str, BlazeFaceDetector], variant: str, photo: str, at_least: int
    ) -> None:
        path = SAMPLES / "dlib_examples" / photo
        if not path.is_file():
            pytest.skip(f"{path} absent")
        image = _read_rgb(path)
        detector = detectors[variant]
        raw = detector.detect_raw(image)
        assert len(raw.boxes) >= at_least
        assert np.all(np.diff(raw.scores) <= 0) and raw.scores.min() >= detector.min_score
        height, width = image.shape[:2]
        assert raw.boxes[:, [0, 2]].min() > -10 and raw.boxes[:, [0, 2]].max() < width + 10
        assert raw.boxes[:, [1, 3]].min() > -10 and raw.boxes[:, [1, 3]].max() < height + 10
        # Keypoints inside (or at the edge of) their box; upright faces: the subject's right eye
        # is on the image left, eyes above the mouth.
        right_eye = KEYPOINT_NAMES.index("right_eye")
        left_eye = KEYPOINT_NAMES.index("left_eye")
        mouth = KEYPOINT_NAMES.index("mouth_center")
        assert np.all(raw.keypoints[:, right_eye, 0] < raw.keypoints[:, left_eye, 0])
        assert np.all(raw.keypoints[:, left_eye, 1] < raw.keypoints[:, mouth, 1])
        centres = (raw.boxes[:, :2] + raw.boxes[:, 2:]) / 2
        sizes = raw.boxes[:, 2:] - raw.boxes[:, :2]
        assert np.all(np.abs(raw.keypoints[:, :4] - centres[:, None]) < sizes[:, None])
        # detect(): same faces, canonical boxes.
        canonical = detector.detect(image)
        np.testing.assert_allclose(canonical.boxes, detector.to_canonical(raw.boxes))
        np.testing.assert_allclose(canonical.keypoints, raw.keypoints)


# --------------------------------------------------------------------------------------------
# Regenerating the fixture
# --------------------------------------------------------------------------------------------


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Regenerate fixtures/blazeface_parity.npz.")
    parser.add_argument("--regenerate-fixture", action="store_true", required=True)
    parser.add_argument("--python", default=None, help="Python with ai-edge-litert")
    args = parser.parse_args()
    python = args.python or litert_python()
    if python is None:
        parser.error(f"need --python or {LITERT_PYTHON_ENV}")
    regenerate_parity_fixture(python)
    print(f"wrote {FIXTURE} ({FIXTURE.stat().st_size} bytes)")
