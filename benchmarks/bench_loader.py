"""Fine-tuning's data loading: step batches per second with 0 to N loader processes.

The 8-GPU estimate of ``docs/scale_out.md`` rests on how fast the data loaders can feed a GPU
that finishes a 140-crop plug-in step in about 20 ms (an H200, ``mediapipe-68``). This measures
that rate with the trainer's own data path (:class:`mvface.train.data.TrainingData` and its
:class:`~mvface.train.data.StepLoader`): per step, ``--real`` annotated faces read from their
image files, augmented and cropped, and ``--identities`` x ``--views`` synthetic views decoded
from their JPEGs and cropped, at the crop of ``--model``. For each ``--workers`` count it
reports steps/s and crops/s in the steady state (after ``--warmup`` batches, which pay for
starting the processes), steps/s per loader process, and the ratio to the main process alone
(0 workers) measured in the same run.

Usage::

    mvface synth --source ../shared/data/300w/afw --format pts --out runs/loader-set \\
        --limit 16 --views 128
    python benchmarks/bench_loader.py --synthetic runs/loader-set \\
        --real ../shared/data/300w/afw --workers 0 --workers 1 --workers 2 --results results
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from typing import Any

import torch

from mvface.bench.machine import machine_info
from mvface.bench.results import BenchResult, ResultTable, record_run
from mvface.models import create_model
from mvface.train.config import TrainConfig
from mvface.train.data import CropSpec, TrainingData


def recipe(args: argparse.Namespace, workers: int, steps: int) -> TrainConfig:
    """The fine-tuning config whose data section this run measures."""
    cfg = TrainConfig()
    data = dataclasses.replace(
        cfg.data,
        real_format=args.real_format,
        real_roots=list(args.real),
        real_per_step=args.real_per_step,
        synthetic=args.synthetic,
        identities_per_step=args.identities,
        views_per_identity=args.views,
        synthetic_rotation_deg=15.0,
        synthetic_colour_jitter=0.2,
        num_workers=workers,
    )
    train = dataclasses.replace(cfg.train, mode="finetune", steps=steps, seed=0)
    return dataclasses.replace(cfg, data=data, train=train)


def time_loader(args: argparse.Namespace, spec: CropSpec, workers: int) -> dict[str, Any]:
    """Steady-state steps/s of one loader configuration (a fresh set of processes)."""
    cfg = recipe(args, workers, args.warmup + args.steps)
    data = TrainingData(cfg, spec)
    data.setup("fit")
    started = time.perf_counter()
    batches = iter(data.train_dataloader())
    for _ in range(args.warmup):
        next(batches)
    warm = time.perf_counter()
    crops = 0
    for _ in range(args.steps):
        batch = next(batches)
        crops += sum(len(batch[k]) for k in ("real_crops", "syn_crops") if k in batch)
    elapsed = time.perf_counter() - warm
    del batches  # stops the worker processes
    return {
        "workers": workers,
        "steps_per_s": args.steps / elapsed,
        "crops_per_s": crops / elapsed,
        "crops_per_step": crops / args.steps,
        "warmup_s": warm - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic", required=True, help="a `mvface synth` set")
    parser.add_argument("--real", action="append", required=True, help="real face folder(s)")
    parser.add_argument("--real-format", default="pts")
    parser.add_argument("--model", default="mediapipe-68", help="whose crop (size, policy)")
    parser.add_argument("--real-per-step", type=int, default=12)
    parser.add_argument("--identities", type=int, default=4)
    parser.add_argument("--views", type=int, default=32)
    parser.add_argument("--workers", type=int, action="append", help="repeat; default 0 1 2")
    parser.add_argument("--warmup", type=int, default=0, help="default: 2 per worker, at least 2")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument(
        "--results", default="", help="write the run to RESULTS/loader/<UTC time>.json"
    )
    args = parser.parse_args()
    workers = sorted(set(args.workers or [0, 1, 2]) | {0})
    args.warmup = args.warmup or max(2, 2 * max(workers))
    torch.set_num_threads(1)  # the main process only collects batches; as each worker does

    model = create_model(args.model)
    spec = CropSpec(model.config.input_size, model.config.crop)
    machine = machine_info()
    print(f"machine: {machine.describe()}")
    print(
        f"batch: {args.real_per_step} real + {args.identities} x {args.views} synthetic crops "
        f"at {spec.size} px ({args.model}); {args.steps} steps after {args.warmup} warm-up"
    )
    rows = []
    for count in workers:
        rows.append(time_loader(args, spec, count))
        r = rows[-1]
        print(
            f"  {count:2d} workers: {r['steps_per_s']:6.2f} steps/s, {r['crops_per_s']:7.0f} "
            f"crops/s, x{r['steps_per_s'] / rows[0]['steps_per_s']:.2f} the main process "
            f"(first {args.warmup} batches {r['warmup_s']:.1f} s)"
        )
    if args.results:
        path, page = record_run(result(args, rows, machine.to_dict()), args.results)
        print(f"wrote {path}; regenerated {page}")


def result(
    args: argparse.Namespace, rows: list[dict[str, Any]], machine: dict[str, Any]
) -> BenchResult:
    """The run as a :class:`~mvface.bench.results.BenchResult` (kind ``loader``)."""
    base = rows[0]["steps_per_s"]
    table = [
        [
            r["workers"],
            r["steps_per_s"],
            r["crops_per_s"],
            r["steps_per_s"] / max(r["workers"], 1),
            r["steps_per_s"] / base,
            r["warmup_s"],
        ]
        for r in rows
    ]
    headers = [
        "loader processes",
        "steps / s",
        "crops / s",
        "steps / s per process",
        "÷ main process alone",
        f"first {args.warmup} batches (s)",
    ]
    name = (
        f"One step: {args.real_per_step} real faces (read, augmented, cropped) + "
        f"{args.identities} identities x {args.views} synthetic views (JPEG decoded, cropped) "
        f"at {rows[0]['crops_per_step']:.0f} crops of the {args.model} crop; steady state over "
        f"{args.steps} steps after {args.warmup} warm-up batches (process start-up). 0 workers: "
        "the main process builds each batch itself."
    )
    digits = {headers[2]: 0, headers[5]: 1}
    return BenchResult(
        kind="loader",
        title="Fine-tuning data loading",
        command="python benchmarks/bench_loader.py " + " ".join(sys.argv[1:]),
        machine=machine,
        tables=[ResultTable(name, headers, table, digits)],
        arguments={k: v for k, v in vars(args).items() if k != "results"},
    )


if __name__ == "__main__":
    main()
