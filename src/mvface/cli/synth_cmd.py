"""``mvface synth`` and ``mvface synth-preview``: synthetic multiview heads from face photos."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, cast

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from mvface.cli._common import EXIT_SOME_FAILED, console, handle_errors
from mvface.synth.pipeline import RigName, SynthConfig, SynthEvent, run_synth, select_sources


@handle_errors
def synth_command(
    source: Annotated[Path, typer.Option(help="Source dataset folder (or file) of --format.")],
    out: Annotated[Path, typer.Option(help="Output dataset folder (resumed if it exists).")],
    fmt: Annotated[str, typer.Option("--format", help="Reader of the source, e.g. pts.")] = "pts",
    views: Annotated[int, typer.Option(min=1, help="Views per identity.")] = 512,
    size: Annotated[int, typer.Option(min=16, help="Side of the rendered views (px).")] = 256,
    crop_size: Annotated[int, typer.Option(min=64, help="Side of the aligned crop (px).")] = 512,
    rig: Annotated[str, typer.Option(help="Camera rig: paper, grid or random.")] = "paper",
    backend: Annotated[str, typer.Option(help="Registered head backend.")] = "mesh",
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (or Ray actors).")] = 1,
    executor: Annotated[str, typer.Option(help="local (processes) or ray (Ray actors).")] = "local",
    ray_address: Annotated[
        str | None, typer.Option(help="Ray cluster address ('auto' joins a running one).")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most K source faces.")] = None,
    seed: Annotated[int, typer.Option(help="Seed (random rig; recorded).")] = 0,
    landmark_model: Annotated[
        str, typer.Option(help="Model marking sources without landmarks ('none': skip them).")
    ] = "mediapipe-68",
    image_format: Annotated[str, typer.Option(help="jpg or png.")] = "jpg",
    quality: Annotated[int, typer.Option(min=1, max=100, help="JPEG quality.")] = 95,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Render every source face as a 3D head from many cameras, with per-view landmarks."""
    cfg = SynthConfig(
        source=source,
        out=out,
        format=fmt,
        views=views,
        size=size,
        crop_size=crop_size,
        rig=cast(RigName, rig),  # checked by SynthConfig
        backend=backend,
        image_format=image_format,
        quality=quality,
        limit=limit,
        seed=seed,
        workers=workers,
        executor=cast(Literal["local", "ray"], executor),  # checked by SynthConfig
        ray_address=ray_address,
        landmark_model=None if landmark_model == "none" else landmark_model,
    )
    samples, _ = select_sources(cfg)  # the reader is fast; this gives the bar's total
    columns = (TextColumn("synth"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, disable=quiet, transient=True) as bar:
        task = bar.add_task("synth", total=len(samples))

        def advance(event: SynthEvent) -> None:
            if event.name:  # reader-level skips are not source faces of the bar
                bar.advance(task)

        summary = run_synth(cfg, on_identity=advance)
    console.print(
        f"{len(summary.done)} identities done, {len(summary.resumed)} already done, "
        f"{len(summary.skipped)} skipped, {len(summary.failed)} failed "
        f"in {summary.seconds:.1f} s; dataset in {out}",
        highlight=False,
    )
    for src, reason in summary.skipped:
        console.print(f"  skipped: {src}: {reason}", highlight=False, soft_wrap=True)
    for src, reason in summary.failed:
        console.print(f"  failed: {src}: {reason}", highlight=False, soft_wrap=True)
    if summary.skipped or summary.failed:
        raise typer.Exit(EXIT_SOME_FAILED)


@handle_errors
def synth_preview_command(
    dataset: Annotated[Path, typer.Argument(help="A dataset folder written by mvface synth.")],
    out: Annotated[Path, typer.Option(help="PNG to write.")] = Path("synth_preview.png"),
    identities: Annotated[int, typer.Option(min=1, help="Rows (identities).")] = 4,
    views: Annotated[int, typer.Option(min=1, help="Columns (views per identity).")] = 8,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
) -> None:
    """Write a PNG contact sheet of sampled views with their landmarks (hidden ones hollow)."""
    from mvface.synth.preview import write_preview

    path = write_preview(dataset, out, identities=identities, views=views, seed=seed)
    console.print(f"preview written to {path}", highlight=False)
