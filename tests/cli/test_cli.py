import json

import pytest
from typer.testing import CliRunner

from _shared import SHARED, requires_shared
from mvface.cli.main import app

runner = CliRunner()


def test_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    commands = ["eval", "eval-synthetic", "detect", "export", "train", "finetune", "synth"]
    for name in [*commands, "demo", "compare", "bench"]:
        assert name in result.output


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("mvface ")


def test_eval_unknown_dataset_is_one_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = runner.invoke(
        app,
        ["eval", "--dataset", "nope", "--root", str(tmp_path), "--model", "dlib", "--out", "o"],
    )
    assert result.exit_code == 2  # a usage error
    assert "unknown dataset 'nope'" in result.output
    assert "Traceback" not in result.output


def test_eval_missing_root_is_one_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    missing = tmp_path / "missing"
    args = ["eval", "--dataset", "300w", "--root", str(missing), "--model", "dlib"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "does not exist" in result.output


def test_eval_debug_shows_traceback(tmp_path) -> None:  # type: ignore[no-untyped-def]
    args = ["--debug", "eval", "--dataset", "300w", "--root", str(tmp_path / "x")]
    result = runner.invoke(app, [*args, "--model", "dlib", "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "Traceback" in result.output


@requires_shared("data/aflw2000_3d_dev")
def test_eval_aflw2000_dlib_writes_report(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("dlib")
    out = tmp_path / "e"
    root = SHARED / "data" / "aflw2000_3d_dev"
    args = ["eval", "--dataset", "aflw2000-3d", "--root", str(root), "--model", "dlib"]
    result = runner.invoke(app, [*args, "--limit", "12", "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dataset"] == "aflw2000-3d" and metrics["model"] == "dlib"
    assert metrics["n"] == 12
    assert set(metrics["nme_bins"]) == {"0-30", "30-60", "60-90"}
    assert 1.0 < metrics["nme_mean"] < 15.0
    assert "ground_truth" in metrics["protocol"]
    for name in ["ced.png", "per_image.csv", "predictions.npy"]:
        assert (out / name).stat().st_size > 0
    assert "NME" in result.output
