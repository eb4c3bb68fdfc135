"""The LightningModule: one trainable landmark model, its losses, optimizer and validation.

``train`` mode minimizes ``L_orig``, the L1 distance between predicted and annotated points in
crop pixels divided by the input size (point weights ``loss.real_jaw_weight`` on the jaw and
``loss.real_turned_jaw_weight`` on the half of it turned away from the camera).
``finetune`` mode minimizes ``w_orig · L_orig`` plus the plug-in's terms
(:func:`~mvface.plugin.loss.multiview_losses`) on the synthetic views, whose predictions are
mapped to view pixels by the :class:`~mvface.plugin.adapter.DetectorAdapter`. Real and synthetic
crops go through the network in one forward pass.

With a teacher (``teacher`` section), every crop of the step (real and synthetic, or the real
ones only: ``teacher.synthetic``) also gets an L1 term towards the frozen teacher's points on the
same crop, resized to the teacher's input size (:meth:`LandmarkTrainingModule.teacher_points`).

Validation runs the library's evaluation (:func:`mvface.eval.runner.evaluate`) on the
validation benchmark (``val/nme_mean`` and, with yaw bins, ``val/nme_balanced``) and, given
held-out synthetic identities, the multiview consistency error (``val/consistency``, x100).

Everything here is device- and precision-agnostic: Lightning moves the batches and the network
and wraps the steps in autocast; the multiview loss is computed in float32 outside autocast
(its 3x3 solves need it), compiled on a GPU (``train.compile_loss``).
"""

from __future__ import annotations

import functools
import importlib.util
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch

from mvface._version import __version__
from mvface.data.scheme import GROUPS
from mvface.errors import BadInputError
from mvface.eval.consistency import multiview_consistency_error
from mvface.eval.runner import EvalConfig, evaluate
from mvface.geometry._checks import value_checks_disabled
from mvface.models.trainable import TorchLandmarkModel
from mvface.plugin.adapter import DetectorAdapter, crop_to_image
from mvface.plugin.loss import (
    JAW,
    MultiviewLossFn,
    compiled_multiview_losses,
    multiview_losses,
)
from mvface.train.config import TrainConfig
from mvface.train.data import CropSpec, HeldOutViews
from mvface.train.teachers import TeacherEnsemble

__all__ = [
    "CHECKPOINT_KEY",
    "LandmarkTrainingModule",
    "landmark_l1",
    "real_point_weights",
    "step_seed",
    "turned_away_jaw",
]

#: Key of mvface's own entry in a Lightning checkpoint (plain types only).
CHECKPOINT_KEY = "mvface"


def step_seed(seed: int, step: int, rank: int = 0) -> int:
    """Seed of torch's global RNG for one training step (dropout etc. replay on resume)."""
    return int(np.random.SeedSequence([seed, step, rank, 7]).generate_state(1)[0])


