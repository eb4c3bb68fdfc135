"""What one inference benchmark run is set to measure, and what it measured (plain data)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mvface.bench.machine import MachineInfo
from mvface.bench.models import default_shared_root
from mvface.models import ModelSpec


@dataclass
class InferenceConfig:
    """Settings of one inference benchmark run.

    Attributes:
        models: models to measure (``None``: every registered model; see
            :func:`resolve_models`).
        threads: thread counts to measure at.
        engines: ``"torch"`` and/or ``"onnx"`` (dlib always runs its own engine).
        repeats: timed batch-1 calls per model (median reported); at least 200 for a stable median.
        warmup: discarded rounds before timing.
        batch: faces per batched call.
        batch_repeats: timed batched calls per model.
        faces: folder of ``.pts`` faces to run on (``None``: HELEN test in the shared folder).
        detectors: face detectors timed separately (empty: none).
        detector_repeats: timed calls per detector (one image per call).
        shared: the shared folder (weights of ``3ddfa-v2``, default faces).
        work_dir: where ONNX files go (``None``: a temporary folder).
        ort_spinning: let ONNX Runtime's idle threads spin-wait (its default; off here, see
            :func:`ort_session`).
    """

    models: list[ModelSpec] | None = None
    threads: tuple[int, ...] = (1, 2)
    engines: tuple[str, ...] = ("torch", "onnx")
    repeats: int = 200
    warmup: int = 20
    batch: int = 16
    batch_repeats: int = 30
    faces: Path | None = None
    detectors: tuple[str, ...] = ("blazeface-short", "blazeface-full", "dlib-hog")
    detector_repeats: int = 100
    shared: Path = field(default_factory=default_shared_root)
    work_dir: Path | None = None
    ort_spinning: bool = False

    def __post_init__(self) -> None:
        unknown = sorted(set(self.engines) - {"torch", "onnx"})
        if unknown:
            raise ValueError(f"unknown engines {unknown}; use torch and/or onnx")
        if self.repeats < 1 or self.batch < 1 or self.batch_repeats < 1 or self.warmup < 0:
            raise ValueError("repeats, batch and batch_repeats must be >= 1, warmup >= 0")
        if not self.threads or min(self.threads) < 1:
            raise ValueError(f"threads must be positive, got {self.threads}")


@dataclass
class InferenceRow:
    """One model on one engine at one thread count.

    Attributes:
        model: registry name.
        engine: ``torch``, ``onnx`` or ``dlib``.
        threads: intra-op threads.
        ms_per_face: median milliseconds of one ``predict`` of one face (batch 1).
        p90_ms: 90th percentile of the same calls, milliseconds.
        faces_per_s: faces per second of batched calls (``batch`` faces per call).
        batch: faces per batched call.
        repeats: timed batch-1 calls.
        batch_repeats: timed batched calls.
    """

    model: str
    engine: str
    threads: int
    ms_per_face: float
    p90_ms: float
    faces_per_s: float
    batch: int
    repeats: int
    batch_repeats: int


@dataclass
class DetectorRow:
    """One face detector at one thread count: median ms per image over ``repeats`` calls."""

    detector: str
    threads: int
    ms_per_image: float
    repeats: int


@dataclass
class InferenceResult:
    """Everything one run measured (see :func:`run_inference_bench`)."""

    rows: list[InferenceRow]
    detectors: list[DetectorRow]
    machine: MachineInfo
    config: InferenceConfig
    faces: str
    left_out: dict[str, str]
    notes: dict[str, str]
    onnx_max_diff_px: dict[str, float]
    export_seconds: dict[str, float]
    image_size: str
    seconds: float = 0.0
    load_end: tuple[float, float, float] | None = None

    def row(self, model: str, engine: str, threads: int) -> InferenceRow | None:
        """The row of ``model`` on ``engine`` at ``threads``, if measured."""
        for r in self.rows:
            if (r.model, r.engine, r.threads) == (model, engine, threads):
                return r
        return None

    def best(self, model: str, threads: int) -> InferenceRow | None:
        """The fastest (batch 1) engine's row of ``model`` at ``threads``."""
        rows = [r for r in self.rows if r.model == model and r.threads == threads]
        return min(rows, key=lambda r: r.ms_per_face) if rows else None
