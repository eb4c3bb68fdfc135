from pathlib import Path

import pytest

from mvface.train.config import ConfigError, TrainConfig


class TestYaml:
    def test_round_trip(self, tmp_path: Path) -> None:
        cfg = TrainConfig().with_overrides(
            ["model.options.input_size=64", "data.real_roots=a,b", "train.val_root=/x"]
        )
        path = cfg.save(tmp_path / "config.yaml")
        assert TrainConfig.load(path) == cfg
        assert path.read_text().startswith("# mvface training config")

    def test_missing_keys_take_defaults_and_values_are_coerced(self, tmp_path: Path) -> None:
        path = tmp_path / "c.yaml"
        path.write_text("optim:\n  lr: 1e-3\n  grad_clip: 1\ntrain:\n  devices: 2\n")
        cfg = TrainConfig.load(path)
        assert cfg.optim.lr == 0.001 and isinstance(cfg.optim.grad_clip, float)
        assert cfg.train.devices == "2" and cfg.train.steps == TrainConfig().train.steps

    def test_unknown_section_is_named(self, tmp_path: Path) -> None:
        path = tmp_path / "c.yaml"
        path.write_text("optimizer:\n  lr: 0.1\n")
        with pytest.raises(
            ConfigError, match=r"unknown section 'optimizer' \(did you mean 'optim'"
        ):
            TrainConfig.load(path)

    def test_invalid_yaml_is_one_line(self, tmp_path: Path) -> None:
        path = tmp_path / "c.yaml"
        path.write_text("optim: [\n")
        with pytest.raises(ConfigError, match="not valid YAML") as info:
            TrainConfig.load(path)
        assert "\n" not in str(info.value)


class TestRecipeInheritance:
    """``base:`` recipes are merged first, relative to the file, key by key; values replaced."""

    def test_a_stage_holds_only_its_changes(self, tmp_path: Path) -> None:
        (tmp_path / "parent.yaml").write_text(
            "model:\n  options: {passes: 1, input_size: 128}\n"
            "data:\n  real_roots: [a, b]\n  synthetic_extra: [x]\n"
            "train:\n  steps: 400\n  out: runs/one\n"
        )
        (tmp_path / "stages").mkdir()
        child = tmp_path / "stages" / "two.yaml"
        child.write_text(
            "base: [../parent.yaml]\nmodel:\n  options: {input_size: 64}\n"
            "data:\n  real_roots: [c]\ntrain:\n  out: runs/two\n"
        )
        cfg = TrainConfig.load(child)
        assert cfg.model.options == {"input_size": 64}  # one set of options, replaced whole
        assert cfg.data.real_roots == ["c"] and cfg.data.synthetic_extra == ["x"]
        assert (cfg.train.steps, cfg.train.out) == (400, "runs/two")
        assert TrainConfig.load_parent(child) == TrainConfig.load(tmp_path / "parent.yaml")
        assert TrainConfig.load_parent(tmp_path / "parent.yaml") == TrainConfig()

    def test_bases_merge_in_order_and_a_path_alone_is_a_list(self, tmp_path: Path) -> None:
        (tmp_path / "a.yaml").write_text("optim:\n  lr: 1.0e-4\n  grad_clip: 1.0\n")
        (tmp_path / "b.yaml").write_text("base: a.yaml\noptim:\n  lr: 2.0e-4\n")
        (tmp_path / "c.yaml").write_text("base: [b.yaml, a.yaml]\ntrain:\n  seed: 3\n")
        assert TrainConfig.load(tmp_path / "b.yaml").optim.lr == 2e-4
        cfg = TrainConfig.load(tmp_path / "c.yaml")
        assert (cfg.optim.lr, cfg.optim.grad_clip, cfg.train.seed) == (1e-4, 1.0, 3)

    @pytest.mark.parametrize(
        ("files", "message"),
        [
            ({"c.yaml": "base: [c.yaml]\n"}, "a cycle"),
            ({"c.yaml": "base: [d.yaml]\n", "d.yaml": "base: c.yaml\n"}, "a cycle"),
            ({"c.yaml": "base: [gone.yaml]\n"}, "c.yaml: base 'gone.yaml' does not exist"),
            ({"c.yaml": "base: {a: 1}\n"}, "base must be a path or a list of paths"),
            (
                {"c.yaml": "base: [d.yaml]\n", "d.yaml": "train:\n  stepz: 3\n"},
                r"d\.yaml: unknown key of section 'train' 'stepz'",
            ),
            (
                {"c.yaml": "base: [d.yaml]\n", "d.yaml": "train:\n  steps: many\n"},
                r"d\.yaml: train\.steps must be an integer, got 'many'",
            ),
        ],
    )
    def test_bad_base_is_one_line_naming_the_file(
        self, tmp_path: Path, files: dict[str, str], message: str
    ) -> None:
        for name, text in files.items():
            (tmp_path / name).write_text(text)
        with pytest.raises(ConfigError, match=message) as info:
            TrainConfig.load(tmp_path / "c.yaml")
        assert "\n" not in str(info.value)


