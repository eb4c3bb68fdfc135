"""Tests of fitting ``mediapipe-68``'s 468 -> 68 head (:mod:`mvface.train.head_fit`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from _fakes import synthetic_mesh
from _shared import SHARED, requires_shared
from mvface.data.scheme import FLIP_PERMUTATION
from mvface.models._weights import load_weights
from mvface.models.mediapipe_68 import (
    DEFAULT_HEAD_PATH,
    FACE_OVAL,
    IBUG_JAW,
    LICENCE,
    load_head,
)
from mvface.models.mediapipe_mesh import DEFAULT_WEIGHTS_PATH
from mvface.train.head_fit import fit_convex_head, main, mirror_face, save_head

AFW = SHARED / "data" / "300w" / "afw"

needs_weights = pytest.mark.skipif(
    not (DEFAULT_WEIGHTS_PATH.is_file() and DEFAULT_HEAD_PATH.is_file()),
    reason=f"weights absent: {DEFAULT_WEIGHTS_PATH} / {DEFAULT_HEAD_PATH}",
)


class TestMirrorFace:
    def test_mirror_is_an_involution(self) -> None:
        assert sorted(FLIP_PERMUTATION) == list(range(68))
        assert all(FLIP_PERMUTATION[FLIP_PERMUTATION[k]] == k for k in range(68))
        rng = np.random.default_rng(0)
        image = rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)
        points = rng.uniform(0, 19, (68, 2))
        back_image, back_points = mirror_face(*mirror_face(image, points))
        np.testing.assert_array_equal(back_image, image)
        np.testing.assert_allclose(back_points, points)


class TestFitConvexHead:
    def test_recovers_a_convex_map(self) -> None:
        rng = np.random.default_rng(1)
        mesh = synthetic_mesh(60, seed=2)
        truth = np.zeros((68, 468))
        for k in range(68):
            pool = np.asarray(FACE_OVAL) if k in IBUG_JAW else np.arange(468)
            idx = rng.choice(pool, 2, replace=False)
            truth[k, idx] = [0.7, 0.3]
        targets = np.einsum("kj,njd->nkd", truth, mesh[..., :2])
        # every point's two vertices must be among its candidates: give all vertices
        weight = fit_convex_head(mesh, targets, neighbours=468, ridge=0.0)
        assert (weight >= 0).all()
        np.testing.assert_allclose(weight.sum(1), 1.0, atol=1e-9)
        fitted = np.einsum("kj,njd->nkd", weight, mesh[..., :2])
        np.testing.assert_allclose(fitted, targets, atol=1e-3)
        off_oval = np.setdiff1d(np.arange(468), FACE_OVAL)
        assert not weight[np.asarray(IBUG_JAW)][:, off_oval].any()


class TestSaveHead:
    def test_save_load_round_trip(self, tmp_path: Path) -> None:
        weight = np.random.default_rng(0).dirichlet(np.ones(468), size=68)
        config = {"fit": {"neighbours": 10, "ridge": 1e-4}, "train_faces": 3}
        path = save_head(tmp_path / "head.safetensors", weight, config, licence=LICENCE)
        head, loaded = load_head(path)
        assert loaded == config
        np.testing.assert_allclose(head.weight.detach().numpy(), weight, rtol=1e-6)
        assert load_weights(path)[2]["licence"] == LICENCE


def test_empty_folder_is_a_clear_error(tmp_path: Path) -> None:
    assert main(["fit-head", "--data", str(tmp_path), "--out", str(tmp_path / "x")]) == 2


@requires_shared("data/300w/afw")
@needs_weights
class TestFitHeadRecipe:
    def test_cli_is_deterministic(self, tmp_path: Path) -> None:
        data = tmp_path / "afw4"
        data.mkdir()
        for pts in sorted(AFW.glob("*.pts"))[:4]:
            for src in (pts, pts.with_suffix(".jpg")):
                (data / src.name).symlink_to(src)
        outs = [tmp_path / run / "head.safetensors" for run in ("a", "b")]
        threads = torch.get_num_threads()
        try:
            for out in outs:
                assert main(["fit-head", "--data", str(data), "--out", str(out)]) == 0
        finally:
            torch.set_num_threads(threads)
        # same tensors, config and metadata (safetensors may order its JSON header freely)
        (t0, c0, m0), (t1, c1, m1) = (load_weights(out) for out in outs)
        assert c0 == c1 and m0 == m1
        torch.testing.assert_close(t0["weight"], t1["weight"], atol=0, rtol=0)
        head, config = load_head(outs[0])
        assert config["train_faces"] == 4 and config["train_faces_fitted"] == 8
        assert config["train_nme_300w_percent"] < 10.0
        assert (head.weight >= 0).all()
        assert m0["recipe"].startswith("python -m mvface.train.head_fit fit-head --data afw4")
