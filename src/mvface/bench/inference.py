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
  export (:mod:`mvface.models.onnx_engine`, the engine every inference path uses; exported
  fresh here, not from the cache, so the export time is measured): the part of the network
  each family's ``predict`` calls is exported with a dynamic batch (:data:`EXPORTED_METHODS`:
  ``forward`` = the
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

The pieces: :mod:`~mvface.bench.models` (which models), :mod:`~mvface.bench.faces` (on what),
:mod:`~mvface.bench.timing` (how timed), :mod:`~mvface.bench.inference_data` (settings and
rows), :mod:`~mvface.bench.inference_report` (goals, result file, summary); this module runs it.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from mvface.bench.faces import FaceSet, load_faces
from mvface.bench.inference_data import DetectorRow, InferenceConfig, InferenceResult, InferenceRow
from mvface.bench.inference_report import Goal, inference_goals, inference_result, print_summary
from mvface.bench.machine import load_average, machine_info
from mvface.bench.models import (
    BASE_MODEL,
    PEERS,
    default_shared_root,
    default_weights,
    model_note,
    resolve_models,
    weights_key,
)
from mvface.bench.timing import (
    all_faces_call,
    detect_call,
    median,
    one_face_call,
    set_threads,
    time_interleaved,
)
from mvface.errors import BadInputError, NotAvailableError
from mvface.models import DEFAULT_MODEL, LandmarkModel, ModelSpec
from mvface.models.mediapipe_mesh import denormal_mode_restored
from mvface.models.onnx_engine import (
    EXPORTED_METHODS,
    OrtNetwork,
    export_network,
    onnx_engine,
    ort_session,
)
from mvface.models.trainable import TorchLandmarkModel

__all__ = [
    "BASE_MODEL",
    "DEFAULT_MODEL",
    "EXPORTED_METHODS",
    "PEERS",
    "DetectorRow",
    "FaceSet",
    "Goal",
    "InferenceConfig",
    "InferenceResult",
    "InferenceRow",
    "ModelSpec",
    "OrtNetwork",
    "default_shared_root",
    "default_weights",
    "export_network",
    "inference_goals",
    "inference_result",
    "load_faces",
    "model_note",
    "onnx_engine",
    "ort_session",
    "print_summary",
    "resolve_models",
    "run_inference_bench",
    "set_threads",
    "time_detectors",
    "time_interleaved",
    "weights_key",
]


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
    calls = {name: detect_call(det, images) for name, det in detectors.items()}
    times = time_interleaved(calls, repeats, warmup)
    rows = [DetectorRow(n, threads, 1000 * median(t), len(t)) for n, t in times.items()]
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
            single = {key: one_face_call(m, faces) for key, m in engines.items()}
            log(f"  {threads} thread(s): batch 1, {cfg.repeats} calls per model and engine ...")
            t_single = time_interleaved(single, cfg.repeats, cfg.warmup)
            batched = {key: all_faces_call(m, faces) for key, m in engines.items()}
            log(f"  {threads} thread(s): batch {n}, {cfg.batch_repeats} calls ...")
            t_batch = time_interleaved(batched, cfg.batch_repeats, max(1, cfg.warmup // 10))
            for (name, engine), t in t_single.items():
                tb = t_batch[(name, engine)]
                rows.append(
                    InferenceRow(
                        model=name,
                        engine=engine,
                        threads=threads,
                        ms_per_face=1000 * median(t),
                        p90_ms=1000 * float(np.percentile(t, 90)),
                        faces_per_s=n / median(tb),
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
