"""The one small interface every 3D-head backend of the synthetic generator implements.

A *backend* turns one face crop and its 68 landmarks into a :class:`Head`; a head renders RGB,
depth and a foreground mask from any cameras. Nothing here assumes a mesh: the default backend
(``"mesh"``, :mod:`mvface.synth.mesh_head`) rasterizes a textured mesh on the CPU, and a
radiance-field backend (EG3D + PTI inversion, as in the paper) fits the same interface:
``build`` inverts the crop with its camera, ``render`` volume-renders RGB and the expected ray
depth, and ``mask`` is where the accumulated opacity says "head".

Conventions (those of :mod:`mvface.geometry`):

* cameras are EG3D 25-value labels, ``(V, 25)``: 16 row-major cam2world values (OpenCV axes:
  x right, y down, looking along +z) then the 9 normalized intrinsics (``pixel = (x/z · f + c)
  · size``). World frame: EG3D's FFHQ-aligned heads (+y up, the face looks towards +z, the head
  near the origin; rig cameras at radius 2.7 looking at ``(0, 0, 0.2)``).
* images are square, ``size`` x ``size``; rendered pixel ``[j, i]`` is the sample at the
  continuous point ``(i + 0.5, j + 0.5)`` (pixel ``(i, j)`` in mvface's 0-based integer-centred
  landmark convention).
* input landmarks are ``(68, 2)`` 0-based integer-centred crop pixels (iBUG 68 order), like
  :class:`mvface.data.FaceSample`.

Backends are registered by name in :mod:`mvface.synth.backends`.

Example:
    >>> backend = create_backend("mesh")  # doctest: +SKIP
    >>> head = backend.build(crop, landmarks)  # doctest: +SKIP
    >>> out = head.render(rig_labels(paper_rig(64)), size=256)  # doctest: +SKIP
    >>> out.rgb.shape, out.depth.shape, out.mask.shape  # doctest: +SKIP
    ((64, 256, 256, 3), (64, 256, 256), (64, 256, 256))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from mvface.errors import BadInputError

__all__ = ["Head", "HeadBackend", "RenderOutput"]


@dataclass(frozen=True)
class RenderOutput:
    """Images of ``V`` views of one head.

    Attributes:
        rgb: ``(V, S, S, 3)`` uint8 RGB, the head over its background.
        depth: ``(V, S, S)`` float32 camera-frame ``z`` of the head's visible surface (world
            units, the distance along the optical axis, not along the ray); ``inf`` where the
            pixel shows no head (background).
        mask: ``(V, S, S)`` bool, ``True`` where the pixel shows the head (``depth`` finite).
        filled: ``(V, S, S)`` float32 in [0, 1]: how much of the pixel's colour was filled in
            (not observed in the source photo: the unseen side of the head); 0 off the head.
            ``None`` when the backend does not say.
    """

    rgb: np.ndarray
    depth: np.ndarray
    mask: np.ndarray
    filled: np.ndarray | None = None

    def __post_init__(self) -> None:
        rgb, depth, mask = self.rgb, self.depth, self.mask
        if rgb.ndim != 4 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
            raise BadInputError("render", f"rgb must be (V, S, S, 3) uint8, got {rgb.shape}")
        if depth.shape != rgb.shape[:3] or depth.dtype != np.float32:
            raise BadInputError("render", f"depth must be (V, S, S) float32, got {depth.shape}")
        if mask.shape != rgb.shape[:3] or mask.dtype != np.bool_:
            raise BadInputError("render", f"mask must be (V, S, S) bool, got {mask.shape}")
        filled = self.filled
        if filled is not None and (filled.shape != rgb.shape[:3] or filled.dtype != np.float32):
            raise BadInputError("render", f"filled must be (V, S, S) float32, got {filled.shape}")

    def __len__(self) -> int:
        """Number of views ``V``."""
        return int(self.rgb.shape[0])

    @property
    def size(self) -> int:
        """Image side ``S`` in pixels."""
        return int(self.rgb.shape[1])

    @staticmethod
    def concatenate(outputs: list[RenderOutput]) -> RenderOutput:
        """Join renders of the same size along the view axis."""
        if not outputs:
            raise BadInputError("render", "nothing to concatenate")
        return RenderOutput(
            rgb=np.concatenate([o.rgb for o in outputs]),
            depth=np.concatenate([o.depth for o in outputs]),
            mask=np.concatenate([o.mask for o in outputs]),
            filled=(
                np.concatenate([o.filled for o in outputs])
                if all(o.filled is not None for o in outputs)
                else None
            ),
        )


@runtime_checkable
class Head(Protocol):
    """One identity's 3D head, able to render itself from any camera.

    Attributes:
        source_camera: ``(25,)`` float64 EG3D label of the camera that took the source crop
            (the view in which :meth:`render` reproduces the crop).
        source_size: side of the source crop in pixels.
        backend: name of the backend that built the head (for provenance).
    """

    source_camera: torch.Tensor
    source_size: int
    backend: str

    def render(self, cameras: torch.Tensor | np.ndarray, size: int) -> RenderOutput:
        """Render views.

        Args:
            cameras: ``(V, 25)`` EG3D labels.
            size: output side in pixels.

        Returns:
            The ``V`` views (see :class:`RenderOutput`).
        """
        ...

    def release(self) -> None:
        """Free what the head holds (GL objects, GPU memory); it cannot render afterwards."""
        ...

    def surface_landmarks(self) -> np.ndarray | None:
        """``(68, 3)`` world points of the iBUG landmarks on the head's own geometry, or
        ``None`` when the backend has no such geometry (a radiance field without a face model).

        Used where the annotated landmarks cannot be lifted with the depth map (points just off
        the head) and, on request, for the jaw (``SynthConfig.jaw_from``).
        """
        ...


class HeadBackend(Protocol):
    """Builds heads from single face crops."""

    name: str

    def build(
        self,
        image: np.ndarray,
        landmarks: np.ndarray,
        camera: torch.Tensor | None = None,
    ) -> Head:
        """Build the head of one face.

        Args:
            image: ``(S, S, 3)`` uint8 RGB square crop of the face (FFHQ/EG3D-aligned crops
                give heads at EG3D's scale).
            landmarks: ``(68, 2)`` iBUG landmarks of the crop, 0-based integer-centred pixels.
            camera: ``(25,)`` EG3D label of the crop when known (e.g. estimated while
                cropping); ``None`` lets the backend estimate it.

        Returns:
            The head; ``head.source_camera`` is ``camera`` when given.

        Raises:
            BadInputError: an unusable image or landmarks (the message names the problem).
        """
        ...
