"""Tests of the BlazeFace converter (``tools/convert_blazeface.py``).

The conversion runs when MediaPipe's face detection ``.tflite`` files are found
(``MVFACE_BLAZEFACE_SHORT_TFLITE`` / ``MVFACE_BLAZEFACE_FULL_TFLITE`` or an installed mediapipe
wheel) and the ``tflite`` package is installed (``pip install mvface[convert]``). The network's
parity with the TFLite interpreter is tested with the detector
(``tests/detection/test_blazeface.py``).
"""

from __future__ import annotations

import pytest
import torch

from _scripts import load_tool
from mvface.detection.blazeface_decode import BLAZEFACE_CONFIGS
from mvface.detection.blazeface_net import DEFAULT_WEIGHTS_PATHS, BlazeFaceNet, load_blazeface
from mvface.errors import BadInputError

_convert = load_tool("convert_blazeface")
convert_tflite = _convert.convert_tflite
find_blazeface_tflite = _convert.find_blazeface_tflite

VARIANTS = ("short", "full")


@pytest.fixture(scope="module")
def nets() -> dict[str, BlazeFaceNet]:
    for path in DEFAULT_WEIGHTS_PATHS.values():
        if not path.is_file():
            pytest.skip(f"{path} absent")
    return {variant: load_blazeface(variant) for variant in VARIANTS}


class TestConvsInCallOrder:
    @pytest.mark.parametrize("variant", VARIANTS)
    def test_every_convolution_once(self, variant: str) -> None:
        net = BlazeFaceNet(BLAZEFACE_CONFIGS[variant])
        order = _convert._convs_in_call_order(net)
        convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
        assert len(order) == len(convs)
        assert {id(conv) for _, conv in order} == {id(conv) for conv in convs}


class TestConvertTflite:
    @pytest.mark.parametrize("variant", VARIANTS)
    def test_matches_shipped_weights(self, nets: dict[str, BlazeFaceNet], variant: str) -> None:
        pytest.importorskip("tflite")
        tflite = find_blazeface_tflite(variant)
        if tflite is None:
            pytest.skip(f"{BLAZEFACE_CONFIGS[variant].tflite_file} not found")
        state = convert_tflite(tflite, variant)
        shipped = nets[variant].state_dict()
        assert set(state) == set(shipped)
        for key, value in state.items():
            # MediaPipe's weights are fp16, so fp16 storage is lossless.
            torch.testing.assert_close(value, shipped[key], atol=0, rtol=0)

    def test_rejects_other_model(self) -> None:
        pytest.importorskip("tflite")
        tflite = find_blazeface_tflite("short")
        if tflite is None:
            pytest.skip("face_detection_short_range.tflite not found")
        with pytest.raises(BadInputError, match="expected"):
            convert_tflite(tflite, "full")
