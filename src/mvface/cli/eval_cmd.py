"""``mvface eval``: score a model on a benchmark under its protocol."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from mvface._io import atomic_write_text
from mvface.cli._common import (
    check_choice,
    detectors_help,
    exit_on_problems,
    handle_errors,
    say,
    shown,
)
from mvface.cli._engine_option import DeviceOption, EngineOption, engine_warnings
from mvface.cli._model_option import MODEL_HELP, check_model_spec, model_spec
from mvface.data.readers.aflw2000_3d import PROTOCOL_FILES
from mvface.detection import list_face_detectors
from mvface.eval.report import format_table, json_text, write_report
from mvface.eval.runner import DATASETS, EvalConfig, evaluate

_CROPS = ("gt", "detector", "protocol")
_GROUND_TRUTHS = ("original", "reannotated")
_YAW_FILES = (PROTOCOL_FILES["yaw_deg"], PROTOCOL_FILES["yaw_deg_new"])


@handle_errors
def eval_command(
    dataset: Annotated[
        str,
        typer.Option(
            help=f"Benchmark format: {', '.join(DATASETS)}.",
            callback=check_choice("dataset", lambda: list(DATASETS)),
        ),
    ],
    root: Annotated[Path, typer.Option(help="Dataset folder.")],
    model: Annotated[str, typer.Option(help=MODEL_HELP, callback=check_model_spec)],
    out: Annotated[Path, typer.Option(help="Folder for metrics.json, per_image.csv, ced.png.")],
    weights: Annotated[str | None, typer.Option(help="Weights file or folder.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N faces.")] = None,
    crop: Annotated[
        str,
        typer.Option(
            help="Face box: 'gt' (landmarks), 'detector' or 'protocol' (ROI, aflw2000-3d only).",
            callback=check_choice("crop", lambda: _CROPS),
        ),
    ] = "gt",
    detector: Annotated[
        str,
        typer.Option(
            help=detectors_help("Face detector for --crop detector", with_auto=False),
            callback=check_choice("face detector", list_face_detectors),
        ),
    ] = "dlib-hog",
    ground_truth: Annotated[
        str,
        typer.Option(
            help="AFLW2000-3D ground truth: 'original' or 'reannotated'.",
            callback=check_choice("ground truth", lambda: _GROUND_TRUTHS),
        ),
    ] = "original",
    yaw_file: Annotated[
        str,
        typer.Option(
            help=f"AFLW2000-3D yaw array defining the bins: {' or '.join(_YAW_FILES)}.",
            callback=check_choice("yaw file", lambda: _YAW_FILES),
        ),
    ] = _YAW_FILES[0],
    engine: EngineOption = "auto",
    device: DeviceOption = "cpu",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Evaluate a landmark model on a benchmark and write a report folder.

    A face whose annotation cannot be scored is skipped and listed (naming its file); the
    rest is scored, the report written, and the exit code is 1 when anything was skipped.
    """
    if crop == "protocol" and dataset != "aflw2000-3d":
        raise typer.BadParameter(
            "'protocol' exists only for --dataset aflw2000-3d (3DDFA's ROI boxes)",
            param_hint="'--crop'",
        )
    spec = model_spec(model, weights)
    cfg = EvalConfig(
        dataset=dataset,
        root=root,
        model=spec.name,
        weights=spec.weights,
        limit=limit,
        crop=crop,  # type: ignore[arg-type]  # validated by EvalConfig
        detector=detector,
        ground_truth=ground_truth,  # type: ignore[arg-type]
        yaw_file=yaw_file,
        engine=engine,
        device=device,
    )
    with engine_warnings():
        report = evaluate(cfg, progress=not quiet)
    write_report(report, out)
    Console().print(format_table(report))
    skipped = report.extras["skipped"]
    say(
        f"{report.result.per_image.size} faces scored, {len(skipped)} skipped, "
        f"{report.extras['ms_per_face']:.2f} ms/face; report in {shown(out)}"
    )
    exit_on_problems(skipped=skipped)


@handle_errors
def eval_synthetic_command(
    root: Annotated[Path, typer.Option(help="A 'mvface synth' set of held-out identities.")],
    model: Annotated[str, typer.Option(help=MODEL_HELP, callback=check_model_spec)],
    out: Annotated[Path, typer.Option(help="Folder for metrics.json.")],
    weights: Annotated[str | None, typer.Option(help="Weights file or folder.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N identities.")] = None,
    views: Annotated[int, typer.Option(min=2, help="Views per identity, spread evenly.")] = 16,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Multiview consistency error and NME per yaw bin on synthetic identities.

    Identities that cannot be evaluated are skipped and listed with their reason (exit 1).
    """
    from mvface.eval.synthetic import evaluate_synthetic
    from mvface.models import create_model

    spec = model_spec(model, weights)
    result = evaluate_synthetic(
        create_model(spec.name, weights=spec.weights),
        root,
        limit=limit,
        views=views,
        progress=not quiet,
    )
    out.mkdir(parents=True, exist_ok=True)
    summary = {"model": spec.name, "weights": spec.weights, "root": str(root), **result.to_dict()}
    atomic_write_text(out / "metrics.json", json_text(summary))  # NaN -> null
    bins = ", ".join(f"{name} {value:.2f}" for name, value in result.nme_bins.items())
    say(
        f"{shown(spec.label)}: consistency {result.consistency:.3f} (x100), NME {bins} (mean "
        f"{result.nme_mean:.2f}) on {len(result.identities)} identities x {result.views} views, "
        f"{len(result.skipped)} skipped; report in {shown(out)}"
    )
    exit_on_problems(skipped=result.skipped)
