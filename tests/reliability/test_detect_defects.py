"""``mvface detect`` and ``mvface.load().detect()`` against a hostile user: every input is either
processed or listed with its reason, memory per image/frame is bounded, output files are
self-explaining, a full disk loses nothing computed, printed names cannot forge lines."""

from __future__ import annotations

import csv
import errno
import json
import os
import struct
import subprocess
import sys
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner, Result

import mvface.cli.detect_cmd
import mvface.data.image
from _fakes import BrightBoxDetector
from mvface.api import FaceLandmarker
from mvface.cli._common import shown
from mvface.cli.main import app
from mvface.data.image import load_image, to_rgb_array
from mvface.detect.inputs import find_inputs, iter_video_frames
from mvface.detect.records import DetectConfig
from mvface.detect.run import run_detect
from mvface.errors import BadInputError
from mvface.models import LandmarkModel, Landmarks, ModelConfig

runner = CliRunner()


class _Diagonal3D(LandmarkModel):
    """68 points on the box diagonal with z = index, bowed so that a head pose can be fitted."""

    def __init__(self) -> None:
        self.config = ModelConfig(name="diagonal")

    def _predict(self, images, crop_boxes):  # type: ignore[no-untyped-def]
        t = np.linspace(0, 1, 68)[None, :, None]
        xy = crop_boxes[:, None, :2] + t * (crop_boxes[:, None, 2:] - crop_boxes[:, None, :2])
        xy[:, 1:-1, 1] += 3.0 * np.sin(np.linspace(0, 12, 68)[1:-1])  # ends stay on the box
        z = np.broadcast_to(np.arange(68.0)[None, :, None], (len(crop_boxes), 68, 1))
        return Landmarks(points=np.concatenate([xy, z], axis=2))


@pytest.fixture
def landmarker() -> FaceLandmarker:
    return FaceLandmarker(_Diagonal3D(), BrightBoxDetector())


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, landmarker: FaceLandmarker):  # type: ignore[no-untyped-def]
    """Run ``mvface detect`` in-process with the closed-form landmarker instead of a network."""
    monkeypatch.setattr(mvface.cli.detect_cmd, "load", lambda *a, **k: landmarker)

    def invoke(*args: str) -> Result:
        return runner.invoke(app, ["detect", *args, "-q"])

    return invoke


def face(path: Path, box: tuple[int, int, int, int] = (10, 20, 40, 50)) -> Path:
    img = np.zeros((60, 80, 3), np.uint8)
    x0, y0, x1, y1 = box
    img[y0 : y1 + 1, x0 : x1 + 1] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)
    return path


def lines_naming(text: str, needle: str) -> list[str]:
    return [ln for ln in text.splitlines() if needle in ln]


class TestCsvColumns:
    def test_unique_self_explaining_columns_with_z_and_pose(
        self, tmp_path: Path, landmarker: FaceLandmarker
    ) -> None:
        face(tmp_path / "a.png")
        cfg = DetectConfig(out=tmp_path, format="csv")
        summary = run_detect(landmarker, [tmp_path / "a.png"], cfg)
        with (tmp_path / "detections.csv").open() as f:
            header = next(csv.reader(f))
            f.seek(0)
            row = next(csv.DictReader(f))
        assert len(header) == len(set(header))
        assert [float(row[k]) for k in ("box_x0", "box_y0", "box_x1", "box_y1")] == [10, 20, 40, 50]
        assert (float(row["lm0_x"]), float(row["lm0_y"]), float(row["lm0_z"])) == (10, 20, 0)
        assert float(row["lm67_z"]) == 67
        pose = [float(row[f"pose_{a}_rad"]) for a in ("pitch", "yaw", "roll")]
        expected = summary.results[0].faces.pose
        assert expected is not None and np.isfinite(expected).all()
        np.testing.assert_allclose(pose, expected[0], atol=1e-4)


