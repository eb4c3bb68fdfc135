"""Inference speed of every landmark model, PyTorch eager vs ONNX Runtime, with peers alongside.

What one *face* costs here is the whole of :meth:`LandmarkModel.predict` for one canonical face
box on a real image: the model's crop policy (every pass: ``mediapipe-68`` crops twice), the
network, and mapping the points back to image pixels. Image decoding and face detection are not
included; face detectors are timed separately (:func:`time_detectors`).

Engines:

* ``torch``: the model as shipped (PyTorch eager, ``torch.no_grad``). ``mediapipe-68`` runs its
  network on one thread whatever the setting (it flushes denormals, which only the calling thread
  can do: :func:`mvface.models.mediapipe_mesh.small_network_inference`).
* ``onnx``: the same ``predict`` with the network replaced by an ONNX Runtime session of its
  export (:class:`OrtNetwork`): the part of the network each family's ``predict`` calls is
  exported with a dynamic batch (:data:`EXPORTED_METHODS`: ``forward`` = the
  :func:`mvface.export.export_onnx` graph for ``mvnet``; ``params`` for ``3ddfa-v2``, whose tiny
  3DMM basis stays in torch; ``forward_mesh`` for ``mediapipe-68``, whose re-crop needs the
  mesh and whose 468 → 68 head stays in torch). Crops and mapping are the model's own code, so
  the two engines differ only in the network. The agreement of their points is reported.
* ``dlib``: dlib's 68-point shape predictor (C++, one thread always) through the same interface.

Measurement (:func:`time_interleaved`): the callables of all models are called round robin,
``warmup`` rounds discarded, then ``repeats`` rounds timed one call at a time with
:func:`time.perf_counter`; the table gives medians. Interleaving makes a load change on a shared
machine hit every model alike, so ratios within a run are meaningful even when absolute times
are not. Batch 1 cycles over the face set (one face per call); batched calls predict all faces
of the set at once (faces/s = faces / median seconds per call). Thread counts are set for
torch (``torch.set_num_threads``), OpenCV (``cv2.setNumThreads``) and ONNX Runtime
(``intra_op_num_threads``; one inter-op thread).
"""

from __future__ import annotations

import copy
import hashlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np
import torch
from torch import nn

from mvface.bench.machine import MachineInfo, load_average, machine_info
from mvface.bench.report import fmt, ratio
from mvface.bench.results import BenchResult, ResultTable
from mvface.errors import BadInputError, NotAvailableError
from mvface.export import export_onnx
from mvface.models import (
    DEFAULT_MODEL,
    LandmarkModel,
    ModelSpec,
    create_model,
    list_models,
    resolve_model_name,
)
from mvface.models.mediapipe_mesh import denormal_mode_restored
from mvface.models.trainable import TorchLandmarkModel

__all__ = [
    "BASE_MODEL",
    "DEFAULT_MODEL",
    "EXPORTED_METHODS",
    "PEERS",
    "DetectorRow",
    "FaceSet",
    "InferenceConfig",
    "InferenceResult",
    "InferenceRow",
    "ModelSpec",
    "OrtNetwork",
    "default_shared_root",
    "export_network",
    "inference_goals",
    "inference_result",
    "load_faces",
    "onnx_engine",
    "print_summary",
    "resolve_models",
    "run_inference_bench",
    "set_threads",
    "time_detectors",
    "time_interleaved",
]

#: The baseline of the paper's pair (``mediapipe-68`` as shipped): the goals are checked for it
#: too when it is measured, beside :data:`~mvface.models.DEFAULT_MODEL` (``fast``).
BASE_MODEL = "base"

#: Peer models measured in the same run: registry name -> what it is.
PEERS = {
    "3ddfa-v2": "3DDFA-V2 MobileNet-V1 x0.5, 120 px (Guo et al. 2020; shared release weights)",
    "dlib": "dlib's 68-point shape predictor (Kazemi & Sullivan 2014)",
}

