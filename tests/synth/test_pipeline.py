"""The synthesis job: aligned crops, bad sources, end-to-end writing, resume, lock, preview, CLI."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import cast

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from _shared import SHARED, requires_shared
from mvface.cli.main import app
from mvface.data.readers.pts import write_pts
from mvface.data.readers.synthetic import (
    MANIFEST_FILE,
    list_identities,
    load_identity,
    projection_matrices,
)
from mvface.errors import BadInputError
from mvface.synth.backends import Head
from mvface.synth.config import SynthConfig, rig_cameras
from mvface.synth.identity import align_crop, source_landmarks3d
from mvface.synth.landmarks import deepen_jaw
from mvface.synth.pipeline import run_synth
from mvface.synth.preview import write_preview
from mvface.synth.rig import camera_yaw_pitch, grid_rig, rig_labels
from mvface.synth.sources import select_sources
from mvface.synth.writer import LOCK_FILE, PARTIAL_MARKER, OutputLockedError, output_lock

SAMPLES = SHARED / "data" / "samples"


def toy_landmarks(cx: float = 100.0, cy: float = 100.0, scale: float = 1.0) -> np.ndarray:
    """A crude frontal 68-point layout (eyes level, mouth below) around ``(cx, cy)``."""
    pts = np.zeros((68, 2))
    t = np.linspace(np.pi, 0, 17)
    pts[0:17] = np.c_[60 * np.cos(t), 10 + 60 * np.sin(t)]  # jaw, below the eyes
    pts[17:27] = np.c_[np.linspace(-45, 45, 10), np.full(10, -35)]  # brows
    nose_x = np.r_[np.zeros(4), np.linspace(-12, 12, 5)]
    pts[27:36] = np.c_[nose_x, np.r_[-20, -10, 0, 10, 15 * np.ones(5)]]  # nose
    for i, ex in ((36, -25), (42, 25)):  # eyes
        a = np.linspace(0, 2 * np.pi, 6, endpoint=False)
        pts[i : i + 6] = np.c_[ex + 9 * np.cos(a), -20 + 4 * np.sin(a)]
    a = np.linspace(np.pi, -np.pi, 20, endpoint=False)
    pts[48:68] = np.c_[22 * np.cos(a), 35 + 8 * np.sin(a)]  # mouth: 48 and 54 at the corners
    pts[54] = [22, 35]
    return pts * scale + [cx, cy]


def toy_landmarks_3d() -> np.ndarray:
    """:func:`toy_landmarks` on the plane z = 2.5, the nose tip 10 units in front of it."""
    points = np.c_[toy_landmarks(), np.full(68, 2.5)]
    points[30, 2] -= 10.0
    return points


# -- align_crop ------------------------------------------------------------------------------


def test_align_crop_levels_the_eyes_and_moves_landmarks_with_the_image() -> None:
    lm = toy_landmarks()
    image = np.zeros((200, 200, 3), np.uint8)
    angle = np.radians(20)  # turn the face in the image; the crop must level it again
    R = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    turned = (lm - 100) @ R.T + 100
    for x, y in np.round(turned).astype(int):
        image[y, x] = 255
    crop, crop_lm, affine = align_crop(image, turned, size=128)
    assert crop.shape == (128, 128, 3) and crop.dtype == np.uint8
    np.testing.assert_allclose(crop_lm, turned @ affine[:, :2].T + affine[:, 2], atol=1e-9)
    eye_l, eye_r = crop_lm[36:42].mean(0), crop_lm[42:48].mean(0)
    assert abs(eye_l[1] - eye_r[1]) < 1e-6 and eye_r[0] > eye_l[0]
    # the marked pixels land where the affine sends them (nearest-pixel accuracy)
    ys, xs = np.nonzero(crop[..., 0] > 60)
    mapped = np.c_[xs, ys]
    d = np.linalg.norm(crop_lm[:, None] - mapped[None], axis=-1).min(1)
    assert np.median(d) < 1.0


def test_align_crop_rejects_outside_and_tiny_faces() -> None:
    image = np.zeros((200, 200, 3), np.uint8)
    with pytest.raises(BadInputError, match="outside"):
        align_crop(image, toy_landmarks(cx=180), size=64)
    with pytest.raises(BadInputError, match="too small"):
        align_crop(image, toy_landmarks(scale=0.2), size=64)
    bad = toy_landmarks()
    bad[3] = np.nan
    with pytest.raises(BadInputError, match="NaN"):
        align_crop(image, bad, size=64)


# -- bad sources (no shared data needed) -----------------------------------------------------


def _bad_sources(root: Path) -> None:
    root.mkdir(parents=True)
    (root / "corrupt.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    write_pts(root / "corrupt.pts", toy_landmarks())
    cv2.imwrite(str(root / "outside.png"), np.full((200, 200, 3), 128, np.uint8))
    write_pts(root / "outside.pts", toy_landmarks(cx=190))
    cv2.imwrite(str(root / "tiny.png"), np.full((200, 200, 3), 128, np.uint8))
    write_pts(root / "tiny.pts", toy_landmarks(scale=0.2))


def test_bad_sources_are_skipped_with_a_reason(tmp_path: Path) -> None:
    _bad_sources(tmp_path / "src")
    cfg = SynthConfig(source=tmp_path / "src", out=tmp_path / "out", views=4, size=32)
    summary = run_synth(cfg)
    assert summary.done == [] and summary.failed == []
    reasons = {Path(src).stem: reason for src, reason in summary.skipped}
    assert set(reasons) == {"corrupt", "outside", "tiny"}
    assert "outside" in reasons["outside"] and "too small" in reasons["tiny"]
    assert all("\n" not in r for r in reasons.values())
    manifest = json.loads((tmp_path / "out" / MANIFEST_FILE).read_text())
    assert len(manifest["skipped"]) == 3 and manifest["identities"] == []
    assert not (tmp_path / "out" / LOCK_FILE).exists()


def test_cli_reports_skips_and_exits_1(tmp_path: Path) -> None:
    _bad_sources(tmp_path / "src")
    args = ["synth", "--source", str(tmp_path / "src"), "--format", "pts"]
    args += ["--out", str(tmp_path / "out"), "--views", "4", "--size", "32", "--quiet"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "3 skipped" in result.output and "too small" in result.output
    result = CliRunner().invoke(app, ["synth", "preview", str(tmp_path / "out")])
    assert result.exit_code == 1 and "no finished identities" in result.output


def test_config_checks_values(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="rig"):
        SynthConfig(source=tmp_path, out=tmp_path, rig="circle")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="views"):
        SynthConfig(source=tmp_path, out=tmp_path, views=0)
    for rig in ("paper", "grid", "random"):
        cfg = SynthConfig(source=tmp_path, out=tmp_path, views=10, rig=rig)
        assert rig_cameras(cfg).shape == (10, 25)
    with pytest.raises(ValueError, match="max_yaw_deg"):
        SynthConfig(source=tmp_path, out=tmp_path, max_yaw_deg=100)
    with pytest.raises(ValueError, match="jaw_from"):
        SynthConfig(source=tmp_path, out=tmp_path, jaw_from="outline")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="jaw_depth"):
        SynthConfig(source=tmp_path, out=tmp_path, jaw_depth=-0.1)


@pytest.mark.parametrize("rig", ["grid", "random"])
def test_grid_and_random_rigs_span_the_asked_yaw(tmp_path: Path, rig: str) -> None:
    cfg = SynthConfig(
        source=tmp_path, out=tmp_path, views=60, rig=rig, max_yaw_deg=80, max_pitch_deg=15, seed=1
    )  # type: ignore[arg-type]
    c2w = torch.as_tensor(rig_cameras(cfg)[:, :16].reshape(-1, 4, 4))
    yaw, pitch = np.degrees(camera_yaw_pitch(c2w).numpy()).T
    assert np.abs(yaw).max() <= 80 + 1e-6 and np.abs(pitch).max() <= 15 + 1e-6
    assert yaw.min() < -60 and yaw.max() > 60  # profile views are there
    if rig == "grid":  # the grid's ends are exactly the span
        assert yaw.min() == pytest.approx(-80) and yaw.max() == pytest.approx(80)


def test_cli_needs_source_and_out(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["synth", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "--source and --out" in result.output


# -- end to end on real faces ----------------------------------------------------------------


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SynthConfig]:
    """einstein + takeo (shared samples), 8 views at 64 px, written once for the module."""
    if not (SAMPLES / "einstein.jpg").exists():
        pytest.skip(f"shared data not found: {SAMPLES}")
    tmp = tmp_path_factory.mktemp("synth")
    src = tmp / "src"
    src.mkdir()
    for name in ("einstein.jpg", "einstein.pts", "takeo.ppm", "takeo.pts"):
        shutil.copy(SAMPLES / name, src / name)
    cfg = SynthConfig(source=src, out=tmp / "out", views=8, size=64, crop_size=256)
    summary = run_synth(cfg)
    assert sorted(summary.done) == ["einstein", "takeo"], summary
    assert summary.skipped == [] and summary.failed == []
    return tmp / "out", cfg


@requires_shared("data/samples/einstein.jpg")
def test_identities_are_readable_and_geometrically_exact(
    dataset: tuple[Path, SynthConfig],
) -> None:
    out, _ = dataset
    folders = list_identities(out)
    assert [f.name for f in folders] == ["einstein", "takeo"]
    for folder in folders:
        ident = load_identity(folder)
        assert ident.num_views == 8 and all(p.is_file() for p in ident.image_files)
        first = cv2.imread(str(ident.image_files[0]))
        assert first is not None and first.shape == (64, 64, 3)
        P = projection_matrices(ident.cameras, 64)
        X = np.c_[ident.landmarks3d, np.ones(68)]
        proj = np.einsum("vij,nj->vni", P, X)
        err = np.abs(proj[..., :2] / proj[..., 2:] - ident.landmarks).max()
        assert err < 0.01
        assert ident.visibility[:, 30].mean() > 0.5  # the nose tip is seen from most views
        meta = ident.meta
        for key in ("source_file", "source_landmarks", "backend", "rig", "seed", "package_version"):
            assert key in meta
        assert meta["backend"] == "mesh" and np.asarray(meta["source_landmarks"]).shape == (68, 2)
        assert meta["jaw_from"] == "depth" and set(meta["landmarks_from_surface"]) <= set(range(68))
        assert (folder / "source.jpg").is_file() and (folder / "source_camera.npy").is_file()
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    assert [m["identity"] for m in manifest["identities"]] == ["einstein", "takeo"]
    assert manifest["job"]["views"] == 8


@requires_shared("data/samples/einstein.jpg")
def test_observed_landmarks_and_filled_fraction(
    dataset: tuple[Path, SynthConfig], tmp_path: Path
) -> None:
    out, cfg = dataset
    for folder in list_identities(out):
        ident = load_identity(folder)
        assert ident.meta["fill"] == "mirror"
        assert ident.observed is not None and ident.observed.shape == (8, 68)
        assert not (ident.observed & ~ident.visibility).any()  # hidden points are not observed
        assert ident.observed.any()
        fraction = ident.filled_fraction()
        assert fraction is not None and fraction.shape == (8,)
        assert ((fraction >= 0) & (fraction <= 1)).all()
    # a set written before the arrays existed still reads (no observed.npy, no fraction)
    old = tmp_path / "old"
    shutil.copytree(out / "einstein", old / "einstein")
    (old / "einstein" / "observed.npy").unlink()
    meta = json.loads((old / "einstein" / "meta.json").read_text())
    del meta["filled_fraction"], meta["fill"]
    (old / "einstein" / "meta.json").write_text(json.dumps(meta))
    ident = load_identity(old / "einstein")
    assert ident.observed is None and ident.filled_fraction() is None
    assert len(ident.usable_views(0.1)) == 8
    # ... and counts as made with --fill none: a job with the new default is refused
    with pytest.raises(BadInputError, match="--fill none"):
        run_synth(replace(cfg, out=old))


@requires_shared("data/samples/einstein.jpg")
def test_cli_jaw_depth_moves_the_surface_jaw(
    dataset: tuple[Path, SynthConfig], tmp_path: Path
) -> None:
    _, cfg = dataset
    source = Path(cfg.source)
    run_synth(replace(cfg, out=tmp_path / "flat", views=4, limit=1, jaw_from="surface"))
    args = ["synth", "--source", str(source), "--out", str(tmp_path / "deep"), "--views", "4"]
    args += ["--size", "64", "--crop-size", "256", "--limit", "1", "--quiet"]
    args += ["--jaw-from", "surface", "--jaw-depth", "0.2"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    [flat_id], [deep_id] = list_identities(tmp_path / "flat"), list_identities(tmp_path / "deep")
    deep = load_identity(deep_id)
    assert deep.meta["jaw_depth"] == 0.2 and deep.meta["jaw_from"] == "surface"
    expected = deepen_jaw(torch.from_numpy(load_identity(flat_id).landmarks3d), 0.2)
    assert np.allclose(deep.landmarks3d, expected.numpy(), atol=1e-6)


@requires_shared("data/samples/einstein.jpg")
def test_resume_does_nothing_new_and_a_held_lock_refuses(
    dataset: tuple[Path, SynthConfig],
) -> None:
    out, cfg = dataset
    before = (out / "einstein" / "meta.json").stat().st_mtime_ns
    stale = out / ".mvface-tmp-einstein-abcd1234"  # what a killed job leaves
    stale.mkdir()
    (stale / PARTIAL_MARKER).touch()
    summary = run_synth(cfg)
    assert summary.done == [] and sorted(summary.resumed) == ["einstein", "takeo"]
    assert (out / "einstein" / "meta.json").stat().st_mtime_ns == before
    assert not stale.exists()
    with output_lock(out), pytest.raises(OutputLockedError):  # another job holds the folder
        run_synth(cfg)


@requires_shared("data/samples/einstein.jpg")
def test_preview_sheet(dataset: tuple[Path, SynthConfig], tmp_path: Path) -> None:
    out, _ = dataset
    png = write_preview(out, tmp_path / "sheet.png", identities=4, views=3)
    sheet = cv2.imread(str(png))
    assert sheet is not None
    assert sheet.shape == (2 * 64, 3 * 64, 3)  # two identities, three views each
    result = CliRunner().invoke(
        app, ["synth", "preview", str(out), "--out", str(tmp_path / "b.png")]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "b.png").is_file()


@requires_shared("data/samples/einstein.jpg")
def test_two_workers_write_the_same_data(dataset: tuple[Path, SynthConfig], tmp_path: Path) -> None:
    out, cfg = dataset
    cfg2 = SynthConfig(
        source=cfg.source, out=tmp_path / "w2", views=8, size=64, crop_size=256, workers=2
    )
    summary = run_synth(cfg2)
    assert sorted(summary.done) == ["einstein", "takeo"]
    for name in summary.done:
        a, b = load_identity(out / name), load_identity(tmp_path / "w2" / name)
        np.testing.assert_allclose(a.landmarks, b.landmarks, atol=1e-4)
        np.testing.assert_array_equal(a.visibility, b.visibility)


@requires_shared("data/samples/einstein.jpg")
def test_unannotated_sources_are_marked_by_a_detector(tmp_path: Path) -> None:
    """A plain image folder: landmarks come from mediapipe-68; a faceless image is skipped."""
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(SHARED / "data" / "samples" / "breakingbad.jpg", folder / "a.jpg")
    cv2.imwrite(str(folder / "blank.png"), np.full((200, 200, 3), 128, np.uint8))
    cfg = SynthConfig(
        source=folder, out=tmp_path / "out", format="folder", views=4, size=64, crop_size=256
    )
    summary = run_synth(cfg)
    assert summary.done == ["a"]
    assert [reason for _, reason in summary.skipped] == ["no face found"]
    ident = load_identity(tmp_path / "out" / "a")
    assert ident.meta["source_landmarks_from"] == "detector: mediapipe-68"
    no_detector = SynthConfig(
        source=folder, out=tmp_path / "o2", format="folder", landmark_model=None
    )
    assert select_sources(no_detector)[0] == []


@requires_shared("data/samples/einstein.jpg")
def test_ray_executor_writes_the_same_data(
    dataset: tuple[Path, SynthConfig], tmp_path: Path
) -> None:
    """A local Ray with 2 actors gives the same identities as the local executor."""
    pytest.importorskip("ray")
    out, cfg = dataset
    cfg_ray = SynthConfig(
        source=cfg.source,
        out=tmp_path / "ray",
        views=8,
        size=64,
        crop_size=256,
        workers=2,
        executor="ray",
    )
    summary = run_synth(cfg_ray)
    assert sorted(summary.done) == ["einstein", "takeo"]
    for name in summary.done:
        a, b = load_identity(out / name), load_identity(tmp_path / "ray" / name)
        np.testing.assert_allclose(a.landmarks, b.landmarks, atol=1e-4)
        np.testing.assert_array_equal(a.visibility, b.visibility)


@requires_shared("data/samples/einstein.jpg")
def test_killed_job_resumes(dataset: tuple[Path, SynthConfig], tmp_path: Path) -> None:
    """``kill -9`` right after the first identity: the rerun takes the stale lock and finishes."""
    _, cfg = dataset
    out = tmp_path / "killed"
    script = (
        "import os, signal\n"
        "from mvface.synth.config import SynthConfig\n"
        "from mvface.synth.pipeline import run_synth\n"
        f"cfg = SynthConfig(source={str(cfg.source)!r}, out={str(out)!r}, views=8, size=64,"
        " crop_size=256)\n"
        "def on(event):\n"
        "    if event.status == 'done':\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "run_synth(cfg, on_identity=on)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert (out / LOCK_FILE).exists()  # the killed job's lock is left behind
    finished = [f.name for f in list_identities(out)]
    assert len(finished) == 1 and not list(out.glob(".mvface-tmp-*"))
    summary = run_synth(SynthConfig(source=cfg.source, out=out, views=8, size=64, crop_size=256))
    assert summary.resumed == finished and len(summary.done) == 1
    assert len(list_identities(out)) == 2 and not (out / LOCK_FILE).exists()


class _PlaneHead:
    """A stand-in head: a frontal plane at depth 2.5 and known surface landmarks."""

    backend = "plane"

    def __init__(self, surface: np.ndarray | None) -> None:
        self.surface = surface

    def surface_landmarks(self) -> np.ndarray | None:
        return self.surface


def _head(surface: np.ndarray | None) -> Head:
    return cast(Head, _PlaneHead(surface))


class TestSourceLandmarks3d:
    LABEL = rig_labels(grid_rig([0.0], [0.0]))[0]

    def _depth(self) -> np.ndarray:
        depth = np.full((64, 64), np.inf, np.float32)
        depth[8:56, 8:56] = 2.5
        return depth

    def test_depth_lifts_and_falls_back_off_the_head(self) -> None:
        surface = np.full((68, 3), 7.0)
        landmarks = np.full((68, 2), 30.0)
        landmarks[5] = (62.0, 1.0)  # off the head
        lm3d, from_surface = source_landmarks3d(
            _head(surface),
            landmarks,
            self._depth(),
            self.LABEL,
        )
        assert from_surface == [5]
        assert lm3d[5].tolist() == [7.0, 7.0, 7.0]
        assert torch.allclose(lm3d[:5, 2], torch.full((5,), 0.2, dtype=torch.float64))

    def test_surface_jaw(self) -> None:
        surface = np.full((68, 3), 7.0)
        lm3d, from_surface = source_landmarks3d(
            _head(surface),
            np.full((68, 2), 30.0),
            self._depth(),
            self.LABEL,
            jaw_from="surface",
        )
        assert from_surface == list(range(17))
        assert (lm3d[:17] == 7.0).all() and torch.allclose(
            lm3d[17:, 2], torch.full((51,), 0.2, dtype=torch.float64)
        )

    def test_jaw_depth_moves_only_the_jaw(self) -> None:
        surface = toy_landmarks_3d()
        landmarks = toy_landmarks(32.0, 32.0, 0.35)  # on the plane of self._depth()
        args = (_head(surface), landmarks, self._depth(), self.LABEL, "surface")
        flat, _ = source_landmarks3d(*args)
        deep, from_surface = source_landmarks3d(*args, jaw_depth=0.2)
        assert from_surface == list(range(17))
        assert torch.equal(deep, deepen_jaw(flat, 0.2))
        assert torch.equal(deep[17:], flat[17:]) and not torch.equal(deep[:17], flat[:17])

    def test_without_surface_landmarks(self) -> None:
        landmarks = np.full((68, 2), 30.0)
        with pytest.raises(BadInputError, match="no surface landmarks"):
            source_landmarks3d(
                _head(None),
                landmarks,
                self._depth(),
                self.LABEL,
                jaw_from="surface",
            )
        landmarks[5] = (62.0, 1.0)
        with pytest.raises(BadInputError, match="off the head"):
            source_landmarks3d(_head(None), landmarks, self._depth(), self.LABEL)
