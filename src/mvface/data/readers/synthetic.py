"""Reader of mvface's synthetic multiview datasets (what ``mvface synth`` writes).

Layout of a dataset folder::

    manifest.json                 index + provenance (rebuilt from the identities' meta.json)
    <identity>/meta.json          provenance of this identity (written last: its presence
                                  marks a finished identity)
    <identity>/images/000.jpg     the V rendered views, V = len(cameras)
    <identity>/cameras.npy        (V, 25) float32 EG3D labels (16 cam2world + 9 normalized K)
    <identity>/landmarks.npy      (V, 68, 2) float32 per-view landmarks, pixels
    <identity>/landmarks3d.npy    (68, 3) float32 world-space landmarks
    <identity>/visibility.npy     (V, 68) bool, depth-tested visibility
    <identity>/observed.npy       optional, (V, 68) bool: the landmark is visible and its texture
                                  was observed in the source photo (not filled in); absent in
                                  sets written before it existed (read as ``None``)
    <identity>/source.jpg         the aligned source crop; source_camera.npy (25,) its label

``meta.json`` may hold ``filled_fraction`` (V floats): the fraction of each view's head pixels
whose texture was filled in rather than observed (the unseen side of the head). Both are
optional additions readers of format version 1 ignore, so the version stays 1.

Pixel convention: landmarks are mvface's (0-based, pixel centres at integers). EG3D intrinsics
produce continuous coordinates (pixel ``i`` centred at ``i + 0.5``), so
:func:`projection_matrices` shifts them by −0.5: projecting ``landmarks3d`` with those matrices
gives ``landmarks.npy``.

For training, :class:`SyntheticMultiviewSet` serves random V-of-N view samples per identity.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mvface._io import read_small_file
from mvface.data.image import load_image
from mvface.data.readers._common import check_dir, check_limit, os_error_line
from mvface.data.readers._registry import register_reader
from mvface.data.record import Dataset, FaceSample
from mvface.errors import BadInputError

FORMAT_NAME = "mvface-synthetic"
FORMAT_VERSION = 1
META_FILE = "meta.json"
MANIFEST_FILE = "manifest.json"
IMAGE_FORMATS = ("jpg", "png")
#: Largest ``meta.json`` read, in bytes.
MAX_META_BYTES = 10_000_000
ARRAY_FILES = ("cameras.npy", "landmarks.npy", "landmarks3d.npy", "visibility.npy")
#: Optional per-view, per-landmark array (see the module docstring).
OBSERVED_FILE = "observed.npy"


def projection_matrices(labels: np.ndarray, size: int) -> np.ndarray:
    """``(V, 3, 4)`` float64 projections in landmark pixels from ``(V, 25)`` EG3D labels.

    ``size`` is the side of the square views in pixels.
    """
    from mvface.geometry.cameras import eg3d_label_to_camera, projection_matrix

    lab = torch.as_tensor(np.asarray(labels, np.float64))
    K, R, t = eg3d_label_to_camera(lab, size, size)
    P = projection_matrix(K, R, t).numpy()
    shift = np.array([[1.0, 0.0, -0.5], [0.0, 1.0, -0.5], [0.0, 0.0, 1.0]])
    return np.asarray(shift @ P)


def _check_cameras(labels: np.ndarray, source: Path) -> None:
    """Refuse EG3D labels with a singular or mirrored rotation or singular intrinsics."""
    from mvface.geometry.cameras import eg3d_label_to_camera

    if len(labels) == 0:
        raise BadInputError(source, "holds no camera (0 views)")
    try:
        eg3d_label_to_camera(torch.as_tensor(np.asarray(labels, np.float64)), 1, 1)
    except BadInputError as exc:
        raise BadInputError(source, exc.problem) from None


def _safe_child(root: Path, name: str) -> Path:
    """``root / name``, refusing names that would leave ``root`` (path traversal)."""
    path = (root / name).resolve()
    if root.resolve() not in path.parents:
        raise BadInputError(root / name, "identity path leaves the dataset folder")
    return path


@dataclass
class SyntheticIdentity:
    """One identity of a synthetic set (arrays loaded, images loaded on demand)."""

    name: str
    folder: Path
    cameras: np.ndarray
    landmarks: np.ndarray
    landmarks3d: np.ndarray
    visibility: np.ndarray
    image_files: list[Path]
    meta: dict[str, Any]
    observed: np.ndarray | None = None

    @property
    def num_views(self) -> int:
        """V, the number of rendered views."""
        return len(self.cameras)

    def filled_fraction(self) -> np.ndarray | None:
        """``(V,)`` fraction of each view's head pixels filled in (``meta.json``), or ``None``
        for a set written before it was recorded."""
        value = self.meta.get("filled_fraction")
        if not isinstance(value, list) or len(value) != self.num_views:
            return None
        try:
            return np.asarray(value, np.float64)
        except (TypeError, ValueError):
            return None

    def usable_views(self, max_filled: float = 1.0) -> np.ndarray:
        """Indices of the views whose filled fraction is at most ``max_filled`` (every view
        when the fraction is not recorded or ``max_filled >= 1``)."""
        fraction = self.filled_fraction()
        if fraction is None or max_filled >= 1.0:
            return np.arange(self.num_views)
        return np.flatnonzero(fraction <= max_filled)

    def spread_views(self, count: int) -> np.ndarray:
        """``count`` distinct view indices spread evenly over the views (first and last included).

        Raises:
            BadInputError: the identity has fewer than ``count`` views.
        """
        idx = np.unique(np.linspace(0, self.num_views - 1, count).round().astype(int))
        if len(idx) < count:
            raise BadInputError(self.folder, f"has {self.num_views} views, {count} asked")
        return idx


def load_identity(folder: Path) -> SyntheticIdentity:
    """Read one finished identity folder.

    Raises:
        BadInputError: a missing or malformed file (named in the message).
    """
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        raise BadInputError(folder, "not a finished identity (no meta.json)")
    try:
        meta = json.loads(read_small_file(meta_path, MAX_META_BYTES, "meta.json file"))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise BadInputError(meta_path, f"not valid JSON ({exc})") from None
    arrays = {}
    for name in ARRAY_FILES:
        try:
            arrays[name] = np.load(folder / name, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise BadInputError(folder / name, f"unreadable array ({exc})") from None
    cams, lms = arrays["cameras.npy"], arrays["landmarks.npy"]
    v = len(cams)
    checks = [
        (cams.shape == (v, 25), "cameras.npy", f"shape {cams.shape}, expected (V, 25)"),
        (lms.shape == (v, 68, 2), "landmarks.npy", f"shape {lms.shape}, expected ({v}, 68, 2)"),
        (arrays["landmarks3d.npy"].shape == (68, 3), "landmarks3d.npy", "expected (68, 3)"),
        (arrays["visibility.npy"].shape == (v, 68), "visibility.npy", f"expected ({v}, 68)"),
        (bool(np.all(np.isfinite(cams))), "cameras.npy", "contains NaN or infinite values"),
        (bool(np.all(np.isfinite(lms))), "landmarks.npy", "contains NaN or infinite values"),
    ]
    observed = None
    if (folder / OBSERVED_FILE).is_file():
        try:
            observed = np.load(folder / OBSERVED_FILE, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise BadInputError(folder / OBSERVED_FILE, f"unreadable array ({exc})") from None
        checks.append((observed.shape == (v, 68), OBSERVED_FILE, f"expected ({v}, 68)"))
    for ok, file, problem in checks:
        if not ok:
            raise BadInputError(folder / file, problem)
    _check_cameras(cams, folder / "cameras.npy")
    if not isinstance(meta, dict):
        raise BadInputError(meta_path, f"expected a JSON object, got {type(meta).__name__}")
    ext = meta.get("image_format", "jpg")
    if ext not in IMAGE_FORMATS:
        raise BadInputError(meta_path, f"image_format must be one of {IMAGE_FORMATS}, got {ext!r}")
    images = [folder / "images" / f"{i:03d}.{ext}" for i in range(v)]
    return SyntheticIdentity(
        name=folder.name,
        folder=folder,
        cameras=cams.astype(np.float64),
        landmarks=lms.astype(np.float64),
        landmarks3d=arrays["landmarks3d.npy"].astype(np.float64),
        visibility=arrays["visibility.npy"].astype(bool),
        image_files=images,
        meta=meta,
        observed=None if observed is None else observed.astype(bool),
    )


def scan_identities(root: Path) -> tuple[list[Path], list[str]]:
    """Finished identity folders of a dataset (sorted), and a reason for each other folder.

    Hidden entries (the writer's ``.tmp-*`` temporaries) and plain files (``manifest.json``)
    are not identities and are passed over. Every other folder is either returned or listed
    with why it is not read: it cannot be listed (``permission denied``), or it has no
    ``meta.json`` (an unfinished identity). Symlinked folders are returned like the others
    (:func:`_safe_child` then refuses those that lead out of ``root``).
    """
    folders: list[Path] = []
    skipped: list[str] = []
    for p in sorted(root.iterdir()):
        if p.name.startswith("."):
            continue
        try:
            if not p.is_dir():
                continue
            if not os.access(p, os.R_OK | os.X_OK):
                raise PermissionError(13, "Permission denied", str(p))
            if not (p / META_FILE).is_file():
                skipped.append(str(BadInputError(p, "not a finished identity (no meta.json)")))
                continue
        except OSError as exc:
            skipped.append(os_error_line(exc, p))
            continue
        folders.append(p)
    return folders, skipped


def list_identities(root: Path) -> list[Path]:
    """Finished identity folders of a dataset, sorted (see :func:`scan_identities`)."""
    return scan_identities(root)[0]


@dataclass
class MultiviewSample:
    """V views of one identity, as the plug-in consumes them."""

    name: str
    images: np.ndarray  # (V, H, W, 3) uint8
    projections: np.ndarray  # (V, 3, 4) landmark-pixel projections
    landmarks: np.ndarray  # (V, 68, 2) pseudo ground truth, pixels
    visibility: np.ndarray  # (V, 68) bool
    view_indices: np.ndarray  # (V,) which of the identity's views
    observed: np.ndarray | None = None  # (V, 68) bool, texture observed (None: not recorded)


class SyntheticMultiviewSet:
    """Random V-of-N view samples per identity of a synthetic dataset (for training).

    A bad identity (unreadable or malformed file, a folder that cannot be listed or has no
    ``meta.json``) is left out with a one-line reason in ``skipped``; a folder with no usable
    identity raises :class:`BadInputError`.
    """

    def __init__(self, root: str | Path, limit: int | None = None) -> None:
        self.root = Path(root)
        check_dir(self.root)
        folders, unread = scan_identities(self.root)
        if limit is not None:
            folders = folders[: check_limit(limit)]
        self.identities: list[SyntheticIdentity] = []
        self.skipped: list[str] = list(unread)
        for folder in folders:
            try:
                self.identities.append(load_identity(_safe_child(self.root, folder.name)))
            except BadInputError as exc:
                self.skipped.append(str(exc))
        if not self.identities:
            why = f" ({len(self.skipped)} bad, e.g. {self.skipped[0]})" if self.skipped else ""
            raise BadInputError(self.root, f"holds no usable finished synthetic identity{why}")

    def __len__(self) -> int:
        return len(self.identities)

    def sample(
        self, index: int, num_views: int, rng: np.random.Generator, max_filled: float = 1.0
    ) -> MultiviewSample:
        """``num_views`` distinct random views of identity ``index``, among those whose filled
        fraction is at most ``max_filled`` (:meth:`SyntheticIdentity.usable_views`)."""
        ident = self.identities[index]
        usable = ident.usable_views(max_filled)
        if num_views > len(usable):
            raise ValueError(
                f"{ident.name} has {len(usable)} views with at most {max_filled:g} of the head "
                f"filled in, {num_views} asked"
            )
        views = np.sort(rng.choice(usable, size=num_views, replace=False))
        images = np.stack([load_image(ident.image_files[i]) for i in views])
        return MultiviewSample(
            name=ident.name,
            images=images,
            projections=projection_matrices(ident.cameras[views], images.shape[2]),
            landmarks=ident.landmarks[views],
            visibility=ident.visibility[views],
            view_indices=views,
            observed=None if ident.observed is None else ident.observed[views],
        )


@register_reader("mvface-synthetic")
def read_synthetic(root: Path, limit: int | None = None) -> Dataset:
    """Every view of every identity as a :class:`FaceSample` (for evaluation and previews).

    ``meta`` holds ``identity``, ``view`` and the view's EG3D ``camera`` (25,). A bad identity
    or folder (see :func:`scan_identities`) and a view with degenerate landmarks are skipped,
    each with a one-line reason.
    """
    root = check_dir(Path(root))
    limit = check_limit(limit)
    samples: list[FaceSample] = []
    folders, skipped = scan_identities(root)
    for folder in folders:
        try:
            ident = load_identity(_safe_child(root, folder.name))
        except BadInputError as exc:
            skipped.append(str(exc))
            continue
        for v in range(ident.num_views):
            if limit is not None and len(samples) >= limit:
                return Dataset(samples, skipped, "mvface-synthetic", root)
            meta = {
                "identity": ident.name,
                "view": v,
                "camera": ident.cameras[v],
                "landmarks_from": f"{ident.folder / 'landmarks.npy'} view {v}",
            }
            try:
                samples.append(
                    FaceSample(
                        image=ident.image_files[v],
                        landmarks=ident.landmarks[v],
                        visibility=ident.visibility[v],
                        name=f"{ident.name}/{v:03d}",
                        meta=meta,
                    )
                )
            except BadInputError as exc:
                skipped.append(str(exc))
    return Dataset(samples, skipped, "mvface-synthetic", root)
