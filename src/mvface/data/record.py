"""One record type for a face sample, shared by every reader, the generator and evaluation."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mvface.data.scheme import NUM_LANDMARKS
from mvface.errors import BadInputError


@dataclass
class FaceSample:
    """A face in an image, with whatever annotation its source gives.

    Attributes:
        image: path of the image file, or the image itself as ``(H, W, 3)`` uint8 RGB.
        landmarks: ``(68, 2)`` or ``(68, 3)`` float64, 0-based pixel coordinates of the image
            (pixel centres at integers; z, when present, is in the source's own depth units).
            ``None`` when the source has no landmarks (a plain image folder).
        box: ``(4,)`` face box ``[x0, y0, x1, y1]`` in 0-based pixels, or ``None``.
        pose: ``(3,)`` head pose ``[pitch, yaw, roll]`` in radians (see
            :mod:`mvface.geometry.rotations` for the convention), or ``None``.
        visibility: ``(68,)`` bool, ``True`` where the point is visible, or ``None``.
        name: a stable identifier of the sample inside its dataset (e.g. the file stem).
        meta: source metadata (dataset name, original file, anything format-specific);
            ``landmarks_from`` names the annotation file (see :attr:`source`).

    Raises:
        BadInputError: ``"<annotation file>: <problem>"`` for landmarks that are not a finite
            ``(68, 2|3)`` array, hold an absurd coordinate or have no size
            (:func:`check_face_points`), a box without area, a pose that is not 3 finite
            angles within :data:`MAX_ANGLE`, or a visibility of the wrong length.
    """

    image: Path | np.ndarray
    landmarks: np.ndarray | None = None
    box: np.ndarray | None = None
    pose: np.ndarray | None = None
    visibility: np.ndarray | None = None
    name: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        source = self.source  # the annotation file, where the reader says which it is
        if self.landmarks is not None:
            self.landmarks = check_face_points(self.landmarks, source)
        if self.box is not None:
            box = np.asarray(self.box, dtype=np.float64).reshape(-1)
            if box.shape != (4,) or not np.all(np.isfinite(box)):
                raise BadInputError(source, f"face box must be 4 finite numbers, got {box!r}")
            if np.abs(box).max() > MAX_COORDINATE:
                raise BadInputError(source, f"face box {box.tolist()} is absurd (pixels)")
            if box[2] <= box[0] or box[3] <= box[1]:
                raise BadInputError(source, f"face box has no area: {box.tolist()}")
            self.box = box
        if self.pose is not None:
            pose = np.asarray(self.pose, dtype=np.float64).reshape(-1)
            if pose.shape != (3,) or not np.all(np.isfinite(pose)):
                raise BadInputError(source, "pose must be 3 finite angles (pitch, yaw, roll)")
            if np.abs(pose).max() > MAX_ANGLE:
                raise BadInputError(source, f"pose {pose.tolist()} is absurd (beyond ten turns)")
            self.pose = pose
        if self.visibility is not None:
            vis = np.asarray(self.visibility).reshape(-1).astype(bool)
            if vis.shape != (NUM_LANDMARKS,):
                raise BadInputError(source, f"visibility must have 68 entries, got {vis.size}")
            self.visibility = vis

    @property
    def image_path(self) -> Path | None:
        """The image file, or ``None`` when the sample holds an array."""
        return self.image if isinstance(self.image, Path) else None

    @property
    def source(self) -> str:
        """Where the annotation comes from, for messages: the file (and the place in it).

        Readers put it in ``meta["landmarks_from"]`` (e.g. the ``.pts`` or ``.mat`` file, or
        ``"<file>.json annotation id 7"``); without it, the image file or the sample name.
        """
        where = self.meta.get("landmarks_from")
        if where:
            return str(where)
        return str(self.image) if isinstance(self.image, Path) else (self.name or "<array>")


#: Largest absolute landmark coordinate accepted, in pixels. Points may lie outside the image
#: (occluded or cut-off parts of a face), but no image is a million pixels wide: a value beyond
#: this is a corrupt annotation (and ``1e300`` would overflow every normalizer to infinity).
MAX_COORDINATE = 1e6

#: Largest absolute pose angle accepted, in radians: ten turns. Fitted poses do wrap beyond one
#: turn (AFLW2000-3D has pitches of -12.5 rad and yaws of -351 degrees, which its protocol
#: bins as it finds them), so only values no fit produces are refused.
MAX_ANGLE = 20 * np.pi


def validate_landmarks(points: Any, source: str | Path) -> np.ndarray:
    """Check that ``points`` is a finite ``(68, 2|3)`` array; return it as float64.

    Coordinates beyond :data:`MAX_COORDINATE` pixels (absolute value) are refused as absurd.

    Raises:
        BadInputError: naming ``source`` and the problem (wrong count, NaN, wrong shape, an
            absurd coordinate).
    """
    try:
        arr = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise BadInputError(source, f"landmarks are not numbers ({exc})") from None
    if arr.ndim != 2 or arr.shape[1] not in (2, 3):
        raise BadInputError(source, f"landmarks must have shape (68, 2|3), got {arr.shape}")
    if arr.shape[0] != NUM_LANDMARKS:
        raise BadInputError(source, f"expected 68 landmarks, got {arr.shape[0]}")
    if not np.all(np.isfinite(arr)):
        raise BadInputError(source, "landmarks contain NaN or infinite values")
    worst = float(np.abs(arr).max())
    if worst > MAX_COORDINATE:
        raise BadInputError(
            source, f"landmark coordinate {worst:.3g} is absurd (beyond ±{MAX_COORDINATE:g} pixels)"
        )
    return arr


def degenerate_problem(points: np.ndarray) -> str | None:
    """Why ``(68, 2+)`` points cannot be a face annotation, or ``None`` when they can.

    A face whose tight ``(x, y)`` box has zero width or height (all points equal, or on one
    line) has no size: every size normalizer (box, inter-ocular) would be 0 or undefined.
    """
    xy = np.asarray(points, dtype=np.float64)[:, :2]
    width, height = np.ptp(xy, axis=0)
    if not (width > 0 and height > 0):
        if width == 0 and height == 0:
            return "all 68 landmarks are the same point (the face has no size)"
        return f"landmarks span {width:g} x {height:g} pixels (the face box has no area)"
    return None


def check_face_points(points: Any, source: str | Path) -> np.ndarray:
    """:func:`validate_landmarks`, then refuse degenerate faces (:func:`degenerate_problem`).

    Raises:
        BadInputError: ``"<source>: <problem>"``.
    """
    arr = validate_landmarks(points, source)
    problem = degenerate_problem(arr)
    if problem is not None:
        raise BadInputError(source, problem)
    return arr


def landmark_box(points: np.ndarray) -> np.ndarray:
    """Tight box ``[x0, y0, x1, y1]`` around ``(..., 68, 2+)`` points (pixels)."""
    xy = np.asarray(points)[..., :2]
    return np.concatenate([xy.min(axis=-2), xy.max(axis=-2)], axis=-1)


@dataclass
class Dataset:
    """What a reader returns: the good samples and a one-line reason for each skipped item."""

    samples: list[FaceSample]
    skipped: list[str] = field(default_factory=list)
    name: str = ""
    root: Path | None = None

    def __len__(self) -> int:
        return len(self.samples)
