"""The faces a speed benchmark runs the models on: annotated 300-W faces, or random images."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class FaceSet:
    """Faces to run the models on: one image per face and its canonical box.

    Attributes:
        images: N ``(H, W, 3)`` uint8 RGB images.
        boxes: ``(N, 4)`` canonical boxes (tight 68-point box), 0-based pixels.
        source: where they came from.
    """

    images: list[np.ndarray]
    boxes: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.images)


def load_faces(root: Path | None, count: int, seed: int = 0) -> FaceSet:
    """The first ``count`` annotated faces of an iBUG ``.pts`` folder (their landmark boxes).

    Without a readable folder (``root`` ``None`` or absent): ``count`` seeded random 256 px
    images with a fixed box (timing only; content barely changes the times).
    """
    from mvface.data.image import load_image
    from mvface.data.readers import read_dataset
    from mvface.data.record import landmark_box

    if root is not None and Path(root).is_dir():
        samples = [
            s for s in read_dataset("pts", root, limit=count).samples if s.landmarks is not None
        ]
        if samples:
            images = [
                s.image if isinstance(s.image, np.ndarray) else load_image(s.image) for s in samples
            ]
            boxes = np.stack([landmark_box(np.asarray(s.landmarks)[:, :2]) for s in samples])
            return FaceSet(images, boxes, f"first {len(samples)} faces of {root}")
    rng = np.random.default_rng(seed)
    images = [rng.integers(0, 256, (256, 256, 3), dtype=np.uint8) for _ in range(count)]
    boxes = np.tile([[70.0, 60.0, 186.0, 200.0]], (count, 1))
    return FaceSet(images, boxes, f"{count} random 256 px images (no face folder found)")
