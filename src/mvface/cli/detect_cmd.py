"""``mvface detect``: faces and 68 landmarks for files, folders, globs and videos."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, cast

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from mvface.api import load
from mvface.cli._common import console, exit_on_problems, handle_errors
from mvface.detect import DetectConfig, OutputFormat, collect_inputs, run_detect
from mvface.models import DEFAULT_MODEL


@handle_errors
def detect_command(
    paths: Annotated[list[str], typer.Argument(help="Images, videos, folders or glob patterns.")],
    out: Annotated[Path, typer.Option(help="Output folder.")],
    model: Annotated[str, typer.Option(help="Registered landmark model.")] = DEFAULT_MODEL,
    weights: Annotated[str | None, typer.Option(help="Weights file or folder.")] = None,
    detector: Annotated[str, typer.Option(help="Face detector name, or 'auto'.")] = "auto",
    fmt: Annotated[str, typer.Option("--format", help="json, csv or coco.")] = "json",
    draw: Annotated[bool, typer.Option("--draw", help="Write overlays to OUT/overlays.")] = False,
    min_score: Annotated[float, typer.Option(help="Drop detections below this score.")] = 0.0,
    smooth: Annotated[float, typer.Option(help="Video: landmark smoothing in [0, 1).")] = 0.0,
    every: Annotated[int, typer.Option(min=1, help="Video: process every N-th frame.")] = 1,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Detect every face and its 68 landmarks; write JSON/CSV/COCO and optional overlays."""
    cfg = DetectConfig(
        out=out,
        format=cast(OutputFormat, fmt),  # checked by DetectConfig
        draw=draw,
        min_score=min_score,
        smooth=smooth,
        every=every,
    )
    landmarker = load(model, weights=weights, detector=detector)
    n_files = len(collect_inputs(paths)[0])
    columns = (TextColumn("detect"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, disable=quiet, transient=True) as bar:
        task = bar.add_task("detect", total=n_files)
        summary = run_detect(landmarker, paths, cfg, on_file=lambda _: bar.advance(task))
    console.print(
        f"{len(summary.files)} files, {len(summary.results)} images/frames, "
        f"{summary.n_faces} faces, {len(summary.failed)} failed; results in {out}"
    )
    exit_on_problems(failed=summary.failed)
