"""The interface every landmark model offers to evaluation, the plug-in and the CLI."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from mvface.data.scheme import mirror_points
from mvface.errors import BadInputError
from mvface.geometry.head_pose import head_pose
from mvface.models.boxes import IDENTITY, BoxTransform


@dataclass(frozen=True)
class ModelConfig:
    """What travels with a model's weights: its data contract.

    Attributes:
        name: registry name.
        input_size: side of the square network input, pixels (0 for models without one).
        mean, std: per-channel normalization of the RGB input in [0, 255].
        crop: canonical face box (tight 68-point box) → the box the network crops.
        output: ``"68x2"`` or ``"68x3"`` (x, y in pixels; z in the model's own depth units).
        extras: names of extra outputs (e.g. ``"pose_3dmm"``, ``"params62"``).
        licence: licence of the weights and of the data they were trained on.
    """

    name: str
    input_size: int = 0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    crop: BoxTransform = IDENTITY
    output: Literal["68x2", "68x3"] = "68x2"
    extras: tuple[str, ...] = ()
    licence: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (for metadata next to weights and in reports)."""
        return asdict(self)


@dataclass
class Landmarks:
    """Predictions for N faces.

    Attributes:
        points: ``(N, 68, 2|3)`` float64, 0-based pixel coordinates of the input image.
        visibility: ``(N, 68)`` bool, or ``None`` when the model does not say.
        pose: ``(N, 3)`` [pitch, yaw, roll] radians (AFLW2000-3D ``Pose_Para`` convention), or
            ``None``. :meth:`LandmarkModel.predict` fills it for every model from the points
            (:func:`mvface.geometry.head_pose.head_pose`).
        extras: any other per-face outputs, arrays with leading dimension N.
    """

    points: np.ndarray
    visibility: np.ndarray | None = None
    pose: np.ndarray | None = None
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.points.shape[0])


class LandmarkModel(abc.ABC):
    """A 68-point landmark model: faces in, points in image pixels out.

    Attributes:
        config: the model's data contract.
        flip_average: also predict each face mirrored left-right and average the two (test-time
            flip; twice the network time). A model's left-right bias cancels and its noise
            halves; extras other than the pose come from the plain pass.
    """

    config: ModelConfig
    flip_average: bool = False

    @abc.abstractmethod
    def _predict(self, images: Sequence[np.ndarray], crop_boxes: np.ndarray) -> Landmarks:
        """Predict for ``images[i]`` (``(H, W, 3)`` uint8 RGB) in the model's ``crop_boxes[i]``."""

    def predict(
        self, images: np.ndarray | Sequence[np.ndarray], boxes: np.ndarray | Sequence[Any]
    ) -> Landmarks:
        """68 landmarks for each face box.

        Args:
            images: one ``(H, W, 3)`` uint8 RGB image shared by all boxes, or a sequence of N
                images, one per box.
            boxes: ``(N, 4)`` canonical face boxes ``[x0, y0, x1, y1]`` in 0-based pixels
                (the tight box around the 68 points; face detectors return this kind).

        Returns:
            :class:`Landmarks` with ``points`` ``(N, 68, 2|3)`` in the input image's pixels and
            ``pose`` ``(N, 3)`` radians from them (:func:`~mvface.geometry.head_pose.head_pose`).
        """
        canonical = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        return self.predict_crops(images, self.config.crop(canonical))

    def predict_crops(
        self, images: np.ndarray | Sequence[np.ndarray], crop_boxes: np.ndarray | Sequence[Any]
    ) -> Landmarks:
        """Like :meth:`predict`, but with boxes already in the model's own crop convention.

        For protocols that prescribe the crop (e.g. 3DDFA's AFLW2000-3D ROI boxes). The head
        pose of every model comes from its final points, one code path for all families
        (:func:`~mvface.geometry.head_pose.head_pose`; a pose the network gave itself is
        replaced, and kept in ``extras`` where the model puts it there).
        """
        box_arr = np.asarray(crop_boxes, dtype=np.float64).reshape(-1, 4)
        if isinstance(images, np.ndarray) and images.ndim == 3:
            image_list: list[np.ndarray] = [images] * len(box_arr)
        else:
            image_list = list(images)
        if len(image_list) != len(box_arr):
            raise BadInputError(
                self.config.name, f"{len(image_list)} images but {len(box_arr)} boxes"
            )
        for img in image_list:
            if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
                raise BadInputError(
                    self.config.name,
                    f"images must be (H, W, 3) uint8 RGB, got shape {np.shape(img)} of dtype "
                    f"{getattr(img, 'dtype', type(img).__name__)} (mvface.load() converts others)",
                )
        if not np.all(np.isfinite(box_arr)):
            raise BadInputError(self.config.name, "face boxes contain NaN or infinite values")
        if len(box_arr) == 0:
            dims = 3 if self.config.output == "68x3" else 2
            return Landmarks(points=np.zeros((0, 68, dims)), pose=np.zeros((0, 3)))
        plain = self._predict(image_list, box_arr)
        if not self.flip_average:
            plain.pose = head_pose(plain.points)
            return plain
        widths = np.array([img.shape[1] for img in image_list], np.float64)
        flipped: dict[int, np.ndarray] = {}  # one mirror per distinct image (many faces share one)
        for img in image_list:
            if id(img) not in flipped:
                flipped[id(img)] = np.ascontiguousarray(img[:, ::-1])
        mirrored = self._predict(
            [flipped[id(img)] for img in image_list], mirror_boxes(box_arr, widths)
        )
        averaged = average_with_mirrored(plain, mirrored, widths)
        averaged.pose = head_pose(averaged.points)
        return averaged


def mirror_boxes(boxes: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """``(N, 4)`` boxes of faces in images mirrored left-right (``x → W - 1 - x``), pixels.

    Args:
        boxes: ``(N, 4)`` ``[x0, y0, x1, y1]`` 0-based pixels.
        widths: ``(N,)`` image widths ``W`` in pixels.
    """
    out = np.array(boxes, np.float64, copy=True)
    out[:, 0], out[:, 2] = widths - 1 - boxes[:, 2], widths - 1 - boxes[:, 0]
    return out


def average_with_mirrored(plain: Landmarks, mirrored: Landmarks, widths: np.ndarray) -> Landmarks:
    """Average predictions with those made on the mirrored images, mapped back.

    The mirrored pass's points are relabelled (:data:`~mvface.data.scheme.FLIP_PERMUTATION`:
    its "left eye" is the subject's right eye) and moved back with ``x → W - 1 - x``; ``z``
    is unchanged. Visibility and the other extras are the plain pass's; the pose is left to
    the caller, which fits it to the averaged points (:meth:`LandmarkModel.predict_crops`).

    Args:
        plain: predictions on the images, ``points`` ``(N, 68, 2|3)`` pixels.
        mirrored: predictions on the mirrored images (mirrored boxes).
        widths: ``(N,)`` image widths in pixels.
    """
    back = mirror_points(mirrored.points, widths)
    return Landmarks(
        points=(plain.points + back) / 2,
        visibility=plain.visibility,
        extras=plain.extras,
    )
