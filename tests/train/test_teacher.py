"""The ``teacher`` section: a frozen model's points on the same crops as extra targets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from _batches import module_and_batch
from torch import nn

from mvface.errors import NotAvailableError
from mvface.models.base import ModelConfig
from mvface.models.boxes import BoxTransform
from mvface.models.trainable import TorchLandmarkModel
from mvface.train.config import ConfigError, TeacherSection, TrainConfig
from mvface.train.module import LandmarkTrainingModule, landmark_l1
from mvface.train.teachers import TeacherEnsemble, teacher_crop_ratio
from mvface.train.trainer import build_model, build_teacher, run


class BrightSpot(TorchLandmarkModel):
    """A "network" that puts all 68 points on the intensity centroid of its input (in its
    own crop pixels): a teacher whose right answer is known in closed form."""

    def __init__(self, size: int, crop: BoxTransform | None = None) -> None:
        self.config = ModelConfig(name="bright-spot", input_size=size, crop=crop or BoxTransform())
        self.net = nn.Linear(1, 1)

    def forward_points(self, x: torch.Tensor) -> torch.Tensor:
        weight = x.sum(1)  # (N, S, S)
        grid = torch.arange(x.shape[-1], dtype=x.dtype)
        total = weight.sum((1, 2))
        u = (weight.sum(1) * grid).sum(1) / total
        v = (weight.sum(2) * grid).sum(1) / total
        return torch.stack([u, v], -1)[:, None].expand(-1, 68, 2)


class TestTeacherPoints:
    @pytest.mark.parametrize("teacher_size", [64, 96, 128, 192])
    def test_spot_maps_back_to_the_student_crop(
        self, make_config: Callable[..., TrainConfig], teacher_size: int
    ) -> None:
        """A bright 4 x 4 block in a 64 px crop: the teacher sees it resized to its own size,
        and its centroid comes back at the block's centre (bilinear resizing keeps the centroid
        of a symmetric block away from the border when it upsamples)."""
        module = LandmarkTrainingModule(
            build_model(make_config().model), make_config(), BrightSpot(teacher_size)
        )
        crops = torch.zeros(3, 3, 64, 64, dtype=torch.uint8)
        spots = [(10, 12), (40, 7), (30, 50)]
        for i, (x, y) in enumerate(spots):
            crops[i, :, y : y + 4, x : x + 4] = 200
        points = module.teacher_points(crops)
        assert points.shape == (3, 68, 2)
        expected = torch.tensor([[x + 1.5, y + 1.5] for x, y in spots])
        torch.testing.assert_close(points[:, 0], expected, atol=1e-4, rtol=0)

    def test_no_teacher(self, make_config: Callable[..., TrainConfig]) -> None:
        module = LandmarkTrainingModule(build_model(make_config().model), make_config())
        with pytest.raises(ValueError, match="no teacher"):
            module.teacher_points(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))


def spot_crops() -> tuple[torch.Tensor, torch.Tensor]:
    """Three 64 px crops with a bright 4 x 4 block each, and the blocks' centres ``(3, 2)``."""
    crops = torch.zeros(3, 3, 64, 64, dtype=torch.uint8)
    spots = [(20, 22), (36, 27), (30, 40)]
    for i, (x, y) in enumerate(spots):
        crops[i, :, y : y + 4, x : x + 4] = 200
    return crops, torch.tensor([[x + 1.5, y + 1.5] for x, y in spots])


class TestTeacherCropRatio:
    def test_centred_squares(self) -> None:
        student = BoxTransform(1.5, 1.5, square="max")
        assert teacher_crop_ratio(student, BoxTransform(1.2, 1.2, square="max")) == pytest.approx(
            0.8
        )
        assert teacher_crop_ratio(student, student) == 1.0

    def test_other_policies_see_the_whole_crop(self) -> None:
        student = BoxTransform(1.5, 1.5, square="max")
        assert teacher_crop_ratio(student, BoxTransform()) == 1.0
        assert teacher_crop_ratio(student, BoxTransform(1.2, 1.2, 0.0, 0.1, "max")) == 1.0
        assert teacher_crop_ratio(student, BoxTransform(1.2, 1.2, square="mean")) == 1.0


