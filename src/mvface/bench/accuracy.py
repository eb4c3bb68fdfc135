"""Accuracy of every available model on every benchmark present in the shared data folder.

One run evaluates each model (:func:`mvface.bench.inference.resolve_models`; names that are the
same weights under another name are evaluated once) on each data set of :data:`ACCURACY_SETS`
whose folder exists, with :func:`mvface.eval.runner.evaluate` under the data set's protocol:

* AFLW2000-3D dev half, 3DDFA protocol: 2D NME / sqrt(w·h) of the ground-truth box (percent)
  per |yaw| bin [0,30], (30,60], (60,90] (``AFLW2000-3D.pose.npy``), their mean ("balanced"),
  the plain mean, AUC and failure rate at 7 %;
* 300-W HELEN test (``.pts``): NME / outer-eye-corner distance (percent), AUC and failure rate
  at 8 %.

Every model gets the same crop: the tight box of the ground-truth 68 points, mapped by the
model's own crop policy (``crop="gt"``). Each evaluation's report folder (``metrics.json``,
``per_image.csv``, ``predictions.npy``, ``ced.png``) goes to ``OUT/<model>-<set>/``, and one CED
plot per data set with every model's curve to ``OUT/ced-<set>.png``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mvface.bench.inference import (
    ModelSpec,
    default_shared_root,
    default_weights,
    resolve_models,
    weights_key,
)
from mvface.bench.machine import MachineInfo, machine_info
from mvface.bench.report import fmt, ratio
from mvface.bench.results import BenchResult, ResultTable
from mvface.errors import NotAvailableError
from mvface.eval.plots import plot_ced
from mvface.eval.protocols import YAW_BINS, ProtocolResult
from mvface.eval.report import write_report
from mvface.eval.runner import EvalConfig, evaluate
from mvface.models.trainable import TorchLandmarkModel

__all__ = [
    "ACCURACY_SETS",
    "PEER",
    "AccuracyConfig",
    "AccuracyResult",
    "AccuracySet",
    "accuracy_result",
    "model_specs",
    "print_summary",
    "run_accuracy_bench",
]

#: The peer every model's NME is divided by in the table (the strongest peer).
PEER = "3ddfa-v2"


#: HELEN test faces (in file-name order) that no shipped model trains on.
HELEN_HELD_OUT = 165


@dataclass(frozen=True)
class AccuracySet:
    """A benchmark: short key, ``mvface eval`` dataset name, folder below the shared root, and
    how many of its first faces to use (``None``: all)."""

    key: str
    dataset: str
    subpath: str
    label: str
    limit: int | None = None


#: The benchmarks the accuracy run looks for in the shared folder.
ACCURACY_SETS = (
    AccuracySet(
        "aflw2000-3d",
        "aflw2000-3d",
        "data/aflw2000_3d_dev",
        "AFLW2000-3D dev half (3DDFA protocol)",
    ),
    # the first 165 faces: `base+` trains on the rest (configs/splits/helen_train.txt)
    AccuracySet(
        "300w-helen",
        "300w",
        "data/300w/helen_testset",
        "300-W HELEN test, held-out first half",
        limit=HELEN_HELD_OUT,
    ),
)


@dataclass
class AccuracyConfig:
    """Settings of one accuracy run.

    Attributes:
        models: models to evaluate (``None``: every registered model that can be created;
            ``mvnet`` only with weights, since a random network has no accuracy to report).
        shared: the shared folder holding ``data/`` (and ``models/3ddfa_v2``).
        out: folder for the report folders and CED plots.
        limit: evaluate only the first N faces of each set (``None``: all).
        sets: keys of :data:`ACCURACY_SETS` to use (``None``: every one present).
    """

    models: list[ModelSpec] | None = None
    shared: Path = field(default_factory=default_shared_root)
    out: Path = Path("out/bench-accuracy")
    limit: int | None = None
    sets: tuple[str, ...] | None = None


@dataclass
class AccuracyResult:
    """Scores of every (model, set) pair evaluated.

    Attributes:
        results: ``(model, set key)`` -> protocol result.
        ms_per_face: ``(model, set key)`` -> model time per face (ms, inside ``evaluate``).
        skipped: ``(model, set key)`` -> faces the evaluation could not use.
        sets: the benchmarks present, in order.
        models: model names evaluated, in order.
        left_out: model or set -> why it was not evaluated.
        plots: set key -> combined CED plot.
        machine: where it ran.
        seconds: total time.
    """

    results: dict[tuple[str, str], ProtocolResult]
    ms_per_face: dict[tuple[str, str], float]
    skipped: dict[tuple[str, str], int]
    sets: list[AccuracySet]
    models: list[str]
    left_out: dict[str, str]
    plots: dict[str, Path]
    machine: MachineInfo
    config: AccuracyConfig
    seconds: float = 0.0


def run_accuracy_bench(cfg: AccuracyConfig, log: Callable[[str], None] = print) -> AccuracyResult:
    """Evaluate every model on every benchmark present (see the module docstring).

    Raises:
        NotAvailableError: no benchmark folder or no model is available.
    """
    started = time.perf_counter()
    machine = machine_info()
    left_out: dict[str, str] = {}
    sets = []
    for s in ACCURACY_SETS:
        if cfg.sets is not None and s.key not in cfg.sets:
            continue
        if (cfg.shared / s.subpath).is_dir():
            sets.append(s)
        else:
            left_out[s.key] = f"folder {cfg.shared / s.subpath} not found"
    if not sets:
        raise NotAvailableError(
            f"no benchmark data found below {cfg.shared} (looked for "
            + ", ".join(s.subpath for s in ACCURACY_SETS)
            + ")"
        )
    models, dropped = resolve_models(cfg.models, cfg.shared, key=weights_key)
    left_out.update(dropped)
    for name, model in list(models.items()):
        if isinstance(model, TorchLandmarkModel) and model.net.training:
            left_out[name] = "no weights given (random initialization): not evaluated"  # mvnet
            del models[name]
    if not models:
        why = "; ".join(f"{k}: {v}" for k, v in left_out.items())
        raise NotAvailableError(f"no model to evaluate ({why})")
    for name, why in left_out.items():
        log(f"  {name}: {why}")

    results: dict[tuple[str, str], ProtocolResult] = {}
    ms: dict[tuple[str, str], float] = {}
    skipped: dict[tuple[str, str], int] = {}
    cfg.out.mkdir(parents=True, exist_ok=True)
    for s in sets:
        for name, model in models.items():
            t0 = time.perf_counter()
            ecfg = EvalConfig(
                dataset=s.dataset,
                root=cfg.shared / s.subpath,
                model=name,
                weights=default_weights(name, cfg.shared),
                limit=_smaller(cfg.limit, s.limit),
                crop="gt",
            )
            report = evaluate(ecfg, model=model, progress=False)
            write_report(report, cfg.out / f"{name}-{s.key}")
            results[(name, s.key)] = report.result
            ms[(name, s.key)] = float(report.extras["ms_per_face"])
            skipped[(name, s.key)] = len(report.extras["skipped"])
            log(
                f"  {name} on {s.key}: {report.n} faces, NME {report.result.nme_mean:.3f} %, "
                f"{time.perf_counter() - t0:.0f} s"
            )
    plots = {}
    for s in sets:
        curves = {m: results[(m, s.key)].per_image for m in models if (m, s.key) in results}
        threshold = next(iter(results[(m, s.key)] for m in models)).threshold
        plots[s.key] = plot_ced(
            curves,
            cfg.out / f"ced-{s.key}.png",
            max_threshold=max(10.0, 2 * threshold),
            auc_threshold=threshold,
            title=f"{s.label}, ground-truth box crop",
        )
    return AccuracyResult(
        results=results,
        ms_per_face=ms,
        skipped=skipped,
        sets=sets,
        models=list(models),
        left_out=left_out,
        plots=plots,
        machine=machine,
        config=cfg,
        seconds=time.perf_counter() - started,
    )


def _row(result: AccuracyResult, model: str) -> list[Any]:
    """One model's cells, unrounded (``None``: not evaluated); columns as :func:`_headers`."""
    cells: list[Any] = [model]
    peer = PEER if PEER in result.models else None
    for s in result.sets:
        r = result.results.get((model, s.key))
        p = result.results.get((peer, s.key)) if peer else None
        if r is None:
            cells += [None] * (8 if s.dataset == "aflw2000-3d" else 4)
            continue
        if r.nme_bins is not None:
            cells += [float(r.nme_bins[b]) for b, _, _ in YAW_BINS]
            cells += [r.nme_balanced, float(r.nme_mean)]
            headline, peer_headline = r.nme_balanced, (p.nme_balanced if p else None)
        else:
            cells += [float(r.nme_mean)]
            headline, peer_headline = r.nme_mean, (p.nme_mean if p else None)
        cells += [float(r.auc), 100 * float(r.failure_rate)]
        cells += [ratio(headline, peer_headline)]
    speeds = [result.ms_per_face[k] for k in result.ms_per_face if k[0] == model]
    cells.append(sum(speeds) / len(speeds) if speeds else None)
    return cells