#: The network method each family's ``predict`` calls (exported for ONNX Runtime), its output
#: names, and the submodules that stay in torch (small, outside the exported method).
EXPORTED_METHODS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "MediaPipe68": ("forward_mesh", ("mesh", "face_logit"), ("head",)),
    "TDDFAV2": ("params", ("params",), ("basis",)),
}
_DEFAULT_METHOD: tuple[str, tuple[str, ...], tuple[str, ...]] = ("forward", ("points",), ())

K = TypeVar("K")

#: Environment variable naming the shared data/model folder (default ``../shared``).
SHARED_ENV_VAR = "MVFACE_SHARED_DIR"


def default_shared_root() -> Path:
    """The shared data folder: ``$MVFACE_SHARED_DIR``, else ``../shared`` from the current
    folder, else ``shared`` beside the source checkout this module lives in."""
    env = os.environ.get(SHARED_ENV_VAR)
    if env:
        return Path(env)
    cwd = Path.cwd().parent / "shared"
    if cwd.is_dir():
        return cwd
    return Path(__file__).resolve().parents[3].parent / "shared"


# ------------------------------------------------------------------------ models


def default_weights(name: str, shared: Path) -> str | None:
    """Weights a model needs and the shared folder provides (``3ddfa-v2``), else ``None``."""
    if name == "3ddfa-v2" and not os.environ.get("MVFACE_3DDFA_V2_DIR"):
        folder = shared / "models" / "3ddfa_v2"
        return str(folder) if folder.is_dir() else None
    return None


def _create(spec: ModelSpec) -> LandmarkModel:
    if spec.name == "mvnet" and spec.weights is None:
        return create_model("mvnet", seed=0, allow_untrained=True)  # random init: speed only
    return create_model(spec.name, weights=spec.weights)


def architecture_key(model: LandmarkModel) -> tuple[Any, ...]:
    """What decides a model's speed: class, data contract (without the name) and tensor shapes."""
    config = model.config.to_dict()
    config.pop("name", None)
    config.pop("licence", None)
    shapes: tuple[Any, ...] = ()
    if isinstance(model, TorchLandmarkModel):
        shapes = tuple((k, tuple(v.shape)) for k, v in model.net.state_dict().items())
    extra = tuple(getattr(model, k, None) for k in ("passes", "recrop_scale"))
    return (type(model).__name__, repr(sorted(config.items())), shapes, extra)


def weights_key(model: LandmarkModel) -> str:
    """Architecture plus a hash of the weights: equal for two names of the same model."""
    digest = hashlib.sha1(repr(architecture_key(model)).encode())
    if isinstance(model, TorchLandmarkModel):
        for value in model.net.state_dict().values():
            digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def resolve_models(
    specs: Sequence[ModelSpec] | None,
    shared: Path,
    key: Callable[[LandmarkModel], Any] = architecture_key,
) -> tuple[dict[str, LandmarkModel], dict[str, str]]:
    """Build the models to benchmark; every registered one when ``specs`` is ``None``.

    Names whose ``key`` equals an earlier model's (``base`` is ``mediapipe-68``) are not
    measured twice. :data:`DEFAULT_MODEL` and :data:`BASE_MODEL` come first, then the peers,
    then the rest.

    Returns:
        label -> model, and label -> why it was left out (not available, or "same as X").
    """
    if specs is None:
        names = list_models()
        order = [DEFAULT_MODEL, BASE_MODEL, *PEERS, *names]
        specs = [ModelSpec.named(n) for n in dict.fromkeys(order) if n in names]
    models: dict[str, LandmarkModel] = {}
    left_out: dict[str, str] = {}
    seen: dict[Any, str] = {}
    for spec in specs:
        try:
            name = resolve_model_name(spec.name)  # an old name warns and becomes the current one
            # a spec labelled by its (possibly old) name is shown under the current name
            label = name if spec.label == spec.name else spec.label
            spec = replace(
                spec, label=label, name=name, weights=spec.weights or default_weights(name, shared)
            )
            model = _create(spec)
        except (NotAvailableError, BadInputError, ValueError) as exc:
            left_out[spec.label] = f"not available: {exc}"
            continue
        k = key(model)
        if k in seen:
            what = "weights" if key is weights_key else "network"
            left_out[spec.label] = f"same {what} as {seen[k]}, not measured twice"
            continue
        seen[k] = spec.label
        models[spec.label] = model
    return models, left_out


