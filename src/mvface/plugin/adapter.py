"""How the plug-in sees a detector: images in, 68 points in the image's pixel frame out.

The multiview loss needs every view's prediction in that view's own pixels, where the cameras
live. A trainable detector (:class:`~mvface.models.trainable.TorchLandmarkModel`) predicts in
the pixels of its *crop*. :class:`DetectorAdapter` is the whole bridge and uses only what every
family declares in its :class:`~mvface.models.base.ModelConfig`:

* ``config.crop`` maps a canonical face box (the tight box of the 68 points) to the box the
  network crops;
* ``config.input_size`` is the side ``S`` of the square crop, ``config.mean``/``config.std``
  its normalization (through :meth:`TorchLandmarkModel.normalize`);
* :meth:`TorchLandmarkModel.forward_points` maps normalized crops to crop pixels.

So registering a new family needs no change here. The crop is one affine map per face (image
pixels → crop pixels, :func:`~mvface.models.trainable.crop_matrices`); its inverse
(``to_image``) is applied to the predictions in torch, so the image-frame points stay
differentiable with respect to the network's parameters.

Frames: every point is 0-based pixels with pixel centres at integers (see
:mod:`mvface.models.trainable`).

Example:
    >>> import numpy as np
    >>> from mvface.models import create_model
    >>> adapter = DetectorAdapter(create_model("mvnet", seed=0, input_size=64, width=0.25))
    >>> image = np.zeros((32, 32, 3), np.uint8)
    >>> batch = adapter.prepare([image, image], np.array([[8, 8, 24, 24], [6, 9, 26, 25]]))
    >>> tuple(batch.x.shape), tuple(batch.to_image.shape)
    ((2, 3, 64, 64), (2, 2, 3))
    >>> tuple(adapter(batch).shape)
    (2, 68, 2)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from mvface.models.boxes import BoxTransform
from mvface.models.trainable import TorchLandmarkModel, crop_matrices, invert_affine, warp_crops

__all__ = [
    "CropBatch",
    "DetectorAdapter",
    "crop_to_image",
    "face_crop_matrices",
    "flip_crop_matrices",
    "jitter_boxes",
]


@dataclass
class CropBatch:
    """Network-ready crops of N faces and the way back to their images.

    Attributes:
        x: ``(N, 3, S, S)`` float, normalized network input (see
            :meth:`TorchLandmarkModel.normalize`).
        to_image: ``(N, 2, 3)`` float affine maps from crop pixels to image pixels
            (``[x, y] = to_image @ [u, v, 1]``), same dtype and device as ``x``.
    """

    x: torch.Tensor
    to_image: torch.Tensor

    def __len__(self) -> int:
        return int(self.x.shape[0])


def jitter_boxes(
    boxes: np.ndarray, scale: float, shift: float, rng: np.random.Generator
) -> np.ndarray:
    """Randomly rescale and move boxes (crop augmentation).

    Each box keeps its aspect ratio; its size is multiplied by ``1 + U(-scale, scale)`` and
    its centre moved by ``U(-shift, shift)`` times its width (x) and height (y).

    Args:
        boxes: ``(N, 4)`` boxes ``[x0, y0, x1, y1]``, pixels.
        scale: largest relative size change (0 = none).
        shift: largest centre shift as a fraction of the box size (0 = none).
        rng: the random generator (draws ``3 N`` numbers, also when both are 0).

    Returns:
        ``(N, 4)`` float64 boxes.
    """
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    n = len(b)
    factor = 1.0 + rng.uniform(-scale, scale, n) if scale > 0 else np.ones(n)
    offset = rng.uniform(-shift, shift, (n, 2)) if shift > 0 else np.zeros((n, 2))
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    cx = (b[:, 0] + b[:, 2]) / 2 + offset[:, 0] * w
    cy = (b[:, 1] + b[:, 3]) / 2 + offset[:, 1] * h
    hw, hh = factor * w / 2, factor * h / 2
    return np.stack([cx - hw, cy - hh, cx + hw, cy + hh], axis=-1)


def flip_crop_matrices(matrices: np.ndarray, size: int, flip: np.ndarray) -> np.ndarray:
    """Mirror the crops of the faces where ``flip`` is set (left-right, in crop pixels).

    Args:
        matrices: ``(N, 2, 3)`` image → crop affine maps.
        size: crop side ``S`` in pixels (``u`` becomes ``S - 1 - u``).
        flip: ``(N,)`` bool.

    Returns:
        ``(N, 2, 3)`` maps; flipped rows compose the mirror after the crop. Landmark *labels*
        must be permuted too (:data:`mvface.data.scheme.FLIP_PERMUTATION`).
    """
    out = np.array(matrices, np.float64, copy=True)
    sel = np.asarray(flip, bool)
    out[sel, 0, :] = -out[sel, 0, :]
    out[sel, 0, 2] += size - 1
    return out


def face_crop_matrices(
    canonical_boxes: np.ndarray,
    size: int,
    crop: BoxTransform,
    *,
    jitter: tuple[float, float] = (0.0, 0.0),
    angles: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Image → crop maps for faces given by their canonical boxes, as a model crops them.

    Args:
        canonical_boxes: ``(N, 4)`` tight boxes of the 68 points ``[x0, y0, x1, y1]``, pixels.
        size: crop side ``S`` in pixels (the model's ``input_size``).
        crop: the model's canonical-box → crop-box transform (``config.crop``).
        jitter: ``(scale, shift)`` of :func:`jitter_boxes` applied to the crop boxes.
        angles: ``(N,)`` in-plane rotation of each crop in radians (see
            :func:`~mvface.models.trainable.crop_matrices`), or ``None`` for upright crops.
        rng: random generator, needed when ``jitter`` is not zero.

    Returns:
        ``(N, 2, 3)`` float64 affine maps, image pixels → crop pixels.
    """
    boxes = crop(np.asarray(canonical_boxes, np.float64).reshape(-1, 4))
    if jitter[0] > 0 or jitter[1] > 0:
        if rng is None:
            raise ValueError("crop jitter needs a random generator (rng)")
        boxes = jitter_boxes(boxes, jitter[0], jitter[1], rng)
    return crop_matrices(boxes, size, angles)


