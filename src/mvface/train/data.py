"""Training data: augmented real crops and synthetic multiview batches, one batch per step.

Every training step ``k`` gets one batch, a pure function of ``(seed, k, rank)``: its random
generator is seeded from those three numbers (:func:`step_rng`), so a batch never depends on the
batches before it, the number of workers or an interruption. That is what makes ``--resume``
bit-identical without saving any data-loader state: the sampler starts at the step Lightning
restores (:class:`StepSampler`).

A batch (:class:`StepBatches`) is a dict of tensors (``S`` = the model's input size, ``R`` real
faces, ``B`` identities, ``V`` views):

* ``step``: ``()`` int64, the global step it was drawn for;
* ``real_crops``: ``(R, 3, S, S)`` uint8 RGB crops; ``real_targets``: ``(R, 68, 2)`` float32,
  annotated points in crop pixels (after augmentation);
* ``syn_crops``: ``(B·V, 3, S, S)`` uint8; ``syn_to_image``: ``(B·V, 2, 3)`` float32 crop →
  view-pixel maps; ``projections``: ``(B, V, 3, 4)`` float32 cameras in view pixels;
  ``pseudo_gt``: ``(B, V, 68, 2)`` float32 view pixels; ``visibility``: ``(B, V, 68)`` bool;
  ``image_size``: ``()`` float32, side of the views in pixels.

``step`` and ``image_size`` become Python numbers before Lightning moves a batch to the device
(:meth:`TrainingData.on_before_batch_transfer`), so reading them costs no device sync.

Real faces are cropped as the model crops them (its ``config.crop`` applied to the tight box of
the annotated points) with scale/shift jitter, in-plane rotation, horizontal flip (labels
permuted by :data:`~mvface.data.scheme.FLIP_PERMUTATION`) and colour jitter; all geometric
augmentations are folded into one affine map per face, so points and pixels move together
exactly. Synthetic views are cropped from the tight box of their pseudo ground truth (with an
optional small jitter); predictions are mapped back to view pixels before the multiview loss,
so the cameras stay exact.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch.utils.data import DataLoader, Dataset, Sampler

from mvface.data.image import load_image
from mvface.data.readers import read_dataset
from mvface.data.readers.synthetic import SyntheticMultiviewSet, projection_matrices
from mvface.data.record import FaceSample, landmark_box
from mvface.data.scheme import FLIP_PERMUTATION
from mvface.errors import BadInputError
from mvface.models.boxes import BoxTransform
from mvface.models.trainable import apply_affine, invert_affine, warp_crops
from mvface.plugin.adapter import face_crop_matrices, flip_crop_matrices
from mvface.train.config import DataSection, TrainConfig

__all__ = [
    "CropSpec",
    "HeldOutViews",
    "RealAugment",
    "RealFaces",
    "StepBatches",
    "StepLoader",
    "StepSampler",
    "SyntheticViews",
    "TrainingData",
    "augment_real_crops",
    "colour_jitter",
    "step_rng",
]

#: Independent random streams of one step.
_REAL_STREAM, _SYNTHETIC_STREAM = 1, 2


def step_rng(seed: int, index: int, stream: int) -> np.random.Generator:
    """The random generator of sample ``index`` (``step · world_size + rank``) and a stream."""
    return np.random.default_rng(np.random.SeedSequence([seed, index, stream]))


@dataclass(frozen=True)
class CropSpec:
    """How a model crops a face: ``config.input_size`` and ``config.crop``."""

    size: int
    crop: BoxTransform


@dataclass(frozen=True)
class RealAugment:
    """Augmentation of real crops (see :class:`~mvface.train.config.DataSection`).

    Attributes:
        scale_jitter: largest relative crop-size change.
        shift_jitter: largest crop-centre shift, fraction of the crop size.
        rotation_deg: largest in-plane rotation, degrees.
        flip: probability of a horizontal flip.
        colour_jitter: largest relative brightness, contrast and saturation change.
    """

    scale_jitter: float = 0.0
    shift_jitter: float = 0.0
    rotation_deg: float = 0.0
    flip: float = 0.0
    colour_jitter: float = 0.0

    @classmethod
    def from_section(cls, data: DataSection) -> RealAugment:
        """The augmentation a :class:`DataSection` asks for."""
        return cls(
            data.scale_jitter, data.shift_jitter, data.rotation_deg, data.flip, data.colour_jitter
        )


#: Luma weights of R, G, B (ITU-R BT.601): the grey that saturation moves towards, as the
#: colour map that turns every channel into that grey.
_TO_GREY = np.tile([0.299, 0.587, 0.114], (3, 1))


def colour_jitter(patches: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Random brightness, contrast and saturation per crop.

    For one crop with factors ``b``, ``c``, ``s`` and mean intensity ``m``, the three steps
    (scale by ``b``; move away from the mean ``b·m`` by ``c``; move away from the luma grey by
    ``s``) compose into one affine colour map, ``x → c·b·(s·x + (1 − s)·luma(x)) + (1 − c)·b·m``,
    applied with ``cv2.transform`` in a single pass (rounded and saturated to uint8): a tenth of
    the cost of the step-by-step float arrays, the largest part of a training batch's CPU time.

    Args:
        patches: ``(N, S, S, 3)`` uint8 RGB.
        strength: each factor is ``1 + U(-strength, strength)`` (0 = unchanged).
        rng: random generator.

    Returns:
        ``(N, S, S, 3)`` uint8.
    """
    if strength <= 0:
        return patches
    n = len(patches)
    brightness, contrast, saturation = 1.0 + rng.uniform(-strength, strength, (3, n))
    means = patches.reshape(n, -1).mean(axis=1)
    out = np.empty_like(patches)
    for i in range(n):
        mix = saturation[i] * np.eye(3) + (1.0 - saturation[i]) * _TO_GREY
        offset = (1.0 - contrast[i]) * brightness[i] * means[i]
        matrix = np.column_stack([contrast[i] * brightness[i] * mix, np.full(3, offset)])
        out[i] = cv2.transform(patches[i], matrix)
    return out