def landmark_l1(
    pred: torch.Tensor, target: torch.Tensor, size: float, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean L1 point error as a fraction of the crop side.

    Args:
        pred: ``(N, 68, 2+)`` predicted points, crop pixels (extra coordinates ignored).
        target: ``(N, 68, 2)`` annotated points, crop pixels.
        size: crop side ``S`` in pixels.
        weights: ``(68,)`` or ``(N, 68)`` point weights (``None``: all 1).

    Returns:
        Scalar: ``Σ w · mean_xy |pred - target| / Σ w / S`` (0 when every weight is 0).
    """
    per_point = (pred[..., :2] - target).abs().mean(dim=-1)  # (N, 68)
    w = (
        torch.ones_like(per_point)
        if weights is None
        else weights.to(per_point).expand_as(per_point)
    )
    return (per_point * w).sum() / w.sum().clamp_min(1e-12) / size


#: Jaw halves: the subject's right (iBUG 0-7, image left in a frontal face) and left (9-16).
JAW_RIGHT, JAW_LEFT = list(GROUPS["jaw"][:8]), list(GROUPS["jaw"][9:])

#: Where the nose tip sits between the jaw ends (0 at point 0, 1 at point 16) beyond which the
#: nearer jaw half counts as turned away (about 40 degrees of yaw on 300-W's labels).
TURNED_AWAY_RATIO = 0.3


def turned_away_jaw(points: torch.Tensor, ratio: float = TURNED_AWAY_RATIO) -> torch.Tensor:
    """Jaw points on the side of each face that is turned away from the camera.

    From the 2D annotation alone: the nose tip (point 30) projected on the line from jaw end 0
    to jaw end 16, as a fraction of that line; a face turned to one side has its nose near that
    side's jaw end. Works for any in-plane rotation and for mirrored faces.

    Args:
        points: ``(N, 68, 2)`` annotated points (any pixel frame).
        ratio: nose position below ``ratio`` (or above ``1 - ratio``) marks jaw points 0-7
            (or 9-16) as turned away.

    Returns:
        ``(N, 68)`` bool, true only for the turned-away jaw points (the chin, 8, never).
    """
    p = points[..., :2]
    axis = p[:, 16] - p[:, 0]
    length2 = (axis * axis).sum(-1).clamp_min(1e-12)
    r = ((p[:, 30] - p[:, 0]) * axis).sum(-1) / length2  # (N,)
    out = torch.zeros(p.shape[:2], dtype=torch.bool, device=p.device)
    out[:, JAW_RIGHT] = (r < ratio)[:, None]
    out[:, JAW_LEFT] = (r > 1 - ratio)[:, None]
    return out


def real_point_weights(
    targets: torch.Tensor, jaw_weight: float, turned_jaw_weight: float | None
) -> torch.Tensor:
    """``(N, 68)`` weights of the real-data loss: 1, ``jaw_weight`` on the jaw, and
    ``turned_jaw_weight`` on :func:`turned_away_jaw` points (``None``: ``jaw_weight``)."""
    w = torch.ones(targets.shape[:2], dtype=targets.dtype, device=targets.device)
    w[:, JAW] = jaw_weight
    if turned_jaw_weight is not None:
        w = w.masked_fill(turned_away_jaw(targets), turned_jaw_weight)
    return w


@functools.cache
def triton_installed() -> bool:
    """Whether Triton (``torch.compile``'s GPU code generator) is installed; looked up once,
    not at every training step (the lookup searches ``sys.path`` when it is not imported)."""
    return importlib.util.find_spec("triton") is not None


def compiles_loss(mode: str, device_type: str, has_triton: bool) -> bool:
    """Whether ``train.compile_loss=mode`` compiles the plug-in loss on this kind of device.

    ``"auto"`` compiles on CUDA only, and only where Triton (which ``torch.compile`` needs to
    build GPU kernels) is installed; elsewhere the eager loss runs, which gives the same values.
    """
    return mode == "on" or (mode == "auto" and device_type == "cuda" and has_triton)


class LandmarkTrainingModule(pl.LightningModule):
    """Trains ``model.net`` with the run's losses (see the module docstring).

    Args:
        model: the trainable landmark model; its ``net`` becomes this module's ``net``
            (parameters and buffers train in place, so ``model`` is the trained model).
        config: the run's config.
        teacher: the frozen model of the ``teacher`` section, ``(model, share)`` pairs of
            several teachers fused per point, or ``None``.

    Attributes:
        model: the landmark model (predicts and evaluates with the trained ``net``).
        adapter: the plug-in's view of ``model``.
        teachers: the teachers (not submodules: neither optimized nor checkpointed).
    """

    def __init__(
        self,
        model: TorchLandmarkModel,
        config: TrainConfig,
        teacher: TorchLandmarkModel | Sequence[tuple[TorchLandmarkModel, float]] | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.net = model.net
        self.adapter = DetectorAdapter(model)
        self.config = config
        self.loss_config = config.loss.multiview()
        self.spec = CropSpec(model.config.input_size, model.config.crop)
        self._held_out: HeldOutViews | None = None
        if isinstance(teacher, TorchLandmarkModel):
            teacher = [(teacher, 1.0)]
        self.teachers = (
            TeacherEnsemble(teacher, self.spec.size, self.spec.crop) if teacher else None
        )

    def teacher_points(self, crops: torch.Tensor) -> torch.Tensor:
        """The teachers' fused ``(N, 68, 2)`` points on ``(N, 3, S, S)`` crops, in their pixels.

        Each teacher sees the crop resampled to its own input size and framing
        (:class:`~mvface.train.teachers.TeacherEnsemble`).
        """
        if self.teachers is None:
            raise ValueError("this run has no teacher")
        return self.teachers.points(crops)

    # ------------------------------------------------------------------ training

    @property
    def multiview_loss_fn(self) -> MultiviewLossFn:
        """The plug-in loss as ``train.compile_loss`` asks on this module's device."""
        if compiles_loss(self.config.train.compile_loss, self.device.type, triton_installed()):
            return compiled_multiview_losses()
        return multiview_losses

    def compute_losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """All loss terms of one batch; ``"loss"`` is the one optimized.

        Args:
            batch: a :class:`~mvface.train.data.StepBatches` batch (on this module's device).

        Returns:
            ``loss`` and, when present, ``real_l1`` (``L_orig``), ``consistency``, ``anchor``,
            ``supervision``, ``multiview`` (their weighted sum) and ``distill`` (towards the
            teacher).
        """
        parts = [batch[k] for k in ("real_crops", "syn_crops") if k in batch]
        if not parts:
            raise ValueError("batch has neither real nor synthetic crops")
        crops = torch.cat(parts)
        points = self.model.forward_points(self.adapter.normalize(crops))
        out: dict[str, torch.Tensor] = {}
        total = points.new_zeros(())
        n_real = len(batch["real_crops"]) if "real_crops" in batch else 0
        taught = len(crops) if self.config.teacher.synthetic else n_real
        if self.teachers is not None and taught:
            distill = landmark_l1(
                points[:taught].float(), self.teacher_points(crops[:taught]), float(self.spec.size)
            )
            out["distill"] = distill
            total = total + self.config.teacher.weight * distill
        if n_real:
            loss = self.config.loss
            targets = batch["real_targets"]
            real_l1 = landmark_l1(
                points[:n_real].float(),
                targets,
                float(self.spec.size),
                real_point_weights(targets, loss.real_jaw_weight, loss.real_turned_jaw_weight),
            )
            out["real_l1"] = real_l1
            w_orig = self.config.loss.w_orig if self.config.train.mode == "finetune" else 1.0
            total = total + w_orig * real_l1
        if "syn_crops" in batch:
            b, v = batch["projections"].shape[:2]
            # float32 outside autocast (3x3 solves); no value checks: they would synchronize
            # the device every step, and the data readers already refused non-finite cameras
            with (
                torch.autocast(device_type=self.device.type, enabled=False),
                value_checks_disabled(),
            ):
                views = crop_to_image(points[n_real:].float(), batch["syn_to_image"].float())
                mv = self.multiview_loss_fn(
                    views.reshape(b, v, -1, 2),
                    batch["projections"].float(),
                    batch["pseudo_gt"].float(),
                    float(batch["image_size"]),
                    batch["visibility"],
                    self.loss_config,
                )
            out.update({k: mv[k] for k in ("consistency", "anchor", "supervision")})
            out["multiview"] = mv["total"]
            total = total + mv["total"]
        out["loss"] = total
        return out

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        """One optimizer step's loss; logs every term under ``train/``."""
        step = int(batch["step"])
        if step != self.global_step:  # the data must be the step's, or resume is not exact
            raise RuntimeError(f"batch of step {step} arrived at step {self.global_step}")
        torch.manual_seed(step_seed(self.config.train.seed, step, self.global_rank))
        losses = self.compute_losses(batch)
        size = sum(len(batch[k]) for k in ("real_crops", "syn_crops") if k in batch)
        for name, value in losses.items():
            self.log(
                f"train/{name}",
                value.detach(),
                on_step=True,
                on_epoch=False,
                prog_bar=name == "loss",
                batch_size=size,
            )
        return losses["loss"]

    def configure_optimizers(self) -> Any:
        """The optimizer of ``optim`` and a per-step warm-up + cosine/constant schedule.

        Unset ``lr`` and ``warmup_steps`` take the mode's defaults (:meth:`OptimSection.for_mode`).
        """
        o = self.config.optim.for_mode(self.config.train.mode)
        assert o.lr is not None and o.warmup_steps is not None
        params = [p for p in self.net.parameters() if p.requires_grad]
        optimizer: torch.optim.Optimizer
        if o.optimizer == "adamw":
            optimizer = torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay)
        elif o.optimizer == "adam":
            optimizer = torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay)
        else:
            optimizer = torch.optim.SGD(
                params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay, nesterov=True
            )
        total, warm, final = self.config.train.steps, o.warmup_steps, o.final_lr_fraction

        def factor(step: int) -> float:
            if warm and step < warm:
                return (step + 1) / warm
            if o.schedule == "constant":
                return 1.0
            progress = min(1.0, (step - warm) / max(1, total - warm))
            return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * progress))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    # ------------------------------------------------------------------ validation

    def validation_step(
        self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        """Run one validation task (``batch["task"]``) and log its metrics."""
        task = batch["task"]
        if task == "landmarks":
            for name, value in self.evaluate_landmarks().items():
                self.log(name, value, batch_size=1, add_dataloader_idx=False)
        elif task == "consistency":
            value = self.held_out_consistency()
            self.log("val/consistency", value, batch_size=1, add_dataloader_idx=False)
        else:  # pragma: no cover - the data module only makes the two tasks
            raise ValueError(f"unknown validation task {task!r}")

    def evaluate_landmarks(self) -> dict[str, float]:
        """NMEs (percent) of the current weights on ``train.val_dataset``.

        Raises:
            BadInputError: the validation subset leaves a yaw bin empty while
                ``val/nme_balanced`` is monitored.
        """
        t = self.config.train
        assert t.val_root is not None
        cfg = EvalConfig(
            dataset=t.val_dataset,
            root=Path(t.val_root),
            model=self.model.config.name,
            limit=t.val_limit,
        )
        result = evaluate(cfg, model=self.model, progress=False).result
        out = {"val/nme_mean": float(result.nme_mean)}
        if result.nme_balanced is not None:
            if not math.isfinite(result.nme_balanced) and t.monitor == "val/nme_balanced":
                raise BadInputError(
                    t.val_root,
                    f"the first {t.val_limit} faces leave a yaw bin empty, so val/nme_balanced is "
                    f"undefined; raise train.val_limit or monitor val/nme_mean",
                )
            out["val/nme_balanced"] = float(result.nme_balanced)
        return out

    def setup(self, stage: str) -> None:
        """Prepare the held-out synthetic views once (fails early on a bad folder)."""
        t = self.config.train
        if t.val_synthetic and t.val_every > 0 and self._held_out is None:
            self._held_out = HeldOutViews(
                t.val_synthetic, t.val_synthetic_limit, t.val_synthetic_views, self.spec
            )

    @torch.no_grad()
    def held_out_consistency(self) -> float:
        """Mean multiview consistency error x100 on the held-out synthetic identities."""
        if self._held_out is None:
            self.setup("validate")
        h = self._held_out
        assert h is not None
        preds = []
        for start in range(0, len(h.crops), 64):
            crops = h.crops[start : start + 64].to(self.device)
            points = self.model.forward_points(self.adapter.normalize(crops)).float()
            preds.append(crop_to_image(points, h.to_image[start : start + 64].to(self.device)))
        views = torch.cat(preds).double().cpu().numpy().reshape(h.num_identities, h.views, -1, 2)
        errors = multiview_consistency_error(h.projections, views, h.image_size)
        return float(100.0 * errors.mean())

    # ------------------------------------------------------------------ checkpoints

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store the recipe in the checkpoint (plain types, loadable with ``weights_only``)."""
        checkpoint[CHECKPOINT_KEY] = {
            "config": self.config.to_dict(),
            "mvface_version": __version__,
            "model_config": self.model.config.to_dict(),
        }