class TestTeacherEnsemble:
    @pytest.mark.parametrize("scale", [1.2, 1.5, 1.8])
    @pytest.mark.parametrize("teacher_size", [96, 120])
    def test_own_framing_maps_back(self, scale: float, teacher_size: int) -> None:
        """A teacher that crops tighter (or wider) than the student sees only its own framing
        of the crop, and its points still come back at the spot in the student's pixels."""
        student = BoxTransform(1.5, 1.5, square="max")
        teacher = BrightSpot(teacher_size, BoxTransform(scale, scale, square="max"))
        ensemble = TeacherEnsemble([(teacher, 1.0)], 64, student)
        crops, expected = spot_crops()
        points = ensemble.points(crops)
        torch.testing.assert_close(points[:, 0], expected.float(), atol=0.05, rtol=0)

    def test_tighter_framing_cuts_the_border(self) -> None:
        """A spot near the border lies outside a teacher's tighter frame: it sees zeros there."""
        student = BoxTransform(1.5, 1.5, square="max")
        teacher = BrightSpot(64, BoxTransform(0.75, 0.75, square="max"))  # half the side
        crops = torch.zeros(1, 3, 64, 64, dtype=torch.uint8)
        crops[0, :, 0:4, 0:4] = 200  # top-left corner: outside the centre half
        crops[0, :, 30:34, 30:34] = 200  # centre: inside
        points = TeacherEnsemble([(teacher, 1.0)], 64, student).points(crops)
        torch.testing.assert_close(points[0, 0], torch.tensor([31.5, 31.5]), atol=0.05, rtol=0)

    def test_shares_fuse_point_by_point(self) -> None:
        """Two teachers, one of which sees a frame shifted by its framing: the fused points
        are the share-weighted mean of each one's points."""
        student = BoxTransform(1.5, 1.5, square="max")
        a, b = BrightSpot(64, student), BrightSpot(96, student)
        crops, _ = spot_crops()
        one = TeacherEnsemble([(a, 1.0)], 64, student).points(crops)
        two = TeacherEnsemble([(b, 1.0)], 64, student).points(crops)
        fused = TeacherEnsemble([(a, 3.0), (b, 1.0)], 64, student).points(crops)
        torch.testing.assert_close(fused, 0.75 * one + 0.25 * two)

    def test_bad_shares_are_refused(self) -> None:
        with pytest.raises(ValueError, match="positive"):
            TeacherEnsemble([(BrightSpot(64), 0.0)], 64, BoxTransform())
        with pytest.raises(ValueError, match="at least one"):
            TeacherEnsemble([], 64, BoxTransform())


class TestDistillationTerm:
    def test_teacher_equal_to_student_costs_nothing(
        self, make_config: Callable[..., TrainConfig], tmp_path: Path
    ) -> None:
        """The student's own weights as teacher: the distillation term is zero at the start,
        and the total is the loss without a teacher."""
        cfg = make_config()
        plain, batch = module_and_batch(cfg)
        weights = plain.model.save(tmp_path / "student.safetensors")
        teacher = build_teacher(
            TeacherSection(name=cfg.model.name, weights=str(weights), options=cfg.model.options)
        )
        module = LandmarkTrainingModule(plain.model, cfg, teacher)
        torch.manual_seed(0)
        with_teacher = module.compute_losses(batch)
        torch.manual_seed(0)
        without = plain.compute_losses(batch)
        assert float(with_teacher["distill"].detach()) < 1e-6
        torch.testing.assert_close(with_teacher["loss"], without["loss"], atol=1e-6, rtol=0)

    def test_weighted_into_the_loss_and_frozen(
        self, make_config: Callable[..., TrainConfig]
    ) -> None:
        cfg = make_config("teacher.weight=3.0")
        plain, batch = module_and_batch(cfg)
        teacher = BrightSpot(48)
        module = LandmarkTrainingModule(plain.model, cfg, teacher)
        losses = module.compute_losses(batch)
        crops = torch.cat([batch["real_crops"], batch["syn_crops"]])
        points = plain.model.forward_points(plain.adapter.normalize(crops))
        expected = landmark_l1(points, module.teacher_points(crops), 64.0)
        torch.testing.assert_close(losses["distill"], expected)
        rest = losses["loss"] - 3.0 * losses["distill"]
        torch.testing.assert_close(rest, plain.compute_losses(batch)["loss"], rtol=1e-5, atol=1e-6)
        losses["loss"].backward()
        assert all(p.grad is None for p in teacher.net.parameters())
        assert not any(p.requires_grad for p in teacher.net.parameters())
        # the teacher is neither a submodule (optimizer, checkpoints) nor in the state dict
        assert not any(k.startswith("teacher") for k in module.state_dict())

    def test_real_crops_only(self, make_config: Callable[..., TrainConfig]) -> None:
        """``teacher.synthetic=false``: the term covers the real crops and no synthetic one,
        the rest of the loss is unchanged."""
        cfg = make_config("teacher.weight=2.0", "teacher.synthetic=false")
        plain, batch = module_and_batch(cfg)
        teacher = BrightSpot(48)
        module = LandmarkTrainingModule(plain.model, cfg, teacher)
        losses = module.compute_losses(batch)
        real = batch["real_crops"]
        points = plain.model.forward_points(plain.adapter.normalize(real))
        expected = landmark_l1(points, module.teacher_points(real), 64.0)
        torch.testing.assert_close(losses["distill"], expected)
        rest = losses["loss"] - 2.0 * losses["distill"]
        torch.testing.assert_close(rest, plain.compute_losses(batch)["loss"], rtol=1e-5, atol=1e-6)


