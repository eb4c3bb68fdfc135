"""The command-line contract on bad input: one line per bad item naming the file, batch commands
go on and count it, exit 0 (all good) / 1 (some items failed) / 2 (usage); no traceback unless
``--debug``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_bad_inputs import GOOD_PTS, png, png_header_only
from typer.testing import CliRunner, Result

from mvface.cli.main import app
from mvface.data.readers.pts import write_pts

runner = CliRunner()


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args))


def bad_images(root: Path) -> dict[str, Path]:
    """One good image without a face and three bad ones."""
    root.mkdir(parents=True, exist_ok=True)
    files = {
        "good": png(root / "wall.png", size=(64, 64)),
        "empty": root / "empty.jpg",
        "corrupt": root / "corrupt.png",
        "bomb": png_header_only(root / "bomb.png", 20000, 20000),
    }
    files["empty"].write_bytes(b"")
    files["corrupt"].write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    return files


def assert_listed_once(output: str, path: Path, needle: str) -> None:
    lines = [ln for ln in output.splitlines() if str(path) in ln]
    assert len(lines) == 1, output
    assert needle in lines[0], lines[0]


def test_detect_skips_bad_images_counts_them_and_exits_1(tmp_path: Path) -> None:
    files = bad_images(tmp_path / "in")
    out = tmp_path / "out"
    result = invoke("detect", str(tmp_path / "in"), "--out", str(out), "--model", "mediapipe-68")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "4 files, 1 images/frames, 0 faces, 3 failed" in result.output.replace("\n", " ")
    assert_listed_once(result.output, files["empty"], "file is empty")
    assert_listed_once(result.output, files["corrupt"], "corrupt.png")
    assert_listed_once(result.output, files["bomb"], "megapixel")
    saved = json.loads((out / "detections.json").read_text())
    assert [Path(i["file"]).name for i in saved["images"]] == ["wall.png"]  # no face: not a failure
    assert len(saved["failed"]) == 3


def test_detect_all_good_exits_0_and_usage_error_exits_2(tmp_path: Path) -> None:
    good = png(tmp_path / "wall.png", size=(64, 64))
    result = invoke("detect", str(good), "--out", str(tmp_path / "o"), "--model", "mediapipe-68")
    assert result.exit_code == 0, result.output
    assert invoke("detect", str(good)).exit_code == 2  # --out missing
    assert invoke("detect", str(good), "--out", "o", "--every", "0").exit_code == 2


def test_full_disk_is_one_line_and_debug_shows_the_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mvface.detect.writers

    def full(path: Path, text: str) -> None:
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(mvface.detect.writers, "atomic_write_text", full)
    good = png(tmp_path / "wall.png", size=(64, 64))
    args = ["detect", str(good), "--out", str(tmp_path / "o"), "--model", "mediapipe-68"]
    result = invoke(*args)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert_listed_once(result.output, tmp_path / "o" / "detections.json", "No space left")
    debug = invoke("--debug", *args)
    assert debug.exit_code == 1 and "Traceback" in debug.output


def test_eval_skips_bad_items_and_exits_1(tmp_path: Path) -> None:
    root = tmp_path / "300w"
    face = np.zeros((96, 96, 3), np.uint8)
    root.mkdir()
    Image.fromarray(face).save(root / "good.png")
    write_pts(root / "good.pts", GOOD_PTS + 20)
    png(root / "nan.png")
    (root / "nan.pts").write_text("version: 1\nn_points: 68\n{\n" + "nan nan\n" * 68 + "}\n")
    (root / "lonely.png").write_bytes(b"")
    out = tmp_path / "report"
    args = ["eval", "--dataset", "300w", "--root", str(root), "--model", "mediapipe-68"]
    result = invoke(*args, "--out", str(out), "--quiet")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "1 faces scored, 2 skipped" in result.output.replace("\n", " ")
    assert_listed_once(result.output, root / "nan.pts", "NaN")
    assert_listed_once(result.output, root / "lonely.png", "no .pts file")
    assert (out / "metrics.json").is_file()


def test_synth_preview_of_a_bad_folder_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "set" / "broken").mkdir(parents=True)
    (tmp_path / "set" / "broken" / "meta.json").write_text("{not json")
    result = invoke("synth-preview", str(tmp_path / "set"), "--out", str(tmp_path / "p.png"))
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert len([ln for ln in result.output.splitlines() if ln.strip()]) == 1, result.output


def test_train_on_bad_data_exits_1_and_bad_config_exits_2(tmp_path: Path) -> None:
    root = tmp_path / "real"
    png(root / "a.png")
    (root / "a.pts").write_text("garbage\n")
    args = ["train", "--data", str(root), "--out", str(tmp_path / "run"), "--quiet"]
    result = invoke(*args, "train.accelerator=cpu", "train.steps=1")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and "no annotated face" in result.output
    assert invoke(*args, "train.no_such_key=1").exit_code == 2