def model_note(name: str, model: LandmarkModel) -> str:
    """Short description of a benchmarked model for the table's notes."""
    if name in PEERS:
        return f"peer: {PEERS[name]}"
    if name == "mvnet" and isinstance(model, TorchLandmarkModel) and model.net.training:
        return "random initialization (no shipped weights): speed only"
    notes = {DEFAULT_MODEL: ["mvface's default model"], BASE_MODEL: ["baseline"]}.get(name, [])
    if model.flip_average:
        notes.append("flip-averaged (each face also run mirrored)")
    return "; ".join(notes)


# ------------------------------------------------------------------------ faces


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


# ------------------------------------------------------------------------ ONNX Runtime engine


def _export_spec(model: TorchLandmarkModel) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    return EXPORTED_METHODS.get(type(model).__name__, _DEFAULT_METHOD)


def export_network(model: TorchLandmarkModel, path: str | Path, opset: int = 17) -> Path:
    """Export the network method ``model.predict`` calls (:data:`EXPORTED_METHODS`) to ONNX.

    Input ``crops`` ``(batch, 3, S, S)`` normalized; outputs as named in
    :data:`EXPORTED_METHODS`; the batch dimension is dynamic (see :func:`export_onnx`).
    """
    method, outputs, _ = _export_spec(model)
    return export_onnx(model, path, opset, method=method, outputs=outputs)


def ort_session(path: str | Path, threads: int, spinning: bool = False) -> Any:
    """An ONNX Runtime CPU session with ``threads`` intra-op threads (denormals flushed).

    ``spinning=False`` makes idle pool threads sleep instead of spin-waiting for work: on a
    shared or oversubscribed machine spinning threads take the cores the working ones need.

    Raises:
        NotAvailableError: onnxruntime is not installed.
    """
    try:
        import onnxruntime as ort
    except ImportError:
        raise NotAvailableError("onnxruntime is not installed: pip install onnxruntime") from None
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.set_denormal_as_zero", "1")
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    with denormal_mode_restored():  # the option also switches the calling thread's mode
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OrtNetwork(nn.Module):
    """Stands in for a model's ``net``: the exported method runs in ONNX Runtime.

    Args:
        session: the ONNX Runtime session of :func:`export_network`'s file.
        method: the network method it replaces (``forward``, ``params``, ``forward_mesh``).
        kept: submodules of the original network that stay in torch (e.g. ``head``).
    """

    def __init__(self, session: Any, method: str, kept: Mapping[str, nn.Module]) -> None:
        super().__init__()
        self.session = session
        # a parameter, so ``model.device`` (next(net.parameters())) still answers "cpu"
        self.anchor = nn.Parameter(torch.zeros(0), requires_grad=False)
        for name, module in kept.items():
            self.add_module(name, module)
        self._method = method
        if method != "forward":
            setattr(self, method, self._run)
        self.eval()  # the session is an inference graph; callers need not switch modes

    def _run(self, x: torch.Tensor) -> Any:
        crops = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        with denormal_mode_restored():  # flushed while the session runs on this thread only
            torch.set_flush_denormal(True)
            outputs = [torch.from_numpy(o) for o in self.session.run(None, {"crops": crops})]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def forward(self, x: torch.Tensor) -> Any:
        """The exported method when it is ``forward``."""
        if self._method != "forward":
            raise TypeError(f"this ONNX network replaces {self._method!r}, not forward")
        return self._run(x)