class TestEveryInputProcessedOrListed:
    def test_special_entries_in_a_folder_are_listed(self, tmp_path: Path) -> None:
        root = tmp_path / "in"
        face(root / "good.png")
        os.mkfifo(root / "pipe.jpg")
        os.symlink(root / "gone.png", root / "dangling.png")
        os.symlink(root / "loop_b.png", root / "loop_a.png")
        os.symlink(root / "loop_a.png", root / "loop_b.png")
        os.symlink(root, root / "again")  # a folder link back to its parent
        inputs = find_inputs([root])
        assert inputs.files == [root / "good.png"]
        problems = "\n".join(inputs.problems)
        assert "pipe.jpg: is a named pipe" in problems
        assert "dangling.png: broken symbolic link" in problems
        assert "loop_a.png: symbolic link loop" in problems
        assert f"{root / 'again'}: symbolic link loop" in problems
        assert len(inputs.problems) == 5

    def test_linked_folders_and_gifs_are_processed(
        self, tmp_path: Path, landmarker: FaceLandmarker
    ) -> None:
        elsewhere = face(tmp_path / "elsewhere" / "linked.png").parent
        root = tmp_path / "in"
        face(root / "still.png")
        Image.open(root / "still.png").save(root / "anim.gif")
        os.symlink(elsewhere, root / "link")
        (root / "notes.txt").write_text("not an image")
        inputs = find_inputs([root])
        assert inputs.files == [root / "anim.gif", root / "link" / "linked.png", root / "still.png"]
        assert inputs.problems == [] and inputs.ignored == [root / "notes.txt"]
        summary = run_detect(landmarker, [root], DetectConfig(out=tmp_path / "o"))
        assert summary.failed == [] and summary.n_faces == 3  # the GIF's first frame included

    def test_unreadable_folder_and_argument_are_listed_and_the_batch_goes_on(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli
    ) -> None:  # type: ignore[no-untyped-def]
        root = tmp_path / "in"
        face(root / "good.png")
        face(root / "locked" / "hidden.png")
        locked_file = face(tmp_path / "locked.png")
        real_scandir, real_stat = os.scandir, os.stat

        def scandir(path):  # type: ignore[no-untyped-def]
            if Path(path) == root / "locked":  # as for a chmod 000 folder (tests may run as root)
                raise PermissionError(errno.EACCES, "Permission denied", str(path))
            return real_scandir(path)

        def stat(path, *args, **kwargs):  # type: ignore[no-untyped-def]
            if Path(path) == locked_file:
                raise PermissionError(errno.EACCES, "Permission denied", str(path))
            return real_stat(path, *args, **kwargs)

        monkeypatch.setattr(os, "scandir", scandir)
        monkeypatch.setattr(os, "stat", stat)
        result = cli(str(locked_file), str(root), "--out", str(tmp_path / "o"))
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
        assert (
            len(lines_naming(result.stderr, "locked: permission denied (folder not searched)")) == 1
        )
        assert len(lines_naming(result.stderr, "locked.png: permission denied")) == 1
        saved = json.loads((tmp_path / "o" / "detections.json").read_text())
        assert [Path(i["file"]).name for i in saved["images"]] == ["good.png"]

    def test_a_fifo_named_like_a_video_does_not_hang(self, tmp_path: Path) -> None:
        fifo = tmp_path / "x.mp4"
        os.mkfifo(fifo)
        code = (
            "import sys; from mvface.detect.inputs import iter_video_frames; "
            "from mvface.errors import BadInputError\n"
            "try:\n    list(iter_video_frames(__import__('pathlib').Path(sys.argv[1])))\n"
            "except BadInputError as e:\n    print(e)"
        )
        try:
            done = subprocess.run(
                [sys.executable, "-c", code, str(fifo)], capture_output=True, text=True, timeout=60
            )
        except subprocess.TimeoutExpired:
            pytest.fail("reading a FIFO named .mp4 blocked")
        assert "x.mp4: is not a regular file" in done.stdout, done.stdout + done.stderr


