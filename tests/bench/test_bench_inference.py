from pathlib import Path

import numpy as np
import pytest
import torch

from _shared import SHARED, requires_shared
from mvface.bench.inference import (
    InferenceConfig,
    ModelSpec,
    export_network,
    inference_goals,
    inference_result,
    load_faces,
    onnx_engine,
    resolve_models,
    run_inference_bench,
    time_interleaved,
)
from mvface.export import export_onnx, onnx_parity
from mvface.models import create_model
from mvface.models.trainable import TorchLandmarkModel

TINY = {"input_size": 64, "width": 0.25, "head_channels": 8}


def _tiny_mvnet() -> TorchLandmarkModel:
    """A small mvnet whose output depends on its input (random weights everywhere)."""
    model = create_model("mvnet", seed=0, allow_untrained=True, **TINY)
    assert isinstance(model, TorchLandmarkModel)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
    return model


def test_time_interleaved_calls_round_robin() -> None:
    order: list[tuple[str, int]] = []
    calls = {name: (lambda i, n=name: order.append((n, i))) for name in ("a", "b")}
    times = time_interleaved(calls, repeats=3, warmup=2)
    assert [len(t) for t in times.values()] == [3, 3]
    assert order[:4] == [("a", 0), ("b", 0), ("a", 1), ("b", 1)]  # interleaved, warm-up too
    assert len(order) == 10


def test_model_spec_parses_weights_and_aliases() -> None:
    with pytest.warns(FutureWarning, match="'dlib-68' is deprecated"):
        assert ModelSpec.parse("dlib-68") == ModelSpec.named("dlib")
    assert ModelSpec.parse("3ddfa-v2:/w") == ModelSpec.named("3ddfa-v2", "/w")


def test_resolve_models_measures_a_network_once(tmp_path: Path) -> None:
    models, left_out = resolve_models(
        [ModelSpec.named("mvnet"), ModelSpec.named("mvnet"), ModelSpec.named("nope")], tmp_path
    )
    assert list(models) == ["mvnet"]
    assert "not available" in left_out["nope"]


def test_load_faces_falls_back_to_random_images(tmp_path: Path) -> None:
    faces = load_faces(tmp_path / "absent", 3)
    assert len(faces) == 3 and faces.boxes.shape == (3, 4)
    assert faces.images[0].dtype == np.uint8


@pytest.mark.parametrize("batch", [1, 5])
def test_exports_have_a_dynamic_batch(tmp_path: Path, batch: int) -> None:
    pytest.importorskip("onnxruntime")
    model = _tiny_mvnet()
    # the library's export (mvface export onnx), traced at batch 2, run at other batch sizes
    path = export_onnx(model, tmp_path / "m.onnx")
    assert onnx_parity(model, path, batch=batch) < 1e-3
    # the benchmark's engine, through the network it replaces
    engine = onnx_engine(model, export_network(model, tmp_path / "e.onnx"), threads=1)
    x = torch.randn(batch, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    model.net.eval()
    with torch.no_grad():
        ref = model.forward_points(x)
    out = engine.net(x)  # type: ignore[attr-defined]  # an OrtNetwork
    assert out.shape == ref.shape == (batch, 68, 3)
    assert float((out - ref).abs().max()) < 1e-3


def test_small_run_gives_a_table_per_engine(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    cfg = InferenceConfig(
        models=[ModelSpec.named("mvnet")],
        threads=(1,),
        repeats=5,
        warmup=1,
        batch=2,
        batch_repeats=2,
        faces=tmp_path / "absent",
        detectors=(),
        shared=tmp_path,
    )
    result = run_inference_bench(cfg, log=lambda line: None)
    assert {(r.model, r.engine, r.threads) for r in result.rows} == {
        ("mvnet", "torch", 1),
        ("mvnet", "onnx", 1),
    }
    for r in result.rows:
        assert r.repeats == 5 and r.batch_repeats == 2 and r.batch == 2
        assert r.ms_per_face > 0 and r.faces_per_s > 0 and r.p90_ms >= r.ms_per_face
    run = inference_result(result, "mvface bench inference --model mvnet")
    assert run.kind == "inference" and run.command == "mvface bench inference --model mvnet"
    assert run.machine["cpus"] >= 1 and run.arguments["repeats"] == 5
    table = run.tables[0]
    assert table.columns[:4] == ["model", "engine", "threads", "ms/face (batch 1)"]
    assert [row[:3] for row in table.rows] == [["mvnet", "torch", 1], ["mvnet", "ONNX Runtime", 1]]
    assert all(row[3] > 0 for row in table.rows)  # unrounded milliseconds
    # the goals need the default model and the peers: not measured here, said so
    goals = inference_goals(result)
    assert len(goals) == 2 and all(g.met is None for g in goals)
    assert [g["met"] for g in run.goals] == [None, None]
    assert all(g["measured"] == "not measured in this run" for g in run.goals)


@requires_shared("data/300w/helen_testset")
def test_onnx_engine_of_the_default_model_matches_torch(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    model = create_model("mediapipe-68")
    assert isinstance(model, TorchLandmarkModel)
    faces = load_faces(SHARED / "data/300w/helen_testset", 2)
    engine = onnx_engine(model, export_network(model, tmp_path / "mp.onnx"), threads=1)
    a = model.predict(faces.images, faces.boxes).points
    b = engine.predict(faces.images, faces.boxes).points
    assert np.abs(a - b)[..., :2].max() < 0.05  # pixels, through both passes


def test_onnx_runtime_leaves_the_denormal_mode_alone(tmp_path: Path) -> None:
    """ORT's denormal-as-zero option must not leak flush-to-zero into the rest of the process."""
    from mvface.models.mediapipe_mesh import flushes_denormals

    assert not flushes_denormals()
    model = create_model("mvnet", input_size=64, allow_untrained=True)
    engine = onnx_engine(model, export_network(model, tmp_path / "d.onnx"), threads=1)
    engine.predict(np.zeros((64, 64, 3), np.uint8), np.array([[8.0, 8.0, 56.0, 56.0]]))
    assert not flushes_denormals()