def onnx_engine(
    model: TorchLandmarkModel, onnx_path: str | Path, threads: int, spinning: bool = False
) -> LandmarkModel:
    """A shallow copy of ``model`` whose network runs in ONNX Runtime (crops and mapping as is).

    The session gets ``threads`` intra-op threads, or the family's ``network_threads``.
    """
    method, _, kept_names = _export_spec(model)
    kept = {name: getattr(model.net, name) for name in kept_names}
    engine = copy.copy(model)
    session = ort_session(onnx_path, model.network_threads or threads, spinning)
    engine.net = OrtNetwork(session, method, kept)
    return engine


# ------------------------------------------------------------------------ timing


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


def _one_face_call(model: LandmarkModel, faces: FaceSet) -> Callable[[int], object]:
    """``call(i)``: predict face ``i mod N`` alone (batch 1)."""
    n = len(faces)

    def call(i: int) -> object:
        return model.predict(faces.images[i % n], faces.boxes[i % n][None])

    return call


def _all_faces_call(model: LandmarkModel, faces: FaceSet) -> Callable[[int], object]:
    """``call(i)``: predict every face of the set in one call."""

    def call(i: int) -> object:
        return model.predict(faces.images, faces.boxes)

    return call


def _detect_call(detector: Any, images: Sequence[np.ndarray]) -> Callable[[int], object]:
    """``call(i)``: detect faces in image ``i mod N``."""

    def call(i: int) -> object:
        return detector.detect(images[i % len(images)])

    return call


def _median(values: Iterable[float]) -> float:
    data = list(values)
    return statistics.median(data) if data else float("nan")


# ------------------------------------------------------------------------ the benchmark


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


def _engines_for(
    name: str,
    model: LandmarkModel,
    engines: Sequence[str],
    onnx_files: Mapping[str, Path],
    threads: int,
    spinning: bool,
) -> dict[str, LandmarkModel]:
    if not isinstance(model, TorchLandmarkModel):
        return {"dlib" if name == "dlib" else "native": model}
    out: dict[str, LandmarkModel] = {}
    if "torch" in engines:
        out["torch"] = model
    if "onnx" in engines and name in onnx_files:
        out["onnx"] = onnx_engine(model, onnx_files[name], threads, spinning)
    return out


def _parity(model: LandmarkModel, engine: LandmarkModel, faces: FaceSet, n: int = 4) -> float:
    """Largest difference in pixels between two engines' points on the first ``n`` faces."""
    k = min(n, len(faces))
    a = model.predict(faces.images[:k], faces.boxes[:k]).points[..., :2]
    b = engine.predict(faces.images[:k], faces.boxes[:k]).points[..., :2]
    return float(np.abs(a - b).max())


def time_detectors(
    names: Sequence[str], images: Sequence[np.ndarray], threads: int, repeats: int, warmup: int
) -> tuple[list[DetectorRow], dict[str, str]]:
    """Median ms per image of each face detector (interleaved, cycling over ``images``).

    Returns:
        The rows, and name -> reason for detectors that could not be created.
    """
    from mvface.detection import create_face_detector

    set_threads(threads)
    detectors, left_out = {}, {}
    for name in names:
        try:
            detectors[name] = create_face_detector(name)
        except (NotAvailableError, BadInputError, ValueError) as exc:
            left_out[name] = f"not available: {exc}"
    calls = {name: _detect_call(det, images) for name, det in detectors.items()}
    times = time_interleaved(calls, repeats, warmup)
    rows = [DetectorRow(n, threads, 1000 * _median(t), len(t)) for n, t in times.items()]
    return rows, left_out


def run_inference_bench(
    cfg: InferenceConfig, log: Callable[[str], None] = print
) -> InferenceResult:
    """Measure every model on every engine at every thread count (see the module docstring).

    Args:
        cfg: what to measure.
        log: progress lines (one per stage).

    Returns:
        The measurements; :func:`inference_result` turns them into a result file's content.

    Raises:
        NotAvailableError: no model could be created.
    """
    with denormal_mode_restored():  # ONNX Runtime sessions switch flush-to-zero on
        return _run_inference_bench(cfg, log)


