"""The small user API: a landmark model plus a face detector, loaded by name.

>>> import mvface
>>> landmarker = mvface.load("base+")                   # doctest: +SKIP
>>> faces = landmarker.detect("photo.jpg")                   # doctest: +SKIP
>>> faces.points.shape                                       # (K, 68, 2|3) pixels, doctest: +SKIP
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Union, cast

import numpy as np

from mvface.data.image import to_rgb_array
from mvface.detection import FaceDetector, create_face_detector, list_face_detectors
from mvface.detection.blazeface import BlazeFaceDetector
from mvface.detection.blazeface_net import BlazeFaceNet
from mvface.detection.core import CombinedDetector
from mvface.detection.multiscale import MultiScaleBlazeFace
from mvface.errors import BadInputError, MvfaceError, NotAvailableError
from mvface.models import DEFAULT_MODEL, LandmarkModel, Landmarks, create_model
from mvface.models.onnx_engine import (
    EngineWarning,
    check_device,
    check_engine,
    model_engine,
    module_on_onnx,
    resolve_engine,
)
from mvface.models.trainable import TorchLandmarkModel

if TYPE_CHECKING:
    from PIL import Image

#: What :meth:`FaceLandmarker.detect` and :meth:`FaceLandmarker.predict` accept as an image: a
#: file path, a PIL image, or an ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)``
#: array of uint8, uint16 or float in [0, 1] (see :func:`mvface.data.image.to_rgb_array`).
ImageLike = Union[str, Path, "Image.Image", np.ndarray]

#: Face detectors tried, in order, when the detector is ``"auto"``.
AUTO_DETECTORS: tuple[str, ...] = ("blazeface", "dlib-hog")


@dataclass
class Faces:
    """All faces found in one image.

    Attributes:
        boxes: ``(K, 4)`` canonical face boxes ``[x0, y0, x1, y1]``, 0-based pixels.
        scores: ``(K,)`` detector confidence.
        landmarks: the model's predictions for the K faces.
    """

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: Landmarks = field(default_factory=lambda: Landmarks(np.zeros((0, 68, 2))))

    def __len__(self) -> int:
        return len(self.boxes)

    @property
    def points(self) -> np.ndarray:
        """``(K, 68, 2|3)`` landmarks in image pixels."""
        return self.landmarks.points

    @property
    def pose(self) -> np.ndarray | None:
        """``(K, 3)`` head pose ``[pitch, yaw, roll]`` (radians); ``None`` if the model has none."""
        return self.landmarks.pose


def create_auto_detector(name: str = "auto") -> FaceDetector:
    """The named face detector, or for ``"auto"`` the first of :data:`AUTO_DETECTORS` that loads."""
    if name != "auto":
        return create_face_detector(name)
    reasons = []
    for candidate in AUTO_DETECTORS:
        if candidate not in list_face_detectors():
            continue
        try:
            return create_face_detector(candidate)
        except NotAvailableError as exc:
            reasons.append(f"{candidate}: {exc}")
    raise NotAvailableError("no face detector could be loaded (" + "; ".join(reasons) + ")")


def detector_on_engine(
    detector: FaceDetector, engine: str = "auto", device: str = "cpu"
) -> FaceDetector:
    """``detector`` with its BlazeFace networks in ONNX Runtime when ``engine`` means ONNX
    Runtime on ``device`` (``auto`` on the CPU); otherwise, and for other detectors (dlib's
    HOG and CNN run their own C++), unchanged and on the CPU.

    Only the network call changes (:func:`~mvface.models.onnx_engine.module_on_onnx`: exported
    once, parity-checked, cached, like the landmark models'); letterboxing, anchors, decoding,
    NMS and the multi-scale search are the detector's own code. Measured on the short-range
    model, one thread: 10.2 → 2.9 ms per 128 px image.

    Raises:
        NotAvailableError: ``engine="onnx"`` where ONNX Runtime cannot run the network (under
            ``auto`` the detector stays in PyTorch, with an :class:`EngineWarning`).
    """
    if resolve_engine(check_engine(engine), device) != "onnx":
        return detector
    for part in _blazeface_parts(detector):
        if not isinstance(part.net, BlazeFaceNet):
            continue  # already swapped
        try:
            ort = module_on_onnx(
                part.net,
                part.name,
                part.config.input_size,
                ("regressors", "scores"),
                kept=("decode",),
            )
        except NotAvailableError as exc:
            if engine == "onnx":
                raise
            warnings.warn(
                f"{part.name}: ONNX Runtime not used, running PyTorch instead ({exc})",
                EngineWarning,
                stacklevel=2,
            )
            continue
        part.net = cast(BlazeFaceNet, ort)  # called as net(x) and net.decode(...) only
    return detector


def _blazeface_parts(detector: FaceDetector) -> list[BlazeFaceDetector]:
    """The BlazeFace detectors ``detector`` runs (itself, or its members)."""
    if isinstance(detector, BlazeFaceDetector):
        return [detector]
    if isinstance(detector, MultiScaleBlazeFace):
        return [detector.short, detector.full]
    if isinstance(detector, CombinedDetector):
        return [part for member in detector.detectors for part in _blazeface_parts(member)]
    return []


class FaceLandmarker:
    """A landmark model with a face detector: images in, faces with 68 points out.

    Args:
        model: the landmark model (already on its engine).
        detector: a face detector, or a name (created on first use).
        engine, device: what runs a detector given by name (see :func:`detector_on_engine`).
    """

    def __init__(
        self,
        model: LandmarkModel,
        detector: FaceDetector | str = "auto",
        engine: str = "auto",
        device: str = "cpu",
    ) -> None:
        self.model = model
        self._detector = detector
        self._engine, self._device = check_engine(engine), device

    @property
    def engine(self) -> str:
        """What runs the landmark network: ``"onnx"``, ``"torch"`` or ``"native"`` (dlib)."""
        return model_engine(self.model)

    @property
    def detector(self) -> FaceDetector:
        """The face detector (created on first use, so ``predict`` alone needs none)."""
        if isinstance(self._detector, str):
            created = create_auto_detector(self._detector)
            self._detector = detector_on_engine(created, self._engine, self._device)
        return self._detector

    def predict(self, image: ImageLike, boxes: np.ndarray | Sequence[Sequence[float]]) -> Landmarks:
        """68 landmarks for given canonical face boxes ``(K, 4)`` (pixels) in one image.

        ``image``: any :data:`ImageLike` (path, PIL image, grey/RGB/RGBA array, float in [0, 1]).
        """
        rgb = to_rgb_array(image)
        try:
            box_array = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        except (TypeError, ValueError):
            raise BadInputError(
                "boxes", f"expected K boxes [x0, y0, x1, y1], got shape {np.shape(boxes)}"
            ) from None
        return self.model.predict(rgb, box_array)

    def detect(self, image: ImageLike, min_score: float = 0.0) -> Faces:
        """Find every face in one image and its 68 landmarks.

        Args:
            image: a file path, a PIL image, or an array ``(H, W)``, ``(H, W, 1)`` (grey),
                ``(H, W, 3)`` (RGB) or ``(H, W, 4)`` (RGBA), uint8, uint16 or float in [0, 1].
            min_score: drop faces the detector scores lower.

        Raises:
            BadInputError: an image that cannot be used, with its shape, dtype or file named.
        """
        rgb = to_rgb_array(image)
        found = self.detector.detect(rgb)
        keep = found.scores >= min_score
        boxes, scores = found.boxes[keep], found.scores[keep]
        return Faces(boxes=boxes, scores=scores, landmarks=self.model.predict(rgb, boxes))

    def detect_batch(self, images: Sequence[ImageLike], min_score: float = 0.0) -> list[Faces]:
        """:meth:`detect` for several images: faces found image by image, then the landmarks
        of all of them in one :meth:`~mvface.models.LandmarkModel.predict` call (the model
        batches its network calls across images)."""
        rgbs = [to_rgb_array(image) for image in images]
        found = [self.detector.detect(rgb) for rgb in rgbs]
        keeps = [f.scores >= min_score for f in found]
        boxes = [f.boxes[k] for f, k in zip(found, keeps, strict=True)]
        scores = [f.scores[k] for f, k in zip(found, keeps, strict=True)]
        return split_landmarks(self.model, rgbs, boxes, scores)


def split_landmarks(
    model: LandmarkModel,
    images: Sequence[np.ndarray],
    boxes: Sequence[np.ndarray],
    scores: Sequence[np.ndarray],
) -> list[Faces]:
    """Landmarks of the faces of several images in one ``model.predict`` call, split back.

    Args:
        model: the landmark model.
        images: ``(H, W, 3)`` uint8 RGB images.
        boxes: per image, ``(K_i, 4)`` canonical face boxes in its pixels.
        scores: per image, ``(K_i,)`` detector scores.

    Returns:
        One :class:`Faces` per image, in order (the same points as one call per image, to
        float32 rounding of the network's batch).
    """
    counts = [len(b) for b in boxes]
    owner = [image for image, n in zip(images, counts, strict=True) for _ in range(n)]
    if not owner:
        return [Faces(boxes=b, scores=s) for b, s in zip(boxes, scores, strict=True)]
    every = model.predict(owner, np.concatenate([np.asarray(b).reshape(-1, 4) for b in boxes]))
    out: list[Faces] = []
    start = 0
    for b, s, n in zip(boxes, scores, counts, strict=True):
        part = slice(start, start + n)
        start += n
        landmarks = Landmarks(
            points=every.points[part],
            visibility=None if every.visibility is None else every.visibility[part],
            pose=None if every.pose is None else every.pose[part],
            extras={key: value[part] for key, value in every.extras.items()},
        )
        out.append(Faces(boxes=b, scores=s, landmarks=landmarks))
    return out


def load(
    name: str = DEFAULT_MODEL,
    weights: str | None = None,
    detector: str = "auto",
    engine: str = "auto",
    device: str = "cpu",
) -> FaceLandmarker:
    """Load a registered landmark model with a face detector (no download, ever).

    Args:
        name: a name from :func:`mvface.list_models` (default:
            :data:`~mvface.models.DEFAULT_MODEL`, ``fast``).
        weights: weights file or folder for families that load external weights.
        detector: a face detector name, or ``"auto"``.
        engine: what runs the landmark network and the BlazeFace detector's: ``"auto"`` (ONNX
            Runtime on the CPU, PyTorch on CUDA), ``"onnx"`` or ``"torch"``
            (:mod:`mvface.models.onnx_engine`; each ONNX graph is exported and checked on first
            use, then cached). Models without a torch network (``dlib``) ignore it.
        device: ``"cpu"`` or ``"cuda"``.

    Raises:
        ValueError: unknown model name, engine or device.
        BadInputError: ``weights`` cannot be loaded by this model (names the file).
        NotAvailableError: a package or the shipped weights are absent; ``device="cuda"``
            without a GPU; ``engine="onnx"`` where ONNX Runtime cannot run the model.
    """
    try:
        check_device(device)
        model = create_model(name, weights=weights, engine=engine, device=device)
    except (MvfaceError, ValueError, MemoryError):
        raise
    except Exception as exc:
        if weights is None:
            raise
        # a family's own loader failing on a file it cannot parse (dlib's RuntimeError,
        # a corrupt safetensors header, ...): one line naming the file
        problem = " ".join(str(exc).split()) or type(exc).__name__
        raise BadInputError(weights, f"cannot be loaded as {name} weights ({problem})") from None
    if isinstance(model, TorchLandmarkModel):
        model.require_trained()  # refuse at once, not at the first face found (or never)
    return FaceLandmarker(model, detector, engine=engine, device=device)
