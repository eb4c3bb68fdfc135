"""``mvface synth``, ``synth preview`` and ``synth relabel``: synthetic multiview heads from photos.

``synth`` is a group whose callback is the job itself, so ``mvface synth --source ... --out ...``
runs a job, ``mvface synth preview DIR`` draws a contact sheet of a finished set and
``mvface synth relabel DIR`` writes a copy labelled by a model's points fused across views.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, cast

import numpy as np
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from mvface.cli._common import (
    EXIT_USAGE,
    console,
    exit_on_problems,
    fail,
    handle_errors,
    say,
    shown,
)
from mvface.cli._model_option import MODEL_HELP, check_model_spec, model_spec
from mvface.data.readers import list_readers
from mvface.data.readers.synthetic import scan_identities
from mvface.synth.backends import list_backends
from mvface.synth.config import RigName, SynthConfig
from mvface.synth.pipeline import SynthEvent, run_synth
from mvface.synth.sources import select_sources

app = typer.Typer(invoke_without_command=True, no_args_is_help=True)


@app.callback()
@handle_errors
def synth_command(
    ctx: typer.Context,
    source: Annotated[
        Path | None, typer.Option(help="Source dataset folder (or file) of --format (required).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Output dataset folder (resumed if it exists; required).")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="Reader of the source, e.g. pts.")] = "pts",
    views: Annotated[int, typer.Option(min=1, help="Views per identity.")] = 512,
    size: Annotated[int, typer.Option(min=16, help="Side of the rendered views (px).")] = 256,
    crop_size: Annotated[int, typer.Option(min=64, help="Side of the aligned crop (px).")] = 512,
    rig: Annotated[str, typer.Option(help="Camera rig: paper, grid or random.")] = "paper",
    max_yaw: Annotated[
        float, typer.Option(min=0, max=90, help="Yaw span ±deg of the grid/random rigs.")
    ] = 45.0,
    max_pitch: Annotated[
        float, typer.Option(min=0, max=60, help="Pitch span ±deg of the grid/random rigs.")
    ] = 30.0,
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
    jaw_from: Annotated[
        str, typer.Option(help="Jaw points in 3D from: depth (lift the labels) or surface.")
    ] = "depth",
    jaw_depth: Annotated[
        float,
        typer.Option(min=0, max=1, help="Move the 3D jaw back by this many eye-mouth distances."),
    ] = 0.0,
    fill: Annotated[
        str,
        typer.Option(help="Unseen side of the head: mirror (the seen side) or none (blurred rim)."),
    ] = "mirror",
    image_format: Annotated[str, typer.Option(help="jpg or png.")] = "jpg",
    quality: Annotated[int, typer.Option(min=1, max=100, help="JPEG quality.")] = 95,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Render every source face as a 3D head from many cameras, with per-view landmarks.

    `mvface synth preview DIR` draws a contact sheet of a finished set.
    """
    if ctx.invoked_subcommand is not None:
        return
    if source is None or out is None:
        raise fail("mvface synth needs --source and --out", EXIT_USAGE)
    if fmt not in list_readers():
        raise fail(f"--format: unknown reader {fmt!r} (have {list_readers()})", EXIT_USAGE)
    if backend not in list_backends():
        raise fail(f"--backend: unknown backend {backend!r} (have {list_backends()})", EXIT_USAGE)
    if landmark_model != "none":
        from mvface.models import resolve_model_name

        try:
            resolve_model_name(landmark_model)
        except ValueError as exc:
            raise fail(f"--landmark-model: {exc}", EXIT_USAGE) from None
    try:
        cfg = SynthConfig(
            source=source,
            out=out,
            format=fmt,
            views=views,
            size=size,
            crop_size=crop_size,
            rig=cast(RigName, rig),  # checked by SynthConfig
            max_yaw_deg=max_yaw,
            max_pitch_deg=max_pitch,
            backend=backend,
            image_format=image_format,
            quality=quality,
            jaw_from=cast(Literal["depth", "surface"], jaw_from),  # checked by SynthConfig
            jaw_depth=jaw_depth,
            fill=cast(Literal["mirror", "none"], fill),  # checked by SynthConfig
            limit=limit,
            seed=seed,
            workers=workers,
            executor=cast(Literal["local", "ray"], executor),  # checked by SynthConfig
            ray_address=ray_address,
            landmark_model=None if landmark_model == "none" else landmark_model,
        )
    except ValueError as exc:  # a value of an option (--rig, --executor, --image-format...)
        raise fail(str(exc), EXIT_USAGE) from None
    samples, _ = select_sources(cfg)  # the reader is fast; this gives the bar's total
    columns = (TextColumn("synth"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, disable=quiet, transient=True) as bar:
        task = bar.add_task("synth", total=len(samples))

        def advance(event: SynthEvent) -> None:
            if event.name:  # reader-level skips are not source faces of the bar
                bar.advance(task)

        summary = run_synth(cfg, on_identity=advance)
    say(
        f"{len(summary.done)} identities done, {len(summary.resumed)} already done, "
        f"{len(summary.skipped)} skipped, {len(summary.failed)} failed "
        f"in {summary.seconds:.1f} s; dataset in {shown(out)}"
    )
    exit_on_problems(
        skipped=[f"{src}: {reason}" for src, reason in summary.skipped],
        failed=[f"{src}: {reason}" for src, reason in summary.failed],
    )


@app.command(name="preview")
@handle_errors
def synth_preview_command(
    dataset: Annotated[Path, typer.Argument(help="A dataset folder written by mvface synth.")],
    out: Annotated[
        Path, typer.Option(help="Image to write (.png, or another image suffix).")
    ] = Path("synth_preview.png"),
    identities: Annotated[int, typer.Option(min=1, help="Rows (identities).")] = 4,
    views: Annotated[int, typer.Option(min=1, help="Columns (views per identity).")] = 8,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
) -> None:
    """Write a PNG contact sheet of sampled views with their landmarks (hidden ones hollow)."""
    from mvface.synth.preview import check_preview_path, write_preview

    try:
        check_preview_path(out)
    except ValueError as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    path = write_preview(dataset, out, identities=identities, views=views, seed=seed)
    say(f"preview written to {shown(path)}")


@app.command(name="relabel")
@handle_errors
def synth_relabel_command(
    dataset: Annotated[Path, typer.Argument(help="A dataset folder written by mvface synth.")],
    out: Annotated[Path, typer.Option(help="Folder of the relabelled set (a new folder).")],
    model: Annotated[str, typer.Option(help=MODEL_HELP, callback=check_model_spec)],
    max_yaw: Annotated[
        float, typer.Option(min=1.0, max=90.0, help="Views within this yaw (deg) are shown.")
    ] = 50.0,
    max_views: Annotated[
        int, typer.Option(min=2, help="At most this many views per identity are shown.")
    ] = 16,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N identities.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Relabel a set with a model's points triangulated across views (its convention)."""
    from mvface.models import create_model
    from mvface.synth.relabel import RelabelConfig, relabel_set

    spec = model_spec(model)
    cfg = RelabelConfig(max_yaw_deg=max_yaw, max_views=max_views)
    landmark_model = create_model(spec.name, weights=spec.weights)
    total = len(scan_identities(dataset)[0]) if dataset.is_dir() else 0
    columns = (TextColumn("relabel"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, disable=quiet, transient=True) as bar:
        task = bar.add_task("relabel", total=min(total, limit or total))
        summary = relabel_set(
            dataset,
            out,
            landmark_model,
            spec.text,
            cfg,
            limit=limit,
            on_identity=lambda _: bar.advance(task),
        )
    residual = np.median(summary.residual_px) if summary.residual_px else float("nan")
    say(
        f"{len(summary.done)} identities relabelled, {len(summary.resumed)} already done, "
        f"{len(summary.skipped)} skipped; median reprojection error {residual:.2f} px; "
        f"set in {shown(out)}"
    )
    exit_on_problems(skipped=[f"{name}: {reason}" for name, reason in summary.skipped])
