"""The default 3D-head backend: a textured face mesh on a head proxy, built and drawn on a CPU.

From one square face crop and its 68 landmarks (:meth:`MeshHeadBackend.build`):

1. **Face mesh.** MediaPipe's 468-point face mesh
   (:func:`mvface.models.mediapipe_mesh.load_facemesh`, shipped weights, no download) runs
   on an eyes-level crop around the landmarks, twice (the second crop comes from the first
   mesh, as MediaPipe's tracker does): :func:`~mvface.synth.face_mesh.predict_face_mesh`.
2. **Source camera.** When the crop's EG3D camera is given it is used. Otherwise
   :func:`~mvface.synth.face_mesh.estimate_source_camera` builds one: the world frame is the
   face's own (x along the eye line, y from the mouth to the eyes tilted back by
   :data:`~mvface.synth.face_mesh.EYE_MOUTH_PITCH_DEG`, z forward), the scale makes the eye
   distance and the eye-to-mouth distance those of EG3D's heads
   (:data:`~mvface.synth.face_mesh.CANONICAL_EYE_DISTANCE`,
   :data:`~mvface.synth.face_mesh.CANONICAL_EYE_MOUTH_DISTANCE`) and the mesh centroid sits at
   the rig's look-at point ``(0, 0, 0.2)``, where EG3D's FFHQ faces sit.
3. **Lift.** Every mesh vertex keeps its pixel in the source view; its depth is the centroid depth
   plus MediaPipe's relative depth (same pixel scale as x and y; measured 1.04 against EG3D's
   depth on the paper's example). So the face re-projects exactly onto the photo.
4. **Triangulate** with Delaunay on the frontal (world x-y) projection of the lifted mesh; long
   edges at the concave rim are dropped (:func:`~mvface.synth.face_mesh.triangulate_face`).
   MediaPipe's own triangle list is not in the ``.tflite`` and is not needed.
5. **Head proxy** (:class:`~mvface.synth.head_proxy.HeadProxy`): an egg-shaped closed surface —
   two half-ellipsoids sharing their x and y semi-axes, a short one in front of the ear plane and
   a long one behind it — sized from the face mesh (cheek width, chin-to-forehead height, adult
   head proportions) and pulled in the face region onto the face surface (slightly behind it), so
   that the face mesh sits on it without a step. Hair, ears and neck of the photo are painted
   on it. See ``docs/synth.md`` for why and a picture.
6. **Texture** is the photo, by projection from the source camera, where the photo saw the
   surface well: the cosine between the normal and the direction to the source camera at
   least :data:`~mvface.synth.mesh_texture.OBSERVED_FULL_COSINE` (fading out to
   :data:`~mvface.synth.mesh_texture.OBSERVED_NONE_COSINE`), not hidden in the source view's
   depth, and (face mesh) inside the face's annotated outline. Elsewhere (``fill="mirror"``, the
   default; :func:`~mvface.synth.mesh_texture.fill_weights`) it is the face's mirror side where
   that was seen — MediaPipe's vertices in left/right pairs
   (:func:`~mvface.synth.mesh_texture.face_mirror_partners`), the proxy's grid mirrored across
   the head's sagittal plane — and where neither side was seen, the head's low-frequency colour
   (the photo's head pixels spread and blurred, never the backdrop). Weights are per vertex and
   interpolated (:class:`~mvface.synth.render_types.TexturedMesh` ``uv2``/``uv3``), so the seam
   is a blend; each view's ``filled`` map says how much of every pixel was filled in.
   ``fill="none"`` is the texture before: a cross-fade to a blurred copy of the photo mapped by
   reflecting the surface direction inwards at the proxy's outline
   (:func:`~mvface.synth.mesh_texture.rim_texture_directions`).
7. **Backdrop**: the photo with the region the head covers (grown by half a head-width above the
   chin, for hair standing out of the proxy) filled smoothly from its surroundings, drawn
   behind every view and fixed (the head turns in front of it, as in a photo of a person
   turning their head); ``depth``/``mask`` ignore it.

Views are drawn by :mod:`mvface.synth.renderer` (OpenGL through EGL when available, numpy
otherwise). Units are EG3D's world units (the rig's cameras sit at 2.7; the face is about 0.33
wide); pixels follow :mod:`mvface.synth.head`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from mvface.errors import BadInputError
from mvface.synth.backdrop import HAIR_MARGIN, inpaint_background
from mvface.synth.face_mesh import (
    CANONICAL_MESH_CENTROID,
    MEDIAPIPE_DEPTH_SCALE,
    MIN_FACE_PROBABILITY,
    MP_CHIN,
    estimate_source_camera,
    face_frame,
    lift_face_mesh,
    predict_face_mesh,
    triangulate_face,
)
from mvface.synth.head import RenderOutput
from mvface.synth.head_proxy import HeadProxy, fit_head_proxy, grid_mirror_partners, proxy_surface
from mvface.synth.mesh_texture import (
    FILL_MODES,
    GRAZING_FULL_COSINE,
    GRAZING_START_COSINE,
    FillMode,
    face_mirror_partners,
    face_outline_mask,
    fill_weights,
    head_colour_texture,
    project_vertices,
    rim_texture_directions,
    smoothstep,
    source_unoccluded,
    texture_atlas,
    vertex_facing,
)
from mvface.synth.render_types import MeshRenderer, PreparedScene, TexturedMesh, labels_to_cameras
from mvface.synth.renderer import create_renderer

__all__ = ["HeadShell", "MeshHead", "MeshHeadBackend"]


@dataclass(frozen=True)
class HeadShell:
    """The closed surface a backend puts behind the face mesh, in the face's own frame.

    Attributes:
        vertices: ``(N, 3)`` vertices (face frame, world units).
        faces: ``(F, 3)`` triangles, counter-clockwise seen from outside.
        partners: ``(N,)`` index of each vertex's mirror partner across the sagittal plane.
        chart: ``(N, 2)`` optional per-vertex coordinates a painter may use (``None``).
        part: ``(N,)`` optional int labels of the parts (backend-defined; ``None``).
    """

    vertices: np.ndarray
    faces: np.ndarray
    partners: np.ndarray
    chart: np.ndarray | None = None
    part: np.ndarray | None = None


@dataclass(eq=False)
class MeshHead:
    """A textured mesh head (implements :class:`mvface.synth.head.Head`).

    Attributes:
        source_camera: ``(25,)`` float64 EG3D label of the source crop.
        source_size: crop side in pixels.
        mesh: everything drawn (face mesh then head proxy), world units.
        face_vertices: ``(468, 3)`` world positions of the MediaPipe vertices.
        face_faces: ``(F, 3)`` triangles of the face mesh (indices into ``face_vertices``).
        proxy: the head proxy's shape, in the face's own frame.
        face_frame: ``(A, origin)``: the face frame's axes (columns, world coordinates) and
            origin; ``world = local @ Aᵀ + origin``.
        background: ``(S, S, 3)`` uint8 backdrop (the photo, head region inpainted).
        face_probability: MediaPipe's face-presence probability of the crop.
        renderer: the renderer that draws it (a head holds renderer state: build and render it
            in the same process; it does not pickle once it has rendered).
        backend: ``"mesh"``.
        landmark_weights: ``(68, 468)`` weights mapping the face mesh's vertices to iBUG points
            (the ``mediapipe-68`` head), or ``None``: :meth:`surface_landmarks` is then
            ``None``.
        max_lift_behind: landmarks of the source view lifted more than this (world units)
            behind their surface landmark are moved to it along their ray
            (:func:`~mvface.synth.identity.clamp_behind`); ``None``: never.
    """

    source_camera: torch.Tensor
    source_size: int
    mesh: TexturedMesh
    face_vertices: np.ndarray
    face_faces: np.ndarray
    proxy: HeadProxy
    face_frame: tuple[np.ndarray, np.ndarray]
    background: np.ndarray
    face_probability: float
    renderer: MeshRenderer
    backend: str = "mesh"
    landmark_weights: np.ndarray | None = None
    max_lift_behind: float | None = None
    _scene: PreparedScene | None = field(default=None, repr=False)

    def surface_landmarks(self) -> np.ndarray | None:
        """``(68, 3)`` world points: the face mesh's vertices mapped by ``landmark_weights``.

        The jaw points (0–16) are combinations of the face oval's vertices, so they follow the
        jaw in 3D however the head turns (AFLW2000-3D's convention), not the silhouette.
        """
        if self.landmark_weights is None:
            return None
        return np.asarray(self.landmark_weights @ self.face_vertices, np.float64)

    def render(self, cameras: torch.Tensor | np.ndarray, size: int) -> RenderOutput:
        """Render ``(V, 25)`` EG3D cameras at ``size`` x ``size`` pixels.

        Returns:
            ``rgb`` (head over the backdrop), ``depth`` (camera z of the head, ``inf``
            elsewhere), ``mask`` (head pixels); see :class:`~mvface.synth.head.RenderOutput`.
        """
        if self._scene is None:
            self._scene = self.renderer.prepare(self.mesh, self.background)
        return self._scene.render(cameras, size)

    def release(self) -> None:
        """Free the renderer's copy of the mesh (it is prepared again on the next render)."""
        if self._scene is not None:
            self._scene.release()
            self._scene = None


def _check_camera(camera: torch.Tensor | np.ndarray) -> torch.Tensor:
    """A given source camera as a ``(25,)`` float64 label in front of the canonical face."""
    label = torch.as_tensor(np.asarray(camera), dtype=torch.float64).reshape(-1)
    if label.shape != (25,) or not bool(torch.isfinite(label).all()):
        raise BadInputError("camera", "expected a finite (25,) EG3D label")
    _, R, t = labels_to_cameras(label, 1)
    if float((R[0] @ np.asarray(CANONICAL_MESH_CENTROID) + t[0])[2]) <= 0:
        raise BadInputError("camera", "the face would lie behind the given camera")
    return label


def _check_inputs(image: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise BadInputError("image", f"expected (S, S, 3) uint8 RGB, got {image.shape}")
    if image.shape[0] != image.shape[1]:
        raise BadInputError("image", f"the crop must be square, got {image.shape[:2]}")
    if image.shape[0] < 32:
        raise BadInputError("image", f"crop too small ({image.shape[0]} px, need >= 32)")
    points = np.asarray(landmarks, np.float64)
    if points.shape != (68, 2) or not np.isfinite(points).all():
        raise BadInputError("landmarks", f"expected finite (68, 2), got {points.shape}")
    size = image.shape[0]
    if (points < -0.5).any() or (points > size - 0.5).any():
        raise BadInputError("landmarks", "landmarks lie outside the crop")
    box = points.max(0) - points.min(0)
    if box.min() < 8:
        raise BadInputError("landmarks", f"face too small in the crop ({box.min():.1f} px)")
    return np.ascontiguousarray(image), points


class MeshHeadBackend:
    """Builds :class:`MeshHead` s (the ``"mesh"`` backend; see the module docstring).

    Args:
        renderer: ``"auto"`` (OpenGL via EGL, else numpy), ``"gl"``, ``"numpy"`` or a renderer.
        samples: MSAA samples of the GL renderer; 1 (default) draws aliased silhouettes, 4
            antialiases them at about 3x the time on Mesa's CPU rasterizer (free on a GPU).
        facemesh: a loaded face mesh network (default: the shipped weights, loaded once).
        passes: face mesh passes (see :func:`~mvface.synth.face_mesh.predict_face_mesh`).
        depth_scale: MediaPipe depth units per pixel
            (:data:`~mvface.synth.face_mesh.MEDIAPIPE_DEPTH_SCALE`).
        grid: ``(n_lat, n_lon)`` resolution of the head proxy.
        rim_deg, rim_min_deg: where the proxy's texture is reflected inwards
            (:func:`~mvface.synth.mesh_texture.rim_texture_directions`), degrees from the source
            camera's direction.
        rim_blur: Gaussian blur of the reflected texture, sigma in crop widths (``fill="none"``).
        fill: how texture the photo did not see well is made: ``"mirror"`` (default) takes the
            face's other side where that was seen (MediaPipe's left/right vertex pairs; the
            proxy mirrored across the head's sagittal plane), else the head's low-frequency
            colour (:func:`~mvface.synth.mesh_texture.fill_weights`); ``"none"``: the
            rim-reflected blurred photo only (the backend before the fill, kept measurable).
        min_face_probability: below it the crop is rejected (``BadInputError``).
    """

    name = "mesh"
    #: see :attr:`MeshHead.max_lift_behind` (the egg: never)
    max_lift_behind: float | None = None

    def __init__(
        self,
        renderer: str | MeshRenderer = "auto",
        samples: int = 1,
        facemesh: torch.nn.Module | None = None,
        passes: int = 2,
        depth_scale: float = MEDIAPIPE_DEPTH_SCALE,
        grid: tuple[int, int] = (48, 96),
        rim_deg: float = 88.0,
        rim_min_deg: float = 50.0,
        rim_blur: float = 0.01,
        min_face_probability: float = MIN_FACE_PROBABILITY,
        fill: FillMode = "mirror",
    ) -> None:
        if fill not in FILL_MODES:
            raise BadInputError("fill", f"unknown fill {fill!r} (mirror, none)")
        self.fill = fill
        if isinstance(renderer, str):
            if renderer not in ("auto", "gl", "numpy"):
                raise BadInputError("renderer", f"unknown renderer {renderer!r}")
            self.renderer: MeshRenderer = create_renderer(renderer, samples=samples)  # type: ignore[arg-type]
        else:
            self.renderer = renderer
        self._facemesh = facemesh
        self._landmark_weights: np.ndarray | None = None
        self.passes = passes
        self.depth_scale = depth_scale
        self.grid = grid
        self.rim_deg = rim_deg
        self.rim_min_deg = rim_min_deg
        self.rim_blur = rim_blur
        self.min_face_probability = min_face_probability

    @property
    def facemesh(self) -> torch.nn.Module:
        """The face mesh network (loaded on first use)."""
        if self._facemesh is None:
            from mvface.models.mediapipe_mesh import load_facemesh

            self._facemesh = load_facemesh()
        return self._facemesh

    @property
    def landmark_weights(self) -> np.ndarray | None:
        """``(68, 468)`` weights of the shipped ``mediapipe-68`` head (loaded on first use), or
        ``None`` when its file is absent."""
        if self._landmark_weights is None:
            from mvface.models.mediapipe_68 import DEFAULT_HEAD_PATH, load_head

            if DEFAULT_HEAD_PATH.is_file():
                head = load_head(DEFAULT_HEAD_PATH)[0]
                self._landmark_weights = head.weight.detach().double().numpy()
        return self._landmark_weights

    def _head_shell(self, proxy: HeadProxy, local: np.ndarray, face_faces: np.ndarray) -> HeadShell:
        """The closed surface behind the face mesh, in the face's own frame: the egg proxy
        pulled onto the face (:func:`~mvface.synth.head_proxy.proxy_surface`)."""
        vertices, faces = proxy_surface(proxy, local, face_faces, *self.grid)
        return HeadShell(vertices, faces, grid_mirror_partners(*self.grid))

    def _paint_shell(
        self,
        image: np.ndarray,
        covered: np.ndarray,
        shell: HeadShell,
        face: np.ndarray,
        K: np.ndarray,
        R: np.ndarray,
        t: np.ndarray,
        landmarks: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """A painted colour model of the shell where neither side was seen: ``(panel (S, S, 3)
        uint8, (N_shell, 2) texture coordinates in it)``, or ``None`` (the egg: the photo's head
        colours, spread and rim-reflected)."""
        return None

    def build(
        self,
        image: np.ndarray,
        landmarks: np.ndarray,
        camera: torch.Tensor | None = None,
    ) -> MeshHead:
        """Build the head of one face crop (see :meth:`HeadBackend.build`).

        Args:
            image: ``(S, S, 3)`` uint8 RGB crop.
            landmarks: ``(68, 2)`` 0-based integer-centred pixels of the crop.
            camera: ``(25,)`` EG3D label of the crop, or ``None`` to estimate it.

        Returns:
            The head.

        Raises:
            BadInputError: bad image/landmarks, or no face found by the face mesh.
        """
        image, points = _check_inputs(image, landmarks)
        size = image.shape[0]
        label = None if camera is None else _check_camera(camera)
        mesh_px, probability = predict_face_mesh(self.facemesh, image, points, self.passes)
        if probability < self.min_face_probability:
            raise BadInputError("image", f"no face found (face mesh probability {probability:.2f})")
        if label is None:
            label = estimate_source_camera(mesh_px, size, self.depth_scale)
        K, R, t = (a[0] for a in labels_to_cameras(label, size))
        # depth of the canonical centroid in this camera (exact for an estimated camera)
        centroid_depth = float((R @ np.asarray(CANONICAL_MESH_CENTROID) + t)[2])
        face_cam = lift_face_mesh(mesh_px, K, centroid_depth, self.depth_scale)
        face = (face_cam - t) @ R  # world = Rᵀ (p − t) (rows of R are the camera axes)
        return self._assemble(image, label, K, R, t, face, probability, points)

    def _assemble(
        self,
        image: np.ndarray,
        label: torch.Tensor,
        K: np.ndarray,
        R: np.ndarray,
        t: np.ndarray,
        face: np.ndarray,
        probability: float,
        landmarks: np.ndarray | None = None,
    ) -> MeshHead:
        size = image.shape[0]
        # the face's own frame (for the proxy): local = (world − origin) @ A
        A = face_frame(face)
        origin = face.mean(0)
        local = (face - origin) @ A
        face_faces = triangulate_face(local[:, :2])
        proxy = fit_head_proxy(local)
        shell = self._head_shell(proxy, local, face_faces)
        head_local, head_faces = shell.vertices, shell.faces
        head = head_local @ A.T + origin
        vertices = np.vstack([face, head])
        faces = np.vstack([face_faces, head_faces + len(face)])
        # the source view's geometry: which pixels are head, what the photo sees of it
        geometry = TexturedMesh(
            vertices=vertices,
            faces=faces,
            uv=np.zeros((len(vertices), 2)),
            texture=np.zeros((1, 1, 3), np.uint8),
            cull_back_faces=True,
        )
        scene = self.renderer.prepare(geometry)
        source = scene.render(label[None], size)
        scene.release()
        covered = source.mask[0]

        def uv_of(points: np.ndarray, half: int) -> np.ndarray:
            uv = project_vertices(points, K, R, t)[:, :2] / size
            uv = np.clip(uv, 0.5 / size, 1 - 0.5 / size)
            return np.stack([(uv[:, 0] + half) / 2, uv[:, 1]], axis=1)

        cam_center = -R.T @ t
        towards = proxy.normalize(((cam_center - origin) @ A)[None])[0]
        towards /= np.linalg.norm(towards)

        def reflected_uv(points_local: np.ndarray) -> np.ndarray:
            """UVs (second half) of the proxy texture reflected inwards at the rim."""
            q = proxy.normalize(points_local)
            q /= np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
            rim_dirs = rim_texture_directions(q, towards, self.rim_deg, self.rim_min_deg)
            return uv_of(proxy.denormalize(rim_dirs) @ A.T + origin, 1)

        # cosine between the surface and the direction to the source camera, per vertex: the
        # face mesh and the proxy each with their own normals (they meet without a seam)
        facing = np.concatenate(
            [
                vertex_facing(face, face_faces, cam_center),
                vertex_facing(head, head_faces, cam_center),
            ]
        )
        uv = uv_of(vertices, 0)
        rim_uv = np.vstack([reflected_uv(local), reflected_uv(head_local)])
        if self.fill == "none":
            # the photo by projection, cross-fading where the surface turns away from the
            # source camera to the proxy's blurred, rim-reflected copy of the photo
            atlas = texture_atlas(image, self.rim_blur)
            blend = smoothstep(GRAZING_START_COSINE, GRAZING_FULL_COSINE, facing)
            mirror_uv, mirror, filled = uv, np.zeros(len(vertices)), blend
        else:
            # observed texture where the photo saw the surface well; elsewhere the mirror
            # side's where that was seen; elsewhere the head's low-frequency colour
            atlas = np.ascontiguousarray(np.hstack([image, head_colour_texture(image, covered)]))
            partner = np.concatenate([face_mirror_partners(local), len(face) + shell.partners])
            unoccluded = source_unoccluded(vertices, K, R, t, source.depth[0])
            if landmarks is not None:  # the face mesh beyond the face's outline shows backdrop
                outline = face_outline_mask(landmarks, size)
                px = np.clip(uv[: len(face)] * [2 * size, size], 0, size - 1).astype(int)
                unoccluded[: len(face)] &= outline[px[:, 1], px[:, 0]]
            own, mirror, blend = fill_weights(facing, unoccluded, partner)
            mirror_uv = uv[partner]
            filled = 1.0 - own
            painted = self._paint_shell(image, covered, shell, face, K, R, t, landmarks)
            if painted is not None:
                # a third panel: the shell's painted colour model replaces the spread photo
                panel, panel_uv = painted
                atlas = np.ascontiguousarray(np.hstack([atlas, panel]))
                uv, mirror_uv, rim_uv = (a * [2.0 / 3.0, 1.0] for a in (uv, mirror_uv, rim_uv))
                rim_uv[len(face) :] = np.stack([(panel_uv[:, 0] + 2.0) / 3.0, panel_uv[:, 1]], 1)
        mesh = TexturedMesh(
            vertices=vertices,
            faces=faces,
            uv=uv,
            texture=atlas,
            uv2=rim_uv,
            blend=blend,
            uv3=mirror_uv,
            blend3=mirror,
            filled=filled,
            cull_back_faces=True,
        )
        # hair standing out of the proxy would stay in the backdrop: clear a margin around the
        # head above the chin
        half_width_px = proxy.a * K[0, 0] / float((R @ origin + t)[2])
        chin_row = project_vertices(face[MP_CHIN][None], K, R, t)[0, 1]
        background = inpaint_background(
            image, covered, HAIR_MARGIN * half_width_px, chin_row - 0.1 * half_width_px
        )
        return MeshHead(
            source_camera=label,
            source_size=size,
            mesh=mesh,
            face_vertices=face,
            face_faces=face_faces,
            proxy=proxy,
            face_frame=(A, origin),
            background=background,
            face_probability=probability,
            renderer=self.renderer,
            backend=self.name,
            landmark_weights=self.landmark_weights,
            max_lift_behind=self.max_lift_behind,
        )


def mesh_backend(**config: Any) -> MeshHeadBackend:
    """Factory of the default CPU backend (``--backend mesh``, registered by
    :mod:`mvface.synth.backends`)."""
    return MeshHeadBackend(**config)