def _run_inference_bench(cfg: InferenceConfig, log: Callable[[str], None]) -> InferenceResult:
    started = time.perf_counter()
    initial_threads = torch.get_num_threads()
    machine = machine_info()
    faces_root = cfg.faces if cfg.faces is not None else cfg.shared / "data/300w/helen_testset"
    faces = load_faces(faces_root, cfg.batch)
    sizes = sorted({f"{im.shape[1]}x{im.shape[0]}" for im in faces.images})
    models, left_out = resolve_models(cfg.models, cfg.shared)
    if not models:
        raise NotAvailableError("no model to benchmark: " + "; ".join(left_out.values()))
    for name, why in left_out.items():
        log(f"  {name}: {why}")
    notes = {name: model_note(name, model) for name, model in models.items()}

    onnx_files: dict[str, Path] = {}
    export_seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="mvface-bench-") as tmp:
        work = cfg.work_dir or Path(tmp)
        if "onnx" in cfg.engines:
            for name, model in models.items():
                if isinstance(model, TorchLandmarkModel):
                    t0 = time.perf_counter()
                    onnx_files[name] = export_network(model, work / f"{name}.onnx")
                    export_seconds[name] = time.perf_counter() - t0
                    log(f"  exported {name} to ONNX in {export_seconds[name]:.1f} s")

        rows: list[InferenceRow] = []
        detector_rows: list[DetectorRow] = []
        parity: dict[str, float] = {}
        for threads in cfg.threads:
            set_threads(threads)
            engines = {
                (name, engine): m
                for name, model in models.items()
                for engine, m in _engines_for(
                    name, model, cfg.engines, onnx_files, threads, cfg.ort_spinning
                ).items()
            }
            for (name, engine), m in engines.items():
                if engine == "onnx" and name not in parity and "random" not in notes[name]:
                    parity[name] = _parity(models[name], m, faces)
            n = len(faces)
            single = {key: _one_face_call(m, faces) for key, m in engines.items()}
            log(f"  {threads} thread(s): batch 1, {cfg.repeats} calls per model and engine ...")
            t_single = time_interleaved(single, cfg.repeats, cfg.warmup)
            batched = {key: _all_faces_call(m, faces) for key, m in engines.items()}
            log(f"  {threads} thread(s): batch {n}, {cfg.batch_repeats} calls ...")
            t_batch = time_interleaved(batched, cfg.batch_repeats, max(1, cfg.warmup // 10))
            for (name, engine), t in t_single.items():
                tb = t_batch[(name, engine)]
                rows.append(
                    InferenceRow(
                        model=name,
                        engine=engine,
                        threads=threads,
                        ms_per_face=1000 * _median(t),
                        p90_ms=1000 * float(np.percentile(t, 90)),
                        faces_per_s=n / _median(tb),
                        batch=n,
                        repeats=len(t),
                        batch_repeats=len(tb),
                    )
                )
            if cfg.detectors:
                log(f"  {threads} thread(s): face detectors, {cfg.detector_repeats} calls ...")
                d_rows, d_left = time_detectors(
                    cfg.detectors, faces.images, threads, cfg.detector_repeats, cfg.warmup // 4
                )
                detector_rows += d_rows
                left_out.update(d_left)
    set_threads(initial_threads)
    return InferenceResult(
        rows=rows,
        detectors=detector_rows,
        machine=machine,
        config=cfg,
        faces=faces.source,
        left_out=left_out,
        notes=notes,
        onnx_max_diff_px=parity,
        export_seconds=export_seconds,
        image_size=", ".join(sizes),
        seconds=time.perf_counter() - started,
        load_end=load_average(),
    )


# ------------------------------------------------------------------------ goals and report


@dataclass
class Goal:
    """A tracked goal: what it asks, the measured value, and whether it is met (None: n/a)."""

    text: str
    measured: str
    met: bool | None


def inference_goals(result: InferenceResult) -> list[Goal]:
    """The speed goals, checked on this run's rows.

    1. ms/face <= ``3ddfa-v2``'s at 1 thread in ONNX Runtime.
    2. Batched faces/s >= 2x dlib's at 2 threads (its faster engine).

    Both for :data:`DEFAULT_MODEL` (reported even when not measured) and for
    :data:`BASE_MODEL` when the run measured it.
    """
    goals = _speed_goals(result, DEFAULT_MODEL)
    if any(r.model == BASE_MODEL for r in result.rows):
        goals += _speed_goals(result, BASE_MODEL)
    return goals


def _speed_goals(result: InferenceResult, model: str) -> list[Goal]:
    goals: list[Goal] = []
    ours, peer = result.row(model, "onnx", 1), result.row("3ddfa-v2", "onnx", 1)
    text = f"{model} ms/face <= 3ddfa-v2's, 1 thread, ONNX Runtime"
    if ours and peer:
        r = ratio(ours.ms_per_face, peer.ms_per_face)
        measured = f"{ours.ms_per_face:.2f} vs {peer.ms_per_face:.2f} ms (ratio {r:.2f})"
        goals.append(Goal(text, measured, ours.ms_per_face <= peer.ms_per_face))
    else:
        goals.append(Goal(text, "not measured in this run", None))
    text = f"{model} batched faces/s >= 2x dlib's, 2 threads"
    candidates = [r for r in result.rows if r.model == model and r.threads == 2]
    dlib = result.row("dlib", "dlib", 2)
    if candidates and dlib:
        best = max(candidates, key=lambda r: r.faces_per_s)
        r = ratio(best.faces_per_s, dlib.faces_per_s)
        measured = (
            f"{best.faces_per_s:.1f} ({best.engine}) vs {dlib.faces_per_s:.1f} faces/s "
            f"(ratio {r:.2f})"
        )
        goals.append(Goal(text, measured, best.faces_per_s >= 2 * dlib.faces_per_s))
    else:
        goals.append(Goal(text, "not measured in this run", None))
    return goals


def _met(value: bool | None) -> str:
    return "n/a" if value is None else ("**met**" if value else "**not met**")


def _config_arguments(cfg: InferenceConfig) -> dict[str, Any]:
    """The run's settings as plain JSON values (models as their specs)."""
    return {
        "models": [f"{m.label}={m.name}:{m.weights or ''}" for m in cfg.models]
        if cfg.models
        else None,
        "threads": list(cfg.threads),
        "engines": list(cfg.engines),
        "repeats": cfg.repeats,
        "warmup": cfg.warmup,
        "batch": cfg.batch,
        "batch_repeats": cfg.batch_repeats,
        "faces": str(cfg.faces) if cfg.faces is not None else None,
        "detectors": list(cfg.detectors),
        "detector_repeats": cfg.detector_repeats,
        "ort_spinning": cfg.ort_spinning,
    }


def inference_result(result: InferenceResult, command: str) -> BenchResult:
    """The run as a :class:`~mvface.bench.results.BenchResult` (kind ``inference``): the model
    table with its ratios, the detector table, the goals and the notes."""
    cfg = result.config
    columns = [
        "model",
        "engine",
        "threads",
        "ms/face (batch 1)",
        "p90 ms",
        f"faces/s (batch {cfg.batch})",
        "ms/face ÷ 3ddfa-v2",
        "faces/s ÷ dlib",
    ]
    rows: list[list[Any]] = []
    for r in sorted(result.rows, key=lambda r: (r.threads, list(result.notes).index(r.model))):
        peer = result.row("3ddfa-v2", r.engine if r.engine != "dlib" else "torch", r.threads)
        dlib = result.row("dlib", "dlib", r.threads)
        rows.append(
            [
                r.model,
                "ONNX Runtime" if r.engine == "onnx" else r.engine,
                r.threads,
                r.ms_per_face,
                r.p90_ms,
                r.faces_per_s,
                ratio(r.ms_per_face, peer.ms_per_face if peer else None),
                ratio(r.faces_per_s, dlib.faces_per_s if dlib else None),
            ]
        )
    tables = [
        ResultTable(
            name=(
                f"Faces: {result.faces} ({result.image_size} px images; canonical box = tight "
                "box of the annotated 68 points). One face = the whole `predict` (crop policy, "
                f"network, mapping back). Batch 1: median (and 90th percentile) of {cfg.repeats} "
                f"calls per model and engine after {cfg.warmup} warm-up rounds; batched: "
                f"{cfg.batch_repeats} calls of {cfg.batch} faces. All models interleaved round "
                "robin in one process. Ratios against the peer measured in the same run at the "
                "same thread count: ms/face against 3ddfa-v2 on the same engine, faces/s against "
                "dlib. ONNX Runtime: CPU provider, one inter-op thread, spin-waiting "
                f"{'on' if cfg.ort_spinning else 'off'}."
            ),
            columns=columns,
            rows=rows,
            digits={columns[5]: 1},
        )
    ]
    if result.detectors:
        hog = {d.threads: d for d in result.detectors if d.detector == "dlib-hog"}
        tables.append(
            ResultTable(
                name=(
                    "Face detection, timed separately (`detect` on the same images, one image "
                    "per call, interleaved)."
                ),
                columns=["detector", "threads", "ms/image (median)", "÷ dlib-hog", "calls"],
                rows=[
                    [
                        d.detector,
                        d.threads,
                        d.ms_per_image,
                        ratio(
                            d.ms_per_image,
                            hog[d.threads].ms_per_image if d.threads in hog else None,
                        ),
                        d.repeats,
                    ]
                    for d in sorted(result.detectors, key=lambda d: (d.threads, d.detector))
                ],
                summary=False,
            )
        )
    notes = [f"`{name}`: {note}" for name, note in result.notes.items() if note]
    notes += [f"`{name}`: {why}" for name, why in result.left_out.items()]
    if result.onnx_max_diff_px:
        diffs = ", ".join(f"{k} {v:.2g}" for k, v in result.onnx_max_diff_px.items())
        notes.append(f"ONNX Runtime vs PyTorch, largest point difference (px): {diffs}")
    if DEFAULT_MODEL in result.notes or BASE_MODEL in result.notes:
        notes.append(
            f"`{DEFAULT_MODEL}` and `{BASE_MODEL}` run each network call on one thread (both "
            f"engines); with 2 threads their batched `predict` runs 2 faces at a time. dlib is "
            "single-threaded."
        )
    if result.load_end is not None:
        notes.append(
            "Load average at the end (1 / 5 / 15 min): "
            + " / ".join(f"{v:.2f}" for v in result.load_end)
            + f" on {result.machine.cpus} CPUs (the machine facts have it at the start)."
        )
    notes.append(f"Total benchmark time {result.seconds:.0f} s.")
    return BenchResult(
        kind="inference",
        title="Inference speed",
        command=command,
        machine=result.machine.to_dict(),
        tables=tables,
        arguments=_config_arguments(cfg),
        goals=[
            {"goal": g.text, "measured": g.measured, "met": g.met} for g in inference_goals(result)
        ],
        notes=notes,
    )


def print_summary(result: InferenceResult, log: Callable[[str], None] = print) -> None:
    """Plain-text result lines (the console view of :func:`inference_result`)."""
    log(f"machine: {result.machine.describe()}")
    for r in result.rows:
        peer = result.row("3ddfa-v2", r.engine if r.engine != "dlib" else "torch", r.threads)
        dlib = result.row("dlib", "dlib", r.threads)
        log(
            f"  {r.model:<14} {r.engine:<6} {r.threads} thr: {r.ms_per_face:7.2f} ms/face "
            f"(p90 {r.p90_ms:.2f}), {r.faces_per_s:7.1f} faces/s batched; "
            f"x3ddfa-v2 {fmt(ratio(r.ms_per_face, peer.ms_per_face if peer else None))}, "
            f"xdlib faces/s {fmt(ratio(r.faces_per_s, dlib.faces_per_s if dlib else None))}"
        )
    for d in result.detectors:
        log(f"  detector {d.detector:<16} {d.threads} thr: {d.ms_per_image:7.2f} ms/image")
    for g in inference_goals(result):
        log(f"  goal: {g.text}: {g.measured} -> {_met(g.met).strip('*')}")