def augment_real_crops(
    images: list[np.ndarray],
    landmarks: np.ndarray,
    spec: CropSpec,
    augment: RealAugment,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Crop annotated faces as the model does, with augmentation.

    Args:
        images: N ``(H, W, 3)`` uint8 RGB images.
        landmarks: ``(N, 68, 2+)`` annotated points, image pixels.
        spec: the model's crop.
        augment: augmentation strengths.
        rng: random generator (the same generator state gives the same crops).

    Returns:
        ``(N, S, S, 3)`` uint8 crops and ``(N, 68, 2)`` float64 targets in crop pixels (flipped
        faces have their labels permuted, so point 36 is always the subject's right eye
        corner).
    """
    pts = np.asarray(landmarks, np.float64)[..., :2]
    n = len(pts)
    angles = (
        np.radians(rng.uniform(-augment.rotation_deg, augment.rotation_deg, n))
        if augment.rotation_deg > 0
        else None
    )
    m = face_crop_matrices(
        landmark_box(pts),
        spec.size,
        spec.crop,
        jitter=(augment.scale_jitter, augment.shift_jitter),
        angles=angles,
        rng=rng,
    )
    flip = rng.random(n) < augment.flip if augment.flip > 0 else np.zeros(n, bool)
    m = flip_crop_matrices(m, spec.size, flip)
    patches = warp_crops(images, m, spec.size)
    targets = apply_affine(m, pts)
    targets[flip] = targets[flip][:, list(FLIP_PERMUTATION)]
    return colour_jitter(patches, augment.colour_jitter, rng), targets


def _to_chw(patches: np.ndarray) -> torch.Tensor:
    """``(N, S, S, 3)`` uint8 → ``(N, 3, S, S)`` contiguous uint8 tensor."""
    return torch.from_numpy(np.ascontiguousarray(patches.transpose(0, 3, 1, 2)))


class RealFaces:
    """Annotated real faces from one or more dataset folders.

    Args:
        fmt: reader name (``mvface.data.readers.list_readers()``).
        roots: dataset folders.
        limit: use only the first N faces of each folder.

    Attributes:
        samples: faces with landmarks, in reading order.
        skipped: one line per item the readers could not use, or without landmarks.

    Raises:
        BadInputError: a folder cannot be read, or no face has landmarks.
    """

    def __init__(self, fmt: str, roots: list[str], limit: int | None = None) -> None:
        self.samples: list[FaceSample] = []
        self.skipped: list[str] = []
        for root in roots:
            dataset = read_dataset(fmt, root, limit=limit)
            self.skipped.extend(dataset.skipped)
            for sample in dataset.samples:
                if sample.landmarks is None:
                    self.skipped.append(f"{sample.image_path or sample.name}: no landmarks")
                else:
                    self.samples.append(sample)
        if not self.samples:
            raise BadInputError(", ".join(roots) or "data.real_roots", "no annotated face")

    def __len__(self) -> int:
        return len(self.samples)

    def draw(
        self, count: int, spec: CropSpec, augment: RealAugment, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``count`` random faces (distinct when there are enough), augmented.

        Returns:
            ``(count, 3, S, S)`` uint8 crops and ``(count, 68, 2)`` float32 targets (crop
            pixels).
        """
        idx = rng.choice(len(self.samples), size=count, replace=len(self.samples) < count)
        chosen = [self.samples[i] for i in idx]
        images = [
            s.image if isinstance(s.image, np.ndarray) else load_image(s.image) for s in chosen
        ]
        landmarks = np.stack([np.asarray(s.landmarks)[:, :2] for s in chosen])
        patches, targets = augment_real_crops(images, landmarks, spec, augment, rng)
        return _to_chw(patches), torch.from_numpy(targets.astype(np.float32))


class SyntheticViews:
    """Random multiview batches from synthetic sets (``mvface synth`` output), pooled.

    Args:
        roots: the synthetic dataset folders (one or several).
        limit: use only the first N identities of each.
    """

    def __init__(self, roots: str | Path | Sequence[str | Path], limit: int | None = None) -> None:
        roots = [roots] if isinstance(roots, (str, Path)) else list(roots)
        if not roots:
            raise ValueError("SyntheticViews needs at least one synthetic set")
        self.sources = [SyntheticMultiviewSet(root, limit=limit) for root in roots]
        #: (set, identity) of every pooled identity.
        self.index = [(s, i) for s, source in enumerate(self.sources) for i in range(len(source))]

    def __len__(self) -> int:
        return len(self.index)

    def draw(
        self,
        identities: int,
        views: int,
        spec: CropSpec,
        jitter: float,
        rng: np.random.Generator,
        rotation_deg: float = 0.0,
        colour: float = 0.0,
        max_filled: float = 1.0,
    ) -> dict[str, torch.Tensor]:
        """``identities`` random identities x ``views`` random views, cropped for the model.

        ``jitter`` (box scale and shift), ``rotation_deg`` (in-plane) and ``colour`` (see
        :func:`colour_jitter`) vary each crop; the cameras stay exact, since predictions are
        mapped back to view pixels through ``syn_to_image``. Views with more than
        ``max_filled`` of the head filled in (the unseen side) are not drawn
        (``DataSection.synthetic_max_filled``).

        Returns:
            ``syn_crops``, ``syn_to_image``, ``projections``, ``pseudo_gt``, ``visibility``,
            ``image_size`` (see the module docstring).

        Raises:
            BadInputError: views of different sizes in one batch.
        """
        n = len(self.index)
        chosen = rng.choice(n, size=identities, replace=n < identities)
        picks = [self.index[int(i)] for i in chosen]
        samples = [self.sources[s].sample(i, views, rng, max_filled) for s, i in picks]
        sizes = {s.images.shape[1:3] for s in samples}
        if len(sizes) != 1:
            roots = sorted({str(self.sources[s].root) for s, _ in picks})
            raise BadInputError(", ".join(roots), f"views of different sizes in one batch: {sizes}")
        h, w = sizes.pop()
        images = [img for s in samples for img in s.images]
        pseudo_gt = np.stack([s.landmarks for s in samples])  # (B, V, 68, 2)
        count = len(images)
        angles = (
            np.radians(rng.uniform(-rotation_deg, rotation_deg, count))
            if rotation_deg > 0
            else None
        )
        m = face_crop_matrices(
            landmark_box(pseudo_gt.reshape(-1, 68, 2)),
            spec.size,
            spec.crop,
            jitter=(jitter, jitter),
            angles=angles,
            rng=rng,
        )
        crops = colour_jitter(warp_crops(images, m, spec.size), colour, rng)
        return {
            "syn_crops": _to_chw(crops),
            "syn_to_image": torch.from_numpy(invert_affine(m).astype(np.float32)),
            "projections": torch.from_numpy(np.stack([s.projections for s in samples])).float(),
            "pseudo_gt": torch.from_numpy(pseudo_gt.astype(np.float32)),
            "visibility": torch.from_numpy(np.stack([s.visibility for s in samples])),
            "image_size": torch.tensor(math.sqrt(h * w), dtype=torch.float32),
        }


class StepBatches(Dataset[dict[str, torch.Tensor]]):
    """Map-style dataset: item ``step · world_size + rank`` is that rank's batch of ``step``.

    Args:
        config: the run's config (``data`` section, ``train.seed`` and ``train.mode``).
        spec: the model's crop.
        real: real faces (``None``: no real part, e.g. finetune with ``w_orig = 0``).
        synthetic: synthetic views (``None`` in ``train`` mode).
        world_size: number of processes drawing batches (DDP ranks).
    """

    def __init__(
        self,
        config: TrainConfig,
        spec: CropSpec,
        real: RealFaces | None,
        synthetic: SyntheticViews | None,
        world_size: int = 1,
    ) -> None:
        self.data = config.data
        self.seed = config.train.seed
        self.spec = spec
        self.real = real
        self.synthetic = synthetic
        self.world_size = world_size
        self.augment = RealAugment.from_section(config.data)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        batch: dict[str, torch.Tensor] = {
            "step": torch.tensor(index // self.world_size, dtype=torch.int64)
        }
        if self.real is not None and self.data.real_per_step > 0:
            rng = step_rng(self.seed, index, _REAL_STREAM)
            crops, targets = self.real.draw(self.data.real_per_step, self.spec, self.augment, rng)
            batch["real_crops"], batch["real_targets"] = crops, targets
        if self.synthetic is not None:
            rng = step_rng(self.seed, index, _SYNTHETIC_STREAM)
            batch.update(
                self.synthetic.draw(
                    self.data.identities_per_step,
                    self.data.views_per_identity,
                    self.spec,
                    self.data.synthetic_jitter,
                    rng,
                    rotation_deg=self.data.synthetic_rotation_deg,
                    colour=self.data.synthetic_colour_jitter,
                    max_filled=self.data.synthetic_max_filled,
                )
            )
        return batch


class StepSampler(Sampler[int]):
    """Indices of the batches still to draw: steps ``start() .. total_steps - 1``.

    The whole run is one Lightning epoch. The first step is read from ``start`` (the trainer's
    ``global_step``) when iteration begins, after Lightning has restored a checkpoint, so a
    resumed run continues with exactly the next step's batch; no loader state is saved.

    Args:
        total_steps: steps of the run (the epoch's length as Lightning counts it).
        start: returns the first step to draw (``lambda: trainer.global_step``).
        rank: this process's global rank.
        world_size: number of ranks.
    """

    def __init__(
        self,
        total_steps: int,
        start: Callable[[], int] = lambda: 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.total_steps = total_steps
        self.start = start
        self.rank = rank
        self.world_size = world_size

    def __len__(self) -> int:
        return self.total_steps

    def __iter__(self) -> Iterator[int]:
        # a generator: ``start()`` is read at the first ``next``, after any checkpoint restore
        for step in range(self.start(), self.total_steps):
            yield step * self.world_size + self.rank


class StepLoader(DataLoader[dict[str, torch.Tensor]]):
    """A ``DataLoader`` whose position is the trainer's step (see :class:`StepSampler`).

    Its (empty) ``state_dict`` tells Lightning that it resumes mid-epoch correctly.
    """

    def state_dict(self) -> dict[str, Any]:
        """Nothing to save: the position is ``global_step``, restored with the loops."""
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Nothing to restore (see :meth:`state_dict`)."""


class HeldOutViews:
    """Fixed views of held-out synthetic identities, for the ``val/consistency`` metric.

    The views of each identity are spread evenly over its rendered views; crops use no jitter.

    Args:
        root: a synthetic dataset folder of identities *not* trained on.
        limit: first N identities.
        views: views per identity (at least 2).
        spec: the model's crop.

    Attributes:
        crops: ``(B·V, 3, S, S)`` uint8; ``to_image``: ``(B·V, 2, 3)`` float32;
        projections: ``(B, V, 3, 4)`` float64; ``image_size``: ``(W, H)`` of the views.
    """

    def __init__(self, root: str | Path, limit: int | None, views: int, spec: CropSpec) -> None:
        if views < 2:
            raise ValueError("held-out consistency needs at least 2 views per identity")
        source = SyntheticMultiviewSet(root, limit=limit)
        crops, to_image, projections = [], [], []
        sizes = set()
        for ident in source.identities:
            idx = ident.spread_views(views)
            images = [load_image(ident.image_files[i]) for i in idx]
            h, w = images[0].shape[:2]
            sizes.add((w, h))
            m = face_crop_matrices(landmark_box(ident.landmarks[idx]), spec.size, spec.crop)
            crops.append(_to_chw(warp_crops(images, m, spec.size)))
            to_image.append(torch.from_numpy(invert_affine(m).astype(np.float32)))
            projections.append(projection_matrices(ident.cameras[idx], w))
        if len(sizes) != 1:
            raise BadInputError(root, f"held-out views of different sizes: {sorted(sizes)}")
        self.num_identities = len(projections)
        self.views = views
        self.crops = torch.cat(crops)
        self.to_image = torch.cat(to_image)
        self.projections = np.stack(projections)
        self.image_size = sizes.pop()


class TrainingData(pl.LightningDataModule):
    """The run's data for Lightning: step batches for training, validation tasks.

    Validation batches are task names (``{"task": "landmarks"}`` and/or
    ``{"task": "consistency"}``): the module runs the evaluation itself (see
    :class:`~mvface.train.module.LandmarkTrainingModule`).

    Args:
        config: the run's config.
        spec: the model's crop.
    """

    def __init__(self, config: TrainConfig, spec: CropSpec) -> None:
        super().__init__()
        self.config = config
        self.spec = spec
        self.real: RealFaces | None = None
        self.synthetic: SyntheticViews | None = None

    def setup(self, stage: str) -> None:
        """Read the real and synthetic data (once)."""
        d, mode = self.config.data, self.config.train.mode
        use_real = d.real_roots and d.real_per_step > 0
        if mode == "finetune" and self.config.loss.w_orig == 0:
            use_real = False
        if use_real and self.real is None:
            self.real = RealFaces(d.real_format, d.real_roots, d.real_limit)
            if self.real.skipped:
                rank_zero_warn(
                    f"{len(self.real.skipped)} real items skipped, e.g. "
                    + "; ".join(self.real.skipped[:3])
                )
        if mode == "finetune" and self.synthetic is None and d.synthetic_roots():
            self.synthetic = SyntheticViews(d.synthetic_roots(), d.synthetic_limit)

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Turn the scalar entries of a training batch into Python numbers (no device syncs)."""
        if isinstance(batch, dict) and "step" in batch:
            batch = dict(batch)
            batch["step"] = int(batch["step"])
            if "image_size" in batch:
                batch["image_size"] = float(batch["image_size"])
        return batch

    def train_dataloader(self) -> StepLoader:
        """One batch per step, ``batch_size=None`` (the dataset builds whole batches)."""
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer else (0, 1)
        dataset = StepBatches(self.config, self.spec, self.real, self.synthetic, world)
        sampler = StepSampler(
            self.config.train.steps,
            (lambda: trainer.global_step) if trainer else (lambda: 0),
            rank,
            world,
        )
        return StepLoader(
            dataset, batch_size=None, sampler=sampler, num_workers=self.config.data.num_workers
        )

    def val_dataloader(self) -> list[DataLoader[Any]]:
        """One single-item loader per validation task."""
        t = self.config.train
        tasks = []
        if t.val_root:
            tasks.append("landmarks")
        if t.val_synthetic:
            tasks.append("consistency")
        return [DataLoader(_ValidationTask(task), batch_size=None) for task in tasks]


class _ValidationTask(Dataset[dict[str, str]]):
    """A one-item dataset naming a validation task (the module runs the task itself)."""

    def __init__(self, task: str) -> None:
        self.task = task

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int) -> dict[str, str]:
        if index != 0:
            raise IndexError(index)
        return {"task": self.task}
