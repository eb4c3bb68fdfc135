"""Would int8 weights make a face mesh network faster? Static int8 vs float32 in ONNX Runtime.

The speed goal asks the default model to be as fast per face as the 3DDFA-V2 network at one
thread. A face mesh network (``base``, ``fast``) is the cost, so this measures the usual
CPU lever: ONNX Runtime's static quantization (QDQ format, int8 weights per channel, uint8
activations calibrated on first-pass crops of 300-W faces that are not timed). Both engines run
the model's own crop policy; reported:

* how far the int8 engine's 68 points move from the float32 engine's on the timed faces
  (pixels, and percent of the face size sqrt(w·h) of the float32 points);
* the network call alone (batch 1, and ``--batch`` crops; one thread), both engines interleaved
  call by call after a warm-up; the ratio int8 / float32 (< 1: int8 faster).

Whether int8 pays depends on the CPU: x86 cores with VNNI have fast int8 dot products, others
(AVX2 only) emulate them. Needs ``onnxruntime`` and ``../shared/data/300w/helen_testset``.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_int8.py                 # base (192 px, 2 passes)
    python benchmarks/bench_int8.py --model fast --batch 8 --faces 16 --calibration 48
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import numpy as np
import torch

from mvface.bench.inference import default_shared_root, export_network, load_faces, onnx_engine
from mvface.bench.machine import describe_machine
from mvface.models import create_model
from mvface.models.mediapipe_68 import MediaPipe68


def quantize(fp32: Path, out: Path, crops: list[np.ndarray]) -> Path:
    """Static int8 (QDQ, per-channel weights, uint8 activations) calibrated on ``crops``."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Crops(CalibrationDataReader):
        def __init__(self) -> None:
            self.items: Iterator[np.ndarray] = iter(crops)

        def get_next(self) -> dict[str, np.ndarray] | None:
            crop = next(self.items, None)
            return None if crop is None else {"crops": crop}

    prepared = out.with_suffix(".pre.onnx")
    quant_pre_process(str(fp32), str(prepared))
    quantize_static(
        str(prepared),
        str(out),
        Crops(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faces", type=int, default=16, help="timed / compared faces")
    parser.add_argument("--calibration", type=int, default=48, help="calibration faces")
    parser.add_argument("--model", default="base", help="a mediapipe-68 family model")
    parser.add_argument("--batch", type=int, default=8, help="crops per batched network call")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = create_model(args.model)
    if not isinstance(model, MediaPipe68):
        parser.error(f"{args.model} is not a face mesh (mediapipe-68 family) model")
    root = default_shared_root() / "data" / "300w" / "helen_testset"
    faces = load_faces(root, args.faces + args.calibration)

    def crop(i: int) -> torch.Tensor:
        return model.preprocess([faces.images[i]], faces.boxes[i][None], None)[0]

    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_network(model, Path(tmp) / "fp32.onnx")
        calibration = [crop(i).numpy() for i in range(args.faces, len(faces))]
        int8 = quantize(fp32, Path(tmp) / "int8.onnx", calibration)
        engines = {
            name: cast(MediaPipe68, onnx_engine(model, path, 1))
            for name, path in (("float32", fp32), ("int8", int8))
        }
        points = {
            name: np.stack(
                [
                    engine.predict(faces.images[i], faces.boxes[i][None]).points[0, :, :2]
                    for i in range(args.faces)
                ]
            )
            for name, engine in engines.items()
        }
        inputs = {
            "batch 1": crop(0),
            f"batch {args.batch}": torch.cat([crop(i % args.faces) for i in range(args.batch)]),
        }
        times: dict[tuple[str, str], list[float]] = {
            (name, size): [] for name in engines for size in inputs
        }
        for r in range(args.warmup + args.repeats):
            for (name, size), samples in times.items():
                start = time.perf_counter()
                engines[name].net.forward_mesh(inputs[size])
                if r >= args.warmup:
                    samples.append(1000 * (time.perf_counter() - start))
    moved = np.linalg.norm(points["int8"] - points["float32"], axis=-1)  # (faces, 68)
    size = np.sqrt(np.prod(np.ptp(points["float32"], axis=1), axis=1))
    ms = {key: float(np.median(t)) for key, t in times.items()}
    print(describe_machine())
    print(
        f"{args.model}: int8 vs float32 points on {args.faces} faces: mean {moved.mean():.2f} px, "
        f"max {moved.max():.2f} px, {100 * (moved.mean(1) / size).mean():.2f} % of the face size"
    )
    for size in inputs:
        fp, q = ms["float32", size], ms["int8", size]
        print(
            f"network, {size}, 1 thread, median of {args.repeats}: float32 {fp:.2f} ms, "
            f"int8 {q:.2f} ms, ratio int8 / float32 {q / fp:.2f}"
        )


if __name__ == "__main__":
    main()