def crop_to_image(points: torch.Tensor, to_image: torch.Tensor) -> torch.Tensor:
    """Map crop-pixel points to image pixels with per-face affine maps (differentiable).

    Args:
        points: ``(N, K, D)`` points, ``D >= 2``; only ``x, y`` are used.
        to_image: ``(N, 2, 3)`` crop → image maps.

    Returns:
        ``(N, K, 2)`` image pixels, dtype of ``points``.
    """
    m = to_image.to(points.dtype)
    xy = points[..., :2]
    return xy @ m[:, :, :2].transpose(1, 2) + m[:, None, :, 2]


class DetectorAdapter:
    """A trainable landmark model seen as images → 68 points in image pixels.

    Args:
        model: any :class:`~mvface.models.trainable.TorchLandmarkModel` with an
            ``input_size``.

    Raises:
        TypeError: ``model`` is not trainable (no ``forward_points``).
        ValueError: the model declares no input size.
    """

    def __init__(self, model: TorchLandmarkModel) -> None:
        if not isinstance(model, TorchLandmarkModel):
            raise TypeError(
                f"the plug-in needs a trainable model (TorchLandmarkModel), got "
                f"{type(model).__name__}"
            )
        if model.config.input_size <= 0:
            raise ValueError(f"model {model.config.name!r} declares no input_size")
        self.model = model

    @property
    def size(self) -> int:
        """Crop side ``S`` in pixels."""
        return int(self.model.config.input_size)

    def crop_matrices(
        self,
        boxes: np.ndarray,
        *,
        jitter: tuple[float, float] = (0.0, 0.0),
        angles: np.ndarray | None = None,
        rng: np.random.Generator | None = None,
    ) -> np.ndarray:
        """``(N, 2, 3)`` image → crop maps for canonical ``boxes`` (see
        :func:`face_crop_matrices`)."""
        return face_crop_matrices(
            boxes, self.size, self.model.config.crop, jitter=jitter, angles=angles, rng=rng
        )

    def normalize(self, crops: torch.Tensor) -> torch.Tensor:
        """``(N, 3, S, S)`` RGB crops in [0, 255] (uint8 or float) → normalized float32 input."""
        return self.model.normalize(crops.float())

    def prepare(
        self,
        images: np.ndarray | Sequence[np.ndarray],
        boxes: np.ndarray,
        *,
        jitter: tuple[float, float] = (0.0, 0.0),
        angles: np.ndarray | None = None,
        rng: np.random.Generator | None = None,
    ) -> CropBatch:
        """Crop and normalize faces for the network.

        Args:
            images: one ``(H, W, 3)`` uint8 RGB image shared by all boxes, or N images, one per
                box.
            boxes: ``(N, 4)`` canonical face boxes ``[x0, y0, x1, y1]`` in pixels (for a
                synthetic view: the tight box of its pseudo ground truth).
            jitter: ``(scale, shift)`` crop augmentation (:func:`jitter_boxes`).
            angles: ``(N,)`` crop rotations in radians, or ``None`` (upright).
            rng: random generator for the jitter.

        Returns:
            A :class:`CropBatch` on the model's device.
        """
        box_arr = np.asarray(boxes, np.float64).reshape(-1, 4)
        if isinstance(images, np.ndarray) and images.ndim == 3:
            image_list: list[np.ndarray] = [images] * len(box_arr)
        else:
            image_list = list(images)
        if len(image_list) != len(box_arr):
            raise ValueError(f"{len(image_list)} images but {len(box_arr)} boxes")
        m = self.crop_matrices(box_arr, jitter=jitter, angles=angles, rng=rng)
        patches = warp_crops(image_list, m, self.size)
        crops = torch.from_numpy(patches).permute(0, 3, 1, 2).to(self.model.device)
        to_image = torch.from_numpy(invert_affine(m)).float().to(self.model.device)
        return CropBatch(x=self.normalize(crops), to_image=to_image)

    def __call__(self, batch: CropBatch) -> torch.Tensor:
        """``(N, 68, 2)`` predicted points in image pixels, differentiable."""
        return crop_to_image(self.model.forward_points(batch.x), batch.to_image)
