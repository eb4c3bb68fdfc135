import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from _fakes import BrightBoxDetector
from _shared import SHARED, requires_shared
from mvface.api import FaceLandmarker
from mvface.cli.main import app
from mvface.data.readers.coco_keypoints import read_coco_face68
from mvface.detect.inputs import collect_inputs
from mvface.detect.records import DetectConfig
from mvface.detect.run import run_detect, smooth_faces
from mvface.models import LandmarkModel, Landmarks, ModelConfig


class _Corners(LandmarkModel):
    """Puts the 68 points on a line across the box: positions are known in closed form."""

    def __init__(self) -> None:
        self.config = ModelConfig(name="corners")

    def _predict(self, images, crop_boxes):  # type: ignore[no-untyped-def]
        t = np.linspace(0, 1, 68)[None, :, None]
        return Landmarks(
            points=crop_boxes[:, None, :2] + t * (crop_boxes[:, None, 2:] - crop_boxes[:, None, :2])
        )


def _image(path: Path, box: tuple[int, int, int, int]) -> None:
    img = np.zeros((60, 80, 3), np.uint8)
    x0, y0, x1, y1 = box
    img[y0 : y1 + 1, x0 : x1 + 1] = 255
    cv2.imwrite(str(path), img)


@pytest.fixture
def landmarker() -> FaceLandmarker:
    return FaceLandmarker(_Corners(), BrightBoxDetector())


class TestCollectInputs:
    def test_files_folders_globs_and_missing(self, tmp_path: Path) -> None:
        _image(tmp_path / "a.png", (10, 10, 30, 30))
        (tmp_path / "sub").mkdir()
        _image(tmp_path / "sub" / "b.jpg", (10, 10, 30, 30))
        (tmp_path / "notes.txt").write_text("x")
        files, problems = collect_inputs([tmp_path, str(tmp_path / "*.png"), tmp_path / "nope.jpg"])
        assert files == [tmp_path / "a.png", tmp_path / "sub" / "b.jpg"]  # deduplicated, stable
        assert problems == [f"{tmp_path / 'nope.jpg'}: does not exist"]


class TestRunDetect:
    def test_json_results_and_bad_file(self, tmp_path: Path, landmarker: FaceLandmarker) -> None:
        _image(tmp_path / "a.png", (10, 20, 40, 50))
        (tmp_path / "broken.jpg").write_bytes(b"not an image")
        summary = run_detect(landmarker, [tmp_path], DetectConfig(out=tmp_path / "o", draw=True))
        assert len(summary.results) == 1 and summary.n_faces == 1
        assert len(summary.failed) == 1 and "broken.jpg" in summary.failed[0]
        data = json.loads((tmp_path / "o" / "detections.json").read_text())
        face = data["images"][0]["faces"][0]
        assert face["box"] == [10, 20, 40, 50]
        assert face["landmarks"][0] == [10, 20] and face["landmarks"][-1] == [40, 50]
        assert data["failed"] == summary.failed
        assert len(list((tmp_path / "o" / "overlays").glob("*.png"))) == 1

    def test_csv(self, tmp_path: Path, landmarker: FaceLandmarker) -> None:
        _image(tmp_path / "a.png", (10, 20, 40, 50))
        run_detect(landmarker, [tmp_path / "a.png"], DetectConfig(out=tmp_path / "o", format="csv"))
        with (tmp_path / "o" / "detections.csv").open() as f:
            header = next(csv.reader(f))
            f.seek(0)
            rows = list(csv.DictReader(f))
        assert len(header) == len(set(header))  # DictReader silently keeps the last duplicate
        assert len(rows) == 1
        assert [float(rows[0][f"box_{c}"]) for c in ("x0", "y0", "x1", "y1")] == [10, 20, 40, 50]
        assert float(rows[0]["lm0_x"]) == 10 and float(rows[0]["lm0_y"]) == 20
        assert float(rows[0]["lm67_x"]) == 40 and float(rows[0]["lm67_y"]) == 50
        assert rows[0]["lm0_z"] == "" and rows[0]["pose_yaw_rad"] == ""  # a 2D model, no pose

    def test_coco_round_trips_through_the_reader(
        self, tmp_path: Path, landmarker: FaceLandmarker
    ) -> None:
        _image(tmp_path / "a.png", (10, 20, 40, 50))
        summary = run_detect(
            landmarker, [tmp_path / "a.png"], DetectConfig(out=tmp_path / "o", format="coco")
        )
        ds = read_coco_face68(tmp_path / "o" / "coco.json", one_based=False, image_root=Path("/"))
        assert len(ds.samples) == 1
        np.testing.assert_allclose(
            ds.samples[0].landmarks, summary.results[0].faces.points[0], atol=0.01
        )

    def test_video_frames_and_smoothing(self, tmp_path: Path, landmarker: FaceLandmarker) -> None:
        path = tmp_path / "clip.avi"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (80, 60))
        for i in range(6):
            img = np.zeros((60, 80, 3), np.uint8)
            img[20:41, 10 + (i % 2) * 4 : 31 + (i % 2) * 4] = 255  # jitters by 4 px
            writer.write(img)
        writer.release()
        raw = run_detect(landmarker, [path], DetectConfig(out=tmp_path / "a"))
        smooth = run_detect(landmarker, [path], DetectConfig(out=tmp_path / "b", smooth=0.5))
        assert [r.frame for r in raw.results] == list(range(6))
        jitter = lambda s: np.abs(np.diff([r.faces.points[0, 0, 0] for r in s.results])).mean()  # noqa: E731
        assert jitter(smooth) < 0.7 * jitter(raw)

    def test_smoothing_is_off_by_default(self, landmarker: FaceLandmarker) -> None:
        img = np.zeros((60, 80, 3), np.uint8)
        img[10:30, 10:30] = 255
        faces = landmarker.detect(img)
        before = faces.points.copy()
        np.testing.assert_array_equal(smooth_faces(faces, faces, 0.0).points, before)