class TestConfig:
    def test_section_from_overrides_and_yaml(self, tmp_path: Path) -> None:
        cfg = TrainConfig().with_overrides(
            ["teacher.name=mediapipe-68", "teacher.weights=w.safetensors", "teacher.weight=2"]
        )
        assert cfg.teacher == TeacherSection("mediapipe-68", "w.safetensors", {}, 2.0)
        assert TrainConfig.load(cfg.save(tmp_path / "c.yaml")).teacher == cfg.teacher
        assert TrainConfig().teacher.name is None

    def test_negative_weight_is_refused(self, make_config: Callable[..., TrainConfig]) -> None:
        with pytest.raises(ConfigError, match=r"teacher\.weight"):
            make_config("teacher.weight=-1").check()

    def test_extra_teachers_and_shares(self, tmp_path: Path) -> None:
        cfg = TrainConfig().with_overrides(
            [
                "teacher.name=mvnet",
                "teacher.extra=[mvnet:b.safetensors]",
                "teacher.shares=[0.7, 0.3]",
            ]
        )
        assert cfg.teacher.extra == ["mvnet:b.safetensors"]
        assert cfg.teacher.shares == [0.7, 0.3]
        assert TrainConfig.load(cfg.save(tmp_path / "c.yaml")).teacher == cfg.teacher

    def test_shares_must_match_the_teachers(self) -> None:
        with pytest.raises(ConfigError, match="shares"):
            build_teacher(TeacherSection(name="mvnet", extra=["mvnet"], shares=[1.0]))
        with pytest.raises(ConfigError, match=r"needs teacher\.name"):
            build_teacher(TeacherSection(extra=["mvnet"]))

    def test_untrainable_teacher_is_refused(self) -> None:
        with pytest.raises((ConfigError, NotAvailableError)) as info:
            build_teacher(TeacherSection(name="dlib"))
        if isinstance(info.value, NotAvailableError):
            pytest.skip(f"dlib's model is not installed: {info.value}")
        assert "not trainable" in str(info.value)


@pytest.mark.parametrize(
    "accelerator",
    [
        "cpu",
        pytest.param(
            "gpu",
            marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
        ),
    ],
)
def test_finetune_with_a_teacher_logs_the_term(
    make_config: Callable[..., TrainConfig], tmp_path: Path, accelerator: str
) -> None:
    """Also on a GPU: the teacher is no submodule, so Lightning does not move it there;
    :meth:`LandmarkTrainingModule.teacher_points` follows the crops' device."""
    teacher_model = build_model(make_config().model)
    with torch.no_grad():  # not the student's own initial weights
        list(teacher_model.net.parameters())[-1].add_(0.1)
    teacher = teacher_model.save(tmp_path / "teacher.safetensors")
    cfg = make_config(
        "teacher.name=mvnet",
        f"teacher.weights={teacher}",
        "teacher.options={input_size: 64, width: 0.25, head_channels: 8}",
        "train.steps=2",
        f"train.accelerator={accelerator}",
    )
    assert run(cfg).steps == 2
    (metrics,) = (Path(cfg.train.out) / "logs").rglob("metrics.csv")
    rows = metrics.read_text().splitlines()
    column = rows[0].split(",").index("train/distill")
    values = [float(r.split(",")[column]) for r in rows[1:] if r.split(",")[column]]
    assert values and all(np.isfinite(values)) and all(v > 0 for v in values)
