"""Cost of the multiview plug-in in training: time per image and peak memory of a CPU step.

Two measurements, both on the same machine in the same run (the plug-in's cost goals):

1. **Time per training image with and without the plug-in terms** (goal: ratio <= 1.15). Both
   variants run the same optimizer step on the same batch: ``R`` real crops plus ``B x V``
   synthetic crops at the model's input size through the network, backward, AdamW step. The
   *base* step's loss is the per-image L1 of every crop against its (pseudo) ground truth in
   crop pixels -- what training on the synthetic views as ordinary labelled images would cost.
   The *plug-in* step adds the plug-in's work: mapping the synthetic predictions to view pixels
   and the consistency, anchor and supervision terms (DLT triangulation of S source views,
   reprojection into all V views) of :func:`mvface.plugin.loss.multiview_losses`, computed by
   :meth:`mvface.train.module.LandmarkTrainingModule.compute_losses` itself, compiled or eager
   as ``train.compile_loss`` (``--compile-loss``) says. The two variants are interleaved
   (``--repeats`` rounds after ``--warmup``, each round's order alternating), and the medians
   are compared, so machine load affects both alike.
2. **Peak memory of one CPU plug-in step** with 4 identities x 32 views (+ real crops) at the
   model's input size (goal: <= 8 GB): a fresh subprocess builds the model and the batch, runs
   one full step, and reports its peak resident set size (``ru_maxrss``) and the peak before
   the step (imports, model, batch).

The batch is synthetic in memory (random 3D point sets seen by EG3D-style cameras on a yaw arc,
random pixels), so data loading is not part of either number; ``--data-ms`` also times the
cropping of ``B x V`` views from 512 x 512 images (:class:`mvface.train.data.SyntheticViews`
does the same per step).

Usage::

    python benchmarks/bench_train.py                       # mvnet at its default 128 px
    python benchmarks/bench_train.py --options '{"input_size": 256}' --repeats 5
    python benchmarks/bench_train.py --results results   # results/train/<UTC time>.json
    python benchmarks/bench_train.py --device cuda --model mediapipe-68 --compile-loss off
    bash benchmarks/gpu_plugin_cost.sh     # the GPU runs of docs/training.md, in one go
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

import numpy as np
import torch

from mvface.bench.machine import cpu_model, describe_machine, machine_info
from mvface.bench.results import BenchResult, ResultTable, record_run
from mvface.geometry._checks import value_checks_disabled
from mvface.geometry.cameras import eg3d_intrinsics, look_at
from mvface.models import create_model
from mvface.models.trainable import TorchLandmarkModel, invert_affine, warp_crops
from mvface.plugin.adapter import face_crop_matrices
from mvface.plugin.loss import multiview_losses
from mvface.train.config import TrainConfig
from mvface.train.module import LandmarkTrainingModule, landmark_l1

VIEW = 512  # side of the synthetic views, pixels (EG3D renders)


def make_batch(model: TorchLandmarkModel, identities: int, views: int, real: int) -> dict[str, Any]:
    """Crops, maps, cameras and targets of one step (random content, exact geometry)."""
    rng = np.random.default_rng(0)
    size = model.config.input_size
    K = eg3d_intrinsics(VIEW, VIEW, dtype=torch.float64)
    projections, points = [], []
    for _ in range(identities):
        X = torch.from_numpy(rng.normal(scale=0.08, size=(68, 3)))
        yaw = torch.from_numpy(rng.uniform(-1.2, 1.2, views))
        eye = torch.stack([2.7 * yaw.sin(), torch.full_like(yaw, -0.2), 2.7 * yaw.cos()], -1)
        c2w = look_at(eye, torch.zeros(views, 3))
        R = c2w[:, :3, :3].transpose(1, 2)
        P = K @ torch.cat([R, -(R @ c2w[:, :3, 3:])], -1)
        h = X @ P[:, :, :3].transpose(1, 2) + P[:, None, :, 3]
        projections.append(P.numpy())
        points.append((h[..., :2] / h[..., 2:]).numpy())
    pseudo_gt = np.stack(points)  # (B, V, 68, 2)
    flat = pseudo_gt.reshape(-1, 68, 2)
    boxes = np.concatenate([flat.min(1), flat.max(1)], -1)
    m = face_crop_matrices(boxes, size, model.config.crop)
    return {
        "real_crops": torch.randint(0, 256, (real, 3, size, size), dtype=torch.uint8),
        "real_targets": torch.rand(real, 68, 2) * (size - 1),
        "syn_crops": torch.randint(0, 256, (len(flat), 3, size, size), dtype=torch.uint8),
        "syn_to_image": torch.from_numpy(invert_affine(m)).float(),
        "syn_targets": torch.from_numpy(
            np.einsum("nij,nkj->nki", m[:, :, :2], flat) + m[:, None, :, 2]
        ).float(),
        "projections": torch.from_numpy(np.stack(projections)).float(),
        "pseudo_gt": torch.from_numpy(pseudo_gt).float(),
        "visibility": torch.ones(identities, views, 68, dtype=torch.bool),
        "image_size": float(VIEW),
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Move the batch's tensors to ``device``."""
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


