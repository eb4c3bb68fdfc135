"""``mvface bench NAME``: benchmarks against peers; each appends its table to BENCHMARKS.md."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from mvface.cli._common import console, handle_errors
from mvface.cli._model_option import check_model_specs

app = typer.Typer(
    help="Benchmarks against peers measured in the same run (tables go to BENCHMARKS.md).",
    no_args_is_help=True,
)

MarkdownOption = Annotated[
    Path, typer.Option(help="Markdown file the result table is appended to.")
]
NoMarkdownOption = Annotated[
    bool, typer.Option("--no-markdown", help="Print only; append nothing.")
]
SharedOption = Annotated[
    Path | None,
    typer.Option(
        help="Shared folder with data/ and models/ (default: $MVFACE_SHARED_DIR, ../shared)."
    ),
]
ModelsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--model",
        help="NAME[:WEIGHTS] or LABEL=NAME[:WEIGHTS] (repeat); default: every registered model.",
        callback=check_model_specs,
    ),
]
PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


def _command(name: str, options: dict[str, object]) -> str:
    """The command line that reproduces a run (options with their values)."""
    parts = ["mvface", "bench", name]
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        values = value if isinstance(value, list | tuple) else [value]
        for v in values:
            if isinstance(v, bool):
                parts += [flag] if v else []
            elif v is not None:
                parts += [flag, str(v)]
    return shlex.join(parts)


@app.command("inference")
@handle_errors
def inference_command(
    model: ModelsOption = None,
    threads: Annotated[
        list[int] | None, typer.Option(min=1, help="Thread counts (repeat); default 1 and 2.")
    ] = None,
    engine: Annotated[
        list[str] | None, typer.Option(help="torch and/or onnx (repeat); default both.")
    ] = None,
    repeats: Annotated[int, typer.Option(min=1, help="Timed batch-1 calls per model.")] = 200,
    warmup: Annotated[int, typer.Option(min=0, help="Discarded rounds first.")] = 20,
    batch: Annotated[int, typer.Option(min=1, help="Faces per batched call.")] = 16,
    batch_repeats: Annotated[int, typer.Option(min=1, help="Timed batched calls.")] = 30,
    faces: Annotated[
        Path | None, typer.Option(help="Folder of images + .pts (default: 300-W HELEN test).")
    ] = None,
    detector: Annotated[
        list[str] | None,
        typer.Option(help="Face detectors timed separately (repeat); default blazeface, dlib-hog."),
    ] = None,
    no_detectors: Annotated[bool, typer.Option("--no-detectors", help="Skip detectors.")] = False,
    detector_repeats: Annotated[int, typer.Option(min=1, help="Timed calls per detector.")] = 100,
    ort_spinning: Annotated[
        bool, typer.Option("--ort-spinning", help="Let idle ONNX Runtime threads spin-wait.")
    ] = False,
    shared: SharedOption = None,
    markdown: MarkdownOption = Path("BENCHMARKS.md"),
    no_markdown: NoMarkdownOption = False,
) -> None:
    """ms/face and batched faces/s of every model, PyTorch eager vs ONNX Runtime, with peers."""
    from mvface.bench.inference import (
        InferenceConfig,
        inference_markdown,
        print_summary,
        run_inference_bench,
    )
    from mvface.bench.report import append_markdown
    from mvface.models.spec import parse_model_specs

    defaults = InferenceConfig()
    cfg = InferenceConfig(
        models=parse_model_specs(model) if model else None,
        threads=tuple(threads) if threads else defaults.threads,
        engines=tuple(engine) if engine else defaults.engines,
        repeats=repeats,
        warmup=warmup,
        batch=batch,
        batch_repeats=batch_repeats,
        faces=faces,
        detectors=() if no_detectors else (tuple(detector) if detector else defaults.detectors),
        detector_repeats=detector_repeats,
        shared=shared or defaults.shared,
        ort_spinning=ort_spinning,
    )
    command = _command(
        "inference",
        {
            "model": model,
            "threads": list(cfg.threads),
            "engine": list(cfg.engines),
            "repeats": repeats,
            "warmup": warmup,
            "batch": batch,
            "batch_repeats": batch_repeats,
            "faces": faces,
            "no_detectors": no_detectors,
            "detector_repeats": detector_repeats,
            "ort_spinning": ort_spinning,
        },
    )
    result = run_inference_bench(cfg, log=lambda line: console.print(line, highlight=False))
    print_summary(result, log=typer.echo)
    if not no_markdown:
        append_markdown(markdown, inference_markdown(result, command))
        console.print(f"appended to {markdown}")


@app.command("accuracy")
@handle_errors
def accuracy_command(
    model: ModelsOption = None,
    out: Annotated[Path, typer.Option(help="Folder for per-run reports and CED plots.")] = Path(
        "out/bench-accuracy"
    ),
    limit: Annotated[
        int | None, typer.Option(min=1, help="Only the first N faces per set.")
    ] = None,
    shared: SharedOption = None,
    markdown: MarkdownOption = Path("BENCHMARKS.md"),
    no_markdown: NoMarkdownOption = False,
) -> None:
    """NME per yaw bin, balanced, 300-W NME, AUC/FR of every model on every shared data set."""
    from mvface.bench.accuracy import (
        AccuracyConfig,
        accuracy_markdown,
        model_specs,
        print_summary,
        run_accuracy_bench,
    )
    from mvface.bench.report import append_markdown

    cfg = AccuracyConfig(models=model_specs(model or []), out=out, limit=limit)
    if shared is not None:
        cfg.shared = shared
    command = _command("accuracy", {"model": model, "out": out, "limit": limit})
    result = run_accuracy_bench(cfg, log=lambda line: console.print(line, highlight=False))
    print_summary(result, log=typer.echo)
    if not no_markdown:
        append_markdown(markdown, accuracy_markdown(result, command, link_base=markdown.parent))
        console.print(f"appended to {markdown}")


def _script(name: str, args: list[str], markdown: Path | None) -> None:
    from mvface.bench.scripts import run_benchmark_script

    if markdown is not None and "--markdown" not in args:
        args = [*args, "--markdown", str(markdown)]
    code = run_benchmark_script(name, args)
    if code:
        raise typer.Exit(code)


@app.command("synth", context_settings=PASS_THROUGH)
@handle_errors
def synth_command(
    ctx: typer.Context,
    markdown: MarkdownOption = Path("BENCHMARKS.md"),
    no_markdown: NoMarkdownOption = False,
) -> None:
    """views/s, s/identity (512 views at 256 px, 1 and 2 workers), peak memory per worker.

    Runs benchmarks/bench_synth.py from the source checkout; other arguments go to it.
    """
    _script("synth", list(ctx.args), None if no_markdown else markdown)


@app.command("train", context_settings=PASS_THROUGH)
@handle_errors
def train_command(
    ctx: typer.Context,
    markdown: MarkdownOption = Path("BENCHMARKS.md"),
    no_markdown: NoMarkdownOption = False,
) -> None:
    """Training images/s with and without the plug-in terms, peak memory of a step.

    Runs benchmarks/bench_train.py from the source checkout; other arguments go to it.
    """
    _script("train", list(ctx.args), None if no_markdown else markdown)
