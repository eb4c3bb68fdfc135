"""300W-LP (3DDFA's large-pose synthesis of 300-W) reader.

Layout read (the original release)::

    root/
      AFW/AFW_134212_1_0.jpg + AFW_134212_1_0.mat     (pt2d (2, 68), Pose_Para (1, 7), roi, ...)
      AFW_Flip/..., HELEN/..., HELEN_Flip/..., IBUG/..., LFPW/...
      landmarks/AFW/AFW_134212_1_0_pts.mat            (pts_2d (68, 2), pts_3d (68, 2|3))

Every position is 1-based (MATLAB) and becomes 0-based (``-1`` on x and y; a z column, if any,
is kept as stored). As 3DDFA describes them, ``pts_2d`` are 2D-style landmarks (the jaw on the
visible face outline) and ``pts_3d`` 3D-style ones (the jaw on the actual, possibly hidden,
jaw line, like AFLW2000-3D); the shared data has no 300W-LP ``.mat`` to check this on, the
tests use written fixtures. ``Pose_Para[:3]`` is ``[pitch, yaw, roll]`` in
radians. ``roi`` is not used as the face box (``box`` is ``None``): in AFLW2000-3D, made by
the same pipeline, it is in the frame of the original photo, not of the 450x450 image; the raw
values are kept in ``meta["roi"]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

from mvface.data.readers._common import (
    check_dir,
    check_limit,
    finite_array,
    guard_os_errors,
    header_meta,
    iter_files,
    os_error_line,
    sample_name,
)
from mvface.data.readers._registry import register_reader
from mvface.data.readers.aflw2000_3d import load_mat
from mvface.data.record import Dataset, FaceSample
from mvface.errors import BadInputError

LandmarkSource = Literal["auto", "pt2d", "pts_2d", "pts_3d"]

_LP_IMAGE_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg", ".png"})


def _points_68(value: Any, source: Path, what: str) -> np.ndarray:
    """A ``(68, 2|3)`` or ``(2|3, 68)`` 1-based array as ``(68, 2|3)`` with x, y 0-based."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise BadInputError(source, f"{what} is not numeric") from None
    if arr.ndim == 2 and arr.shape[0] in (2, 3) and arr.shape[1] == 68:
        arr = arr.T
    if arr.ndim != 2 or arr.shape[0] != 68 or arr.shape[1] not in (2, 3):
        raise BadInputError(source, f"{what} has shape {arr.shape}, expected (68, 2|3)")
    if not np.all(np.isfinite(arr)):
        raise BadInputError(source, f"{what} contains NaN or infinite values")
    out = arr.copy()
    out[:, :2] -= 1.0
    return out


def _landmarks_file(image: Path, root: Path) -> Path | None:
    """``landmarks/<subset>/<stem>_pts.mat`` for ``image`` (or next to it), if present."""
    name = f"{image.stem}_pts.mat"
    subset = image.parent.name
    for candidate in (
        image.parent / name,
        root / "landmarks" / subset / name,
        root.parent / "landmarks" / subset / name,
        root / "landmarks" / name,
    ):
        if candidate.is_file():
            return candidate
    return None


