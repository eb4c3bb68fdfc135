"""What a detection run is asked and what it found: its options and its results.

:class:`DetectConfig` (the CLI options), :class:`FrameResult` (the faces of one image or video
frame) and :class:`DetectSummary` (the run), shared by the landmarking loop
(:mod:`mvface.detect.run`) and the writers (:mod:`mvface.detect.writers`,
:mod:`mvface.detect.overlays`). Coordinates are 0-based pixels of the input image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mvface.api import Faces

__all__ = [
    "DetectConfig",
    "DetectSummary",
    "FrameResult",
    "OutputFormat",
]


OutputFormat = Literal["json", "csv", "coco"]


@dataclass
class DetectConfig:
    """Options of one detection run (each a CLI option).

    Attributes:
        out: output folder.
        format: ``"json"``, ``"csv"`` or ``"coco"`` (COCO keypoints, 68 points per face).
        draw: write an overlay PNG per image / frame under ``out/overlays``.
        min_score: drop detections below this detector score.
        smooth: video only: exponential smoothing factor in [0, 1) for landmarks of a face
            matched across consecutive frames (0 = off; 0.5 averages each frame with the past).
        every: video only: process every N-th frame.
        batch: images whose faces are landmarked in one ``predict`` call.
    """

    out: Path
    format: OutputFormat = "json"
    draw: bool = False
    min_score: float = 0.0
    smooth: float = 0.0
    every: int = 1
    batch: int = 16

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if self.format not in ("json", "csv", "coco"):
            raise ValueError(f"format must be json, csv or coco, got {self.format!r}")
        if not 0.0 <= self.smooth < 1.0:
            raise ValueError(f"smooth must be in [0, 1), got {self.smooth}")
        if self.every < 1:
            raise ValueError(f"every must be at least 1, got {self.every}")
        if self.batch < 1:
            raise ValueError(f"batch must be at least 1, got {self.batch}")


@dataclass
class FrameResult:
    """The faces of one image or video frame."""

    source: str
    frame: int | None
    width: int
    height: int
    faces: Faces


@dataclass
class DetectSummary:
    """What a run did: results per image/frame and one line per failed input.

    Attributes:
        results: faces of every image and processed video frame.
        failed: one line ``"<file>: <problem>"`` per input (or overlay) that failed.
        files: the input files found.
        output: the results file written.
        overlays: overlay images written.
    """

    results: list[FrameResult] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    output: Path | None = None
    overlays: int = 0

    @property
    def n_faces(self) -> int:
        """Faces found in all images and frames."""
        return sum(len(r.faces) for r in self.results)
