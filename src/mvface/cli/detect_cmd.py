"""``mvface detect``: faces and 68 landmarks for files, folders, globs and videos."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from mvface.api import load
from mvface.cli._common import (
    check_choice,
    check_range,
    console,
    detector_names,
    detectors_help,
    exit_on_problems,
    handle_errors,
    models_help,
    no_progress,
    note,
    say,
    shown,
)
from mvface.cli._engine_option import DeviceOption, EngineOption, engine_warnings
from mvface.cli._model_option import check_model_spec, model_spec
from mvface.detect.inputs import Inputs, find_inputs
from mvface.detect.records import DetectConfig, OutputFormat
from mvface.detect.run import run_detect
from mvface.models import DEFAULT_MODEL


def _ignored_note(inputs: Inputs) -> str | None:
    """One line counting the files in walked folders that are neither images nor videos."""
    if not inputs.ignored:
        return None
    kinds = Counter(p.suffix.lower() or "(no extension)" for p in inputs.ignored)
    listed = ", ".join(f"{n} {suffix}" for suffix, n in kinds.most_common())
    return (
        f"note: {len(inputs.ignored)} files that are not images or videos were left out ({listed})"
    )


@handle_errors
def detect_command(
    paths: Annotated[list[str], typer.Argument(help="Images, videos, folders or glob patterns.")],
    out: Annotated[Path, typer.Option(help="Output folder.")],
    model: Annotated[
        str,
        typer.Option(
            help=models_help("Landmark model, NAME or NAME:WEIGHTS; NAME one of"),
            callback=check_model_spec,
        ),
    ] = DEFAULT_MODEL,
    weights: Annotated[
        str | None, typer.Option(help="Weights file or folder (or NAME:WEIGHTS in --model).")
    ] = None,
    detector: Annotated[
        str,
        typer.Option(
            help=detectors_help("Face detector ('auto': the first that loads)"),
            callback=check_choice("face detector", detector_names),
        ),
    ] = "auto",
    fmt: Annotated[
        OutputFormat,
        typer.Option(
            "--format",
            help="Results file: json (detections.json), csv (detections.csv), coco (coco.json).",
        ),
    ] = "json",
    draw: Annotated[
        bool, typer.Option("--draw", help="Also draw overlays into OUT/overlays.")
    ] = False,
    min_score: Annotated[
        float,
        typer.Option(help="Drop detections below this detector score (0 to 1).", min=0.0, max=1.0),
    ] = 0.0,
    smooth: Annotated[
        float,
        typer.Option(
            help="Video: landmark smoothing, 0 (off) up to but excluding 1.",
            callback=check_range("--smooth", 0.0, 1.0, max_open=True),
        ),
    ] = 0.0,
    every: Annotated[int, typer.Option(min=1, help="Video: process every N-th frame.")] = 1,
    engine: EngineOption = "auto",
    device: DeviceOption = "cpu",
    batch: Annotated[
        int, typer.Option(min=1, help="Images whose faces are landmarked in one network call.")
    ] = 16,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Detect every face and its 68 landmarks; write JSON/CSV/COCO and optional overlays.

    Images are decoded in the background and the faces of --batch images are landmarked in one
    network call; results keep the input order. The summary goes to stdout; failed inputs (one
    line each, with the reason), notes and the progress bar to stderr. Exit 1 when any input
    failed.
    """
    cfg = DetectConfig(
        out=out,
        format=fmt,
        draw=draw,
        min_score=min_score,
        smooth=smooth,
        every=every,
        batch=batch,
    )
    spec = model_spec(model, weights)
    with engine_warnings():
        landmarker = load(
            spec.name, weights=spec.weights, detector=detector, engine=engine, device=device
        )
    inputs = find_inputs(paths)
    columns = (TextColumn("detect"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, disable=no_progress(quiet), transient=True) as bar:
        task = bar.add_task("detect", total=len(inputs.files))
        summary = run_detect(
            landmarker, paths, cfg, on_file=lambda _: bar.advance(task), inputs=inputs
        )
    if (line := _ignored_note(inputs)) is not None:
        note(line)
    drawn = f", {summary.overlays} overlays" if draw else ""
    where = shown(summary.output) if summary.output is not None else shown(out)
    say(
        f"{len(summary.files)} files, {len(summary.results)} images/frames, "
        f"{summary.n_faces} faces, {len(summary.failed)} failed{drawn}; results in {where}"
    )
    exit_on_problems(failed=summary.failed)
