"""Untrusted files: a crafted pickle never runs code, whichever entry point it is given to.

Each payload's ``__reduce__`` would create a marker file; the tests check that the load is
refused with one clear line and that the marker never appears. A static audit of the source
checks every deserialising call (``torch.load``, ``np.load``, ``pickle``, ``yaml``).
"""

from __future__ import annotations

import ast
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from test_bad_inputs import _identity_folder
from typer.testing import CliRunner

import mvface
from mvface.cli.main import app
from mvface.data.readers.aflw2000_3d import load_aflw2000_protocol
from mvface.data.readers.dad3dheads import load_landmarks_npy
from mvface.data.readers.synthetic import load_identity
from mvface.errors import BadInputError
from mvface.models._weights import load_weights
from mvface.train.trainer import SafeCheckpointIO, read_checkpoint
from train.conftest import write_real

SRC = Path(mvface.__file__).parent


class Payload:
    """Unpickling this runs ``os.system("touch <marker>")``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def evil_npy(path: Path, marker: Path) -> Path:
    """An ``.npy`` with object dtype whose single element is the payload."""
    arr = np.empty(1, dtype=object)
    arr[0] = Payload(marker)
    np.save(path, arr, allow_pickle=True)
    return path


def test_crafted_checkpoint_is_refused_by_the_trainer_and_the_cli(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.ckpt"
    torch.save({"global_step": 2, "state_dict": {}, "x": Payload(marker)}, evil)
    with pytest.raises(BadInputError, match="refused"):
        read_checkpoint(evil)
    with pytest.raises(BadInputError, match="refused"):
        SafeCheckpointIO().load_checkpoint(evil, weights_only=False)  # no opt-out
    real = write_real(tmp_path / "real", 2, seed=0)
    args = ["train", "--data", str(real), "--out", str(tmp_path / "run"), "--quiet"]
    result = CliRunner().invoke(app, [*args, "train.accelerator=cpu", f"train.resume={evil}"])
    assert result.exit_code == 1, result.output
    assert "refused: not a plain-tensor checkpoint" in result.output
    assert "Traceback" not in result.output
    assert not marker.exists()


def test_crafted_weights_file_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "model.safetensors"
    evil.write_bytes(pickle.dumps({"w": Payload(marker)}))
    with pytest.raises(BadInputError):
        load_weights(evil)
    with pytest.raises(BadInputError):
        mvface.models.create_model("mvnet", weights=str(evil))
    assert not marker.exists()


def test_object_npy_is_refused_by_every_reader_that_loads_npy(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    folder = _identity_folder(tmp_path / "synthetic")
    evil_npy(folder / "landmarks.npy", marker)
    with pytest.raises(BadInputError, match="unreadable array"):
        load_identity(folder)

    root = tmp_path / "aflw"
    (root / "3ddfa_protocol").mkdir(parents=True)
    (root / "list.txt").write_text("image00001.jpg\n")
    evil_npy(root / "3ddfa_protocol" / "AFLW2000-3D.pose.npy", marker)
    with pytest.raises(BadInputError, match=r"not a readable \.npy"):
        load_aflw2000_protocol(root)

    # DAD-3DHeads' 68-point files are pickled dicts of arrays: read with an unpickler that
    # rebuilds numpy arrays and nothing else
    lm = evil_npy(tmp_path / "x_68_lm2d_points.npy", marker)
    with pytest.raises(BadInputError, match="refusing to load"):
        load_landmarks_npy(lm)
    assert not marker.exists()
    good = np.empty((), dtype=object)
    good[()] = {"point": np.full((68, 2), 3.0)}
    np.save(tmp_path / "ok.npy", good, allow_pickle=True)
    np.testing.assert_array_equal(load_landmarks_npy(tmp_path / "ok.npy"), np.full((68, 2), 3.0))


def _calls(tree: ast.AST) -> list[tuple[str, ast.Call]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            owner = (
                f.value.id if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) else ""
            )
            found.append((f"{owner}.{name}" if owner else name, node))
    return found


def _kw(call: ast.Call, name: str) -> Any:
    for kw in call.keywords:
        if kw.arg == name and isinstance(kw.value, ast.Constant):
            return kw.value.value
    return "<absent>"


#: The modules that open ONNX files (with ONNX Runtime or ``onnx.load``, never pickle): export and
#: its parity check, and the inference engine's cache of graphs mvface exported itself.
ONNX_OPENERS = frozenset({"export.py", "models/onnx_graph.py", "models/onnx_engine.py"})


def test_source_audit_no_unsafe_deserialisation() -> None:
    """Every load of a user-given file in ``src/mvface`` is a safe one."""
    problems = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        for name, call in _calls(ast.parse(path.read_text(), str(path))):
            where = f"{rel}:{call.lineno} {name}"
            if name == "torch.load" and _kw(call, "weights_only") is not True:
                problems.append(f"{where} without weights_only=True")
            if name == "np.load" and _kw(call, "allow_pickle") not in (False, "<absent>"):
                problems.append(f"{where} with allow_pickle other than False")
            if name in ("pickle.load", "pickle.loads", "yaml.load", "yaml.unsafe_load"):
                problems.append(where)
            opens_onnx = name in ("onnx.load", "InferenceSession", "ort.InferenceSession")
            if opens_onnx and rel not in ONNX_OPENERS:
                problems.append(f"{where}: ONNX files are opened in {sorted(ONNX_OPENERS)} only")
    assert problems == []
