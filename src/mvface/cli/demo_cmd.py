"""``mvface demo``: base and "+" model side by side on a folder, or on packaged views."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mvface.cli._common import console, exit_on_problems, handle_errors
from mvface.cli._model_option import MODELS_HELP, check_model_spec_list
from mvface.demo import DEMO_MODELS, DemoConfig, run_demo
from mvface.demo.models import ModelSpec

R = TypeVar("R")


def run_with_progress(run: Callable[..., R], cfg: Any, quiet: bool) -> R:
    """``run(cfg, progress=...)`` under the rich progress bar of ``demo`` and ``compare``."""
    columns = (
        TextColumn("{task.description:<28.28}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, disable=quiet, transient=True) as bar:
        task = bar.add_task("loading models", total=None)

        def update(done: int, total: int, what: str) -> None:
            bar.update(task, completed=done, total=total or None, description=what)

        return run(cfg, progress=update)


def print_skipped(skipped: list[tuple[ModelSpec, str]]) -> None:
    """One line per model that could not be loaded."""
    for spec, reason in skipped:
        console.print(f"  skipped model {spec.label}: {reason}", highlight=False, soft_wrap=True)


@handle_errors
def demo_command(
    input_dir: Annotated[
        Path | None,
        typer.Option("--input", help="Folder of images (default: skimage's astronaut + views)."),
    ] = None,
    output: Annotated[Path, typer.Option(help="Output folder.")] = Path("out/demo"),
    models: Annotated[
        str, typer.Option("--models", "--model", help=MODELS_HELP, callback=check_model_spec_list)
    ] = ",".join(DEMO_MODELS),
    gt_format: Annotated[
        str | None,
        typer.Option("--gt-format", "--gt", help="Reader giving ground truth (pts, aflw2000-3d)."),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most N input images.")] = None,
    views: Annotated[int, typer.Option(min=1, max=64, help="Synthesized views (no --input).")] = 7,
    max_yaw: Annotated[
        float, typer.Option(min=0, max=90, help="Views span yaw ±deg (no --input).")
    ] = 75.0,
    detector: Annotated[str, typer.Option(help="Face detector for images without GT.")] = "auto",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Run the base and "+" models on every image and draw them side by side."""
    cfg = DemoConfig(
        output=output,
        input=input_dir,
        models=tuple(models.split(",")),
        gt_format=gt_format,
        limit=limit,
        views=views,
        max_yaw_deg=max_yaw,
        detector=detector,
    )
    result = run_with_progress(run_demo, cfg, quiet)
    print_skipped(result.skipped_models)
    table = Table(title=f"mvface demo: {len(result.images)} images, {result.seconds:.1f} s")
    table.add_column("model")
    table.add_column("mean NME % (images with GT)", justify="right")
    table.add_column("ms / image", justify="right")
    for spec in result.models:
        ms = [p.ms[spec.label] for p in result.images]
        nme = result.mean_nme.get(spec.label)
        mean_ms = f"{sum(ms) / len(ms):.0f}" if ms else "-"
        table.add_row(spec.label, "-" if nme is None else f"{nme:.2f}", mean_ms)
    console.print(table)
    console.print(f"drawings, overview.jpg and results.json in {cfg.output}", highlight=False)
    exit_on_problems(failed=result.failed)