class TestBoundedMemory:
    def test_16_bit_image_is_converted_without_whole_image_float_copies(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "deep.png"
        ramp = (np.arange(1500 * 1200, dtype=np.uint32) % 65536).astype(np.uint16)
        Image.fromarray(ramp.reshape(1200, 1500)).save(path)
        tracemalloc.start()
        try:
            img = load_image(path)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert img.shape == (1200, 1500, 3) and img[0, 257, 0] == 1  # round(257 / 257)
        # the result (3 bytes a pixel) and band-sized temporaries; a float64 copy alone is 8
        assert peak < img.nbytes + 24 * 2**20, peak

    def test_decoded_bytes_are_limited_from_the_header(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        grey8, grey16 = tmp_path / "g8.png", tmp_path / "g16.png"
        Image.fromarray(np.zeros((100, 100), np.uint8)).save(grey8)
        Image.fromarray(np.zeros((100, 100), np.uint16)).save(grey16)
        monkeypatch.setattr(mvface.data.image, "MAX_IMAGE_BYTES", 15_000)  # 1.5 bytes a pixel
        assert load_image(grey8).shape == (100, 100, 3)
        with pytest.raises(BadInputError, match=r"g16.png: image is 100x100 .* MB limit"):
            load_image(grey16)

    @pytest.mark.parametrize(("name", "codec"), [("clip.avi", "MJPG"), ("clip.mp4", "mp4v")])
    def test_video_frames_over_the_limit_are_refused_before_decoding(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, codec: str
    ) -> None:
        path = tmp_path / name
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), 10, (80, 60))
        for _ in range(3):
            writer.write(np.zeros((60, 80, 3), np.uint8))
        writer.release()
        assert len(list(iter_video_frames(path))) == 3
        monkeypatch.setattr(mvface.data.image, "MAX_PIXELS", 4000)  # 80 x 60 = 4800
        read = []
        monkeypatch.setattr(cv2.VideoCapture, "read", lambda cap: read.append(1) or (False, None))
        with pytest.raises(BadInputError, match=rf"{name}: video frames are 80x60"):
            next(iter_video_frames(path))
        assert read == []  # refused from the declared size, before any frame is decoded

    def test_read_ahead_and_landmark_batches_hold_a_bounded_number_of_bytes(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, landmarker: FaceLandmarker
    ) -> None:
        import concurrent.futures

        import mvface.detect.run

        class Synchronous(concurrent.futures.Executor):
            """Runs each job when submitted, so what is decoded when is deterministic."""

            def __init__(self, *args: object, **kwargs: object) -> None:
                pass

            def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def, override]
                future: concurrent.futures.Future[object] = concurrent.futures.Future()
                future.set_result(fn(*args, **kwargs))
                return future

        decoded: list[int] = []
        decode = mvface.detect.run._decode
        monkeypatch.setattr(mvface.detect.run, "ThreadPoolExecutor", Synchronous)
        monkeypatch.setattr(
            mvface.detect.run, "_decode", lambda i, p: decoded.append(i) or decode(i, p)
        )
        held_when_detecting: list[int] = []
        find = landmarker.detector.detect
        monkeypatch.setattr(
            landmarker.detector,
            "detect",
            lambda image: held_when_detecting.append(len(decoded)) or find(image),
        )
        batches: list[int] = []
        landmark = landmarker.model.predict
        monkeypatch.setattr(
            landmarker.model,
            "predict",
            lambda images, boxes: batches.append(len(boxes)) or landmark(images, boxes),
        )
        files = [face(tmp_path / f"{k}.png") for k in range(5)]  # 14 400 bytes decoded each
        monkeypatch.setattr(mvface.detect.run, "HELD_BYTES", 20_000)  # room for one more image
        summary = run_detect(landmarker, files, DetectConfig(out=tmp_path / "o", batch=16))
        assert summary.n_faces == 5 and summary.failed == []
        assert held_when_detecting == [2, 3, 4, 5, 5]  # the image in hand and one read ahead
        assert batches == [2, 2, 1]  # a batch stops once it holds HELD_BYTES

    def test_avi_header_declaring_huge_frames_is_refused_unopened(self, tmp_path: Path) -> None:
        avih = struct.pack("<14I", 40000, 0, 0, 0, 1, 0, 1, 0, 30000, 20000, 0, 0, 0, 0)
        hdrl = b"hdrl" + b"avih" + struct.pack("<I", len(avih)) + avih
        body = b"AVI " + b"LIST" + struct.pack("<I", len(hdrl)) + hdrl
        path = tmp_path / "bomb.avi"
        path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
        with pytest.raises(BadInputError, match=r"bomb.avi: video frames are 30000x20000"):
            next(iter_video_frames(path))


class TestApiInputs:
    def test_every_image_form_gives_the_same_faces(
        self, tmp_path: Path, landmarker: FaceLandmarker
    ) -> None:
        path = face(tmp_path / "a.png")
        rgb = load_image(path)
        grey = rgb[..., 0]
        rgba = np.concatenate([rgb, np.full((*grey.shape, 1), 255, np.uint8)], axis=2)
        forms = {
            "str": str(path),
            "path": path,
            "pil": Image.open(path),
            "grey": grey,
            "grey1": grey[..., None],
            "rgba": rgba,
            "float": rgb.astype(np.float32) / 255,
            "uint16": rgb.astype(np.uint16) * 257,
            "strided": np.asfortranarray(rgb),
        }
        reference = landmarker.detect(rgb)
        assert len(reference) == 1
        for name, image in forms.items():
            faces = landmarker.detect(image)  # type: ignore[arg-type]
            np.testing.assert_allclose(faces.boxes, reference.boxes, err_msg=name)
            np.testing.assert_allclose(faces.points, reference.points, err_msg=name)

    @pytest.mark.parametrize(
        ("image", "needle"),
        [
            (np.zeros((3, 20, 30)), r"got shape \(3, 20, 30\) \(channels first"),
            (np.full((20, 30, 3), 200.0), r"float image values must be in \[0, 1\], found \[200"),
            (np.full((20, 30, 3), -3, np.int32), r"values must be in \[0, 255\].*found \[-3"),
            (np.zeros((20, 30, 2), np.uint8), r"got shape \(20, 30, 2\)"),
            (np.zeros((0, 30, 3), np.uint8), r"no pixels"),
        ],
    )
    def test_errors_say_what_was_given(
        self, landmarker: FaceLandmarker, image: np.ndarray, needle: str
    ) -> None:
        with pytest.raises(BadInputError, match=needle):
            landmarker.detect(image)

    def test_a_correct_image_is_not_copied(self) -> None:
        rgb = np.zeros((4, 5, 3), np.uint8)
        assert to_rgb_array(rgb) is rgb

    def test_python_dash_m_mvface_runs_the_command(self) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "mvface", "--version"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0 and done.stdout.startswith("mvface "), done.stderr


