from pathlib import Path

import pytest
import torch

from mvface.errors import BadInputError
from mvface.models._weights import load_weights, save_weights


def test_round_trip_with_config(tmp_path: Path) -> None:
    tensors = {"a.weight": torch.randn(3, 4), "b": torch.arange(5)}
    path = save_weights(
        tmp_path / "w.safetensors", tensors, {"size": 120, "name": "x"}, licence="MIT"
    )
    loaded, config, meta = load_weights(path)
    assert config == {"size": 120, "name": "x"}
    assert meta == {"licence": "MIT"}
    for key, value in tensors.items():
        torch.testing.assert_close(loaded[key], value)
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]  # no temp file left


def test_pickle_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.safetensors"
    torch.save({"w": torch.zeros(2)}, path)  # a pickle in disguise
    with pytest.raises(BadInputError, match="not a readable safetensors file"):
        load_weights(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="does not exist"):
        load_weights(tmp_path / "nope.safetensors")
