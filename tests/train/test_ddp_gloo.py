"""Scale-out: Lightning DDP with 2 CPU processes (gloo) equals one process on the global batch.

Two processes are launched the way ``torchrun`` or a cluster scheduler launches them
(``MASTER_ADDR``, ``MASTER_PORT``, ``WORLD_SIZE``, ``NODE_RANK``, ``LOCAL_RANK`` set; Lightning
then creates no processes of its own), each running :func:`mvface.train.trainer.run` with
``train.devices=2 train.strategy=ddp`` for a few fine-tuning steps of a tiny mvnet, and each
saving its final weights.

Why the single-process reference is exact: at step ``k`` rank ``r`` draws the batch of sample
index ``k · 2 + r`` (:class:`mvface.train.data.StepBatches`), so the global batch of step ``k`` is
samples ``2k`` and ``2k + 1``. Every loss term is a mean with the same number of terms on each
rank (real L1 over ``R`` faces; multiview terms over ``B · V · 68`` points with
``hidden_weight = 1``), and DDP averages the ranks' gradients, so the DDP gradient equals the
gradient of the same loss on the two batches concatenated. The reference runs that loss in this
process with the module's own ``compute_losses``, optimizer and schedule.

One thing breaks the equivalence and is switched off in both runs: BatchNorm in training mode
normalizes with each rank's own batch statistics (half the global batch), which differ from
the statistics of the concatenated batch. BatchNorm layers are put in eval mode (fixed running
statistics) at every step (:class:`FreezeBatchNorm`); mvnet has no dropout. With
``SyncBatchNorm`` the statistics would be global, but the reference test would then only show
that Lightning syncs them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from torch import nn

from mvface.train.config import TrainConfig
from mvface.train.data import CropSpec, RealFaces, StepBatches, SyntheticViews
from mvface.train.module import LandmarkTrainingModule
from mvface.train.trainer import build_model, run

WORLD = 2
STEPS = 3


class FreezeBatchNorm(pl.Callback):
    """BatchNorm layers in eval mode at every step (fixed running statistics)."""

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, i: int
    ) -> None:
        freeze_batchnorm(pl_module)


class SaveWeights(pl.Callback):
    """Each rank saves its final ``net`` state to ``folder/rank<r>.pt``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        assert isinstance(pl_module, LandmarkTrainingModule)
        state = {k: v.detach().cpu().clone() for k, v in pl_module.net.state_dict().items()}
        torch.save(state, self.folder / f"rank{trainer.global_rank}.pt")


def freeze_batchnorm(module: nn.Module) -> None:
    """Put every BatchNorm layer of ``module`` in eval mode."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def worker(config_path: str, out: str) -> None:
    """One DDP rank (run as a script by the test, with the rank in the environment)."""
    torch.set_num_threads(1)
    run(TrainConfig.load(config_path), callbacks=[FreezeBatchNorm(), SaveWeights(Path(out))])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _gloo_available() -> bool:
    return bool(torch.distributed.is_available() and torch.distributed.is_gloo_available())


def merge_batches(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The global batch: the ranks' batches concatenated along the face / identity axis."""
    out: dict[str, Any] = {"step": int(parts[0]["step"])}
    for key in parts[0]:
        if key == "step":
            continue
        if key == "image_size":
            out[key] = float(parts[0][key])
        else:
            out[key] = torch.cat([p[key] for p in parts])
    return out


def single_process_reference(cfg: TrainConfig) -> dict[str, torch.Tensor]:
    """Train in this process on the concatenated per-rank batches; returns the final state."""
    pl.seed_everything(cfg.train.seed, workers=True, verbose=False)  # as run() does
    model = build_model(cfg.model)
    module = LandmarkTrainingModule(model, cfg)
    spec = CropSpec(model.config.input_size, model.config.crop)
    d = cfg.data
    data = StepBatches(
        cfg,
        spec,
        RealFaces(d.real_format, d.real_roots, d.real_limit),
        SyntheticViews(d.synthetic, d.synthetic_limit),  # type: ignore[arg-type]
        world_size=WORLD,
    )
    setup = module.configure_optimizers()
    optimizer, scheduler = setup["optimizer"], setup["lr_scheduler"]["scheduler"]
    module.train()
    for step in range(cfg.train.steps):
        freeze_batchnorm(module)
        batch = merge_batches([data[step * WORLD + rank] for rank in range(WORLD)])
        loss = module.compute_losses(batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        if cfg.optim.grad_clip:
            torch.nn.utils.clip_grad_norm_(module.parameters(), cfg.optim.grad_clip)
        optimizer.step()
        scheduler.step()
    return {k: v.detach().clone() for k, v in module.net.state_dict().items()}


@pytest.mark.skipif(not _gloo_available(), reason="torch.distributed with gloo is not available")
def test_ddp_two_cpu_processes_match_one_process_on_the_global_batch(
    make_config: Callable[..., TrainConfig], tmp_path: Path
) -> None:
    cfg = make_config(
        f"train.steps={STEPS}",
        "train.checkpoint_every=0",
        "train.accelerator=cpu",
        f"train.devices={WORLD}",
        "train.strategy=ddp",
        "train.num_nodes=1",
        "loss.hidden_weight=1.0",
    )
    config_path = cfg.save(tmp_path / "ddp.yaml")
    port = _free_port()
    procs = []
    for rank in range(WORLD):
        env = {
            **os.environ,
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "WORLD_SIZE": str(WORLD),
            "NODE_RANK": "0",
            "LOCAL_RANK": str(rank),
            "OMP_NUM_THREADS": "1",
        }
        command = [sys.executable, __file__, str(config_path), str(tmp_path)]
        procs.append(
            subprocess.Popen(
                command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
        )
    # the reference runs while the ranks start up (their imports take most of their time)
    single_cfg = cfg.with_overrides(["train.devices=1", "train.strategy=auto"])
    reference = single_process_reference(single_cfg)
    pl.seed_everything(cfg.train.seed, workers=True, verbose=False)
    initial = build_model(cfg.model).net.state_dict()

    outputs = []
    for p in procs:
        try:
            outputs.append(p.communicate(timeout=120)[0])
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail("DDP processes did not finish within 120 s")
    for rank, (p, text) in enumerate(zip(procs, outputs, strict=True)):
        if p.returncode != 0 and "gloo" in text.lower() and "not" in text.lower():
            pytest.skip(f"gloo process group could not start: {text.strip().splitlines()[-1]}")
        assert p.returncode == 0, f"rank {rank} failed:\n{text[-3000:]}"

    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]

    moved = max(float((reference[k] - initial[k]).abs().max()) for k in reference)
    assert moved > 1e-3, "training did not change the weights: the comparison would be empty"
    for key in reference:
        # the ranks hold identical weights (DDP all-reduces, every rank applies the same step)
        torch.testing.assert_close(ranks[1][key], ranks[0][key], rtol=0, atol=0, msg=key)
        # ... equal to one process on the global batch up to float summation order
        torch.testing.assert_close(ranks[0][key], reference[key], rtol=1e-5, atol=1e-6, msg=key)


if __name__ == "__main__":  # a DDP rank, started by the test above
    worker(sys.argv[1], sys.argv[2])
