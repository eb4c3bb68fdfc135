"""``mvface compare``: the paper's comparison figure, one column per model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from mvface.cli._common import (
    check_choice,
    detector_names,
    exit_on_problems,
    handle_errors,
    out_console,
    say,
    shown,
)
from mvface.cli._engine_option import DeviceOption, EngineOption, engine_warnings
from mvface.cli._model_option import MODELS_HELP, check_model_spec_list
from mvface.cli.demo_cmd import (
    DETECTOR_HELP,
    check_gt_format,
    gt_reader_names,
    run_with_progress,
    skipped_lines,
)
from mvface.demo import CompareConfig, run_compare
from mvface.models.onnx_engine import engine_defaults


@handle_errors
def compare_command(
    models: Annotated[
        str, typer.Option("--models", "--model", help=MODELS_HELP, callback=check_model_spec_list)
    ],
    input_dir: Annotated[
        Path, typer.Option("--input", help="Folder of images (or the --gt-format root).")
    ],
    output: Annotated[Path, typer.Option(help="Figure file, .png or .jpg (+ .json beside).")],
    gt_format: Annotated[
        str | None,
        typer.Option(
            "--gt-format",
            "--gt",
            help="Reader giving ground truth: " + ", ".join(gt_reader_names()) + ".",
            callback=check_gt_format,
        ),
    ] = None,
    names: Annotated[
        str | None, typer.Option(help="Comma-separated sample names to show, in order.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most N images (rows).")] = 8,
    detector: Annotated[
        str,
        typer.Option(help=DETECTOR_HELP, callback=check_choice("face detector", detector_names)),
    ] = "auto",
    cell_size: Annotated[int, typer.Option(min=64, help="Side of each cell (px).")] = 256,
    engine: EngineOption = "auto",
    device: DeviceOption = "cpu",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Draw every model's landmarks per image, with the worst region enlarged.

    The NME table and summary go to stdout; skipped models, failed images and progress to
    stderr. Exit 1 when a model asked for could not be loaded or an image failed.
    """
    cfg = CompareConfig(
        input=input_dir,
        output=output,
        models=tuple(models.split(",")),
        gt_format=gt_format,
        names=tuple(n.strip() for n in names.split(",") if n.strip()) if names else (),
        limit=limit,
        detector=detector,
        cell_size=cell_size,
    )
    with engine_warnings(), engine_defaults(engine, device):
        result = run_with_progress(run_compare, cfg, quiet)
    labels = [s.label for s in result.models]
    table = Table(title="NME % (sqrt(w*h) of the ground truth's box)")
    table.add_column("image")
    for label in labels:
        table.add_column(Text(shown(label)), justify="right")
    for im in result.images:
        cells = ["-" if im.nme[k] is None else f"{im.nme[k]:.2f}" for k in labels]
        table.add_row(Text(shown(im.name)), *cells)
    if any(v is not None for im in result.images for v in im.nme.values()):
        out_console.print(table, markup=False, highlight=False)
    say(
        f"{len(result.images)} images, {len(labels)} models: {shown(result.figure)} "
        f"(+ {shown(result.report.name)}), {result.seconds:.1f} s"
    )
    skipped = skipped_lines(result.skipped_models)
    exit_on_problems(**{"skipped model": skipped, "failed": result.failed})