def train_step(
    module: LandmarkTrainingModule,
    optimizer: torch.optim.Optimizer,
    batch: dict[str, Any],
    plugin: bool,
) -> float:
    """One optimizer step (plug-in: the training module's own losses); returns its loss."""
    model = module.model
    if plugin:
        loss = module.compute_losses(batch)["loss"]
    else:
        size = float(model.config.input_size)
        crops = torch.cat([batch["real_crops"], batch["syn_crops"]])
        points = model.forward_points(model.normalize(crops.float()))
        n_real = len(batch["real_crops"])
        loss = landmark_l1(points[:n_real], batch["real_targets"], size)
        loss = loss + 0.1 * landmark_l1(points[n_real:], batch["syn_targets"], size)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def create_trainable(args: argparse.Namespace) -> TorchLandmarkModel:
    """The benchmarked model (fixed seed for its random initialization, if it has one)."""
    torch.manual_seed(0)
    model = create_model(args.model, **json.loads(args.options))
    if not isinstance(model, TorchLandmarkModel):
        raise SystemExit(f"{args.model} is not trainable")
    return model


def build(args: argparse.Namespace) -> tuple[LandmarkTrainingModule, torch.optim.Optimizer]:
    """The model inside the training module (finetune mode, reference loss weights)."""
    model = create_trainable(args)
    config = TrainConfig().with_overrides(
        ["train.mode=finetune", f"train.compile_loss={args.compile_loss}"]
    )
    module = LandmarkTrainingModule(model, config).to(args.device).train()
    optimizer = torch.optim.AdamW(model.net.parameters(), lr=1e-4)
    return module, optimizer


