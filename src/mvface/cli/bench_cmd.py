"""``mvface bench NAME``: benchmarks against peers; each run writes one JSON result file.

Results go to ``--results`` (``results/<kind>/<UTC time>.json``); ``BENCHMARKS.md`` beside that
folder is regenerated from all of them after every run (``mvface bench report`` does it alone).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mvface.cli._common import check_choice, console, handle_errors, say, shown
from mvface.cli._model_option import check_model_specs

if TYPE_CHECKING:
    from mvface.bench.results import BenchResult

app = typer.Typer(
    help=(
        "Benchmarks against peers measured in the same run (one JSON file per run under "
        "--results; BENCHMARKS.md is generated from them)."
    ),
    no_args_is_help=True,
)

ResultsOption = Annotated[
    Path,
    typer.Option(
        help="Results folder: the run goes to <folder>/<kind>/<UTC time>.json and "
        "BENCHMARKS.md beside the folder is regenerated."
    ),
]
NoResultsOption = Annotated[
    bool, typer.Option("--no-results", help="Print only; write no result file.")
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


def _face_detector_names() -> list[str]:
    from mvface.detection import list_face_detectors

    return list_face_detectors()


@app.command("inference")
@handle_errors
def inference_command(
    model: ModelsOption = None,
    threads: Annotated[
        list[int] | None, typer.Option(min=1, help="Thread counts (repeat); default 1 and 2.")
    ] = None,
    engine: Annotated[
        list[str] | None,
        typer.Option(
            help="torch and/or onnx (repeat); default both.",
            callback=check_choice("engine", lambda: ("torch", "onnx")),
        ),
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
        typer.Option(
            help="Face detectors timed separately (repeat); default blazeface, dlib-hog.",
            callback=check_choice("face detector", _face_detector_names),
        ),
    ] = None,
    no_detectors: Annotated[bool, typer.Option("--no-detectors", help="Skip detectors.")] = False,
    detector_repeats: Annotated[int, typer.Option(min=1, help="Timed calls per detector.")] = 100,
    ort_spinning: Annotated[
        bool, typer.Option("--ort-spinning", help="Let idle ONNX Runtime threads spin-wait.")
    ] = False,
    shared: SharedOption = None,
    results: ResultsOption = Path("results"),
    no_results: NoResultsOption = False,
) -> None:
    """ms/face and batched faces/s of every model, PyTorch eager vs ONNX Runtime, with peers."""
    from mvface.bench.inference import (
        InferenceConfig,
        inference_result,
        print_summary,
        run_inference_bench,
    )
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
    if not no_results:
        _record(inference_result(result, command), results)


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
    results: ResultsOption = Path("results"),
    no_results: NoResultsOption = False,
) -> None:
    """NME per yaw bin, balanced, 300-W NME, AUC/FR of every model on every shared data set."""
    from mvface.bench.accuracy import (
        AccuracyConfig,
        accuracy_result,
        model_specs,
        print_summary,
        run_accuracy_bench,
    )

    cfg = AccuracyConfig(models=model_specs(model or []), out=out, limit=limit)
    if shared is not None:
        cfg.shared = shared
    command = _command("accuracy", {"model": model, "out": out, "limit": limit})
    result = run_accuracy_bench(cfg, log=lambda line: console.print(line, highlight=False))
    print_summary(result, log=typer.echo)
    if not no_results:
        _record(accuracy_result(result, command), results)


def _record(result: BenchResult, results: Path) -> None:
    """Write one run's result file and regenerate the summary beside the folder."""
    from mvface.bench.results import record_run

    path, page = record_run(result, results)
    say(f"wrote {shown(path)}; regenerated {shown(page)}")


def _script(name: str, args: list[str], results: Path | None) -> None:
    from mvface.bench.scripts import run_benchmark_script

    if results is not None and "--results" not in args:
        args = [*args, "--results", str(results)]
    code = run_benchmark_script(name, args)
    if code:
        raise typer.Exit(code)


@app.command("synth", context_settings=PASS_THROUGH)
@handle_errors
def synth_command(
    ctx: typer.Context,
    results: ResultsOption = Path("results"),
    no_results: NoResultsOption = False,
) -> None:
    """views/s, s/identity (512 views at 256 px, 1 and 2 workers), peak memory per worker.

    Runs benchmarks/bench_synth.py from the source checkout; other arguments go to it.
    """
    _script("synth", list(ctx.args), None if no_results else results)


@app.command("train", context_settings=PASS_THROUGH)
@handle_errors
def train_command(
    ctx: typer.Context,
    results: ResultsOption = Path("results"),
    no_results: NoResultsOption = False,
) -> None:
    """Training images/s with and without the plug-in terms, peak memory of a step.

    Runs benchmarks/bench_train.py from the source checkout; other arguments go to it.
    """
    _script("train", list(ctx.args), None if no_results else results)


@app.command("report")
@handle_errors
def report_command(
    results: Annotated[Path, typer.Option(help="Results folder (<kind>/<UTC time>.json).")] = Path(
        "results"
    ),
    out: Annotated[
        Path | None, typer.Option(help="Summary page (default: BENCHMARKS.md beside --results).")
    ] = None,
) -> None:
    """Regenerate the summary page from the result files (latest run per kind and machine)."""
    from mvface.bench.results import default_summary_path, load_results, write_summary
    from mvface.errors import NotAvailableError

    found, skipped = load_results(results)
    if not found:
        raise NotAvailableError(f"no result files in {results}/<kind>/*.json")
    page = write_summary(results, out if out is not None else default_summary_path(results))
    for line in skipped:
        typer.echo(f"skipped {line}", err=True)
    say(f"wrote {shown(page)} from {len(found)} result files")
    if skipped:
        raise typer.Exit(1)
