"""``mediapipe-68``: MediaPipe's face mesh plus a learned 468 → 68 head (mvface's offline base).

The network is :class:`~mvface.models.mediapipe_mesh.FaceMeshNet` (MediaPipe's
``face_landmark.tflite``, Apache-2.0) followed by :class:`MeshTo68Head`, a per-landmark convex
combination of the 468 mesh vertices in 3D: ``p_k = sum_j W[k, j] * v_j`` with ``W >= 0`` and
``sum_j W[k, j] = 1``, the same weights for x, y and z. Because every row sums to one the head
commutes with any affine map of the mesh (crop ↔ image, rotation, scale), so it is a 3D map that
stays consistent under head rotation, and ``z`` of each point comes from the same combination.
The jaw rows (iBUG 0-16) may only use MediaPipe's face-oval vertices, so the jaw follows the
mesh's 3D contour rather than the 2D silhouette marked in 300-W. The head is fitted on 300-W AFW
by :func:`mvface.train.head_fit.fit_head` (``python -m mvface.train.head_fit fit-head ...``).

Crop policy (as MediaPipe tracks a face):

1. First pass: a square, upright crop of :data:`FIRST_PASS_CROP` (1.5x the canonical box,
   square on the long side). The canonical box carries no in-plane rotation, so this pass is
   upright; it gives the rotation and a better box.
2. Re-crop once from the network's own mesh (:func:`recrop_from_mesh`): the in-plane angle from
   the outer eye corners (mesh vertices 33 → 263), the box from the mesh extent in the
   eye-levelled frame, enlarged :data:`RECROP_SCALE` times and made square on the long side.
3. Second pass on that rotated crop; the head's 68 points are mapped back to the image.

Coordinates: :meth:`MediaPipe68.forward_points` returns points in crop pixels with the
:mod:`mvface.models.trainable` convention (0-based, pixel centres at integers) and ``z`` in crop
pixels, larger towards the camera (MediaPipe's own mesh is continuous coordinates with ``z``
smaller towards the camera; :func:`mesh_to_crop_pixels` converts).

Example:
    >>> from mvface.models import create_model
    >>> model = create_model("mediapipe-68")  # doctest: +SKIP
    >>> model.predict(image, boxes).points.shape  # doctest: +SKIP
    (N, 68, 3)
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from mvface.data.scheme import GROUPS
from mvface.errors import BadInputError, NotAvailableError
from mvface.models._registry import register_model
from mvface.models._weights import load_weights, save_weights
from mvface.models.base import Landmarks, ModelConfig
from mvface.models.boxes import BoxTransform
from mvface.models.mediapipe_mesh import (
    FACEMESH_CONFIG,
    FaceMeshNet,
    build_facemesh,
    head_kernel,
    load_facemesh,
    resize_facemesh,
    single_torch_thread,
    small_network_inference,
)
from mvface.models.trainable import (
    TorchLandmarkModel,
    apply_affine,
    eval_mode,
    invert_affine,
)

#: The fitted head shipped with mvface (see ``docs/models/mediapipe-68.md``).
DEFAULT_HEAD_PATH = Path(__file__).resolve().parent / "weights" / "mediapipe68_head.safetensors"

#: Mesh vertices at the outer eye corners: subject's right (image left when facing the camera)
#: and subject's left; the re-crop levels the line from the first to the second.
MESH_OUTER_EYE_CORNERS = (33, 263)

#: MediaPipe's face-oval vertices (``FACEMESH_FACE_OVAL``), the boundary of the mesh topology,
#: clockwise on screen from the forehead top (vertex 10).
FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip

#: iBUG points 0-16: the jaw line.
IBUG_JAW = GROUPS["jaw"]

#: Canonical (tight 68-point) box -> first-pass crop: 1.5x, square on the long side.
FIRST_PASS_CROP = BoxTransform(scale_w=1.5, scale_h=1.5, square="max")

#: Re-crop side / long side of the mesh extent in the eye-levelled frame.
RECROP_SCALE = 1.5

LICENCE = (
    "network: MediaPipe face mesh (Apache-2.0); 468->68 head fitted on iBUG 300-W AFW "
    "annotations (research / non-commercial use only)"
)


def mesh_to_crop_pixels(mesh: torch.Tensor) -> torch.Tensor:
    """MediaPipe mesh coordinates → the :mod:`~mvface.models.trainable` crop-pixel convention.

    Args:
        mesh: ``(..., 3)`` continuous crop coordinates (``[0, S]`` spans the crop), ``z``
            smaller towards the camera, as :class:`FaceMeshNet` returns them.

    Returns:
        ``(..., 3)``: ``x, y`` 0-based with pixel centres at integers (``x - 0.5``), ``z`` in
        the same pixel scale, larger towards the camera (``-z``).
    """
    return torch.cat([mesh[..., :2] - 0.5, -mesh[..., 2:]], dim=-1)


class MeshTo68Head(nn.Module):
    """468 mesh vertices → 68 iBUG points by a per-point weighted sum of vertices.

    ``points[n, k] = sum_j weight[k, j] * mesh[n, j]`` for x, y and z alike. The fitted weights
    are sparse, non-negative and sum to 1 per row (convex combinations), so the head is
    equivariant to affine maps of the mesh; fine-tuning may move them freely.

    Args:
        num_vertices: mesh vertices (468).
        num_points: output points (68).
    """

    def __init__(self, num_vertices: int = 468, num_points: int = 68) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((num_points, num_vertices), 1.0 / num_vertices))

    def forward(self, mesh: torch.Tensor) -> torch.Tensor:
        """``(N, 468, D)`` vertices → ``(N, 68, D)`` points (any units; ``D`` = 2 or 3)."""
        # one (N·D, 468) x (468, 68) product: a third of a broadcast matmul's time per face
        weight = self.weight.to(mesh.dtype)
        return nn.functional.linear(mesh.transpose(1, 2), weight).transpose(1, 2)


class MediaPipe68Net(nn.Module):
    """Face mesh network + 468 → 68 head: the trainable ``net`` of :class:`MediaPipe68`.

    Args:
        mesh: the face mesh network (converted MediaPipe weights).
        head: the 468 → 68 head.
    """

    def __init__(self, mesh: FaceMeshNet, head: MeshTo68Head) -> None:
        super().__init__()
        self.mesh = mesh
        self.head = head

    def forward_mesh(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mesh in crop pixels and the face-presence logit.

        Args:
            x: ``(N, 3, S, S)`` RGB crops in [0, 1] (``S``: the mesh's ``config.input_size``).

        Returns:
            mesh ``(N, 468, 3)`` in crop pixels (see :func:`mesh_to_crop_pixels`) and
            face_logit ``(N,)``.
        """
        mesh, face_logit = self.mesh(x)
        return mesh_to_crop_pixels(mesh), face_logit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, S, S)`` RGB crops in [0, 1] → ``(N, 68, 3)`` points in crop pixels."""
        return self.head(self.forward_mesh(x)[0])


def load_head(path: str | Path = DEFAULT_HEAD_PATH) -> tuple[MeshTo68Head, dict[str, Any]]:
    """Load a head saved by :func:`mvface.train.head_fit.save_head`.

    Returns:
        The head and its JSON config (fit settings and training-set scores).

    Raises:
        BadInputError: missing or unreadable file, or a tensor of the wrong shape.
    """
    tensors, config, _ = load_weights(path)
    return _head_from_tensors(tensors, path), config


def _head_from_tensors(tensors: dict[str, torch.Tensor], path: str | Path) -> MeshTo68Head:
    head = MeshTo68Head()
    weight = tensors.get("weight")
    if weight is None or tuple(weight.shape) != tuple(head.weight.shape):
        shape = None if weight is None else tuple(weight.shape)
        raise BadInputError(path, f"expected a (68, 468) 'weight' tensor, got {shape}")
    with torch.no_grad():
        head.weight.copy_(weight.float())
    return head


def load_network(path: str | Path, mesh: str | Path | None = None) -> MediaPipe68Net:
    """Load a head file or a whole network (:meth:`MediaPipe68.save`).

    A head file (:func:`~mvface.train.head_fit.save_head`) is combined with the face mesh weights
    ``mesh`` (``None``: the shipped ones); a whole-network file (``mesh.*`` and ``head.weight``
    tensors) carries its own mesh, and its crop size is read from its heads' output kernel
    (:func:`head_kernel`).

    Raises:
        BadInputError: unreadable file, wrong tensors, or ``mesh`` given with a whole network.
    """
    tensors, _, _ = load_weights(path)
    if not any(key.startswith("mesh.") for key in tensors):
        return MediaPipe68Net(load_facemesh(mesh), _head_from_tensors(tensors, path))
    if mesh is not None:
        raise BadInputError(path, "a whole-network file carries its own mesh; drop `mesh`")
    output = tensors.get("mesh.mesh_head.output.weight")
    kernel = int(output.shape[-1]) if output is not None and output.ndim == 4 else 3
    net = MediaPipe68Net(build_facemesh(64 * kernel), MeshTo68Head())
    try:
        net.load_state_dict({key: value.float() for key, value in tensors.items()})
    except RuntimeError as exc:
        problem = str(exc).splitlines()[0]
        raise BadInputError(path, f"not a mediapipe-68 network ({problem})") from None
    return net


def eye_angles(mesh_xy: np.ndarray) -> np.ndarray:
    """In-plane tilt of each face from the mesh's outer eye corners.

    Args:
        mesh_xy: ``(N, 468, 2+)`` mesh in image pixels (y down).

    Returns:
        ``(N,)`` radians, counter-clockwise on screen, in the convention of
        :func:`mvface.models.trainable.crop_matrices` (the eye line points along
        ``(cos a, -sin a)``).
    """
    right, left = MESH_OUTER_EYE_CORNERS
    d = mesh_xy[:, left, :2] - mesh_xy[:, right, :2]
    return np.arctan2(-d[:, 1], d[:, 0])


def recrop_from_mesh(
    mesh_xy: np.ndarray, scale: float = RECROP_SCALE
) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe-style tracking crop from a mesh: eyes level, square around the mesh extent.

    Args:
        mesh_xy: ``(N, 468, 2+)`` mesh in image pixels.
        scale: crop side / long side of the mesh extent in the eye-levelled frame.

    Returns:
        boxes ``(N, 4)`` ``[x0, y0, x1, y1]`` (square, centred on the levelled extent's centre;
        the crop is rotated about that centre) and angles ``(N,)`` radians for
        :func:`~mvface.models.trainable.crop_matrices`.
    """
    xy = np.asarray(mesh_xy, np.float64)[..., :2]
    angles = eye_angles(xy)
    cos, sin = np.cos(angles), np.sin(angles)
    # levelled frame: u along the eye line (cos a, -sin a), v perpendicular (sin a, cos a)
    u = xy[..., 0] * cos[:, None] - xy[..., 1] * sin[:, None]
    v = xy[..., 0] * sin[:, None] + xy[..., 1] * cos[:, None]
    cu, cv = (u.min(1) + u.max(1)) / 2, (v.min(1) + v.max(1)) / 2
    side = scale * np.maximum(u.max(1) - u.min(1), v.max(1) - v.min(1))
    cx, cy = cu * cos + cv * sin, -cu * sin + cv * cos
    boxes = np.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], axis=1)
    return boxes, angles


