"""Tests of the converters' file helpers (``tools/conversion_files.py``): finding MediaPipe's
files in an installed wheel and writing byte-reproducible safetensors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from _scripts import load_tool
from mvface.errors import BadInputError

_files = load_tool("conversion_files")
find_packaged_file = _files.find_packaged_file
save_reproducible_safetensors = _files.save_reproducible_safetensors
sha256_file = _files.sha256_file


class TestFiles:
    def test_find_packaged_file_env(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        model = tmp_path / "m.tflite"
        model.write_bytes(b"")
        monkeypatch.setenv("MVFACE_TEST_TFLITE", str(model))
        assert find_packaged_file("x/m.tflite", "MVFACE_TEST_TFLITE") == model
        monkeypatch.setenv("MVFACE_TEST_TFLITE", str(tmp_path / "absent"))
        with pytest.raises(BadInputError, match="MVFACE_TEST_TFLITE"):
            find_packaged_file("x/m.tflite", "MVFACE_TEST_TFLITE")

    def test_find_packaged_file_on_path(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        target = tmp_path / "pkg" / "modules" / "model.tflite"
        target.parent.mkdir(parents=True)
        target.write_bytes(b"")
        monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
        assert find_packaged_file("pkg/modules/model.tflite") == target
        assert find_packaged_file("pkg/modules/absent.tflite") is None

    def test_reproducible_safetensors(self, tmp_path: Path) -> None:
        from safetensors import safe_open

        tensors = {"b": torch.arange(4.0), "a": torch.ones(2, 3, dtype=torch.float16)}
        metadata = {"z": "1", "license": "test", "config": json.dumps({"k": 1})}
        first = save_reproducible_safetensors(tmp_path / "a.safetensors", tensors, metadata)
        second = save_reproducible_safetensors(tmp_path / "b.safetensors", tensors, metadata)
        assert first.read_bytes() == second.read_bytes()
        assert sha256_file(first) == sha256_file(second)
        with safe_open(str(first), "pt") as f:
            assert f.metadata() == metadata
            torch.testing.assert_close(f.get_tensor("b"), tensors["b"])
        assert not list(tmp_path.glob(".*.tmp"))