class TestOverrides:
    def test_a_mapping_is_typed_values_not_text(self) -> None:
        cfg = TrainConfig().with_overrides(
            {"data.real_roots": ["a,b", "c"], "train.out": "123", "model.options.width": 0.5}
        )
        assert cfg.data.real_roots == ["a,b", "c"] and cfg.train.out == "123"
        assert cfg.model.options == {"width": 0.5}
        assert cfg.with_overrides({"model.options": {}}).model.options == {}
        with pytest.raises(ConfigError, match=r"^override: train\.steps must be an integer"):
            TrainConfig().with_overrides({"train.steps": "many"})

    def test_text_fields_take_the_text_as_typed(self) -> None:
        cfg = TrainConfig().with_overrides(
            ["train.compile_loss=on", "train.devices=0,1", "model.weights=null", "train.resume="]
        )
        assert (cfg.train.compile_loss, cfg.train.devices) == ("on", "0,1")
        assert cfg.model.weights is None and cfg.train.resume == ""

    def test_types_follow_the_fields(self) -> None:
        cfg = TrainConfig().with_overrides(
            [
                "optim.lr=2e-4",
                "train.steps=50",
                "train.progress=false",
                "train.val_limit=null",
                "optim.optimizer=sgd",
                "data.real_roots=[a, b]",
                "model.options.width=0.5",
                "model.weights=w.safetensors",
            ]
        )
        assert cfg.optim.lr == 2e-4 and cfg.train.steps == 50 and cfg.train.progress is False
        assert cfg.train.val_limit is None and cfg.optim.optimizer == "sgd"
        assert cfg.data.real_roots == ["a", "b"] and cfg.model.options == {"width": 0.5}
        assert cfg.model.weights == "w.safetensors"

    @pytest.mark.parametrize(
        ("override", "message"),
        [
            ("train.stepz=3", r"unknown key of section 'train' 'stepz' \(did you mean 'steps'"),
            ("trian.steps=3", "unknown section 'trian'"),
            ("train.steps=many", "train.steps must be an integer"),
            ("train.progress=maybe", "must be true or false"),
            ("optim.optimizer=lion", "must be one of"),
            ("steps=3", "expected section.key=value"),
            ("train.steps", "expected section.key=value"),
            ("train.steps.x=1", "has no sub-keys"),
        ],
    )
    def test_bad_override_is_a_clear_error(self, override: str, message: str) -> None:
        with pytest.raises(ConfigError, match=message):
            TrainConfig().with_overrides([override])


class TestCheck:
    def test_train_needs_real_data(self) -> None:
        with pytest.raises(ConfigError, match=r"data\.real_roots"):
            TrainConfig().check()

    def test_finetune_needs_a_synthetic_set(self) -> None:
        cfg = TrainConfig().with_overrides(["train.mode=finetune"])
        with pytest.raises(ConfigError, match=r"data\.synthetic"):
            cfg.check()

    def test_refuses_training_on_the_validation_set(self, tmp_path: Path) -> None:
        val = tmp_path / "aflw2000_3d_dev"
        cfg = TrainConfig().with_overrides(
            [f"data.real_roots={val / 'images'}", f"train.val_root={val}"]
        )
        with pytest.raises(ConfigError, match="never train on the validation set"):
            cfg.check()

    def test_pooled_synthetic_sets_are_checked_against_validation(self, tmp_path: Path) -> None:
        cfg = TrainConfig().with_overrides(
            [
                "train.mode=finetune",
                "data.real_roots=a",
                "data.synthetic=s0",
                f"data.synthetic_extra=[s1, {tmp_path / 'held'}]",
                f"train.val_synthetic={tmp_path / 'held'}",
                "train.monitor=val/consistency",
            ]
        )
        assert cfg.data.synthetic_roots() == ["s0", "s1", str(tmp_path / "held")]
        with pytest.raises(ConfigError, match="never train on the validation set"):
            cfg.check()

    def test_balanced_nme_needs_yaw_bins(self) -> None:
        cfg = TrainConfig().with_overrides(
            ["data.real_roots=a", "train.val_root=v", "train.val_dataset=300w"]
        )
        with pytest.raises(ConfigError, match="val/nme_mean"):
            cfg.check()

    def test_changed_keys(self) -> None:
        a = TrainConfig()
        b = a.with_overrides(["optim.lr=0.5", "train.steps=7"])
        assert a.changed_keys(b) == ["optim.lr", "train.steps"]


class TestModeDefaults:
    """Unset ``optim.lr`` / ``optim.warmup_steps`` take the mode's values; set ones win."""

    def test_finetune_takes_fine_tuning_steps_and_train_keeps_its_own(self) -> None:
        finetune = TrainConfig().with_overrides(["train.mode=finetune"]).resolved().optim
        assert (finetune.lr, finetune.warmup_steps) == (1e-4, 50)
        train = TrainConfig().resolved().optim
        assert (train.lr, train.warmup_steps) == (1e-3, 0)

    def test_explicit_values_win_and_the_saved_config_is_resolved(self, tmp_path: Path) -> None:
        cfg = TrainConfig().with_overrides(["train.mode=finetune", "optim.lr=3e-5"])
        assert cfg.resolved().optim.lr == 3e-5 and cfg.resolved().optim.warmup_steps == 50
        saved = TrainConfig.load(cfg.resolved().save(tmp_path / "c.yaml"))
        assert saved.optim.lr == 3e-5 and saved.optim.warmup_steps == 50
        assert saved.resolved() == saved