class TestOverlaysAndStreams:
    def test_a_second_draw_replaces_only_its_own_overlays(self, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
        out = tmp_path / "o"
        first = [face(tmp_path / n) for n in ("a.png", "b.png", "c.png")]
        assert cli(*map(str, first), "--out", str(out), "--draw").exit_code == 0
        mine = out / "overlays" / "00000_keep.png"  # a user's file, named like an overlay
        mine.write_bytes(b"user data")
        second = face(tmp_path / "d.png")
        result = cli(str(second), "--out", str(out), "--draw")
        assert result.exit_code == 0, result.output
        pngs = sorted(p.name for p in (out / "overlays").glob("*.png"))
        assert pngs == ["00000_d.png", "00000_keep.png"]
        assert mine.read_bytes() == b"user data"

    def test_summary_on_stdout_and_failures_on_stderr(self, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
        good = face(tmp_path / "a.png")
        result = cli(str(good), str(tmp_path / "missing.png"), "--out", str(tmp_path / "o"))
        assert result.exit_code == 1
        assert "1 files, 1 images/frames, 1 faces, 1 failed" in result.stdout
        assert "missing.png" not in result.stdout
        assert len(lines_naming(result.stderr, "missing.png: does not exist")) == 1

    def test_full_disk_while_drawing_keeps_the_results_and_names_the_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli
    ) -> None:  # type: ignore[no-untyped-def]
        import mvface.detect.overlays

        def full(path: Path, data: bytes) -> None:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))

        monkeypatch.setattr(mvface.detect.overlays, "atomic_write_bytes", full)
        images = [face(tmp_path / n) for n in ("a.png", "b.png")]
        out = tmp_path / "o"
        result = cli(*map(str, images), "--out", str(out), "--draw")
        assert result.exit_code == 1
        assert "Traceback" not in result.output
        line = lines_naming(result.stderr, "No space left on device")
        assert len(line) == 1 and "00000_a.png" in line[0]
        saved = json.loads((out / "detections.json").read_text())
        assert len(saved["images"]) == 2 and all(len(i["faces"]) == 1 for i in saved["images"])

    def test_a_failing_write_names_the_output_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli
    ) -> None:  # type: ignore[no-untyped-def]
        import mvface._io

        def fsync(fd: int) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")  # as write(2) does: no name

        monkeypatch.setattr(mvface._io.os, "fsync", fsync)
        out = tmp_path / "o"
        result = cli(str(face(tmp_path / "a.png")), "--out", str(out))
        assert result.exit_code == 1
        assert len(lines_naming(result.stderr, f"{out / 'detections.json'}: No space left")) == 1


class TestPrintedNames:
    def test_a_newline_in_a_file_name_cannot_forge_lines(self, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
        evil = tmp_path / "x\n  failed: forged.png"
        evil.write_bytes(b"not an image")
        markup = tmp_path / "[red]y.png"  # Rich markup would swallow the tag
        markup.write_bytes(b"not an image either")
        result = cli(str(evil), str(markup), "--out", str(tmp_path / "o"))
        assert result.exit_code == 1
        assert "Traceback" not in result.output
        failed = [ln for ln in result.stderr.splitlines() if ln.startswith("  failed:")]
        assert len(failed) == 2, result.stderr
        assert "x\\n  failed: forged.png" in failed[0]
        assert "[red]y.png" in failed[1]

    def test_shown_escapes_control_characters_and_undecodable_bytes(self) -> None:
        assert shown("a\tb\x1b[31m\u202ec") == "a\\tb\\x1b[31m\\u202ec"
        assert shown(os.fsdecode(b"caf\xe9.png")) == "caf\\xe9.png"
        assert shown("café.png") == "café.png"


def test_a_file_name_that_is_not_utf8_is_processed_and_written(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    name = os.fsdecode(b"caf\xe9.png")
    face(tmp_path / "in" / name)
    for fmt in ("csv", "json", "coco"):
        result = cli(str(tmp_path / "in"), "--out", str(tmp_path / fmt), "--format", fmt)
        assert result.exit_code == 0, result.output
        assert "Traceback" not in result.output and "1 faces" in result.output
    with (tmp_path / "csv" / "detections.csv").open(
        encoding="utf-8", errors="surrogateescape"
    ) as f:
        assert next(csv.DictReader(f))["file"] == str(tmp_path / "in" / name)
    saved = json.loads((tmp_path / "json" / "detections.json").read_text())
    assert saved["images"][0]["file"] == str(tmp_path / "in" / name)
