"""The inference benchmark's goals, its result file and its console summary."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mvface.bench.inference_data import InferenceConfig, InferenceResult
from mvface.bench.models import BASE_MODEL
from mvface.bench.report import fmt, ratio
from mvface.bench.results import BenchResult, ResultTable
from mvface.models import DEFAULT_MODEL


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