def _headers(result: AccuracyResult) -> tuple[list[str], dict[str, int]]:
    """Column headers and the decimals each shows (NME 3, AUC 4, FR 1, ratios 2, ms 1)."""
    headers = ["model"]
    digits: dict[str, int] = {}
    for s in result.sets:
        r = next(v for k, v in result.results.items() if k[1] == s.key)
        t = f"{r.threshold:g}"
        if r.nme_bins is not None:
            short = "AFLW"
            nme = [f"{short} {b}" for b, _, _ in YAW_BINS] + [f"{short} balanced", f"{short} mean"]
            rest = [f"{short} AUC@{t}%", f"{short} FR@{t}% (%)", f"{short} balanced ÷ {PEER}"]
        else:
            short = "300-W HELEN" if s.key == "300w-helen" else s.key
            nme = [f"{short} NME"]
            rest = [f"{short} AUC@{t}%", f"{short} FR@{t}% (%)", f"{short} ÷ {PEER}"]
        headers += nme + rest
        digits.update({h: 3 for h in nme})
        digits.update(dict(zip(rest, (4, 1, 2), strict=True)))
    headers.append("ms/face (in eval, 1 process)")
    digits[headers[-1]] = 1
    return headers, digits


def accuracy_result(result: AccuracyResult, command: str) -> BenchResult:
    """The run as a :class:`~mvface.bench.results.BenchResult` (kind ``accuracy``): one row per
    model with its ratio to :data:`PEER`, the plots and notes."""
    counts = []
    for s in result.sets:
        n = {result.results[(m, s.key)].n for m in result.models if (m, s.key) in result.results}
        counts.append(f"{s.label}: {', '.join(str(v) for v in sorted(n))} faces")
    headers, digits = _headers(result)
    name = (
        "NME in percent, every model cropped from the ground-truth landmark box through its own "
        "crop policy. AFLW2000-3D: 3DDFA protocol (2D NME / sqrt(w·h) of the ground-truth box, "
        "|yaw| bins from `AFLW2000-3D.pose.npy`; balanced = mean of the three bin means). "
        "300-W HELEN test: NME / outer-eye-corner distance. AUC and failure rate (FR) at the "
        f"protocol's threshold. Ratios: the headline NME divided by {PEER}'s, evaluated in the "
        "same run (< 1: better than the peer). " + "; ".join(counts) + "."
    )
    table = ResultTable(name, headers, [_row(result, m) for m in result.models], digits)
    notes = [
        "CED plots (all models): "
        + ", ".join(f"`{path}` ({key})" for key, path in result.plots.items())
        + f"; per-run reports (metrics.json, per_image.csv, predictions.npy, ced.png) in "
        f"`{result.config.out}/<model>-<set>/`."
    ]
    notes += [f"`{k}`: {v}" for k, v in result.left_out.items()]
    notes += [f"`{m}` on {s}: {v} faces skipped" for (m, s), v in result.skipped.items() if v]
    notes.append(f"Total benchmark time {result.seconds:.0f} s.")
    return BenchResult(
        kind="accuracy",
        title="Accuracy",
        command=command,
        machine=result.machine.to_dict(),
        tables=[table],
        arguments={
            "models": [f"{m.label}={m.name}:{m.weights or ''}" for m in result.config.models]
            if result.config.models
            else None,
            "out": str(result.config.out),
            "limit": result.config.limit,
            "sets": [s.key for s in result.sets],
        },
        notes=notes,
    )


def print_summary(result: AccuracyResult, log: Callable[[str], None] = print) -> None:
    """Plain-text lines of the table."""
    log(f"machine: {result.machine.describe()}")
    headers, digits = _headers(result)
    for m in result.models:
        cells = [
            c if isinstance(c, str) else fmt(c, digits.get(h, 2))
            for h, c in zip(headers, _row(result, m), strict=True)
        ]
        log("  " + "; ".join(f"{h}: {c}" for h, c in zip(headers, cells, strict=True)))


def model_specs(names: Sequence[str]) -> list[ModelSpec] | None:
    """Parse ``NAME[=WEIGHTS]`` strings (empty: ``None``, every registered model)."""
    return [ModelSpec.parse(n) for n in names] or None


def _smaller(a: int | None, b: int | None) -> int | None:
    """The tighter of two optional limits."""
    return b if a is None else a if b is None else min(a, b)
