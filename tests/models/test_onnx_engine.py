"""The inference engine: ONNX Runtime and PyTorch give the same predictions; the graph is built
once, parity-checked and cached; failures fall back (auto) or raise (onnx); devices are checked."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage import data

from _shared import SHARED, requires_shared
from mvface.errors import BadInputError, NotAvailableError
from mvface.models import create_model
from mvface.models import onnx_engine as engine_module
from mvface.models.onnx_engine import (
    EngineWarning,
    OrtNetwork,
    cache_key,
    cached_onnx,
    check_device,
    engine_defaults,
    model_engine,
    onnx_cache_dir,
    with_engine,
)
from mvface.models.trainable import TorchLandmarkModel

pytest.importorskip("onnxruntime")

#: The astronaut's face in ``skimage.data.astronaut()`` (a detector's canonical box), pixels.
ASTRONAUT_BOX = np.array([[180.7, 89.7, 269.6, 176.1]])
#: Largest point difference between the engines, image pixels: float32 rounding, amplified a
#: little by ``base``'s re-crop (measured 0.004 px) and flip averaging.
POINT_TOLERANCE_PX = 0.02

TINY = {"input_size": 64, "width": 0.25, "head_channels": 8}


def _tiny_mvnet(seed: int = 1) -> TorchLandmarkModel:
    """A small trained-looking mvnet (random weights, marked trained) that exports in a second."""
    model = create_model("mvnet", seed=0, allow_untrained=True, **TINY)
    assert isinstance(model, TorchLandmarkModel)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
    model.net.eval()
    return model


def _faces() -> tuple[list[np.ndarray], np.ndarray]:
    """Three faces: the astronaut, the same with a shifted box, and her mirror image."""
    image = data.astronaut()
    x0, y0, x1, y1 = ASTRONAUT_BOX[0]
    width = image.shape[1]
    boxes = np.array(
        [
            [x0, y0, x1, y1],
            [x0 + 6, y0 - 4, x1 + 10, y1 + 2],
            [width - 1 - x1, y0, width - 1 - x0, y1],
        ]
    )
    return [image, image, np.ascontiguousarray(image[:, ::-1])], boxes


@pytest.mark.parametrize(
    ("name", "weights"),
    [
        ("fast", None),
        ("base", None),
        ("base+", None),  # flip-averaged
        pytest.param(
            "3ddfa-v2",
            str(SHARED / "models" / "3ddfa_v2"),
            marks=requires_shared("models/3ddfa_v2"),
        ),
    ],
)
def test_onnx_and_torch_predict_the_same(name: str, weights: str | None) -> None:
    images, boxes = _faces()
    eager = create_model(name, weights=weights, engine="torch")
    onnx = create_model(name, weights=weights, engine="onnx")
    assert model_engine(eager) == "torch" and model_engine(onnx) == "onnx"
    assert onnx.flip_average == eager.flip_average
    assert getattr(onnx, "passes", None) == getattr(eager, "passes", None)
    a, b = eager.predict(images, boxes), onnx.predict(images, boxes)
    assert np.abs(a.points - b.points).max() < POINT_TOLERANCE_PX
    assert (a.pose is None) == (b.pose is None)
    if a.pose is not None and b.pose is not None:
        assert np.abs(a.pose - b.pose).max() < 1e-3  # radians
    assert a.extras.keys() == b.extras.keys()
    for key in a.extras:
        np.testing.assert_allclose(a.extras[key], b.extras[key], rtol=1e-4, atol=1e-4)


def test_auto_is_onnx_on_the_cpu_and_create_model_defaults_to_torch() -> None:
    assert model_engine(create_model("fast")) == "torch"  # the trainable model, as before
    assert model_engine(create_model("fast", engine="auto")) == "onnx"
    with engine_defaults("auto", "cpu"):
        assert model_engine(create_model("fast")) == "onnx"
    assert model_engine(create_model("fast")) == "torch"


def test_faces_run_in_parallel_threads_on_one_session() -> None:
    # mediapipe-68 spreads faces over Python threads; each calls the same session
    images, boxes = _faces()
    onnx = create_model("fast", engine="onnx")
    one = onnx.predict(images * 3, np.concatenate([boxes] * 3))
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        two = onnx.predict(images * 3, np.concatenate([boxes] * 3))
    finally:
        torch.set_num_threads(threads)
    assert np.abs(one.points - two.points).max() < 1e-3


def test_the_graph_is_built_once_and_cached(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MVFACE_CACHE", str(tmp_path / "cache"))
    assert onnx_cache_dir() == tmp_path / "cache"
    exports: list[Path] = []
    real = engine_module.export_network

    def counting(model: TorchLandmarkModel, path: Path, opset: int = 17) -> Path:
        exports.append(path)
        return real(model, path, opset)

    monkeypatch.setattr(engine_module, "export_network", counting)
    model = _tiny_mvnet()
    first = cached_onnx(model)
    assert first.parent == tmp_path / "cache" and first.is_file()
    assert cached_onnx(model) == first and len(exports) == 1  # the second call reads the cache
    assert not list((tmp_path / "cache").glob(".*tmp*"))  # written atomically, nothing left over
    engine = with_engine(model, "onnx", threads=1)
    assert isinstance(engine.net, OrtNetwork) and len(exports) == 1
    # other weights, another graph
    other = _tiny_mvnet(seed=2)
    assert cache_key(other) != cache_key(model)
    assert cached_onnx(other) != first and len(exports) == 2


def test_a_failed_parity_check_falls_back_or_raises(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(engine_module, "PARITY_RTOL", -1.0)  # nothing passes
    model = _tiny_mvnet()
    with pytest.warns(EngineWarning, match="ONNX Runtime not used, running PyTorch instead"):
        auto = with_engine(model, "auto", cache=tmp_path)
    assert model_engine(auto) == "torch" and auto is model
    assert not list(tmp_path.glob("*.onnx")) and len(list(tmp_path.glob("*.failed"))) == 1
    # recorded: the next call fails at once, without exporting again
    monkeypatch.setattr(engine_module, "export_network", None)
    with pytest.raises(NotAvailableError, match="differ by"):
        with_engine(model, "onnx", cache=tmp_path)


def test_onnx_without_onnxruntime_is_not_available(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def absent() -> None:
        raise NotAvailableError("onnxruntime is not installed: pip install onnxruntime")

    monkeypatch.setattr(engine_module, "import_onnxruntime", absent)
    model = _tiny_mvnet()
    with pytest.raises(NotAvailableError, match="onnxruntime is not installed"):
        with_engine(model, "onnx", cache=tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert model_engine(with_engine(model, "auto", cache=tmp_path)) == "torch"
    assert [w.category for w in caught] == [EngineWarning]
    assert "\n" not in str(caught[0].message)  # one line


def test_an_unwritable_cache_gets_a_temporary_graph(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    path = cached_onnx(_tiny_mvnet(), cache=blocker / "cache")
    assert path.is_file() and blocker not in path.parents


def test_an_untrained_network_stays_in_torch_on_auto(tmp_path: Path) -> None:
    model = create_model("mvnet", seed=0, **TINY)  # a random initialization, not allowed
    assert model_engine(with_engine(model, "auto", cache=tmp_path)) == "torch"
    assert not list(tmp_path.iterdir())


def test_unknown_engine_or_device_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown engine 'tensorrt'"):
        create_model("fast", engine="tensorrt")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        create_model("fast", device="tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_a_gpu_is_not_available() -> None:
    with pytest.raises(NotAvailableError, match="no CUDA GPU") as info:
        create_model("fast", device="cuda")
    assert "\n" not in str(info.value)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_cuda_runs_torch_and_agrees_with_the_cpu() -> None:
    images, boxes = _faces()
    gpu = create_model("fast", engine="auto", device="cuda")
    assert model_engine(gpu) == "torch" and check_device("cuda").type == "cuda"
    assert isinstance(gpu, TorchLandmarkModel) and gpu.device.type == "cuda"
    cpu = create_model("fast", engine="torch")
    diff = np.abs(gpu.predict(images, boxes).points - cpu.predict(images, boxes).points).max()
    assert diff < POINT_TOLERANCE_PX


def test_families_without_a_torch_network_ignore_the_engine() -> None:
    pytest.importorskip("dlib")
    try:
        model = create_model("dlib", engine="onnx")
    except NotAvailableError as exc:
        pytest.skip(str(exc))
    assert model_engine(model) == "native"


def test_a_model_already_on_onnx_cannot_go_back_to_torch(tmp_path: Path) -> None:
    onnx = with_engine(_tiny_mvnet(), "onnx", cache=tmp_path, threads=1)
    with pytest.raises(BadInputError, match="already on the onnx engine"):
        with_engine(onnx, "torch")
