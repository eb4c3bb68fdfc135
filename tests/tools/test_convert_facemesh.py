"""Tests of the face mesh converter (``tools/convert_facemesh.py``).

The conversion runs when MediaPipe's ``face_landmark.tflite`` is found
(``MVFACE_FACEMESH_TFLITE`` or an installed mediapipe wheel) and the ``tflite`` package is
installed (``pip install mvface[convert]``); the layer map and the file search run always.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from _scripts import load_tool
from mvface.errors import BadInputError
from mvface.models.mediapipe_mesh import FaceMeshNet, load_facemesh

_convert = load_tool("convert_facemesh")
TFLITE_ENV_VAR = _convert.TFLITE_ENV_VAR
convert_tflite = _convert.convert_tflite
convert_to_safetensors = _convert.convert_to_safetensors
find_mediapipe_tflite = _convert.find_mediapipe_tflite
load_facemesh_tflite = _convert.load_facemesh_tflite


class TestLayerNames:
    def test_every_parameter_has_a_tflite_layer(self) -> None:
        names = _convert._tflite_layer_names()
        modules = {key.rpartition(".")[0] for key in FaceMeshNet().state_dict()}
        assert modules == set(names)
        assert len(set(names.values())) == len(names)  # no TFLite layer used twice


class TestConvertTflite:
    def test_matches_shipped_weights(self, facemesh: FaceMeshNet, tflite_path: Path) -> None:
        pytest.importorskip("tflite")
        net = load_facemesh_tflite(tflite_path)
        for key, value in net.state_dict().items():
            # MediaPipe's weights are fp16, so fp16 storage is lossless.
            torch.testing.assert_close(value, facemesh.state_dict()[key], atol=0, rtol=0)

    def test_safetensors_round_trip(self, tflite_path: Path, tmp_path: Path) -> None:
        pytest.importorskip("tflite")
        out = tmp_path / "facemesh.safetensors"
        meta = convert_to_safetensors(tflite_path, out, dtype=torch.float32, source="test")
        assert meta["source"] == "test"
        net = load_facemesh(out)
        ref = load_facemesh_tflite(tflite_path)
        for key, value in net.state_dict().items():
            torch.testing.assert_close(value, ref.state_dict()[key], atol=0, rtol=0)

    def test_output_is_byte_reproducible(self, tflite_path: Path, tmp_path: Path) -> None:
        pytest.importorskip("tflite")
        first, second = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
        convert_to_safetensors(tflite_path, first, source="x")
        convert_to_safetensors(tflite_path, second, source="x")
        assert first.read_bytes() == second.read_bytes()

    def test_rejects_non_tflite(self, tmp_path: Path) -> None:
        pytest.importorskip("tflite")
        bad = tmp_path / "bad.tflite"
        bad.write_bytes(b"not a flatbuffer at all")
        with pytest.raises(BadInputError, match=r"bad\.tflite"):
            convert_tflite(bad)


class TestFindMediapipeTflite:
    def test_env_var(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        model = tmp_path / "face_landmark.tflite"
        model.write_bytes(b"")
        monkeypatch.setenv(TFLITE_ENV_VAR, str(model))
        assert find_mediapipe_tflite() == model

    def test_env_var_missing_file(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(TFLITE_ENV_VAR, str(tmp_path / "absent.tflite"))
        with pytest.raises(BadInputError, match=TFLITE_ENV_VAR):
            find_mediapipe_tflite()
