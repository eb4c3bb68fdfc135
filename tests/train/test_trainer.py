import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch

from _shared import SHARED, requires_shared
from mvface.errors import BadInputError, NotAvailableError
from mvface.models import create_model
from mvface.models._weights import load_weights
from mvface.train.config import ConfigError, TrainConfig
from mvface.train.trainer import (
    SafeCheckpointIO,
    _trainer,
    check_hardware,
    export_checkpoint,
    read_checkpoint,
    run,
)


class LossRecorder(pl.Callback):
    """Exact training loss of every step (global step after the step -> loss)."""

    def __init__(self) -> None:
        self.losses: dict[int, float] = {}

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, i: int
    ) -> None:
        self.losses[trainer.global_step] = float(outputs["loss"])


class SimulatedKillError(Exception):
    """A job dying mid-run (not KeyboardInterrupt: Lightning turns that into SystemExit)."""


class CrashAt(pl.Callback):
    """Raise before step ``step`` starts (a killed job, after its checkpoints)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, i: int
    ) -> None:
        if trainer.global_step == self.step:
            raise SimulatedKillError(f"killed before step {self.step + 1}")


def test_training_lowers_the_loss(make_config: Callable[..., TrainConfig]) -> None:
    cfg = make_config(
        "train.mode=train",
        "train.steps=12",
        "train.checkpoint_every=0",
        "data.real_per_step=6",
        "data.rotation_deg=0",
        "data.colour_jitter=0",
        "data.flip=0",  # the test faces share one asymmetric shape: a flip is another shape
        "optim.lr=0.01",
    )
    rec = LossRecorder()
    result = run(cfg, callbacks=[rec])
    losses = [rec.losses[k] for k in sorted(rec.losses)]
    assert len(losses) == 12 and result.steps == 12
    assert sum(losses[-3:]) < 0.5 * sum(losses[:3])
    assert result.checkpoints == [] and result.weights is not None


def test_resume_is_bit_identical_and_keeps_the_last_k(
    make_config: Callable[..., TrainConfig], tmp_path: Path
) -> None:
    full = LossRecorder()
    run(make_config("train.steps=6", f"train.out={tmp_path / 'full'}"), callbacks=[full])

    cfg = make_config("train.steps=6", f"train.out={tmp_path / 'cut'}")
    first = LossRecorder()
    with pytest.raises(SimulatedKillError):
        run(cfg, callbacks=[first, CrashAt(5)])  # killed after the checkpoint of step 4
    ckpts = sorted(p.name for p in (tmp_path / "cut" / "checkpoints").iterdir())
    assert ckpts == ["step=00000002.ckpt", "step=00000004.ckpt"]

    with pytest.raises(BadInputError, match=r"holds a previous run .*step=00000004\.ckpt"):
        run(cfg)  # a fresh start would mix two runs
    with pytest.raises(ConfigError, match=r"optim\.lr"):
        run(cfg.with_overrides(["train.resume=last", "optim.lr=0.1"]))

    second = LossRecorder()
    result = run(cfg.with_overrides(["train.resume=last"]), callbacks=[second])
    assert sorted(second.losses) == [5, 6]
    assert {**first.losses, **second.losses} == full.losses  # exact float equality
    # keep_last=2: steps 4 and 6 remain, no temporary file is left behind
    names = sorted(os.listdir(tmp_path / "cut" / "checkpoints"))
    assert names == ["step=00000004.ckpt", "step=00000006.ckpt"]
    assert result.steps == 6
    # the export is the family's shipped format, with the recipe in the metadata
    _, _, meta = load_weights(tmp_path / "cut" / "model.safetensors")
    recipe = TrainConfig.from_dict(json.loads(meta["training_recipe"]))
    assert recipe == cfg.with_overrides(["train.resume=last"])
    model = create_model("mvnet", weights=str(tmp_path / "cut" / "model.safetensors"))
    assert model.config.input_size == 64


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_gpu_finetune_resumes_bit_identically(
    make_config: Callable[..., TrainConfig], tmp_path: Path, precision: str
) -> None:
    # deterministic kernels: cuDNN's default backward kernels may sum in any order (seen:
    # losses differing by 1e-5 after a resume without this)
    extra = [
        "train.accelerator=gpu",
        f"train.precision={precision}",
        "train.deterministic=true",
        "train.steps=6",
    ]
    full = LossRecorder()
    run(make_config(*extra, f"train.out={tmp_path / 'full'}"), callbacks=[full])
    cfg = make_config(*extra, f"train.out={tmp_path / 'cut'}")
    first, second = LossRecorder(), LossRecorder()
    with pytest.raises(SimulatedKillError):
        run(cfg, callbacks=[first, CrashAt(5)])
    run(cfg.with_overrides(["train.resume=last"]), callbacks=[second])
    assert {**first.losses, **second.losses} == full.losses


class TestCheckpointSafety:
    def test_write_is_atomic(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        io = SafeCheckpointIO()
        path = tmp_path / "step=00000002.ckpt"
        io.save_checkpoint({"global_step": 2, "w": torch.ones(3)}, path)

        def broken_save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
            f.write(b"half a checkpoint")
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(torch, "save", broken_save)
        with pytest.raises(OSError, match="No space"):
            io.save_checkpoint({"global_step": 4}, path)
        assert os.listdir(tmp_path) == [path.name]  # no temporary file left
        assert read_checkpoint(path)["global_step"] == 2  # the good one is intact

    def test_malicious_pickle_is_refused(
        self, make_config: Callable[..., TrainConfig], tmp_path: Path
    ) -> None:
        marker = tmp_path / "pwned"

        class Payload:
            def __reduce__(self) -> tuple[Any, ...]:
                return (os.system, (f"touch {marker}",))

        evil = tmp_path / "evil.ckpt"
        torch.save({"global_step": 2, "state_dict": {}, "x": Payload()}, evil)
        with pytest.raises(BadInputError, match="refused: not a plain-tensor checkpoint"):
            run(make_config(f"train.resume={evil}"))
        with pytest.raises(BadInputError, match="refused"):
            SafeCheckpointIO().load_checkpoint(evil, weights_only=False)  # no opt-out
        assert not marker.exists()

    def test_foreign_checkpoint_is_refused(
        self, make_config: Callable[..., TrainConfig], tmp_path: Path
    ) -> None:
        other = tmp_path / "other.ckpt"
        torch.save({"global_step": 2, "state_dict": {}}, other)
        with pytest.raises(BadInputError, match="not an mvface training checkpoint"):
            run(make_config(f"train.resume={other}"))


def test_validation_best_weights_and_early_stopping(
    make_config: Callable[..., TrainConfig], val_root: Path, heldout_root: Path
) -> None:
    # a learning rate too small to change anything: no improvement, so training stops after
    # `patience` validations without one
    cfg = make_config(
        "train.steps=20",
        "train.val_every=2",
        "train.checkpoint_every=0",
        f"train.val_root={val_root}",
        "train.val_dataset=300w",
        "train.monitor=val/consistency",
        f"train.val_synthetic={heldout_root}",
        "train.val_synthetic_views=4",
        "train.early_stop_patience=2",
        "train.early_stop_min_delta=1.0",
        "optim.lr=1e-9",
    )
    result = run(cfg)
    assert result.stopped_early and result.steps == 6
    assert result.best_step == 2 and result.best_score is not None
    metrics = (cfg_out := Path(cfg.train.out)) / "logs" / "version_0" / "metrics.csv"
    header = metrics.read_text().splitlines()[0].split(",")
    assert {"val/nme_mean", "val/consistency", "train/consistency"} <= set(header)
    _, _, meta = load_weights(cfg_out / "model.safetensors")
    assert meta["training_step"] == "2" and meta["training_monitor"] == "val/consistency"
    assert float(meta["training_score"]) == pytest.approx(result.best_score)


def test_export_checkpoint_equals_the_runs_own_export(
    make_config: Callable[..., TrainConfig], tmp_path: Path
) -> None:
    cfg = make_config()  # 4 steps, checkpoints at 2 and 4, no validation: exports the last
    result = run(cfg)
    out = Path(cfg.train.out)
    path = export_checkpoint(out / "checkpoints" / "step=00000004.ckpt", tmp_path / "w.safetensors")
    tensors, config, meta = load_weights(path)
    own_tensors, own_config, own_meta = load_weights(result.weights)
    assert tensors.keys() == own_tensors.keys()
    assert all(torch.equal(tensors[k], own_tensors[k]) for k in tensors)
    assert config == own_config and meta["training_step"] == own_meta["training_step"] == "4"
    assert meta["training_recipe"] == own_meta["training_recipe"]
    earlier = export_checkpoint(out / "checkpoints" / "step=00000002.ckpt", tmp_path / "e.st")
    assert load_weights(earlier)[2]["training_step"] == "2"
    with pytest.raises(BadInputError, match="no recipe"):
        bare = tmp_path / "bare.ckpt"
        torch.save({"state_dict": {}}, bare)
        export_checkpoint(bare, tmp_path / "x.safetensors")


@requires_shared("data/aflw2000_3d_dev")
@requires_shared("data/300w/afw")
def test_train_on_300w_validates_on_the_aflw2000_dev_half(
    make_config: Callable[..., TrainConfig],
) -> None:
    cfg = make_config(
        "train.mode=train",
        f"data.real_roots={SHARED / 'data' / '300w' / 'afw'}",
        "data.real_limit=6",
        "train.steps=2",
        "train.checkpoint_every=0",
        "train.val_every=2",
        f"train.val_root={SHARED / 'data' / 'aflw2000_3d_dev'}",
        "train.val_limit=10",  # the first 10 faces cover all three yaw bins
    )
    result = run(cfg)
    assert result.best_step == 2 and result.best_score is not None
    assert 0 < result.best_score < 1000  # percent NME, balanced over the yaw bins


class TestHardware:
    """Devices asked for but absent are refused in one line before Lightning starts."""

    @pytest.fixture
    def one_gpu(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)

    def test_cpu_and_auto_are_never_refused(self) -> None:
        check_hardware("cpu", "8")
        check_hardware("auto", "auto")

    def test_no_gpu(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
        for kind in ("gpu", "cuda"):
            with pytest.raises(NotAvailableError, match="no CUDA GPU is visible"):
                check_hardware(kind, "1")
        with pytest.raises(NotAvailableError, match="no Apple GPU"):
            check_hardware("mps", "1")

    @pytest.mark.usefixtures("one_gpu")
    def test_counts_and_indices(self) -> None:
        for fine in ("auto", "-1", "1", "0", "[0]"):
            check_hardware("gpu", fine)
        with pytest.raises(NotAvailableError, match="asks for 2 CUDA GPUs but 1 is visible"):
            check_hardware("gpu", "2")
        with pytest.raises(NotAvailableError, match="names GPU 1 but only indices 0-0"):
            check_hardware("cuda", "0,1")

    def test_lightning_refusals_are_one_line(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
        with pytest.raises(NotAvailableError, match="not available here") as absent:
            _trainer(accelerator="gpu", logger=False)  # not checked first: Lightning refuses
        with pytest.raises(ConfigError, match="precision") as invalid:
            _trainer(accelerator="cpu", precision="nope", logger=False)
        assert "\n" not in str(absent.value) + str(invalid.value)
