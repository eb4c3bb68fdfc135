from pathlib import Path

from typer.testing import CliRunner

from mvface.cli.main import app
from mvface.models import create_model

runner = CliRunner()

TINY = [
    "model.options={input_size: 64, width: 0.25, head_channels: 8}",
    "data.real_per_step=2",
    "data.identities_per_step=2",
    "data.views_per_identity=4",
    "loss.num_source_views=2",
    "train.val_every=0",
    "train.checkpoint_every=1",
    "train.accelerator=cpu",
]


def test_finetune_smoke(tmp_path: Path, synthetic_root: Path, real_root: Path) -> None:
    out = tmp_path / "run"
    args = ["finetune", "--synthetic", str(synthetic_root), "--data", str(real_root)]
    result = runner.invoke(app, [*args, "--steps", "2", "--out", str(out), "-q", *TINY])
    assert result.exit_code == 0, result.output
    assert "finetune: 2 steps" in result.output
    assert (out / "config.yaml").is_file() and (out / "model.safetensors").is_file()
    assert create_model("mvnet", weights=str(out / "model.safetensors")).config.input_size == 64

    # --resume without --config reuses the run's saved config; longer runs continue from step 2
    again = runner.invoke(app, ["finetune", "--resume", "--out", str(out), "--steps", "3", "-q"])
    assert again.exit_code == 0, again.output
    assert "finetune: 3 steps" in again.output


def test_train_config_file_and_bad_override(tmp_path: Path, real_root: Path) -> None:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"data:\n  real_roots: [{real_root}]\ntrain:\n  stepz: 3\n")
    result = runner.invoke(app, ["train", "--config", str(cfg)])
    assert result.exit_code == 2
    assert "unknown key of section 'train' 'stepz'" in result.output
    assert "Traceback" not in result.output

    result = runner.invoke(app, ["train", "--data", str(real_root), "optim.lr=fast"])
    assert result.exit_code == 2 and "optim.lr must be a number" in result.output


def test_finetune_without_synthetic_set_is_a_usage_error() -> None:
    result = runner.invoke(app, ["finetune", "train.steps=1"])
    assert result.exit_code == 2 and "data.synthetic" in result.output
