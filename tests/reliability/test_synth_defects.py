"""``mvface synth`` against a hostile user: odd file names, folders it does not own, a set re-run
with other settings, a killed multi-worker job, racing jobs, a degenerate grid rig, bad option
values. Each test is for a class of defect, not one instance."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from _shared import SHARED, requires_shared
from mvface.cli.main import app
from mvface.data.readers import read_dataset
from mvface.data.readers.pts import write_pts
from mvface.data.readers.synthetic import MANIFEST_FILE, list_identities, load_identity
from mvface.data.record import FaceSample
from mvface.errors import BadInputError
from mvface.synth.config import SynthConfig, rig_cameras
from mvface.synth.pipeline import run_synth
from mvface.synth.rig import camera_yaw_pitch, grid_rig, rig_labels
from mvface.synth.sources import assign_identity_names
from mvface.synth.writer import (
    LOCK_FILE,
    PARTIAL_MARKER,
    OutputLockedError,
    SyntheticWriter,
    check_identity_name,
    output_lock,
    safe_identity_name,
)
from train.conftest import make_identity

JOB = Path(__file__).with_name("_jobs.py")
TESTS = Path(__file__).resolve().parents[1]
SAMPLES = SHARED / "data" / "samples"
runner = CliRunner()

#: File names a user may well have: no ASCII letter at all, case twins, characters a slug drops,
#: mvface's own file names, path-like and very long names.
HOSTILE_NAMES = [
    "张三",
    "Ёлка",
    "محمد",
    "😀",
    "...",
    "-",
    "_",
    " ",
    "Face",
    "face",
    "FACE",
    "a b",
    "a_b",
    "a-b",
    "a/b",
    "a?b",
    "a*b",
    "café",
    "cafe\u0301",
    "manifest.json",
    "MANIFEST.JSON",
    ".lock",
    "synth_preview.png",
    "x" * 300,
    "x" * 300 + "y",
    "face+0123456789ab",
    "bad\udcff",  # an undecodable byte of a file name (surrogate escape)
    "einstein",
]


def _toy_landmarks(cx: float = 100.0, cy: float = 100.0, scale: float = 1.0) -> np.ndarray:
    from synth.test_pipeline import toy_landmarks

    return toy_landmarks(cx, cy, scale)


def _tiny_face(root: Path, stem: str) -> None:
    """A source the crop refuses (face too small): skipped fast, without rendering."""
    root.mkdir(parents=True, exist_ok=True)
    ok, png = cv2.imencode(".png", np.full((200, 200, 3), 128, np.uint8))
    assert ok
    (root / f"{stem}.png").write_bytes(png.tobytes())
    write_pts(root / f"{stem}.pts", _toy_landmarks(scale=0.2))


def _start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    full_env = {**os.environ, "PYTHONPATH": str(TESTS), "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.Popen(
        [sys.executable, str(JOB), *args],
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


# -- identity names ----------------------------------------------------------------------------


def test_every_file_name_gives_a_distinct_valid_identity_name() -> None:
    names = [safe_identity_name(n) for n in HOSTILE_NAMES]
    for original, name in zip(HOSTILE_NAMES, names, strict=True):
        assert check_identity_name(name) == name, original
        assert safe_identity_name(name) == name, original  # stable: naming a name keeps it
        assert "/" not in name and not name.startswith(".") and len(name.encode()) <= 120
        assert name.lower() not in (MANIFEST_FILE, LOCK_FILE, "synth_preview.png"), original
        assert not name.lower().endswith((".json", ".png", ".lock")), original
    assert safe_identity_name("einstein") == "einstein"  # plain names stay as they were
    # distinct, even on a case-insensitive file system, once the job resolves case twins
    samples = [FaceSample(image=Path(f"/src/{n}.jpg"), name=n) for n in HOSTILE_NAMES]
    named, repeated = assign_identity_names(samples)
    assert repeated == []
    folded = [name.casefold() for name, _ in named]
    assert len(set(folded)) == len(HOSTILE_NAMES), sorted(folded)


def test_same_stem_other_files_get_their_own_identity() -> None:
    """``a.jpg`` and ``a.png`` (same sample name) are two files: two identities, stable names;
    the very same file listed twice is one."""
    a_jpg = FaceSample(image=Path("/src/a.jpg"), name="a")
    a_png = FaceSample(image=Path("/src/a.png"), name="a")
    named, repeated = assign_identity_names([a_jpg, a_png, a_jpg])
    assert named[0][0] == "a" and len({n for n, _ in named}) == 2
    assert named == assign_identity_names([a_jpg, a_png])[0]
    assert len(repeated) == 1 and "listed twice" in repeated[0][2]


def test_sources_without_ascii_names_do_not_stop_the_job(tmp_path: Path) -> None:
    for stem in ("张三", "Ёлка", "ok"):
        _tiny_face(tmp_path / "src", stem)
    summary = run_synth(SynthConfig(source=tmp_path / "src", out=tmp_path / "out", views=4))
    assert sorted(Path(s).stem for s, _ in summary.skipped) == sorted(["张三", "Ёлка", "ok"])
    assert all("too small" in reason for _, reason in summary.skipped), summary.skipped


# -- folders mvface does not own ---------------------------------------------------------------


def test_a_users_folder_or_file_with_an_identity_name_is_never_removed(tmp_path: Path) -> None:
    writer = SyntheticWriter(tmp_path, image_format="png")
    (tmp_path / "face_a").mkdir()
    (tmp_path / "face_a" / "notes.txt").write_text("mine")
    (tmp_path / "face_b").mkdir()  # even an empty one
    (tmp_path / "face_c").write_text("a file")
    for name in ("face_a", "face_b", "face_c"):
        with pytest.raises(BadInputError, match="not an identity mvface finished"):
            writer.write(make_identity(name, views=2, seed=0, size=16))
        assert writer.is_taken(name) and not writer.is_done(name)
    assert (tmp_path / "face_a" / "notes.txt").read_text() == "mine"
    assert (tmp_path / "face_b").is_dir() and (tmp_path / "face_c").read_text() == "a file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["face_a", "face_b", "face_c"]


def test_only_mvfaces_own_unfinished_work_is_cleaned_up(tmp_path: Path) -> None:
    writer = SyntheticWriter(tmp_path)
    users = [tmp_path / ".tmp-mine", tmp_path / ".mvface-tmp-notes", tmp_path / "tmp-x"]
    for folder in users:
        folder.mkdir()
        (folder / "keep.txt").write_text("mine")
    ours = tmp_path / ".mvface-tmp-face_a-abcd1234"  # what a killed write leaves
    ours.mkdir()
    (ours / PARTIAL_MARKER).touch()
    (ours / "cameras.npy").write_bytes(b"half")
    assert writer.remove_stale_temporaries() == 1
    assert not ours.exists() and all((f / "keep.txt").is_file() for f in users)


def test_identity_names_never_take_mvfaces_own_files(tmp_path: Path) -> None:
    writer = SyntheticWriter(tmp_path, image_format="png")
    for name in ("manifest.json", "MANIFEST.JSON", ".lock", "synth_preview.png"):
        writer.write(make_identity(safe_identity_name(name), views=2, seed=0, size=16))
    writer.write_manifest()
    assert (tmp_path / MANIFEST_FILE).is_file()
    assert len(json.loads((tmp_path / MANIFEST_FILE).read_text())["identities"]) == 4
    with output_lock(tmp_path):  # the lock file is free to take
        pass
    assert len(read_dataset("mvface-synthetic", tmp_path).samples) == 8


@requires_shared("data/samples/einstein.jpg")
def test_odd_names_end_to_end(tmp_path: Path) -> None:
    """``张三.jpg`` and ``manifest.json.jpg`` become identities; a user's folder named like a
    source is left alone; the manifest stays a file and a rerun resumes everything."""
    src = tmp_path / "src"
    src.mkdir()
    for stem in ("张三", "manifest.json", "einstein"):
        shutil.copy(SAMPLES / "einstein.jpg", src / f"{stem}.jpg")
        shutil.copy(SAMPLES / "einstein.pts", src / f"{stem}.pts")
    out = tmp_path / "out"
    (out / "einstein").mkdir(parents=True)
    (out / "einstein" / "notes.txt").write_text("mine")
    cfg = SynthConfig(source=src, out=out, views=3, size=32, crop_size=64)
    summary = run_synth(cfg)
    assert len(summary.done) == 2 and summary.failed == []
    assert [Path(s).stem for s, _ in summary.skipped] == ["einstein"]
    assert (out / "einstein" / "notes.txt").read_text() == "mine"
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    assert sorted(i["identity"] for i in manifest["identities"]) == sorted(summary.done)
    for folder in list_identities(out):
        assert load_identity(folder).meta["source_name"] in ("张三", "manifest.json")
    again = run_synth(cfg)
    assert again.done == [] and sorted(again.resumed) == sorted(summary.done)


# -- one set, one set of settings --------------------------------------------------------------


def _set_made_with(out: Path, cfg: SynthConfig | None, cameras: np.ndarray | None = None) -> None:
    """A set with one identity made with ``cfg`` (rendered from ``cameras``, default its rig's);
    ``cfg=None``: 6 views of 64 px and no manifest."""
    views = 6 if cfg is None else cfg.views
    record = make_identity("face_a", views=views, seed=0, size=64)
    if cfg is not None:
        record.cameras = rig_cameras(cfg) if cameras is None else cameras
    writer = SyntheticWriter(out, image_format="png")
    writer.write(record)
    if cfg is not None:
        writer.write_manifest(job=cfg.provenance())


@pytest.mark.parametrize(
    ("change", "option"),
    [
        ({"views": 8}, "--views"),
        ({"size": 32}, "--size"),
        ({"crop_size": 256}, "--crop-size"),
        ({"rig": "grid"}, "--rig"),
        ({"jaw_from": "surface"}, "--jaw-from"),
        ({"jaw_depth": 0.2}, "--jaw-depth"),
        ({"image_format": "jpg"}, "--image-format"),
        ({"landmark_model": None}, "--landmark-model"),
    ],
)
def test_a_rerun_with_other_settings_is_refused(
    tmp_path: Path, change: dict[str, object], option: str
) -> None:
    _tiny_face(tmp_path / "src", "ok")
    base = SynthConfig(
        source=tmp_path / "src", out=tmp_path / "out", views=6, size=64, image_format="png"
    )
    _set_made_with(tmp_path / "out", base)
    other = SynthConfig(**{**base.__dict__, **change})  # type: ignore[arg-type]
    with pytest.raises(BadInputError, match=option) as err:
        run_synth(other)
    assert "\n" not in str(err.value)
    assert [i.name for i in list_identities(tmp_path / "out")] == ["face_a"]
    run_synth(base)  # the same settings: goes on
    # settings without effect are no difference: the paper rig has no span, PNG no quality
    run_synth(SynthConfig(**{**base.__dict__, "max_yaw_deg": 80, "quality": 50}))


def test_a_set_rendered_from_other_cameras_is_refused(tmp_path: Path) -> None:
    """Same settings, but the rig changed between versions (the grid's old 2/3 pitch span)."""
    _tiny_face(tmp_path / "src", "ok")
    cfg = SynthConfig(
        source=tmp_path / "src", out=tmp_path / "out", views=9, rig="grid", image_format="png"
    )
    old_grid = grid_rig(np.radians(np.linspace(-45, 45, 5)), np.radians([-20.0, 20.0]))[:9]
    _set_made_with(tmp_path / "out", cfg, rig_labels(old_grid).numpy())
    with pytest.raises(BadInputError, match="other cameras"):
        run_synth(cfg)
    shutil.rmtree(tmp_path / "out")
    _set_made_with(tmp_path / "out", cfg)
    run_synth(cfg)  # this rig's cameras: goes on


def test_a_set_without_manifest_is_judged_by_its_identities(tmp_path: Path) -> None:
    _tiny_face(tmp_path / "src", "ok")
    _set_made_with(tmp_path / "out", None)  # e.g. a job killed before its first manifest
    cfg = SynthConfig(source=tmp_path / "src", out=tmp_path / "out", views=8, size=64)
    with pytest.raises(BadInputError, match="--views 6"):
        run_synth(cfg)


def test_cli_refuses_other_settings_in_one_line_exit_1(tmp_path: Path) -> None:
    _tiny_face(tmp_path / "src", "ok")
    base = SynthConfig(
        source=tmp_path / "src", out=tmp_path / "out", views=6, size=64, image_format="png"
    )
    _set_made_with(tmp_path / "out", base)
    args = ["synth", "--source", str(tmp_path / "src"), "--out", str(tmp_path / "out")]
    args += ["--views", "8", "--size", "32", "--image-format", "png", "--quiet"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "--views 6" in lines[0] and "--size 32" in lines[0], lines


# -- killed and racing jobs --------------------------------------------------------------------


def _gone(pid: int) -> bool:
    """The process ended (a zombie counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_die_with_a_killed_job(tmp_path: Path) -> None:
    """``kill -9`` of a 2-worker job mid-identity: its workers end with it (they would write on
    beside the next job, which the lock no longer keeps out), and a rerun can start at once."""
    (tmp_path / "src").mkdir()
    for stem in ("a", "b"):
        cv2.imwrite(str(tmp_path / "src" / f"{stem}.png"), np.zeros((200, 200, 3), np.uint8))
        write_pts(tmp_path / "src" / f"{stem}.pts", _toy_landmarks())
    started = tmp_path / "started"
    started.mkdir()
    job = _start("synth-workers", str(tmp_path / "src"), str(tmp_path / "out"), str(started))
    deadline = time.monotonic() + 240
    while len(list(started.iterdir())) < 2:
        if job.poll() is not None or time.monotonic() > deadline:
            job.kill()
            err = job.stderr.read().decode()[-2000:] if job.stderr else ""
            pytest.fail(f"the workers did not start (rc {job.returncode}): {err}")
        time.sleep(0.05)
    workers = [int(p.name) for p in started.iterdir()]
    job.send_signal(signal.SIGKILL)
    assert job.wait(60) == -signal.SIGKILL
    deadline = time.monotonic() + 60  # they die at once; a blocked worker would stay an hour
    while not all(_gone(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = [pid for pid in workers if not _gone(pid)]
    for pid in alive:
        os.kill(pid, signal.SIGKILL)
    assert alive == [], "workers outlived their killed job"
    with output_lock(tmp_path / "out"):  # the next job takes the folder
        pass


def test_the_output_lock_admits_one_job_at_a_time(tmp_path: Path) -> None:
    """Three processes race for the lock hundreds of times: never two holders at once."""
    out, log, go = tmp_path / "out", tmp_path / "log.txt", tmp_path / "go"
    out.mkdir()
    jobs = [_start("lock-race", str(out), "1500", str(log), str(go)) for _ in range(3)]
    deadline = time.monotonic() + 120
    while not log.exists() or log.read_text().split().count("ready") < 3:
        assert all(job.poll() is None for job in jobs) and time.monotonic() < deadline
        time.sleep(0.01)
    go.touch()
    for job in jobs:
        assert job.wait(300) == 0, job.stderr.read().decode()[-2000:] if job.stderr else ""
    lines = log.read_text().split()
    assert "overlap" not in lines, f"{lines.count('overlap')} overlaps"
    assert lines.count("held") >= 1
    assert not (out / LOCK_FILE).exists() and not (out / "holder").exists()


def test_the_lock_is_held_for_the_jobs_life_and_freed_after(tmp_path: Path) -> None:
    with output_lock(tmp_path):
        with pytest.raises(OutputLockedError, match="another synthesis job"), output_lock(tmp_path):
            pass
        assert (tmp_path / LOCK_FILE).read_text() == str(os.getpid())
    (tmp_path / LOCK_FILE).write_text(str(os.getppid()))  # a stale file of a killed job
    with output_lock(tmp_path):  # only a held lock counts, not a file with a live pid in it
        pass


# -- the grid rig ------------------------------------------------------------------------------


@pytest.mark.parametrize("views", [2, 3, 4, 5, 7, 9, 10, 16, 25, 60, 512])
@pytest.mark.parametrize(("max_yaw", "max_pitch"), [(45, 30), (90, 10), (10, 60), (60, 0), (0, 20)])
def test_grid_cameras_are_distinct_and_span_the_limits(
    tmp_path: Path, views: int, max_yaw: float, max_pitch: float
) -> None:
    cfg = SynthConfig(
        source=tmp_path,
        out=tmp_path,
        rig="grid",
        views=views,
        max_yaw_deg=max_yaw,
        max_pitch_deg=max_pitch,
    )
    labels = rig_cameras(cfg)
    assert labels.shape == (views, 25)
    centers = labels[:, :16].reshape(-1, 4, 4)[:, :3, 3]
    gaps = np.linalg.norm(centers[:, None] - centers[None], axis=-1) + np.eye(views) * 1e9
    assert gaps.min() > 1e-3, "two cameras at one place"
    c2w = torch.as_tensor(labels[:, :16].reshape(-1, 4, 4))
    yaw, pitch = np.degrees(camera_yaw_pitch(c2w).numpy()).T
    assert np.abs(yaw).max() <= max_yaw + 1e-6 and np.abs(pitch).max() <= max_pitch + 1e-6
    if max_yaw and (views >= 3 or not max_pitch):
        assert yaw.min() == pytest.approx(-max_yaw) and yaw.max() == pytest.approx(max_yaw)
    if max_pitch and (views >= 3 or not max_yaw):
        assert pitch.min() == pytest.approx(-max_pitch) and pitch.max() == pytest.approx(max_pitch)


def test_a_grid_with_no_span_has_one_camera(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="grid"):
        SynthConfig(
            source=tmp_path, out=tmp_path, rig="grid", views=4, max_yaw_deg=0, max_pitch_deg=0
        )
    one = SynthConfig(
        source=tmp_path, out=tmp_path, rig="grid", views=1, max_yaw_deg=0, max_pitch_deg=0
    )
    assert math.isclose(float(rig_cameras(one)[0, 11]), 2.7)  # the frontal camera's z


# -- command-line values -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "option",
    [
        ["--rig", "circle"],
        ["--format", "nosuch"],
        ["--executor", "slurm"],
        ["--jaw-from", "outline"],
        ["--image-format", "gif"],
        ["--backend", "nosuch"],
        ["--landmark-model", "nosuch"],
        ["--views", "2"],  # the paper rig needs 3
    ],
)
def test_a_bad_option_value_is_a_usage_error(tmp_path: Path, option: list[str]) -> None:
    _tiny_face(tmp_path / "src", "ok")
    args = ["synth", "--source", str(tmp_path / "src"), "--out", str(tmp_path / "out"), "--quiet"]
    result = runner.invoke(app, [*args, *option])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and option[1] in result.output
    assert not (tmp_path / "out").exists()  # refused before anything was made


@pytest.mark.parametrize("out", ["folder", "sheet", "sheet.txt"])
def test_preview_to_a_folder_or_a_name_without_image_suffix_is_one_line(
    tmp_path: Path, out: str
) -> None:
    SyntheticWriter(tmp_path / "set").write(make_identity("face_a", views=4, seed=0, size=32))
    (tmp_path / "folder").mkdir()
    result = runner.invoke(
        app, ["synth", "preview", str(tmp_path / "set"), "--out", str(tmp_path / out)]
    )
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert len([ln for ln in result.output.splitlines() if ln.strip()]) == 1, result.output
    assert not (tmp_path / "sheet").exists() and list((tmp_path / "folder").iterdir()) == []
