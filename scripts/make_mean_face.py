"""Make ``src/mvface/geometry/_mean_face_68.py``: the mean 3D 68-point face the head pose fits to.

Recipe (the shipped file was written by exactly this command, under a minute on one CPU)::

    OMP_NUM_THREADS=1 python scripts/make_mean_face.py \
        --data ../shared/data/300w/afw ../shared/data/300w/helen_trainset \
        --weights ../shared/models/3ddfa_v2 --out src/mvface/geometry/_mean_face_68.py

What it does: ``3ddfa-v2`` reconstructs the 68 3D points of every face of the 300-W *training*
folders (AFW 337 + HELEN train 870 faces; crop from the annotated 68-point box; never any
AFLW2000-3D image). Its points are ``s R v + t`` with the network's own 3DMM rotation ``R``
(:func:`mvface.models.tddfa.pose_from_params`), so ``Rᵀ`` takes each face back to the model
space of AFLW2000-3D's ``Pose_Para`` (x toward the subject's left, y up, z toward the camera);
each is centred and scaled to unit RMS radius (the translation and scale of an Umeyama
alignment; its rotation is the network's, exact for its points), the faces are averaged, and the
mean is made left-right symmetric (averaged with its mirror image, relabelled). The 3DMM jaw is
kept on purpose: AFLW2000-3D's pose is a 3DMM fit's, and so is this frame's zero.

Licences: the output is a 68 x 3 average of network predictions, mvface's own data; it holds no
3DMM basis. 3DDFA_V2 weights: MIT (Jianzhu Guo); the 300-W annotations only choose the crops and
are research / non-commercial use only.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np
import torch

from mvface.data.image import load_image
from mvface.data.readers import read_dataset
from mvface.data.record import landmark_box
from mvface.data.scheme import FLIP_PERMUTATION
from mvface.models import create_model
from mvface.models.tddfa import pose_from_params

REPO = Path(__file__).resolve().parents[1]


def unposed_faces(folders: list[Path], weights: str) -> tuple[np.ndarray, list[str]]:
    """``(F, 68, 3)`` unit-RMS, centred 3ddfa-v2 faces in 3DMM model space, and their names."""
    model = create_model("3ddfa-v2", weights=weights)
    shapes, names = [], []
    for folder in folders:
        for sample in read_dataset("pts", folder).samples:
            assert sample.landmarks is not None
            image = load_image(sample.image) if isinstance(sample.image, Path) else sample.image
            box = landmark_box(sample.landmarks)[None]
            pred = model.predict(image, box)
            params = pred.extras["params62"]
            R = np.asarray(euler(pose_from_params(params))[0])
            y_up = pred.points[0] * np.array([1.0, -1.0, 1.0])
            centred = y_up - y_up.mean(0)
            v = centred @ R  # Rᵀ p for each row p
            shapes.append(v / np.sqrt((v * v).sum(1).mean()))
            names.append(f"{folder.name}/{sample.name}")
    return np.stack(shapes), names


def euler(angles: np.ndarray) -> np.ndarray:
    from mvface.geometry.rotations import euler_to_rotation

    return euler_to_rotation(torch.from_numpy(np.asarray(angles, np.float64))).numpy()


def symmetric(mean: np.ndarray) -> np.ndarray:
    """Average a ``(68, 3)`` face with its mirror image (x -> -x, left/right labels swapped)."""
    mirrored = mean[list(FLIP_PERMUTATION)] * np.array([-1.0, 1.0, 1.0])
    return (mean + mirrored) / 2


def write_module(path: Path, mean: np.ndarray, count: int, digest: str, recipe: str) -> None:
    """Write ``mean`` ``(68, 3)`` as the constant ``MEAN_FACE_68`` of a Python module."""
    rows = "\n".join(f"    ({x:.5f}, {y:.5f}, {z:.5f})," for x, y, z in mean)
    command = " \\\n        --".join(recipe.split(" --"))  # one option a line
    path.write_text(
        '"""Mean 3D 68-point face (iBUG order) for the head pose fit: written by a script, do not '
        "edit.\n\n"
        "Model space of AFLW2000-3D ``Pose_Para`` (x toward the subject's left, y up, z toward "
        "the camera),\ncentred, unit RMS radius, left-right symmetric. The mean of 3ddfa-v2's "
        f"reconstructions of {count}\n300-W training faces (AFW + HELEN train), each taken back "
        "to model space by the network's own\nrotation. mvface's own data (an average of network "
        "predictions, no 3DMM basis); 3DDFA_V2\nweights MIT; 300-W annotations research / "
        "non-commercial use only.\n\n"
        f"Recipe::\n\n    {command}\n\n"
        f"Faces (sorted names) SHA-256: {digest}\n"
        '"""\n\n'
        "MEAN_FACE_68: tuple[tuple[float, float, float], ...] = (\n"
        f"{rows}\n)\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, nargs="+", required=True, help="300-W train folders")
    parser.add_argument("--weights", required=True, help="3DDFA_V2 release folder")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cache", type=Path, help="also save the per-face shapes here (.npy)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    shapes, names = unposed_faces(args.data, args.weights)
    if args.cache:
        np.save(args.cache, shapes)
    mean = symmetric(shapes.mean(0))
    mean -= mean.mean(0)
    mean /= np.sqrt((mean * mean).sum(1).mean())
    digest = hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest()
    recipe = (
        "python scripts/make_mean_face.py --data "
        + " ".join(f"300w/{p.name}" for p in args.data)
        + f" --weights 3ddfa_v2 --out {args.out.name}"
    )
    write_module(args.out, mean, len(shapes), digest, recipe)
    print(f"wrote {args.out}: mean of {len(shapes)} faces")


if __name__ == "__main__":
    main()
