"""``mvface.synth.relabel``: a model's points triangulated over an identity's views.

The fixture model is an oracle: every image carries its view's index in its first pixel, and
the model answers the exact projection of a known 3D shape ``Y`` (not the set's own landmarks
``X``), so the relabelled set must hold ``Y`` and its projections, in closed form.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mvface.data.readers.synthetic import load_identity, projection_matrices
from mvface.errors import BadInputError
from mvface.geometry.cameras import (
    cam2world_to_extrinsics,
    camera_to_eg3d_label,
    eg3d_intrinsics,
    look_at,
)
from mvface.models.base import LandmarkModel, Landmarks, ModelConfig
from mvface.synth.relabel import (
    RelabelConfig,
    fuse_observations,
    gather_observations,
    relabel_set,
)
from mvface.synth.writer import IdentityRecord, SyntheticWriter

SIZE = 64
SOURCE = 255  # first-pixel value of the source photo


def _project(P: np.ndarray, X: np.ndarray) -> np.ndarray:
    h = np.einsum("vij,nj->vni", P, np.c_[X, np.ones(len(X))])
    return h[..., :2] / h[..., 2:]


def _cameras(yaw_deg: np.ndarray) -> np.ndarray:
    yaw = np.radians(yaw_deg)
    eye = np.stack([2.7 * np.sin(yaw), np.full(len(yaw), 0.2), 2.7 * np.cos(yaw)], -1)
    c2w = look_at(torch.tensor(eye), torch.zeros(len(yaw), 3, dtype=torch.float64))
    R, t = cam2world_to_extrinsics(c2w)
    K = eg3d_intrinsics(SIZE, SIZE, dtype=torch.float64).expand(len(yaw), 3, 3)
    return camera_to_eg3d_label(K, R, t, SIZE, SIZE).numpy()


class Oracle(LandmarkModel):
    """Answers ``points[k]`` for an image whose first pixel is ``k`` (``SOURCE``: the source
    photo), whatever the box."""

    def __init__(self, points: dict[int, np.ndarray]) -> None:
        self.config = ModelConfig(name="oracle")
        self.flip_average = False
        self.points = points
        self.seen: list[int] = []

    def _predict(self, images: Sequence[np.ndarray], crop_boxes: np.ndarray) -> Landmarks:
        keys = [int(image[0, 0, 0]) for image in images]
        self.seen += keys
        return Landmarks(points=np.stack([self.points[k] for k in keys]))


def _identity(root: Path, yaw_deg: np.ndarray, seed: int = 0) -> tuple[np.ndarray, Oracle]:
    """Write identity ``id`` (landmarks of a shape X) into set ``root``; return the oracle's
    shape Y (X moved by up to 2 cm) and the oracle."""
    rng = np.random.default_rng(seed)
    X = rng.normal(scale=0.07, size=(68, 3))
    Y = X + rng.uniform(-0.02, 0.02, size=(68, 3))
    cameras = _cameras(yaw_deg)
    source_camera = _cameras(np.array([5.0]))[0]
    P = projection_matrices(cameras, SIZE)
    images = np.zeros((len(cameras), SIZE, SIZE, 3), np.uint8)
    images[:, 0, 0, 0] = np.arange(len(cameras))
    source = np.zeros((SIZE, SIZE, 3), np.uint8)
    source[0, 0, 0] = SOURCE
    writer = SyntheticWriter(root, image_format="png")
    writer.write(
        IdentityRecord(
            name="id",
            images=images,
            cameras=cameras,
            landmarks=_project(P, X),
            landmarks3d=X,
            visibility=np.ones((len(cameras), 68), bool),
            source_image=source,
            source_camera=source_camera,
            provenance={"backend": "test"},
        )
    )
    answers = dict(enumerate(_project(P, Y)))
    answers[SOURCE] = _project(projection_matrices(source_camera[None], SIZE), Y)[0]
    return Y, Oracle(answers)


YAWS = np.array([-80.0, -60.0, -40.0, -20.0, 0.0, 20.0, 40.0, 60.0, 80.0])


class TestRelabelSet:
    def test_exact_points_come_back_exactly(self, tmp_path: Path) -> None:
        Y, oracle = _identity(tmp_path / "set", YAWS)
        summary = relabel_set(tmp_path / "set", tmp_path / "out", oracle, "oracle")
        assert summary.done == ["id"] and not summary.skipped
        new = load_identity(tmp_path / "out" / "id")
        np.testing.assert_allclose(new.landmarks3d, Y, atol=1e-5)
        P = projection_matrices(new.cameras, SIZE)
        np.testing.assert_allclose(new.landmarks, _project(P, Y), atol=1e-3)
        assert summary.residual_px[0] < 1e-6
        assert new.meta["landmarks_from"] == "triangulated oracle"
        # the images are the input's (linked), the cameras unchanged
        old = load_identity(tmp_path / "set" / "id")
        assert new.image_files[3].read_bytes() == old.image_files[3].read_bytes()
        np.testing.assert_array_equal(new.cameras, old.cameras)
        manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
        assert [m["identity"] for m in manifest["identities"]] == ["id"]

    def test_only_near_frontal_views_and_the_source_are_shown(self, tmp_path: Path) -> None:
        _, oracle = _identity(tmp_path / "set", YAWS)
        relabel_set(tmp_path / "set", tmp_path / "out", oracle, "oracle", RelabelConfig(50.0))
        near = {int(i) for i in np.flatnonzero(np.abs(YAWS) <= 50)}
        assert set(oracle.seen) == near | {SOURCE}

    def test_a_wrong_view_is_outvoted(self, tmp_path: Path) -> None:
        """One view's answer 6 px off on every point: the re-weighting drops it and the
        result is exact again; without re-weighting it is not."""
        Y, oracle = _identity(tmp_path / "set", YAWS)
        oracle.points[3] = oracle.points[3] + 6.0
        identity = load_identity(tmp_path / "set" / "id")
        cfg = RelabelConfig(max_yaw_deg=90.0, source_weight=1.0)
        obs = gather_observations(identity, oracle, cfg)
        robust = fuse_observations(obs, identity.cameras, SIZE, cfg)
        plain = fuse_observations(obs, identity.cameras, SIZE, RelabelConfig(iterations=0))
        np.testing.assert_allclose(robust.landmarks3d, Y, atol=1e-5)
        assert robust.kept == pytest.approx(1 - 1 / len(obs.points))
        assert np.abs(plain.landmarks3d - Y).max() > 1e-3

    def test_resumes_and_refuses_its_input(self, tmp_path: Path) -> None:
        _, oracle = _identity(tmp_path / "set", YAWS)
        relabel_set(tmp_path / "set", tmp_path / "out", oracle, "oracle")
        again = relabel_set(tmp_path / "set", tmp_path / "out", oracle, "oracle")
        assert again.resumed == ["id"] and not again.done
        with pytest.raises(BadInputError, match="input set"):
            relabel_set(tmp_path / "set", tmp_path / "set", oracle, "oracle")

    def test_too_few_near_views_is_a_skip_naming_the_identity(self, tmp_path: Path) -> None:
        _, oracle = _identity(tmp_path / "set", np.array([-80.0, 75.0, 85.0]))
        cfg = RelabelConfig(max_yaw_deg=30.0, source_weight=0.0)
        summary = relabel_set(tmp_path / "set", tmp_path / "out", oracle, "oracle", cfg)
        assert not summary.done
        ((name, reason),) = summary.skipped
        assert name == "id" and "fewer than 2 views" in reason and "id" in reason
        assert not (tmp_path / "out" / "id").exists()


class TestConfig:
    @pytest.mark.parametrize(
        "kwargs",
        [{"max_yaw_deg": 0.0}, {"max_views": 1}, {"outlier_factor": 1.0}, {"iterations": -1}],
    )
    def test_bad_values_are_refused(self, kwargs: dict[str, float]) -> None:
        with pytest.raises(ValueError):
            RelabelConfig(**kwargs)  # type: ignore[arg-type]


def test_cli_relabel_unknown_model_is_a_usage_error(tmp_path: Path) -> None:
    from mvface.cli.main import app

    result = CliRunner().invoke(
        app, ["synth", "relabel", str(tmp_path), "--out", str(tmp_path / "o"), "--model", "nope"]
    )
    assert result.exit_code == 2
