"""``train.compile_loss``: which loss function a module runs, and no device sync in a GPU step."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from _batches import module_and_batch

from mvface.plugin.loss import compiled_multiview_losses, multiview_losses
from mvface.train.config import ConfigError, TrainConfig
from mvface.train.module import LandmarkTrainingModule, compiles_loss
from mvface.train.trainer import build_model


@pytest.mark.parametrize(("mode", "compiled"), [("auto", False), ("on", True), ("off", False)])
def test_cpu_choice(make_config: Callable[..., TrainConfig], mode: str, compiled: bool) -> None:
    module = LandmarkTrainingModule(
        build_model(make_config().model), make_config(f"train.compile_loss={mode}")
    )
    expected = compiled_multiview_losses() if compiled else multiview_losses
    assert module.multiview_loss_fn is expected


@pytest.mark.parametrize(
    ("mode", "device", "triton", "expected"),
    [
        ("auto", "cuda", True, True),
        ("auto", "cuda", False, False),  # torch.compile could not build GPU kernels
        ("auto", "cpu", True, False),
        ("on", "cpu", False, True),
        ("off", "cuda", True, False),
    ],
)
def test_compiles_loss(mode: str, device: str, triton: bool, expected: bool) -> None:
    assert compiles_loss(mode, device, triton) is expected


def test_bad_value(make_config: Callable[..., TrainConfig]) -> None:
    with pytest.raises(ConfigError, match="compile_loss"):
        make_config("train.compile_loss=yes")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("mode", ["auto", "off"])
def test_gpu_step_never_waits_for_the_device(
    make_config: Callable[..., TrainConfig], mode: str
) -> None:
    """A finetune step's loss and backward queue GPU work without reading anything back."""
    module, batch = module_and_batch(make_config(f"train.compile_loss={mode}"))
    module = module.cuda()
    batch = {k: v.cuda() if torch.is_tensor(v) else v for k, v in batch.items()}
    assert module.multiview_loss_fn is (
        compiled_multiview_losses() if mode == "auto" else multiview_losses
    )
    module.compute_losses(batch)["loss"].backward()  # first call: compiles
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        module.compute_losses(batch)["loss"].backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