def test_config_rejects_bad_values(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="format"):
        DetectConfig(out=tmp_path, format="xml")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="smooth"):
        DetectConfig(out=tmp_path, smooth=1.0)


@requires_shared("data/samples")
def test_cli_detect_on_samples(tmp_path: Path) -> None:
    pytest.importorskip("dlib")
    out = tmp_path / "d"
    args = [
        "detect",
        str(SHARED / "data" / "samples" / "einstein.jpg"),
        str(tmp_path / "missing.jpg"),
    ]
    result = CliRunner().invoke(
        app, [*args, "--model", "dlib", "--detector", "dlib-hog", "--out", str(out), "--draw", "-q"]
    )
    assert result.exit_code == 1, result.output  # one input is missing: listed, batch goes on
    assert "missing.jpg: does not exist" in result.output
    data = json.loads((out / "detections.json").read_text())
    assert len(data["images"]) == 1 and len(data["images"][0]["faces"]) >= 1
    assert len(list((out / "overlays").glob("*.png"))) == 1


def test_cli_detect_runs_the_default_model_when_none_is_named(tmp_path: Path) -> None:
    from skimage import data

    from mvface.models import DEFAULT_MODEL

    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    out = tmp_path / "d"
    result = CliRunner().invoke(app, ["detect", str(photo), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    detections = json.loads((out / "detections.json").read_text())
    assert detections["model"] == DEFAULT_MODEL == "fast"
    faces = detections["images"][0]["faces"]
    assert len(faces) == 1 and np.asarray(faces[0]["landmarks"]).shape[0] == 68


class _CountingCorners(_Corners):
    """:class:`_Corners` that records how many faces each call got, and refuses boxes that
    start at x = 13 (a face no model can predict)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []

    def _predict(self, images, crop_boxes):  # type: ignore[no-untyped-def]
        self.calls.append(len(crop_boxes))
        if np.any(crop_boxes[:, 0] == 13):
            from mvface.errors import BadInputError

            raise BadInputError("corners", "cannot predict this face")
        return super()._predict(images, crop_boxes)


class TestBatchedDetect:
    def _folder(self, tmp_path: Path) -> list[Path]:
        """Seven inputs in name order: faces, a face-less image, a corrupt file, a video."""
        paths = []
        for i, box in enumerate([(10, 20, 40, 50), (5, 5, 20, 30), None, (30, 10, 70, 50)]):
            path = tmp_path / f"{i}_img.png"
            if box is None:
                cv2.imwrite(str(path), np.zeros((60, 80, 3), np.uint8))  # no face
            else:
                _image(path, box)
            paths.append(path)
        bad = tmp_path / "4_bad.png"
        bad.write_bytes(b"not a png")
        video = tmp_path / "5_clip.avi"
        writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (80, 60))
        for _ in range(2):
            img = np.zeros((60, 80, 3), np.uint8)
            img[20:41, 10:31] = 255
            writer.write(img)
        writer.release()
        last = tmp_path / "6_img.png"
        _image(last, (12, 8, 50, 40))
        return [*paths, bad, video, last]

    @pytest.mark.parametrize("batch", [1, 2, 16])
    def test_same_results_in_input_order_at_any_batch(self, tmp_path: Path, batch: int) -> None:
        files = self._folder(tmp_path)
        model = _CountingCorners()
        landmarker = FaceLandmarker(model, BrightBoxDetector())
        seen: list[Path] = []
        summary = run_detect(
            landmarker,
            [tmp_path],
            DetectConfig(out=tmp_path / "o", batch=batch),
            on_file=seen.append,
        )
        assert sorted(seen) == files  # one progress step per file
        sources = [(Path(r.source).name, r.frame) for r in summary.results]
        assert sources == [
            ("0_img.png", None), ("1_img.png", None), ("2_img.png", None), ("3_img.png", None),
            ("5_clip.avi", 0), ("5_clip.avi", 1), ("6_img.png", None),
        ]  # fmt: skip
        assert len(summary.failed) == 1 and "4_bad.png" in summary.failed[0]
        reference = FaceLandmarker(_Corners(), BrightBoxDetector())
        for r in summary.results:
            if r.frame is None:
                want = reference.detect(cv2.imread(r.source)[..., ::-1].copy())
                np.testing.assert_allclose(r.faces.boxes, want.boxes)
                np.testing.assert_allclose(r.faces.points, want.points)
        image_calls = [n for n in model.calls if n != 1] if batch > 1 else model.calls
        if batch == 16:  # the 4 faces of the 5 images in one call, the video's frames alone
            assert 4 in image_calls

    def test_a_face_the_model_refuses_fails_only_its_image(self, tmp_path: Path) -> None:
        for i, box in enumerate([(10, 20, 40, 50), (13, 5, 40, 30), (30, 10, 70, 50)]):
            _image(tmp_path / f"{i}.png", box)
        landmarker = FaceLandmarker(_CountingCorners(), BrightBoxDetector())
        summary = run_detect(landmarker, [tmp_path], DetectConfig(out=tmp_path / "o"))
        assert [Path(r.source).name for r in summary.results] == ["0.png", "2.png"]
        assert summary.failed == [f"{tmp_path / '1.png'}: cannot predict this face"]

    def test_batch_must_be_positive(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="batch"):
            DetectConfig(out=tmp_path, batch=0)


def test_cli_detect_engines_agree_and_cuda_needs_a_gpu(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    import torch
    from skimage import data

    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    points = {}
    for engine in ("onnx", "torch"):
        out = tmp_path / engine
        args = ["detect", str(photo), "--out", str(out), "-q", "--engine", engine, "--batch", "2"]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        faces = json.loads((out / "detections.json").read_text())["images"][0]["faces"]
        points[engine] = np.asarray(faces[0]["landmarks"])
    assert np.abs(points["onnx"] - points["torch"]).max() <= 0.02  # pixels (2 decimals written)
    bad = CliRunner().invoke(app, ["detect", str(photo), "--out", str(tmp_path), "--engine", "x"])
    assert bad.exit_code == 2
    if not torch.cuda.is_available():
        cuda = CliRunner().invoke(
            app, ["detect", str(photo), "--out", str(tmp_path), "--device", "cuda"]
        )
        assert cuda.exit_code == 3 and "no CUDA GPU" in cuda.output
