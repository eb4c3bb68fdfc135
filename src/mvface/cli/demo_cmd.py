"""``mvface demo``: base and "+" model side by side on a folder, or on packaged views."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from mvface.cli._common import (
    check_choice,
    console,
    detector_names,
    detectors_help,
    exit_on_problems,
    handle_errors,
    no_progress,
    note,
    out_console,
    say,
    shown,
)
from mvface.cli._engine_option import DeviceOption, EngineOption, engine_warnings
from mvface.cli._model_option import MODELS_HELP, check_model_spec_list
from mvface.demo import DEMO_MODELS, DemoConfig, run_demo
from mvface.demo.models import ModelSpec
from mvface.models.onnx_engine import engine_defaults

R = TypeVar("R")


def run_with_progress(run: Callable[..., R], cfg: Any, quiet: bool) -> R:
    """``run(cfg, progress=...)`` under the rich progress bar of ``demo`` and ``compare``."""
    columns = (
        TextColumn("{task.description:<28.28}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, disable=no_progress(quiet), transient=True) as bar:
        task = bar.add_task("loading models", total=None)

        def update(done: int, total: int, what: str) -> None:
            bar.update(task, completed=done, total=total or None, description=what)

        return run(cfg, progress=update)


def skipped_lines(skipped: list[tuple[ModelSpec, str]]) -> list[str]:
    """``"<label>: <reason>"`` per model that could not be loaded."""
    return [f"{spec.label}: {reason}" for spec, reason in skipped]


def print_skipped(skipped: list[tuple[ModelSpec, str]]) -> None:
    """One ``skipped model`` line (stderr) per model that could not be loaded."""
    for line in skipped_lines(skipped):
        note(f"  skipped model: {line}")


def gt_reader_names() -> list[str]:
    """Readers ``--gt-format`` accepts."""
    from mvface.data.readers import list_readers

    return list_readers()


def check_gt_format(value: str | None) -> str | None:
    """Option callback: a registered dataset reader (or an old name of one), else exit 2."""
    if value is None:
        return value
    from mvface.data.readers import get_reader

    try:
        get_reader(value)
    except Exception:
        names = ", ".join(gt_reader_names())
        raise typer.BadParameter(f"unknown reader {shown(value)!r}; choose from: {names}") from None
    return value


#: ``--detector`` of demo and compare: checked against the registry (exit 2 when unknown).
DETECTOR_HELP = detectors_help("Face detector for images without ground truth")


@handle_errors
def demo_command(
    input_dir: Annotated[
        Path | None,
        typer.Option("--input", help="Folder of images (default: skimage's astronaut + views)."),
    ] = None,
    output: Annotated[Path, typer.Option(help="Output folder.")] = Path("out/demo"),
    models: Annotated[
        str | None,
        typer.Option(
            "--models",
            "--model",
            help=f"{MODELS_HELP} Default: {','.join(DEMO_MODELS)} (a default one that cannot "
            "be loaded is skipped; a named one that cannot makes the exit code 1).",
            callback=check_model_spec_list,
        ),
    ] = None,
    gt_format: Annotated[
        str | None,
        typer.Option(
            "--gt-format",
            "--gt",
            help="Reader giving ground truth: " + ", ".join(gt_reader_names()) + ".",
            callback=check_gt_format,
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most N input images.")] = None,
    views: Annotated[int, typer.Option(min=1, max=64, help="Synthesized views (no --input).")] = 7,
    max_yaw: Annotated[
        float, typer.Option(min=0, max=90, help="Views span yaw ±deg (no --input).")
    ] = 75.0,
    detector: Annotated[
        str,
        typer.Option(help=DETECTOR_HELP, callback=check_choice("face detector", detector_names)),
    ] = "auto",
    engine: EngineOption = "auto",
    device: DeviceOption = "cpu",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Run the base and "+" models on every image and draw them side by side.

    The table goes to stdout; skipped models, failed images and progress to stderr. Exit 1
    when an image failed or a model named in --models could not be loaded.
    """
    requested = models is not None
    cfg = DemoConfig(
        output=output,
        input=input_dir,
        models=tuple((models if models is not None else ",".join(DEMO_MODELS)).split(",")),
        gt_format=gt_format,
        limit=limit,
        views=views,
        max_yaw_deg=max_yaw,
        detector=detector,
    )
    with engine_warnings(), engine_defaults(engine, device):
        result = run_with_progress(run_demo, cfg, quiet)
    if not requested:
        print_skipped(result.skipped_models)
    table = Table(title=f"mvface demo: {len(result.images)} images, {result.seconds:.1f} s")
    table.add_column("model")
    table.add_column("mean NME % (images with GT)", justify="right")
    table.add_column("ms / image", justify="right")
    for spec in result.models:
        ms = [p.ms[spec.label] for p in result.images]
        nme = result.mean_nme.get(spec.label)
        mean_ms = f"{sum(ms) / len(ms):.0f}" if ms else "-"
        table.add_row(Text(shown(spec.label)), "-" if nme is None else f"{nme:.2f}", mean_ms)
    out_console.print(table, markup=False, highlight=False)
    say(f"drawings, overview.jpg and results.json in {shown(cfg.output)}")
    skipped = skipped_lines(result.skipped_models) if requested else []
    exit_on_problems(**{"skipped model": skipped, "failed": result.failed})
