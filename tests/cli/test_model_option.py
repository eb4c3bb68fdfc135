"""Every command that takes a model takes the same spec: NAME[:WEIGHTS] or LABEL=NAME[:WEIGHTS]."""

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from mvface.cli.main import app
from mvface.data.readers.pts import write_pts
from mvface.detection import core as detection_core
from mvface.detection.core import Detections, FaceDetector, register_face_detector
from mvface.models import LandmarkModel, Landmarks, ModelConfig
from mvface.models._registry import _MODELS, register_model, register_model_deprecations
from mvface.models.boxes import BoxTransform

runner = CliRunner()

MODEL = "test-recorder"
OLD_NAME = "test-recorder-old"
DETECTOR = "test-middle"


class _Centre(LandmarkModel):
    """All 68 points at the box centre: a model that costs nothing."""

    def __init__(self) -> None:
        self.config = ModelConfig(name=MODEL)

    def _predict(self, images, boxes):  # type: ignore[no-untyped-def]
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2
        return Landmarks(points=np.repeat(centre[:, None, :], 68, axis=1))


class _Middle(FaceDetector):
    """One face in the middle of every image."""

    name = DETECTOR
    to_canonical = BoxTransform()

    def detect_raw(self, image: np.ndarray) -> Detections:
        h, w = image.shape[:2]
        box = np.array([[0.2 * w, 0.2 * h, 0.8 * w, 0.8 * h]])
        return Detections(boxes=box, scores=np.ones(1))


@pytest.fixture
def built() -> Iterator[list[str | None]]:
    """Registers MODEL (and OLD_NAME for it); yields the weights of every model built."""
    weights_seen: list[str | None] = []

    def factory(weights: str | None = None, **cfg: object) -> LandmarkModel:
        weights_seen.append(weights)
        return _Centre()

    register_model(MODEL)(factory)
    register_model_deprecations({OLD_NAME: MODEL})
    register_face_detector(DETECTOR, _Middle)
    yield weights_seen
    _MODELS.unregister(MODEL)  # OLD_NAME with it
    detection_core._DETECTORS.unregister(DETECTOR)


@pytest.fixture
def faces(tmp_path: Path) -> Path:
    """Two grey 64 px images with 68-point .pts files."""
    root = tmp_path / "faces"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        cv2.imwrite(str(root / f"f{i}.png"), np.full((64, 64, 3), 120, np.uint8))
        write_pts(root / f"f{i}.pts", rng.uniform(16, 48, (68, 2)))
    return root


#: One timed call of each kind, torch only, no detectors.
BENCH_ONCE = ["--engine", "torch", "--threads", "1", "--repeats", "1", "--warmup", "0"]
BENCH_ONCE += ["--batch", "1", "--batch-repeats", "1", "--no-detectors"]


def command(name: str, spec: str, faces: Path, out: Path) -> list[str]:
    """The cheapest invocation of ``name`` with ``--model spec``."""
    gt = ["--input", str(faces), "--gt-format", "pts", "--detector", DETECTOR, "-q"]
    return {
        "detect": ["detect", str(faces), "--out", str(out), "--detector", DETECTOR, "-q"],
        "eval": ["eval", "--dataset", "folder-pts", "--root", str(faces), "--out", str(out)],
        "demo": ["demo", *gt, "--output", str(out)],
        "compare": ["compare", *gt, "--output", str(out / "figure.png")],
        "bench": ["bench", "inference", *BENCH_ONCE, "--faces", str(faces), "--no-results"],
        "export": ["export", "onnx", "--out", str(out / "model.onnx")],
    }[name] + ["--model", spec]


COMMANDS = ["detect", "eval", "demo", "compare", "bench", "export"]


@pytest.mark.parametrize("name", COMMANDS)
@pytest.mark.parametrize(
    ("spec", "weights"), [(MODEL, None), (f"mine={MODEL}:/w/x=1:2.pt", "/w/x=1:2.pt")]
)
def test_every_command_takes_a_model_spec(
    built: list[str | None], faces: Path, tmp_path: Path, name: str, spec: str, weights: str | None
) -> None:
    result = runner.invoke(app, command(name, spec, faces, tmp_path / "out"))
    assert built == [weights], result.output
    if name == "export":  # the recorder has no network to export; the spec was understood
        assert "cannot be exported" in result.output
    else:
        assert result.exit_code == 0, result.output
    if name in ("demo", "compare", "bench") and "=" in spec:
        assert "mine" in result.output  # shown under its label


@pytest.mark.parametrize("name", ["detect", "eval", "export"])
def test_weights_in_the_spec_and_in_weights_is_a_usage_error(
    built: list[str | None], faces: Path, tmp_path: Path, name: str
) -> None:
    args = command(name, f"{MODEL}:/w", faces, tmp_path / "out")
    result = runner.invoke(app, [*args, "--weights", "/v"])
    assert result.exit_code == 2, result.output
    assert "--weights" in result.output and "Traceback" not in result.output
    assert built == []


@pytest.mark.parametrize("name", ["detect", "eval", "export"])
def test_weights_option_alone_still_works(
    built: list[str | None], faces: Path, tmp_path: Path, name: str
) -> None:
    runner.invoke(app, [*command(name, MODEL, faces, tmp_path / "out"), "--weights", "/v"])
    assert built == ["/v"]


@pytest.mark.parametrize("name", COMMANDS)
def test_a_spec_naming_no_model_is_a_usage_error(
    built: list[str | None], faces: Path, tmp_path: Path, name: str
) -> None:
    result = runner.invoke(app, command(name, "nope:/w", faces, tmp_path / "out"))
    assert result.exit_code == 2, result.output
    assert "not a registered model; available: 3ddfa-v2" in result.output
    assert built == []


@pytest.mark.parametrize("name", COMMANDS)
def test_an_old_name_warns_on_one_stderr_line(
    built: list[str | None], faces: Path, tmp_path: Path, name: str
) -> None:
    result = runner.invoke(app, command(name, f"{OLD_NAME}:/w", faces, tmp_path / "out"))
    assert built == ["/w"], result.output
    lines = [line for line in result.stderr.splitlines() if "deprecated" in line]
    assert lines == [f"warning: model name '{OLD_NAME}' is deprecated; use '{MODEL}'"]
    assert "deprecated" not in result.stdout