class MediaPipe68(TorchLandmarkModel):
    """MediaPipe face mesh + learned 468 → 68 head, with MediaPipe's two-pass crop.

    Args:
        head: a head weights file from :func:`~mvface.train.head_fit.save_head`, or a head
            module; ``None`` loads the shipped :data:`DEFAULT_HEAD_PATH` when it exists and
            otherwise leaves the head unfitted (uniform weights: for
            :func:`~mvface.train.head_fit.fit_head`, which only needs the mesh).
        mesh: face mesh weights (``None``: the shipped ``facemesh.safetensors``).
        recrop_scale: re-crop side / mesh extent (see :func:`recrop_from_mesh`).
        passes: network passes: 1 (the upright first pass only), 2 (re-crop once from the
            mesh: the default, as MediaPipe tracks) or more (re-crop again from each mesh).
        input_size: crop side in pixels (a multiple of 64); ``None`` keeps the weights' own
            (192 for MediaPipe's). Another size resizes the network (:func:`resize_facemesh`):
            the way to start fine-tuning a faster, smaller-crop network.

    Raises:
        NotAvailableError: the face mesh weights are absent.
        BadInputError: an unreadable head file.
    """

    net: MediaPipe68Net
    network_threads = 1  # faces run in parallel instead (see _predict)

    def __init__(
        self,
        head: str | Path | MeshTo68Head | None = None,
        mesh: str | Path | None = None,
        recrop_scale: float = RECROP_SCALE,
        passes: int = 2,
        input_size: int | None = None,
    ) -> None:
        if input_size is not None:
            head_kernel(input_size)  # a clear error before any weights are read
        if passes < 1:
            raise ValueError(f"passes must be at least 1, got {passes}")
        if not recrop_scale > 0:
            raise ValueError(f"recrop_scale must be positive, got {recrop_scale}")
        self.recrop_scale = float(recrop_scale)
        self.passes = int(passes)
        self.head_fitted = True
        if isinstance(head, MeshTo68Head):
            self.net = MediaPipe68Net(load_facemesh(mesh), head)
        elif head is not None:
            self.net = load_network(head, mesh)
        elif DEFAULT_HEAD_PATH.is_file():
            self.net = MediaPipe68Net(load_facemesh(mesh), load_head(DEFAULT_HEAD_PATH)[0])
        else:
            self.net = MediaPipe68Net(load_facemesh(mesh), MeshTo68Head())
            self.head_fitted = False
        if input_size is not None and input_size != self.net.mesh.config.input_size:
            self.net.mesh = resize_facemesh(self.net.mesh, input_size)
        self.net.eval()
        # The face-presence head is not on the points' path: frozen, so that every trainable
        # parameter gets a gradient from forward_points.
        self.net.mesh.score_head.requires_grad_(False)
        self.config = ModelConfig(
            name="mediapipe-68",
            input_size=self.net.mesh.config.input_size,
            mean=FACEMESH_CONFIG.mean,
            std=FACEMESH_CONFIG.std,
            crop=FIRST_PASS_CROP,
            output="68x3",
            extras=("face_score",),
            licence=LICENCE,
        )

    def save(self, path: str | Path, **metadata: str) -> Path:
        """Save the whole network (face mesh + head, float32) as a weights file.

        ``create_model("mediapipe-68", weights=path)`` loads it (see :func:`load_network`).
        """
        metadata.setdefault("licence", LICENCE)
        config = {"family": "mediapipe-68", "model": self.config.to_dict()}
        return save_weights(path, self.net.state_dict(), config, **metadata)

    def forward_points(self, x: torch.Tensor) -> torch.Tensor:
        """Training view: ``(N, 3, S, S)`` crops in [0, 1] → ``(N, 68, 3)`` crop pixels.

        ``x, y`` 0-based crop pixels (centres at integers), ``z`` crop pixels, larger towards
        the camera. Differentiable through the head and the face mesh network.
        """
        return cast(torch.Tensor, self.net(x))

    @torch.no_grad()
    def run_mesh(
        self, images: Sequence[np.ndarray], crop_boxes: np.ndarray, angles: np.ndarray | None
    ) -> tuple[torch.Tensor, np.ndarray, torch.Tensor]:
        """Run the face mesh network on (rotated) crops.

        Args:
            images: N ``(H, W, 3)`` uint8 RGB images.
            crop_boxes: ``(N, 4)`` crop boxes in image pixels.
            angles: ``(N,)`` crop rotations in radians, or ``None`` (upright).

        Returns:
            mesh ``(N, 468, 3)`` in crop pixels (:func:`mesh_to_crop_pixels`), the image → crop
            matrices ``(N, 2, 3)`` and the face logits ``(N,)``.
        """
        x, m = self.preprocess(images, crop_boxes, angles)
        with eval_mode(self.net), small_network_inference():
            mesh, face_logit = self.net.forward_mesh(x)
        return mesh, m, face_logit

    @torch.no_grad()
    def run_crops(
        self, images: Sequence[np.ndarray], crop_boxes: np.ndarray, angles: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`run_mesh` plus the head, mapped back to image pixels (same arguments).

        Returns:
            points ``(N, 68, 3)`` and mesh ``(N, 468, 3)`` float64 in image pixels (``z`` in
            image pixels, larger towards the camera), and the face-presence probability
            ``(N,)``.
        """
        mesh, m, face_logit = self.run_mesh(images, crop_boxes, angles)
        crop_mesh = _numpy(mesh)
        # the head's float32 product in NumPy: a sixth of torch's per-call cost for one face
        weight = _numpy(self.net.head.weight).astype(crop_mesh.dtype, copy=False)
        points = np.matmul(weight, crop_mesh)
        both = _to_image_pixels(np.concatenate([points, crop_mesh], axis=1), m)  # one mapping
        count = points.shape[1]
        return both[:, :count], both[:, count:], torch.sigmoid(face_logit).double().cpu().numpy()

    def crop_angles(
        self, images: Sequence[np.ndarray], crop_boxes: np.ndarray
    ) -> np.ndarray | None:
        """The first pass is upright: a canonical box says nothing about in-plane rotation."""
        return None

    def track_crops(
        self, images: Sequence[np.ndarray], crop_boxes: np.ndarray, recrops: int = 1
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The crop of the last pass: first pass, then ``recrops`` re-crops from the mesh.

        Args:
            images: N ``(H, W, 3)`` uint8 RGB images.
            crop_boxes: ``(N, 4)`` first-pass crop boxes (the canonical box mapped by
                ``config.crop``), image pixels.
            recrops: how many times to re-crop from the mesh (0: the first-pass crop).

        Returns:
            boxes ``(N, 4)`` image pixels and angles ``(N,)`` radians (``None``: upright).
        """
        boxes, angles = crop_boxes, self.crop_angles(images, crop_boxes)
        for _ in range(recrops):
            mesh, m, _ = self.run_mesh(images, boxes, angles)
            boxes, angles = recrop_from_mesh(
                _to_image_pixels(_numpy(mesh[..., :2]), m), self.recrop_scale
            )
        return boxes, angles

    def predict_mesh(
        self, images: Sequence[np.ndarray], crop_boxes: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The full crop policy; returns points ``(N, 68, 3)``, mesh ``(N, 468, 3)`` (image
        pixels) and face-presence probability ``(N,)`` from the last pass."""
        boxes, angles = self.track_crops(images, crop_boxes, self.passes - 1)
        return self.run_crops(images, boxes, angles)

    def _predict(self, images: Sequence[np.ndarray], crop_boxes: np.ndarray) -> Landmarks:
        # With re-crops (passes > 1), face by face: float32 convolutions differ in the last bits
        # with the batch size, and the re-crop (uint8 crops, cv2's 1/32-pixel sampling grid)
        # turns that into ~0.003 px; one face per call keeps a face's points independent of its
        # batch. One pass has no re-crop (batch effects stay at float32 rounding), so faces go
        # in chunks, one network call per chunk: the per-call Python work is paid once per
        # chunk. With several torch threads, chunks run in parallel, one network thread each:
        # a small crop splits badly across intra-op threads. The calling thread takes the first
        # share itself: one thread fewer to start and wait for (`fast`, 16 faces, 2 threads,
        # measured alone on a 2-core Intel Xeon: about +10 % faces/s).
        count = len(images)
        workers = min(count, torch.get_num_threads())
        size = 1 if self.passes > 1 else -(-count // workers)
        chunks = [slice(start, min(start + size, count)) for start in range(0, count, size)]

        def run(share: list[slice]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
            return [self.predict_mesh(images[chunk], crop_boxes[chunk]) for chunk in share]

        if workers > 1:
            per_share = -(-len(chunks) // workers)  # consecutive chunks, at most one share each
            shares = [chunks[i : i + per_share] for i in range(0, len(chunks), per_share)]
            with single_torch_thread(), ThreadPoolExecutor(len(shares) - 1) as pool:
                others = [pool.submit(run, share) for share in shares[1:]]
                results = [*run(shares[0]), *(r for future in others for r in future.result())]
        else:
            results = run(chunks)
        points, _meshes, face_score = (np.concatenate(r) for r in zip(*results, strict=True))
        # the head pose comes from the points, as for every model (LandmarkModel.predict_crops)
        return Landmarks(points=points, extras={"face_score": face_score})


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    """A tensor's values as a NumPy array (no copy for a CPU tensor)."""
    return tensor.detach().cpu().numpy()


def _to_image_pixels(crop_points: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``(N, K, 2|3)`` crop pixels → float64 image pixels through the inverse of ``m``.

    ``z`` (when present) is scaled by the crop → image scale (see :func:`apply_affine`).
    """
    inv = invert_affine(m)
    out = apply_affine(inv, crop_points.astype(np.float64))
    if out.shape[-1] == 3:
        out[..., 2] *= np.sqrt(np.abs(np.linalg.det(inv[:, :, :2])))[:, None]
    return out


@register_model("mediapipe-68")
def mediapipe_68(weights: str | None = None, **cfg: Any) -> MediaPipe68:
    """MediaPipe face mesh + learned 468 → 68 head.

    ``weights``: a head file or a whole fine-tuned network (``None``: the shipped head).

    Options: ``mesh`` (face mesh weights file), ``recrop_scale``, ``passes``, ``input_size``.
    """
    model = MediaPipe68(head=weights, **cfg)
    if not model.head_fitted:
        raise NotAvailableError(
            f"{DEFAULT_HEAD_PATH}: head weights not found; fit them with "
            "`python -m mvface.train.head_fit fit-head --data <300w/afw> --out <file>`"
        )
    return model
