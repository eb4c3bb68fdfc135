"""The settings of one synthesis job (:class:`SynthConfig`) and the rig cameras they give.

What ``mvface synth``'s options become; :func:`rig_cameras` turns the rig settings into the
job's ``(V, 25)`` EG3D labels, the same for every identity of the job.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from mvface.synth.rig import grid_span_angles, paper_rig, random_rig, rig_labels, spherical_rig

__all__ = [
    "FILLS",
    "RIGS",
    "RigName",
    "SynthConfig",
    "rig_cameras",
]


RigName = Literal["paper", "grid", "random"]
RIGS: tuple[str, ...] = ("paper", "grid", "random")
FILLS: tuple[str, ...] = ("mirror", "none")


@dataclass
class SynthConfig:
    """Settings of one synthesis job.

    Attributes:
        source: dataset root (or file) read by the reader ``format``.
        out: output dataset folder.
        format: registered reader name (``pts``, ``300w-lp``, ``aflw2000-3d``, ...).
        views: views rendered per identity.
        size: side of the rendered views in pixels.
        crop_size: side of the aligned source crop the head is built from.
        rig: ``paper`` (the paper's camera path), ``grid`` (yaw x pitch grid) or ``random``.
        max_yaw_deg: the ``grid`` and ``random`` rigs span yaw in ``[-max_yaw_deg,
            max_yaw_deg]`` degrees (the paper rig is fixed at about ±45°; profile views need
            more).
        max_pitch_deg: likewise for pitch (``grid``: distinct cameras from ``-max_pitch_deg``
            to ``+max_pitch_deg``, see :func:`~mvface.synth.rig.grid_span_angles`).
        backend: registered head backend.
        image_format: ``jpg`` or ``png``.
        quality: JPEG quality.
        limit: at most this many source faces (``None``: all).
        seed: seed of the random rig (and recorded as provenance).
        workers: worker processes (1: in this process), or Ray actors.
        batch: views rendered per call (bounds memory).
        executor: ``local`` (this process or a process pool) or ``ray`` (Ray actors, see
            :mod:`mvface.synth.ray_executor`).
        ray_address: address of a running Ray cluster (``"auto"`` joins it); ``None`` with the
            ``ray`` executor starts a local Ray for the job.
        landmark_model: registered landmark model (with the automatic face detector) that marks
            sources without annotated landmarks, e.g. a plain image folder; ``None`` skips them.
        jaw_from: where the jaw points' 3D positions come from: ``depth`` lifts the annotated
            points with the source view's depth (the paper's way; 300-W's jaw is the face's
            2D outline); ``surface`` takes them from the head's own geometry
            (:meth:`~mvface.synth.backends.Head.surface_landmarks`: the jaw in 3D). Either
            way, a point with no depth nearby (just off the head) takes the surface point
            when the backend has one, instead of skipping the source.
        jaw_depth: moves the 3D jaw points back into the head by this many eye-to-mouth
            distances (tapering to 0 at the chin; :func:`~mvface.synth.landmarks.deepen_jaw`):
            0.2 puts the face mesh's jaw where AFLW2000-3D's 3DMM convention has it.
        fill: texture of the surface the photo saw obliquely or not at all (the mesh
            backend's ``fill``): ``mirror`` takes the face's other side where that was seen,
            else the head's low-frequency colour; ``none`` is the backend before the fill (a
            blurred, rim-reflected copy of the photo), kept measurable. Sets written before the
            option existed count as ``none``.
    """

    source: str | Path
    out: str | Path
    format: str = "pts"
    views: int = 512
    size: int = 256
    crop_size: int = 512
    rig: RigName = "paper"
    max_yaw_deg: float = 45.0
    max_pitch_deg: float = 30.0
    backend: str = "mesh"
    image_format: str = "jpg"
    quality: int = 95
    limit: int | None = None
    seed: int = 0
    workers: int = 1
    batch: int = 64
    executor: Literal["local", "ray"] = "local"
    ray_address: str | None = None
    landmark_model: str | None = "mediapipe-68"
    jaw_from: Literal["depth", "surface"] = "depth"
    jaw_depth: float = 0.0
    fill: Literal["mirror", "none"] = "mirror"

    def __post_init__(self) -> None:
        self.source = Path(self.source)
        self.out = Path(self.out)
        checks = [
            (self.views >= 1, f"views must be >= 1, got {self.views}"),
            (self.size >= 16, f"size must be >= 16, got {self.size}"),
            (self.crop_size >= 64, f"crop_size must be >= 64, got {self.crop_size}"),
            (self.rig in RIGS, f"rig must be one of {RIGS}, got {self.rig!r}"),
            (0 <= self.max_yaw_deg <= 90, f"max_yaw_deg must be in 0..90, got {self.max_yaw_deg}"),
            (
                0 <= self.max_pitch_deg <= 60,
                f"max_pitch_deg must be in 0..60, got {self.max_pitch_deg}",
            ),
            (
                self.image_format in ("jpg", "png"),
                f"image_format must be jpg or png, got {self.image_format!r}",
            ),
            (1 <= self.quality <= 100, f"quality must be in 1..100, got {self.quality}"),
            (self.limit is None or self.limit >= 1, f"limit must be >= 1, got {self.limit}"),
            (self.workers >= 1, f"workers must be >= 1, got {self.workers}"),
            (self.batch >= 1, f"batch must be >= 1, got {self.batch}"),
            (
                self.executor in ("local", "ray"),
                f"executor must be local or ray, not {self.executor!r}",
            ),
            (
                self.jaw_from in ("depth", "surface"),
                f"jaw_from must be depth or surface, not {self.jaw_from!r}",
            ),
            (0 <= self.jaw_depth <= 1, f"jaw_depth must be in 0..1, got {self.jaw_depth}"),
            (self.fill in FILLS, f"fill must be mirror or none, not {self.fill!r}"),
            (
                self.rig != "paper" or self.views >= 3,
                f"the paper rig needs views >= 3, got {self.views}",
            ),
            (
                self.rig != "grid" or self.views == 1 or self.max_yaw_deg or self.max_pitch_deg,
                "the grid rig needs max_yaw_deg or max_pitch_deg above 0 for more than 1 view",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def provenance(self) -> dict[str, Any]:
        """The job settings as JSON-able values (for the manifest)."""
        info = asdict(self)
        info["source"], info["out"] = str(self.source), str(self.out)
        return info


def rig_cameras(cfg: SynthConfig) -> np.ndarray:
    """``(V, 25)`` float64 EG3D labels of the job's rig."""
    if cfg.rig == "paper":
        return rig_labels(paper_rig(cfg.views).to(torch.float64)).numpy()
    max_yaw, max_pitch = math.radians(cfg.max_yaw_deg), math.radians(cfg.max_pitch_deg)
    if cfg.rig == "random":
        yaw_range, pitch_range = (-max_yaw, max_yaw), (-max_pitch, max_pitch)
        cam2world = random_rig(cfg.views, yaw_range, pitch_range, seed=cfg.seed)
    else:
        cam2world = spherical_rig(*grid_span_angles(cfg.views, max_yaw, max_pitch))
    return rig_labels(cam2world.to(torch.float64)).numpy()
