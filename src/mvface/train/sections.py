"""The six sections of a training recipe (:class:`~mvface.train.config.TrainConfig`), by field.

Every field has a default and a documented meaning and unit; :data:`SECTIONS` names them as a
recipe file and an override do (``optim.lr=...``). Reading, merging and checking recipes is
:mod:`mvface.train.config`'s work; these dataclasses only say what a run can be told.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from mvface.plugin.loss import MultiviewLossConfig

__all__ = [
    "MODE_DEFAULTS",
    "SECTIONS",
    "DataSection",
    "LossSection",
    "ModelSection",
    "OptimSection",
    "TeacherSection",
    "TrainSection",
]


@dataclass
class ModelSection:
    """The detector being trained.

    Attributes:
        name: registered model name (``mvface.list_models()``); must be a trainable family.
        weights: weights to start from (``finetune``: the base model's shipped weights);
            ``None`` = the family's random initialization (seeded by ``train.seed``).
        options: family options passed to ``create_model`` (e.g. ``{input_size: 128}``).
    """

    name: str = "mvnet"
    weights: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class TeacherSection:
    """A frozen model whose points the trained one learns to reproduce (distillation).

    The teacher sees each crop of the step as the trained model sees it, resized (bilinear) to
    the teacher's own input size, so it has no more information than the student: what it
    passes on is what a bigger network makes of the same pixels (e.g. ``base+``'s 192 px
    network teaching a 128 px one, ``configs/fast/stage3.yaml``). Its points, mapped to the
    student's crop pixels, are targets of an L1 term on every real and synthetic crop.

    Attributes:
        name: registered model name (a trainable family); ``None`` = no teacher.
        weights: the teacher's weights (as :attr:`ModelSection.weights`).
        options: family options of the teacher.
        weight: weight of the distillation term (L1 in crop pixels / input size, x and y).
        extra: more teachers, ``NAME`` or ``NAME:WEIGHTS`` (default options), fused point by
            point with the first (:class:`~mvface.train.teachers.TeacherEnsemble`).
        shares: share of each teacher in the fused target, the first teacher's first; empty
            = equal shares.
        synthetic: whether synthetic crops get the term too; ``False`` teaches on the real
            crops only (for a set whose labels are the teacher's already, fused across views
            by ``mvface synth relabel``: its per-view points would only add each view's error,
            and the teacher's cost per step falls with the crops it sees).
    """

    name: str | None = None
    weights: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    weight: float = 1.0
    extra: list[str] = field(default_factory=list)
    shares: list[float] = field(default_factory=list)
    synthetic: bool = True


@dataclass
class DataSection:
    """What every step draws, and how it is augmented.

    Attributes:
        real_format: reader of the real data (``mvface.data.readers.list_readers()``).
        real_roots: folders of real training data (never the validation set).
        real_limit: use only the first N faces of each root.
        real_per_step: real faces per step (reference: 3 per identity for DAD-3DNet+,
            i.e. 12 with 4 identities).
        synthetic: folder of a synthetic multiview set (``mvface synth``); needed by finetune.
        synthetic_extra: more synthetic sets, pooled with ``synthetic`` (identities drawn
            uniformly from all of them).
        synthetic_limit: use only the first N identities of each set.
        identities_per_step: B, identities per step (reference 4).
        views_per_identity: V, random views per identity (reference 32 of 512).
        scale_jitter: real crops: largest relative change of the crop size.
        shift_jitter: real crops: largest crop-centre shift, fraction of the crop size.
        rotation_deg: real crops: largest in-plane rotation, degrees.
        flip: real crops: probability of a horizontal flip (labels permuted).
        colour_jitter: real crops: largest relative change of brightness, contrast and
            saturation.
        synthetic_jitter: synthetic crops: scale and shift jitter of the crop box (the
            cameras stay exact: predictions are mapped back to each view's pixels).
        synthetic_rotation_deg: synthetic crops: largest in-plane rotation, degrees (mapped
            back like the jitter; 0 keeps them upright).
        synthetic_colour_jitter: synthetic crops: as ``colour_jitter`` (renders share one
            light and camera response; real photos do not).
        synthetic_max_filled: synthetic views: draw only views whose fraction of head pixels
            filled in rather than observed in the source photo (``meta.json``
            ``filled_fraction``) is at most this; 1.0 (default) draws every view, as before;
            sets without the record are drawn from in full.
        num_workers: ``DataLoader`` worker processes (0: in the training process).
    """

    real_format: str = "pts"
    real_roots: list[str] = field(default_factory=list)
    real_limit: int | None = None
    real_per_step: int = 12
    synthetic: str | None = None
    synthetic_extra: list[str] = field(default_factory=list)
    synthetic_limit: int | None = None
    identities_per_step: int = 4
    views_per_identity: int = 32
    scale_jitter: float = 0.1
    shift_jitter: float = 0.05
    rotation_deg: float = 15.0
    flip: float = 0.5
    colour_jitter: float = 0.2
    synthetic_jitter: float = 0.05
    synthetic_rotation_deg: float = 0.0
    synthetic_colour_jitter: float = 0.0
    synthetic_max_filled: float = 1.0
    num_workers: int = 0

    def synthetic_roots(self) -> list[str]:
        """Every synthetic set of the run: ``synthetic`` then ``synthetic_extra``."""
        return ([self.synthetic] if self.synthetic else []) + list(self.synthetic_extra)


@dataclass
class LossSection:
    """Loss weights: ``total = w_orig · L_orig + plug-in terms`` (finetune), ``L_orig`` (train).

    ``L_orig`` is the L1 distance between predicted and annotated points in crop pixels divided
    by the input size. The plug-in fields are those of
    :class:`~mvface.plugin.loss.MultiviewLossConfig` (reference: all 0.1, S = 4).

    Attributes:
        w_orig: weight of the real-data loss in finetune.
        real_jaw_weight: weight of points 0–16 relative to the others in ``L_orig``.
        real_turned_jaw_weight: weight of the jaw points on the side of a real face that is
            turned away from the camera (see :func:`mvface.train.module.turned_away_jaw`):
            300-W draws them on the visible outline, not where the jaw is. ``None``: as
            ``real_jaw_weight``.
        num_source_views: S, views triangulated by the consistency term.
        w_consistency: weight of the consistency term.
        w_anchor: weight of the anchored-consistency term.
        w_supervision: weight of the pseudo-ground-truth supervision term.
        jaw_weight: jaw weight of the supervision term.
        stop_gradient: detach the triangulated points.
        hidden_weight: weight of landmarks marked hidden in the synthetic visibility.
    """

    w_orig: float = 1.0
    real_jaw_weight: float = 1.0
    real_turned_jaw_weight: float | None = None
    # the plug-in's own defaults, flat in this section (``loss.w_consistency=...``)
    num_source_views: int = MultiviewLossConfig.num_source_views
    w_consistency: float = MultiviewLossConfig.w_consistency
    w_anchor: float = MultiviewLossConfig.w_anchor
    w_supervision: float = MultiviewLossConfig.w_supervision
    jaw_weight: float = MultiviewLossConfig.jaw_weight
    stop_gradient: bool = MultiviewLossConfig.stop_gradient
    hidden_weight: float = MultiviewLossConfig.hidden_weight

    def multiview(self) -> MultiviewLossConfig:
        """The plug-in's :class:`MultiviewLossConfig` (validates the values)."""
        names = [f.name for f in fields(MultiviewLossConfig)]
        return MultiviewLossConfig(**{name: getattr(self, name) for name in names})


@dataclass
class OptimSection:
    """Optimizer and learning-rate schedule (stepped every training step).

    ``lr`` and ``warmup_steps`` default to the mode's values (:data:`MODE_DEFAULTS`): training
    from scratch takes large steps at once; fine-tuning a trained network takes the steps of the
    shipped fine-tuning recipes (``configs/<model>/stage*.yaml``: 2e-5 to 2e-4 after 20-50
    warm-up steps), since AdamW's first steps move every weight by about ``lr`` whatever the
    gradient's size (measured: ``lr`` 1e-3 without warm-up takes the shipped ``fast`` from 3 % to
    39 % NME on six AFW faces in three steps on a tiny fixture; 1e-4 without warm-up to 7 %).

    Attributes:
        optimizer: ``"adamw"``, ``"adam"`` or ``"sgd"`` (with Nesterov momentum).
        lr: peak learning rate; ``None`` = the mode's default.
        weight_decay: decoupled (AdamW) or L2 (Adam, SGD) weight decay.
        momentum: SGD momentum.
        schedule: ``"constant"`` or ``"cosine"`` (from ``lr`` to ``final_lr_fraction · lr``).
        warmup_steps: linear warm-up from 0 over this many steps; ``None`` = the mode's
            default.
        final_lr_fraction: last learning rate of the cosine schedule relative to ``lr``.
        grad_clip: clip the gradient norm to this value (Lightning's ``gradient_clip_val``;
            0 = off).
    """

    optimizer: Literal["adamw", "adam", "sgd"] = "adamw"
    lr: float | None = None
    weight_decay: float = 1e-4
    momentum: float = 0.9
    schedule: Literal["constant", "cosine"] = "cosine"
    warmup_steps: int | None = None
    final_lr_fraction: float = 0.01
    grad_clip: float = 0.0

    def for_mode(self, mode: str) -> OptimSection:
        """A copy whose unset ``lr`` and ``warmup_steps`` take ``mode``'s defaults."""
        lr, warmup = MODE_DEFAULTS[mode]
        return dataclasses.replace(
            self,
            lr=lr if self.lr is None else self.lr,
            warmup_steps=warmup if self.warmup_steps is None else self.warmup_steps,
        )


#: ``train.mode`` -> default ``(optim.lr, optim.warmup_steps)``. ``finetune`` starts from
#: trained weights: the first shipped recipe's values (``configs/base-plus/stage01.yaml``).
MODE_DEFAULTS: dict[str, tuple[float, int]] = {"train": (1e-3, 0), "finetune": (1e-4, 50)}


@dataclass
class TrainSection:
    """The run: length, seed, checkpoints, validation, early stopping, hardware, output.

    Attributes:
        mode: ``"train"`` (real-data loss only) or ``"finetune"`` (``w_orig · L_orig`` + the
            plug-in terms); set by the command.
        steps: optimizer steps in total (a resumed run continues up to this number).
        seed: seeds the model's initialization and every step's data (step ``k`` draws the
            same images, views and augmentations whatever happened before).
        checkpoint_every: write a checkpoint every N steps (0 = never).
        keep_last: checkpoints kept (the K most recent; a new one is complete on disk before
            an old one is deleted).
        val_every: validate every N steps (0 = never).
        val_dataset: benchmark of the validation (``mvface.eval.runner.DATASETS``).
        val_root: its folder (e.g. the AFLW2000-3D dev half); ``None`` = no landmark
            validation. Never train on it.
        val_limit: validate on the first N faces (protocol order).
        val_synthetic: a synthetic set of identities *not* trained on, for ``val/consistency``
            (multiview consistency error x100).
        val_synthetic_limit: identities of ``val_synthetic`` used.
        val_synthetic_views: views per identity (spread evenly over its views).
        monitor: metric of early stopping and of the best weights: ``val/nme_balanced``,
            ``val/nme_mean`` or ``val/consistency`` (lower is better).
        early_stop_patience: validations without improvement before stopping (0 = off).
        early_stop_min_delta: smallest decrease counted as an improvement.
        accelerator: Lightning accelerator (``"auto"``, ``"cpu"``, ``"gpu"``, ...).
        devices: Lightning devices (``"auto"``, a count such as ``"2"``, or ``"0,1"``).
        num_nodes: machines for multi-node DDP.
        strategy: Lightning strategy (``"auto"``, ``"ddp"``, ...).
        precision: Lightning precision (``"32-true"``, ``"16-mixed"``, ``"bf16-mixed"``).
        deterministic: Lightning's ``deterministic`` (deterministic kernels): needed on GPUs
            for a bit-identical resume; CPU runs are reproducible without it.
        compile_loss: run the plug-in loss through ``torch.compile`` (its forward and backward
            become a few fused kernels instead of ~1000 small ones): ``"auto"`` = on a CUDA
            device with Triton installed (on a GPU the small kernels are launch-bound; on a
            CPU the loss is under 1 % of a step and compiling costs ~20–60 s), ``"on"``,
            ``"off"``.
        out: run folder (``config.yaml``, ``checkpoints/``, ``logs/``, weights).
        resume: ``""`` (fresh run), ``"last"`` (latest checkpoint in ``out``, fresh if none)
            or a checkpoint path.
        log_every: log the training losses every N steps.
        progress: show the rich progress bar.
    """

    mode: Literal["train", "finetune"] = "train"
    steps: int = 1000
    seed: int = 0
    checkpoint_every: int = 100
    keep_last: int = 3
    val_every: int = 100
    val_dataset: str = "aflw2000-3d"
    val_root: str | None = None
    val_limit: int | None = 200
    val_synthetic: str | None = None
    val_synthetic_limit: int | None = 8
    val_synthetic_views: int = 8
    monitor: str = "val/nme_balanced"
    early_stop_patience: int = 0
    early_stop_min_delta: float = 0.0
    accelerator: str = "auto"
    devices: str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    deterministic: bool = False
    compile_loss: Literal["auto", "on", "off"] = "auto"
    out: str = "runs/mvface"
    resume: str = ""
    log_every: int = 10
    progress: bool = True


#: section name -> dataclass
SECTIONS: dict[str, type] = {
    "model": ModelSection,
    "teacher": TeacherSection,
    "data": DataSection,
    "loss": LossSection,
    "optim": OptimSection,
    "train": TrainSection,
}