def _lp_sample(image: Path, root: Path, lm_path: Path | None, source: LandmarkSource) -> FaceSample:
    mat_path = image.with_suffix(".mat")
    if not mat_path.is_file() and lm_path is None:
        raise BadInputError(image, "no .mat next to it and no landmarks/<subset>/<name>_pts.mat")
    candidates: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {"dataset": "300w-lp", "subset": image.parent.name}
    meta["flipped"] = image.parent.name.lower().endswith("_flip")
    pose = None
    if mat_path.is_file():
        mat = load_mat(mat_path)
        meta["mat_file"] = mat_path
        if "pt2d" in mat:
            candidates["pt2d"] = _points_68(mat["pt2d"], mat_path, "pt2d")
        if "Pose_Para" in mat:
            pose_para = finite_array(np.ravel(mat["Pose_Para"]), (7,), mat_path, "Pose_Para")
            meta["pose_para"] = pose_para
            pose = pose_para[:3].copy()
        if "roi" in mat:
            meta["roi"] = np.ravel(mat["roi"]).astype(np.float64)
    if lm_path is not None:
        lm = load_mat(lm_path)
        meta["landmarks_file"] = lm_path
        for key in ("pts_2d", "pts_3d"):
            if key in lm:
                candidates[key] = _points_68(lm[key], lm_path, key)
                meta[key] = candidates[key]
    order = ("pt2d", "pts_2d") if source == "auto" else (source,)
    chosen = next((k for k in order if k in candidates), None)
    if chosen is None:
        where = lm_path if source in ("pts_2d", "pts_3d") and lm_path is not None else mat_path
        raise BadInputError(where, f"has no {' or '.join(order)} landmarks")
    landmarks = candidates[chosen]
    meta["landmark_source"] = chosen
    meta["landmarks_from"] = str(lm_path if chosen in ("pts_2d", "pts_3d") else mat_path)
    meta.update(header_meta(image))
    return FaceSample(
        image=image,
        landmarks=landmarks,
        pose=pose,
        name=sample_name(image, root),
        meta=meta,
    )


@register_reader("300w-lp")
@guard_os_errors
def read_300w_lp(
    root: Path, limit: int | None = None, *, landmark_source: LandmarkSource = "auto"
) -> Dataset:
    """Read 300W-LP images with their ``.mat`` annotations and/or ``landmarks/`` files.

    Args:
        root: the 300W-LP folder (or one subset folder such as ``AFW/``).
        limit: stop after this many samples (``None``: all).
        landmark_source: which landmarks become ``FaceSample.landmarks``: ``"pt2d"`` (image
            ``.mat``), ``"pts_2d"`` or ``"pts_3d"`` (``landmarks/`` file), or ``"auto"``:
            ``pt2d`` when present, else ``pts_2d``. An item without the requested source is
            skipped with a reason. ``meta["landmark_source"]`` says which one was used.

    Returns:
        A Dataset named ``"300w-lp"`` sorted by relative path: ``landmarks`` ``(68, 2)`` (or
        ``(68, 3)``) 0-based pixels, ``pose`` ``[pitch, yaw, roll]`` radians (``None``
        without ``Pose_Para``), ``box`` ``None``, meta ``subset``,
        ``flipped``, ``pose_para``, ``roi``, ``pts_2d``/``pts_3d`` (0-based, when the
        landmarks file exists), ``mat_file``, ``landmarks_file``, ``width``, ``height``.

    Raises:
        BadInputError: ``root`` is not a readable folder or ``landmark_source`` is unknown.
    """
    root = check_dir(Path(root))
    limit = check_limit(limit)
    if landmark_source not in ("auto", "pt2d", "pts_2d", "pts_3d"):
        raise BadInputError("landmark_source", f"unknown value {landmark_source!r}")
    landmarks_root = root / "landmarks"
    samples: list[FaceSample] = []
    skipped: list[str] = []
    used: set[Path] = set()
    for image in iter_files(root, _LP_IMAGE_SUFFIXES, skipped):
        if limit is not None and len(samples) >= limit:
            break
        if landmarks_root in image.parents:
            continue
        try:
            lm_path = _landmarks_file(image, root)
            if lm_path is not None:
                used.add(lm_path)
            samples.append(_lp_sample(image, root, lm_path, landmark_source))
        except BadInputError as exc:
            skipped.append(str(exc))
        except OSError as exc:
            skipped.append(os_error_line(exc, image))
    if limit is None and landmarks_root.is_dir():
        for lm_file in iter_files(landmarks_root, frozenset({".mat"})):
            if lm_file not in used:
                skipped.append(f"{lm_file}: no image for this landmarks file")
    return Dataset(samples=samples, skipped=skipped, name="300w-lp", root=root)


__all__ = ["LandmarkSource", "read_300w_lp"]
