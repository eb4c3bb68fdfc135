"""Timing: callables called round robin, so that a load change hits every one alike."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import cv2
import numpy as np
import torch

from mvface.bench.faces import FaceSet
from mvface.models import LandmarkModel

K = TypeVar("K")


def set_threads(threads: int) -> None:
    """Intra-op threads of torch and OpenCV."""
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)


def time_interleaved(
    calls: Mapping[K, Callable[[int], object]], repeats: int, warmup: int
) -> dict[K, list[float]]:
    """Seconds per call of each callable, called round robin (``fn(i)`` with the round ``i``).

    Args:
        calls: name -> callable taking the round index.
        repeats: timed rounds.
        warmup: rounds run first and discarded.

    Returns:
        name -> ``repeats`` durations in seconds.
    """
    times: dict[K, list[float]] = {name: [] for name in calls}
    for i in range(warmup + repeats):
        for name, fn in calls.items():
            start = time.perf_counter()
            fn(i)
            elapsed = time.perf_counter() - start
            if i >= warmup:
                times[name].append(elapsed)
    return times


def one_face_call(model: LandmarkModel, faces: FaceSet) -> Callable[[int], object]:
    """``call(i)``: predict face ``i mod N`` alone (batch 1)."""
    n = len(faces)

    def call(i: int) -> object:
        return model.predict(faces.images[i % n], faces.boxes[i % n][None])

    return call


def all_faces_call(model: LandmarkModel, faces: FaceSet) -> Callable[[int], object]:
    """``call(i)``: predict every face of the set in one call."""

    def call(i: int) -> object:
        return model.predict(faces.images, faces.boxes)

    return call


def detect_call(detector: Any, images: Sequence[np.ndarray]) -> Callable[[int], object]:
    """``call(i)``: detect faces in image ``i mod N``."""

    def call(i: int) -> object:
        return detector.detect(images[i % len(images)])

    return call


def median(values: Iterable[float]) -> float:
    data = list(values)
    return statistics.median(data) if data else float("nan")
