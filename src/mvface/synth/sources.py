"""Step 1 of the synthesis job: the source faces, their landmarks and their identity names.

The faces of any registered reader (:func:`select_sources`), 68 landmarks by a detector for
unannotated ones (:func:`detect_landmarks`), and one output folder name per face, distinct even on
a case-insensitive file system (:func:`assign_identity_names`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mvface.data.readers import read_dataset
from mvface.data.record import FaceSample
from mvface.errors import BadInputError
from mvface.synth.config import SynthConfig
from mvface.synth.writer import hashed_identity_name, safe_identity_name

__all__ = [
    "assign_identity_names",
    "detect_landmarks",
    "identity_name",
    "select_sources",
    "source_name",
]


def select_sources(cfg: SynthConfig) -> tuple[list[FaceSample], list[str]]:
    """The source faces of ``cfg`` and one-line reasons for the items the reader skipped.

    Samples without landmarks are kept when ``cfg.landmark_model`` will mark them (step 2),
    skipped otherwise.
    """
    dataset = read_dataset(cfg.format, cfg.source, limit=cfg.limit)
    samples, skipped = [], list(dataset.skipped)
    for sample in dataset.samples:
        if sample.landmarks is None and cfg.landmark_model is None:
            skipped.append(f"{source_name(sample)}: no 68-point landmarks")
        else:
            samples.append(sample)
    return samples, skipped


_LANDMARKERS: dict[str, Any] = {}


def detect_landmarks(image: np.ndarray, model: str, source: str = "image") -> np.ndarray:
    """Step 2 for unannotated sources: 68 landmarks of the largest face found.

    The landmarker (``mvface.load(model)`` with the automatic face detector) is created once per
    process.

    Raises:
        BadInputError: no face in the image.
    """
    from mvface.api import load

    if model not in _LANDMARKERS:
        _LANDMARKERS[model] = load(model)
    faces = _LANDMARKERS[model].detect(image)
    if len(faces) == 0:
        raise BadInputError(source, "no face found")
    areas = (faces.boxes[:, 2] - faces.boxes[:, 0]) * (faces.boxes[:, 3] - faces.boxes[:, 1])
    return np.asarray(faces.points[int(np.argmax(areas)), :, :2], np.float64)


def source_name(sample: FaceSample) -> str:
    """How a source face is named in reasons and provenance: its file path, else its name."""
    return str(sample.image) if isinstance(sample.image, Path) else (sample.name or "<array>")


def identity_name(sample: FaceSample) -> str:
    """The identity folder name of a source face (:func:`~mvface.synth.writer.safe_identity_name`
    of its sample name: exists for every name, distinct for distinct names)."""
    name = sample.name or (sample.image.stem if isinstance(sample.image, Path) else "")
    return safe_identity_name(name)


def assign_identity_names(
    samples: list[FaceSample],
) -> tuple[list[tuple[str, FaceSample]], list[tuple[str, str, str]]]:
    """One folder name per source face, distinct even where two names differ only by case.

    A face whose :func:`identity_name` another face already took, ignoring case (a
    case-insensitive file system would merge the two folders), gets a hashed name of its own
    file name (``face+1c0f...``) when it is another file (``a.jpg`` and ``a.png``, ``Face`` and
    ``face``); the very same file listed twice is skipped.

    Returns:
        ``[(name, sample)]`` in order, and ``[(name, source, reason)]`` of the skipped repeats.
    """
    named: list[tuple[str, FaceSample]] = []
    skipped: list[tuple[str, str, str]] = []
    taken: dict[str, str] = {}  # casefolded name -> source
    for sample in samples:
        name, source = identity_name(sample), source_name(sample)
        if name.casefold() in taken:
            if taken[name.casefold()] == source:
                skipped.append((name, source, f"listed twice (identity {name!r})"))
                continue
            suffix = sample.image.suffix if isinstance(sample.image, Path) else ""
            key = f"{sample.name or name}{suffix}\0another file"
            name = hashed_identity_name(sample.name or name, key=key)
            if name.casefold() in taken:  # pragma: no cover - a sha1 collision
                skipped.append((name, source, f"duplicate identity name {name!r}"))
                continue
        taken[name.casefold()] = source
        named.append((name, sample))
    return named, skipped
