import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from mvface.cli.main import app
from mvface.data.readers.pts import write_pts

runner = CliRunner()

#: A "+" model whose weights are certainly absent.
MISSING_PLUS = "base+=base+:/nonexistent/base_plus.safetensors"


def face_points(cx: float = 80.0, cy: float = 75.0, s: float = 45.0) -> np.ndarray:
    """A rough frontal 68-point layout in pixels (jaw arc, brows, nose, eyes, lips)."""
    t = np.linspace(0, np.pi, 17)
    jaw = np.c_[cx - s * np.cos(t), cy + 0.9 * s * np.sin(t)]
    brows = np.c_[np.linspace(cx - 0.75 * s, cx + 0.75 * s, 10), np.full(10, cy - 0.45 * s)]
    nose = np.c_[
        np.r_[np.full(4, cx), np.linspace(cx - 9, cx + 9, 5)], np.linspace(cy - 12, cy + 9, 9)
    ]
    a = np.linspace(np.pi, -np.pi, 6, endpoint=False)
    eyes = [np.c_[cx + d * 20 + 7 * np.cos(a), cy - 11 + 3 * np.sin(a)] for d in (-1, 1)]
    b12, b8 = (
        np.linspace(np.pi, -np.pi, 12, endpoint=False),
        np.linspace(np.pi, -np.pi, 8, endpoint=False),
    )
    lips = [
        np.c_[cx + 16 * np.cos(b12), cy + 22 + 5 * np.sin(b12)],
        np.c_[cx + 11 * np.cos(b8), cy + 22 + 2 * np.sin(b8)],
    ]
    return np.concatenate([jaw, brows, nose, *eyes, *lips])


@pytest.fixture
def pts_folder(tmp_path: Path) -> Path:
    root = tmp_path / "faces"
    root.mkdir()
    pts = face_points()
    image = np.full((160, 160, 3), 70, np.uint8)
    cv2.ellipse(image, (80, 85), (50, 60), 0, 0, 360, (130, 160, 200), -1)
    cv2.imwrite(str(root / "one.png"), image)
    write_pts(root / "one.pts", pts)
    return root


def test_help_lists_demo_and_compare() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "demo" in result.output and "compare" in result.output
    assert "not implemented yet" not in runner.invoke(app, ["demo", "--help"]).output


def test_demo_folder_skips_missing_model_and_writes_results(
    pts_folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    args = ["demo", "--input", str(pts_folder), "--gt-format", "pts", "--output", str(out)]
    result = runner.invoke(app, [*args, "--models", f"base,{MISSING_PLUS}", "-q"])
    assert result.exit_code == 1, result.output  # a model asked for was not run
    skipped = [ln for ln in result.stderr.splitlines() if "skipped model: base+:" in ln]
    assert len(skipped) == 1 and "not found" in skipped[0]
    data = json.loads((out / "results.json").read_text())
    assert [m["label"] for m in data["models"]] == ["base"]
    assert "base" in data["images"][0]["faces"][0]["nme_percent"]
    assert (out / "000_one.jpg").is_file() and (out / "overview.jpg").is_file()


def test_demo_without_any_loadable_model_exits_3(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--output", str(tmp_path), "--models", MISSING_PLUS])
    assert result.exit_code == 3
    assert "no model could be loaded" in result.output
    assert "Traceback" not in result.output


def test_compare_draws_figure(pts_folder: Path, tmp_path: Path) -> None:
    fig = tmp_path / "fig.jpg"
    args = ["compare", "--input", str(pts_folder), "--gt", "pts", "--output", str(fig)]
    result = runner.invoke(app, [*args, "--models", f"base,{MISSING_PLUS},mp=mediapipe-68", "-q"])
    assert result.exit_code == 1, result.output  # a model asked for was skipped
    assert "skipped model: base+" in result.stderr
    assert "one" in result.stdout  # the NME table names the image
    assert cv2.imread(str(fig)) is not None
    report = json.loads(fig.with_suffix(".json").read_text())
    assert [m["label"] for m in report["models"]] == ["base", "mp"]


@pytest.mark.parametrize(
    ("models", "output", "message", "code"),
    [
        ("nope", "fig.png", "not a registered model", 2),  # usage error
        ("base", "fig.txt", ".png or .jpg", 1),
        ("base,x=base", "fig.png", "", 1),
    ],
)
def test_compare_bad_input_is_one_line(
    pts_folder: Path, tmp_path: Path, models: str, output: str, message: str, code: int
) -> None:
    args = ["compare", "--input", str(pts_folder), "--output", str(tmp_path / output)]
    result = runner.invoke(app, [*args, "--models", models, "--names", "missing", "-q"])
    assert result.exit_code == code
    assert "Traceback" not in result.output
    assert message in result.output
    if not message:  # valid models, but no sample named "missing": nothing to draw
        assert "no usable image" in result.output
