"""Fitting ``mediapipe-68``'s 468 → 68 head on 300-W: the recipe of the shipped head file.

Training-time code: the model itself (:mod:`mvface.models.mediapipe_68`) only loads the fitted
weights. The head is a per-landmark convex combination of the mesh vertices
(:class:`~mvface.models.mediapipe_68.MeshTo68Head`); :func:`fit_convex_head` solves it by
non-negative least squares, :func:`fit_head` runs the whole recipe on a folder of iBUG ``.pts``
faces (300-W AFW) and :func:`save_head` writes the file with its provenance.

Command line::

    python -m mvface.train.head_fit fit-head --data ../shared/data/300w/afw \
        --out src/mvface/models/weights/mediapipe68_head.safetensors --seed 0
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mvface.data.image import load_image
from mvface.data.readers import read_dataset
from mvface.data.record import landmark_box
from mvface.data.scheme import mirror_points
from mvface.errors import BadInputError
from mvface.eval.protocols import ibug_300w_protocol
from mvface.models._weights import save_weights
from mvface.models.mediapipe_68 import FACE_OVAL, IBUG_JAW, LICENCE, MediaPipe68, MeshTo68Head

__all__ = [
    "HeadFitConfig",
    "collect_meshes",
    "fit_convex_head",
    "fit_head",
    "main",
    "mirror_face",
    "save_head",
]


@dataclass(frozen=True)
class HeadFitConfig:
    """Settings of :func:`fit_head` (saved in the head file's config).

    Attributes:
        neighbours: candidate vertices of each non-jaw point: the ``neighbours`` vertices
            nearest to it on average over the training faces (2D, box-normalized).
        ridge: ridge penalty on the weights, per training face (box-normalized units).
        mirror: also fit on the mirrored images (:func:`~mvface.data.scheme.mirror_points`).
        seed: recorded for the recipe; the fit has no random step.
    """

    neighbours: int = 10
    ridge: float = 1e-4
    mirror: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.neighbours < 1 or not self.ridge >= 0:
            raise ValueError(f"need neighbours >= 1 and ridge >= 0, got {self}")


def mirror_face(image: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror an image left-right and relabel its 68 points.

    Args:
        image: ``(H, W, 3)`` uint8.
        points: ``(68, 2+)`` 0-based pixels.

    Returns:
        The mirrored image and points ``(68, 2+)`` in iBUG order.
    """
    return np.ascontiguousarray(image[:, ::-1]), mirror_points(points, image.shape[1])


def collect_meshes(
    model: MediaPipe68, faces: Iterable[tuple[np.ndarray, np.ndarray]], mirror: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Meshes from the model's crop policy (ground-truth canonical boxes) and their targets.

    Args:
        model: the mesh network with its crop policy (the head is not used).
        faces: ``(image (H, W, 3) uint8 RGB, points (68, 2) 0-based pixels)`` pairs.
        mirror: add each face mirrored.

    Returns:
        meshes ``(F, 468, 3)`` and targets ``(F, 68, 2)``, image pixels.
    """
    meshes, targets = [], []
    for image, points in faces:
        variants = [(image, points)]
        if mirror:
            variants.append(mirror_face(image, points))
        for img, pts in variants:
            box = model.config.crop(landmark_box(pts)[None])
            meshes.append(model.predict_mesh([img], box)[1][0])
            targets.append(np.asarray(pts, np.float64)[:, :2])
    return np.stack(meshes), np.stack(targets)


def _box_normalize(meshes: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre each face on its target box and divide by ``sqrt(w * h)`` (a similarity)."""
    low, high = targets.min(1), targets.max(1)
    centre = (low + high) / 2
    size = np.sqrt(np.prod(high - low, axis=1))[:, None, None]
    return (meshes[..., :2] - centre[:, None]) / size, (targets - centre[:, None]) / size


def fit_convex_head(
    meshes: np.ndarray, targets: np.ndarray, neighbours: int = 10, ridge: float = 1e-4
) -> np.ndarray:
    """Fit the 68 x 468 convex-combination weights to 2D targets.

    Each row solves ``min ||sum_j w_j v_j - t||^2 + ridge * F * ||w||^2`` over the training
    faces (box-normalized ``x, y``), subject to ``w >= 0`` and ``sum w = 1`` (non-negative
    least squares with a heavily weighted sum row, then renormalized). Jaw rows (iBUG 0-16)
    may use only :data:`FACE_OVAL` vertices; the others their ``neighbours`` nearest vertices.

    Args:
        meshes: ``(F, 468, 2+)`` meshes, image pixels.
        targets: ``(F, 68, 2)`` annotated points, image pixels.
        neighbours: candidate vertices per non-jaw point.
        ridge: ridge penalty per face.

    Returns:
        ``(68, 468)`` float64 weights, rows non-negative and summing to 1.
    """
    from scipy.optimize import nnls

    mesh_xy, target_xy = _box_normalize(np.asarray(meshes, np.float64), targets)
    num_faces, num_vertices = mesh_xy.shape[:2]
    mean_dist = np.linalg.norm(mesh_xy[:, None] - target_xy[:, :, None], axis=-1).mean(0)
    weight = np.zeros((target_xy.shape[1], num_vertices))
    sum_row_weight = 100.0  # enforces sum(w) = 1 to ~1e-4 before renormalizing
    for k in range(target_xy.shape[1]):
        if k in IBUG_JAW:
            cand = np.asarray(FACE_OVAL)
        else:
            cand = np.sort(np.argsort(mean_dist[k], kind="stable")[:neighbours])
        a = np.concatenate(
            [
                mesh_xy[:, cand, 0],
                mesh_xy[:, cand, 1],
                np.sqrt(ridge * num_faces) * np.eye(len(cand)),
                np.full((1, len(cand)), sum_row_weight),
            ]
        )
        b = np.concatenate(
            [target_xy[:, k, 0], target_xy[:, k, 1], np.zeros(len(cand)), [sum_row_weight]]
        )
        w, _ = nnls(a, b, maxiter=50 * len(cand))
        weight[k, cand] = w / w.sum()
    return weight


def fit_head(
    data: str | Path,
    config: HeadFitConfig = HeadFitConfig(),
    model: MediaPipe68 | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """The recipe of the shipped head: fit it on a folder of iBUG ``.pts`` faces (300-W AFW).

    Runs the mesh network with the model's crop policy on every face (ground-truth canonical
    box; mirrored copies too), then :func:`fit_convex_head`.

    Args:
        data: folder the ``"pts"`` reader reads (images + ``.pts``).
        config: fit settings.
        model: the model whose mesh and crop policy to use (default: a fresh
            :class:`MediaPipe68`).

    Returns:
        weights ``(68, 468)`` and a JSON-able config: the settings, crop policy, training-set
        size, 300-W NME (inter-ocular, percent) on the training faces, and a SHA-256 of the
        training targets.

    Raises:
        BadInputError: the folder has no usable faces.
    """
    root = Path(data)
    dataset = read_dataset("pts", root)
    if not dataset.samples:
        raise BadInputError(root, "no faces with .pts landmarks to fit the head on")
    model = model or MediaPipe68(head=MeshTo68Head())

    def faces() -> Iterable[tuple[np.ndarray, np.ndarray]]:
        for sample in dataset.samples:
            assert sample.landmarks is not None  # the pts reader always gives them
            image = sample.image
            yield (image if isinstance(image, np.ndarray) else load_image(image)), sample.landmarks

    meshes, targets = collect_meshes(model, faces(), config.mirror)
    weight = fit_convex_head(meshes, targets, config.neighbours, config.ridge)
    train_nme = ibug_300w_protocol(np.einsum("kj,njd->nkd", weight, meshes), targets).nme_mean
    info: dict[str, Any] = {
        "head": "per-point convex combination of mesh vertices (x, y, z share the weights)",
        "fit": asdict(config),
        "first_pass_crop": asdict(model.config.crop),
        "recrop_scale": model.recrop_scale,
        "passes": model.passes,
        "train_data": root.name,
        "train_faces": len(dataset.samples),
        "train_faces_fitted": len(targets),
        "train_nme_300w_percent": round(float(train_nme), 4),
        "train_targets_sha256": hashlib.sha256(
            np.ascontiguousarray(targets, dtype="<f8").tobytes()
        ).hexdigest(),
    }
    return weight, info


def save_head(
    path: str | Path, weight: np.ndarray, config: dict[str, Any], **metadata: str
) -> Path:
    """Save head weights ``(68, 468)`` (float32) with their config and provenance metadata."""
    tensor = torch.from_numpy(np.asarray(weight, dtype=np.float32))
    if tuple(tensor.shape) != (68, 468):
        raise ValueError(f"head weights must be (68, 468), got {tuple(tensor.shape)}")
    return save_weights(path, {"weight": tensor}, config, **metadata)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m mvface.train.head_fit fit-head --data DIR --out FILE``."""
    parser = argparse.ArgumentParser(prog="python -m mvface.train.head_fit")
    sub = parser.add_subparsers(dest="command", required=True)
    fit = sub.add_parser("fit-head", help="fit the 468 -> 68 head on iBUG .pts faces")
    fit.add_argument("--data", type=Path, required=True, help="folder of images + .pts (AFW)")
    fit.add_argument("--out", type=Path, required=True, help="head .safetensors to write")
    fit.add_argument("--seed", type=int, default=0, help="recorded; the fit is deterministic")
    fit.add_argument("--neighbours", type=int, default=HeadFitConfig.neighbours)
    fit.add_argument("--ridge", type=float, default=HeadFitConfig.ridge)
    fit.add_argument("--no-mirror", action="store_true", help="do not add mirrored faces")
    fit.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = HeadFitConfig(args.neighbours, args.ridge, not args.no_mirror, args.seed)
    try:
        weight, info = fit_head(args.data, config)
    except BadInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    recipe = (
        f"python -m mvface.train.head_fit fit-head --data {args.data.name} "
        f"--out {args.out.name} --seed {args.seed} --neighbours {args.neighbours} "
        f"--ridge {args.ridge:g}" + (" --no-mirror" if args.no_mirror else "")
    )
    data = (
        f"iBUG 300-W {args.data.name} ({info['train_faces']} faces"
        + (", plus mirrored copies" if config.mirror else "")
        + "); annotations research / non-commercial use only"
    )
    save_head(args.out, weight, info, licence=LICENCE, recipe=recipe, data=data)
    print(
        f"wrote {args.out}: {info['train_faces_fitted']} training faces, "
        f"300-W NME {info['train_nme_300w_percent']:.2f} % on them"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
