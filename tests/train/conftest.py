"""Tiny data sets and configs for the training tests (CPU, seconds).

* a synthetic multiview set (``SyntheticWriter``): identities seen from V cameras on a yaw arc,
  32 x 32 views, landmarks the exact projections of one 3D point set per identity;
* a "real" folder of PNG + iBUG ``.pts`` faces (random texture with the points drawn on);
* a config for a small mvnet (64 px input, width 0.25) with tiny batches.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mvface.data.readers.pts import write_pts
from mvface.data.readers.synthetic import projection_matrices
from mvface.geometry.cameras import (
    cam2world_to_extrinsics,
    camera_to_eg3d_label,
    eg3d_intrinsics,
    look_at,
)
from mvface.synth.writer import IdentityRecord, SyntheticWriter
from mvface.train.config import TrainConfig

VIEW_SIZE = 32
REAL_SIZE = 48


def make_identity(name: str, views: int, seed: int, size: int = VIEW_SIZE) -> IdentityRecord:
    """One synthetic identity with exactly consistent cameras and landmarks."""
    rng = np.random.default_rng(seed)
    X = rng.normal(scale=0.08, size=(68, 3)) + np.array([0.0, 0.0, 0.2])
    yaw = np.linspace(-0.8, 0.8, views) + rng.uniform(-0.05, 0.05, views)
    eye = np.stack([2.7 * np.sin(yaw), np.full(views, -0.3), 2.7 * np.cos(yaw)], -1)
    c2w = look_at(torch.tensor(eye), torch.tensor([[0.0, 0.0, 0.2]]).expand(views, 3))
    R, t = cam2world_to_extrinsics(c2w)
    K = eg3d_intrinsics(size, size, dtype=torch.float64)
    labels = camera_to_eg3d_label(K.expand(views, 3, 3), R, t, size, size).numpy()
    P = projection_matrices(labels, size)
    proj = np.einsum("vij,nj->vni", P, np.concatenate([X, np.ones((68, 1))], 1))
    return IdentityRecord(
        name=name,
        images=rng.integers(0, 255, (views, size, size, 3), dtype=np.uint8),
        cameras=labels,
        landmarks=proj[..., :2] / proj[..., 2:],
        landmarks3d=X,
        visibility=rng.random((views, 68)) > 0.1,
        source_image=np.zeros((size, size, 3), np.uint8),
        source_camera=labels[views // 2],
        provenance={"backend": "test"},
    )


def write_synthetic(root: Path, identities: int, views: int, seed: int) -> Path:
    """A synthetic set of ``identities`` x ``views`` PNG views."""
    writer = SyntheticWriter(root, image_format="png")
    for i in range(identities):
        writer.write(make_identity(f"id{i}", views, seed + i))
    writer.write_manifest()
    return root


def write_real(root: Path, faces: int, seed: int) -> Path:
    """``faces`` PNG images with ``.pts`` files: one shape (jittered, moved) drawn on noise."""
    root.mkdir(parents=True, exist_ok=True)
    template = np.random.default_rng(12345).uniform(-9, 9, (68, 2))
    rng = np.random.default_rng(seed)
    for i in range(faces):
        image = rng.integers(0, 80, (REAL_SIZE, REAL_SIZE, 3), dtype=np.uint8)
        pts = template + rng.normal(scale=0.5, size=(68, 2)) + REAL_SIZE / 2
        pts = np.clip(pts + rng.uniform(-4, 4, 2), 4, REAL_SIZE - 5)
        for x, y in np.rint(pts).astype(int):
            image[y, x] = (255, 255, 255)
        Image.fromarray(image).save(root / f"face{i}.png")
        write_pts(root / f"face{i}.pts", pts)
    return root


def tiny_finetune_overrides(real: Path, synthetic: Path, out: Path, steps: int = 4) -> list[str]:
    """A tiny CPU finetune recipe (mvnet at 64 px, 2 x 4 views + 3 real faces per step)."""
    return [
        "model.options={input_size: 64, width: 0.25, head_channels: 8}",
        f"data.real_roots={real}",
        f"data.synthetic={synthetic}",
        "data.real_per_step=3",
        "data.identities_per_step=2",
        "data.views_per_identity=4",
        "loss.num_source_views=2",
        "optim.lr=0.003",
        "optim.warmup_steps=0",
        "optim.schedule=constant",
        "train.mode=finetune",
        f"train.steps={steps}",
        "train.checkpoint_every=2",
        "train.keep_last=2",
        "train.val_every=0",
        "train.log_every=1",
        "train.progress=false",
        "train.accelerator=cpu",
        "train.devices=1",
        f"train.out={out}",
    ]


@pytest.fixture(scope="session", autouse=True)
def _one_thread() -> None:
    """One intra-op thread: the tiny test models are far slower with two on a shared machine."""
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Training synthetic set: 3 identities x 6 views."""
    return write_synthetic(tmp_path_factory.mktemp("synthetic"), 3, 6, seed=0)


@pytest.fixture(scope="session")
def heldout_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Held-out synthetic set: 2 identities x 5 views (not trained on)."""
    return write_synthetic(tmp_path_factory.mktemp("heldout"), 2, 5, seed=100)


@pytest.fixture(scope="session")
def real_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real-data folder: 6 faces (PNG + .pts)."""
    return write_real(tmp_path_factory.mktemp("real"), 6, seed=1)


@pytest.fixture(scope="session")
def val_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 300-W-style validation folder: 3 faces."""
    return write_real(tmp_path_factory.mktemp("val"), 3, seed=2)


@pytest.fixture
def make_config(
    tmp_path: Path, synthetic_root: Path, real_root: Path
) -> Callable[..., TrainConfig]:
    """``make_config(*overrides)``: a tiny finetune recipe writing into ``tmp_path/run``."""

    def build(*overrides: str) -> TrainConfig:
        base = tiny_finetune_overrides(real_root, synthetic_root, tmp_path / "run")
        return TrainConfig().with_overrides([*base, *overrides])

    return build
