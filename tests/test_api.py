"""mvface.load: the shipped models find a face and give 68 points and a head pose, offline."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

import mvface
from mvface.models import DEFAULT_MODEL


@pytest.mark.parametrize("name", ["base", "base+", "fast"])
def test_shipped_models_detect_points_and_pose(name: str) -> None:
    image = data.astronaut()  # ships with scikit-image: a frontal face
    landmarker = mvface.load(name)
    faces = landmarker.detect(image)
    assert len(faces) == 1 and faces.points.shape == (1, 68, 3)
    assert faces.pose is not None and faces.pose.shape == (1, 3)
    _pitch, yaw, roll = np.degrees(faces.pose[0])
    assert abs(yaw) < 20 and abs(roll) < 20
    # the face box a detector gives and the points agree: the points fill the box
    x0, y0, x1, y1 = faces.boxes[0]
    centre = faces.points[0, :, :2].mean(0)
    assert x0 < centre[0] < x1 and y0 < centre[1] < y1
    again = landmarker.predict(image, faces.boxes)
    np.testing.assert_allclose(again.points, faces.points)


def test_load_defaults_to_the_speed_first_model() -> None:
    assert DEFAULT_MODEL == "fast"
    assert mvface.load().model.config.name == "fast"


def test_detect_takes_paths_pil_images_grey_rgba_and_float(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    image = data.astronaut()
    path = tmp_path / "astronaut.png"
    Image.fromarray(image).save(path)
    landmarker = mvface.load("fast")
    reference = landmarker.detect(image)
    rgba = np.concatenate([image, np.full((*image.shape[:2], 1), 255, np.uint8)], axis=2)
    for other in (str(path), path, Image.open(path), image / 255.0, rgba):
        faces = landmarker.detect(other)
        np.testing.assert_allclose(faces.points, reference.points, atol=1e-3)
    grey = landmarker.detect(image.mean(axis=2).astype(np.uint8))
    assert len(grey) == 1 and grey.points.shape == (1, 68, 3)


def test_load_runs_onnx_runtime_on_the_cpu_and_torch_when_asked() -> None:
    pytest.importorskip("onnxruntime")
    image = data.astronaut()
    auto = mvface.load("fast")
    eager = mvface.load("fast", engine="torch")
    assert (auto.engine, eager.engine) == ("onnx", "torch")
    a, b = auto.detect(image), eager.detect(image)
    np.testing.assert_allclose(a.boxes, b.boxes)
    assert np.abs(a.points - b.points).max() < 0.02  # pixels
    assert a.pose is not None and b.pose is not None
    assert np.abs(a.pose - b.pose).max() < 1e-3  # radians


def test_load_on_cuda_without_a_gpu_is_one_line_not_available() -> None:
    import torch

    from mvface.errors import NotAvailableError

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(NotAvailableError, match="no CUDA GPU") as info:
        mvface.load("fast", device="cuda")
    assert "\n" not in str(info.value)


def test_detect_batch_gives_each_image_its_faces_in_order() -> None:
    image = data.astronaut()
    blank = np.zeros((64, 80, 3), np.uint8)  # no face
    landmarker = mvface.load("fast", engine="torch")
    batch = landmarker.detect_batch([image, blank, image[:, ::-1]])
    single = [landmarker.detect(im) for im in (image, blank, image[:, ::-1])]
    assert [len(f) for f in batch] == [len(f) for f in single] == [1, 0, 1]
    for got, want in zip(batch, single, strict=True):
        np.testing.assert_allclose(got.boxes, want.boxes)
        np.testing.assert_allclose(got.points, want.points, atol=1e-3)
        if want.pose is not None:
            np.testing.assert_allclose(got.pose, want.pose, atol=1e-5)


@pytest.mark.parametrize("name", ["blazeface", "blazeface-short", "blazeface-single-scale"])
def test_the_blazeface_detectors_run_in_onnx_runtime_and_find_the_same_faces(name: str) -> None:
    pytest.importorskip("onnxruntime")
    from mvface.api import detector_on_engine
    from mvface.detection import create_face_detector
    from mvface.models.onnx_engine import OrtModule

    image = data.astronaut()
    eager = create_face_detector(name)
    onnx = detector_on_engine(create_face_detector(name), "auto", "cpu")
    nets = [getattr(d, "net", None) for d in (onnx, *vars(onnx).values())]
    nets += [getattr(d, "net", None) for d in getattr(onnx, "detectors", [])]
    assert any(isinstance(n, OrtModule) for n in nets)
    a, b = eager.detect(image), onnx.detect(image)
    assert len(a.boxes) == len(b.boxes) >= 1
    np.testing.assert_allclose(a.boxes, b.boxes, atol=0.05)  # pixels
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)
    # torch (and a detector without a network) stays as it is
    same = create_face_detector(name)
    assert detector_on_engine(same, "torch") is same