def time_steps(args: argparse.Namespace) -> dict[str, Any]:
    """Interleaved timing of base and plug-in steps; medians per image."""
    module, optimizer = build(args)
    model = module.model
    device = torch.device(args.device)
    batch = to_device(make_batch(model, args.identities, args.views, args.real), device)
    images = args.real + args.identities * args.views
    times: dict[str, list[float]] = {"base": [], "plugin": []}
    for i in range(args.warmup + args.repeats):
        # alternate which variant goes first: the second of a pair ran measurably faster on CPU
        for name in ("base", "plugin") if i % 2 == 0 else ("plugin", "base"):
            _sync(device)
            start = time.perf_counter()
            train_step(module, optimizer, batch, name == "plugin")
            _sync(device)
            if i >= args.warmup:
                times[name].append(time.perf_counter() - start)
    out = {k: 1000 * statistics.median(v) / images for k, v in times.items()}
    # the plug-in's own computation alone, on predictions that require a gradient
    b, v = args.identities, args.views
    pred = (batch["pseudo_gt"] + torch.randn_like(batch["pseudo_gt"])).requires_grad_()
    loss_times = []
    for i in range(1 + args.repeats):  # the first call may compile: not timed
        _sync(device)
        start = time.perf_counter()
        with value_checks_disabled():  # as in LandmarkTrainingModule.compute_losses
            terms = module.multiview_loss_fn(
                pred,
                batch["projections"],
                batch["pseudo_gt"],
                float(VIEW),
                batch["visibility"],
                module.loss_config,
            )
        terms["total"].backward()
        _sync(device)
        if i:
            loss_times.append(time.perf_counter() - start)
    out["loss_only_ms_per_step"] = 1000 * statistics.median(loss_times)
    if device.type == "cuda":
        out["cuda_peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    out["loss_compiled"] = module.multiview_loss_fn is not multiview_losses
    out["images_per_step"] = images
    out["shape"] = f"{args.real} real + {b} x {v} synthetic at {model.config.input_size} px"
    return out


def data_ms(args: argparse.Namespace) -> float:
    """Milliseconds to crop B x V views from 512 px images (one step's synthetic part)."""
    model = create_trainable(args)
    rng = np.random.default_rng(0)
    n = args.identities * args.views
    images = list(rng.integers(0, 256, (n, VIEW, VIEW, 3), dtype=np.uint8))
    boxes = np.tile([[160.0, 170.0, 350.0, 380.0]], (n, 1))
    start = time.perf_counter()
    m = face_crop_matrices(boxes, model.config.input_size, model.config.crop)
    warp_crops(images, m, model.config.input_size)
    return 1000 * (time.perf_counter() - start)


def peak_memory_child(args: argparse.Namespace) -> None:
    """(In a fresh process) one full plug-in step; prints peak RSS before and after, MiB."""
    module, optimizer = build(args)
    batch = make_batch(module.model, args.identities, args.views, args.real)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    train_step(module, optimizer, batch, True)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_before_step_mib": before, "peak_mib": after}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mvnet")
    parser.add_argument("--options", default="{}", help="JSON options for create_model")
    parser.add_argument("--identities", type=int, default=4)
    parser.add_argument("--views", type=int, default=32)
    parser.add_argument("--real", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (timing only)")
    parser.add_argument(
        "--compile-loss",
        default="auto",
        choices=["auto", "on", "off"],
        help="train.compile_loss (auto: compiled on CUDA)",
    )
    parser.add_argument("--data-ms", action="store_true", help="also time the cropping")
    parser.add_argument(
        "--results", default="", help="write the run to RESULTS/train/<UTC time>.json"
    )
    parser.add_argument("--child-memory", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child_memory:
        peak_memory_child(args)
        return

    where = torch.cuda.get_device_name() if args.device == "cuda" else cpu_model()
    print(
        f"device: {args.device} ({where}), torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU threads, model {args.model} {args.options}"
    )
    print(f"machine: {describe_machine()}")
    memory = None
    if args.device == "cpu":
        child = [sys.executable, __file__, "--child-memory", *sys.argv[1:]]
        run = subprocess.run(child, check=True, capture_output=True, text=True)
        memory = json.loads(run.stdout.strip().splitlines()[-1])
    timing = time_steps(args)
    ratio = timing["plugin"] / timing["base"]
    print(f"batch: {timing['shape']} ({timing['images_per_step']} images per step)")
    print(f"plug-in loss: {'compiled (torch.compile)' if timing['loss_compiled'] else 'eager'}")
    print(f"time per training image, base (per-image L1)      : {timing['base']:.2f} ms")
    print(f"time per training image, with the plug-in terms   : {timing['plugin']:.2f} ms")
    print(f"ratio plug-in / base                              : {ratio:.3f}  (goal <= 1.15)")
    print(
        f"plug-in loss alone (forward + backward)           : "
        f"{timing['loss_only_ms_per_step']:.1f} ms per step"
    )
    if memory is not None:
        gib = memory["peak_mib"] / 1024
        print(
            f"peak memory of one CPU plug-in step               : {gib:.2f} GiB "
            f"(before the step {memory['peak_before_step_mib'] / 1024:.2f} GiB; goal <= 8 GB)"
        )
    if "cuda_peak_gib" in timing:
        print(
            f"peak CUDA memory allocated                        : {timing['cuda_peak_gib']:.2f} GiB"
        )
    crop_ms = None
    if args.data_ms:
        crop_ms = data_ms(args)
        what = f"cropping {args.identities} x {args.views} views from {VIEW} px"
        print(f"{what:<50}: {crop_ms:.0f} ms")
    if args.results:
        path, page = record_run(result(args, timing, memory, crop_ms), args.results)
        print(f"wrote {path}; regenerated {page}")


def result(
    args: argparse.Namespace,
    timing: dict[str, Any],
    memory: dict[str, Any] | None,
    crop_ms: float | None,
) -> BenchResult:
    """This run (images/s, ratio to the base step, peak memory) as a result (kind ``train``)."""
    rows: list[list[Any]] = []
    for name, label in (("base", "base (per-image L1)"), ("plugin", "with the plug-in terms")):
        ms = timing[name]
        rows.append([label, ms, 1000 / ms, ms / timing["base"]])
    where = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    loss = "compiled" if timing["loss_compiled"] else "eager"
    columns = ["step", "ms / image", "images / s", "÷ base (goal <= 1.15)"]
    name = (
        f"{where}, {torch.get_num_threads()} torch threads; model {args.model} {args.options}; "
        f"one step = {timing['shape']} ({timing['images_per_step']} images), forward + backward "
        f"+ AdamW; medians of {args.repeats} interleaved steps after {args.warmup} warm-up; "
        f"plug-in loss {loss}."
    )
    lines = [
        f"Plug-in loss alone (forward + backward): {timing['loss_only_ms_per_step']:.1f} ms "
        "per step.",
    ]
    if memory is not None:
        lines.append(
            f"Peak RSS of one CPU plug-in step: {memory['peak_mib'] / 1024:.2f} GiB (before the "
            f"step {memory['peak_before_step_mib'] / 1024:.2f} GiB; goal <= 8 GB)."
        )
    if "cuda_peak_gib" in timing:
        lines.append(f"Peak CUDA memory allocated: {timing['cuda_peak_gib']:.2f} GiB.")
    if crop_ms is not None:
        lines.append(
            f"Cropping {args.identities} x {args.views} views from {VIEW} px: {crop_ms:.0f} ms."
        )
    machine = machine_info().to_dict()
    if args.device == "cuda":
        machine["accelerator"] = where
    return BenchResult(
        kind="train",
        title="Training cost of the plug-in",
        command="python benchmarks/bench_train.py " + " ".join(sys.argv[1:]),
        machine=machine,
        tables=[ResultTable(name, columns, rows, {columns[2]: 1, columns[3]: 3})],
        arguments={k: v for k, v in vars(args).items() if k not in ("results", "child_memory")},
        variant=f"{args.model}, plug-in loss {loss}",
        goals=goals(timing, memory),
        notes=lines,
    )


def goals(timing: dict[str, Any], memory: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The plug-in's cost goals checked on this run: time ratio, peak memory of a step."""
    ratio = timing["plugin"] / timing["base"]
    out: list[dict[str, Any]] = [
        {
            "goal": "plug-in step / base step <= 1.15",
            "measured": f"{ratio:.3f}",
            "met": ratio <= 1.15,
        }
    ]
    if memory is not None:
        gib = memory["peak_mib"] / 1024
        out.append(
            {
                "goal": "peak RSS of one step <= 8 GB",
                "measured": f"{gib:.2f} GiB",
                "met": gib * 2**30 <= 8e9,
            }
        )
    if "cuda_peak_gib" in timing:
        gib = timing["cuda_peak_gib"]
        out.append(
            {
                "goal": "peak CUDA memory of one step <= 8 GB",
                "measured": f"{gib:.2f} GiB",
                "met": gib * 2**30 <= 8e9,
            }
        )
    return out


if __name__ == "__main__":
    main()
