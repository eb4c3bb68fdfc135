from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from mvface.data.readers.synthetic import load_identity, projection_matrices
from mvface.data.scheme import FLIP_PERMUTATION
from mvface.models.boxes import BoxTransform
from mvface.models.trainable import apply_affine, invert_affine
from mvface.synth.writer import SyntheticWriter
from mvface.train.config import TrainConfig
from mvface.train.data import (
    CropSpec,
    HeldOutViews,
    RealAugment,
    RealFaces,
    StepBatches,
    StepSampler,
    SyntheticViews,
    augment_real_crops,
    colour_jitter,
    step_rng,
)
from train.conftest import make_identity, write_synthetic

SPEC = CropSpec(64, BoxTransform(1.3, 1.3, square="max"))


def _batches(cfg: TrainConfig, world_size: int = 1) -> StepBatches:
    real = RealFaces(cfg.data.real_format, cfg.data.real_roots)
    synthetic = SyntheticViews(cfg.data.synthetic or "")
    return StepBatches(cfg, SPEC, real, synthetic, world_size)


class TestStepBatches:
    def test_same_seed_and_step_give_identical_batches(
        self, make_config: Callable[..., TrainConfig]
    ) -> None:
        cfg = make_config()
        a, b = _batches(cfg)[3], _batches(cfg)[3]
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)

    def test_steps_seeds_and_ranks_differ(self, make_config: Callable[..., TrainConfig]) -> None:
        cfg = make_config()
        base = _batches(cfg)[3]["real_crops"]
        assert not torch.equal(base, _batches(cfg)[4]["real_crops"])
        assert not torch.equal(base, _batches(make_config("train.seed=1"))[3]["real_crops"])
        two_ranks = _batches(cfg, world_size=2)
        assert int(two_ranks[7]["step"]) == 3  # index 7 = step 3, rank 1
        assert not torch.equal(two_ranks[6]["real_crops"], two_ranks[7]["real_crops"])

    def test_shapes_and_dtypes(self, make_config: Callable[..., TrainConfig]) -> None:
        batch = _batches(make_config())[0]
        assert batch["real_crops"].shape == (3, 3, 64, 64)
        assert batch["real_crops"].dtype == torch.uint8
        assert batch["real_targets"].shape == (3, 68, 2)
        assert batch["syn_crops"].shape == (8, 3, 64, 64)
        assert batch["syn_to_image"].shape == (8, 2, 3)
        assert batch["projections"].shape == (2, 4, 3, 4)
        assert batch["pseudo_gt"].shape == (2, 4, 68, 2)
        assert batch["visibility"].shape == (2, 4, 68) and batch["visibility"].dtype == torch.bool
        assert float(batch["image_size"]) == 32.0


class TestRealAugmentation:
    def test_flip_mirrors_pixels_and_permutes_labels(self, real_root: Path) -> None:
        faces = RealFaces("pts", [str(real_root)])
        from mvface.data.image import load_image

        image = load_image(faces.samples[0].image)  # type: ignore[arg-type]
        pts = faces.samples[0].landmarks[None]  # type: ignore[index]
        plain, t_plain = augment_real_crops(
            [image], pts, SPEC, RealAugment(), np.random.default_rng(0)
        )
        flipped, t_flip = augment_real_crops(
            [image], pts, SPEC, RealAugment(flip=1.0), np.random.default_rng(0)
        )
        # cv2's fixed-point bilinear weights may round one level differently
        diff = flipped[0].astype(int) - plain[0][:, ::-1].astype(int)
        assert np.abs(diff).max() <= 1 and (diff != 0).mean() < 0.01
        expected = t_plain[0][list(FLIP_PERMUTATION)].copy()
        expected[:, 0] = SPEC.size - 1 - expected[:, 0]
        np.testing.assert_allclose(t_flip[0], expected, atol=1e-9)

    def test_targets_follow_the_drawn_points(self, real_root: Path) -> None:
        # the test faces have their points drawn white: after any geometric augmentation the
        # crop must still be bright at the targets
        faces = RealFaces("pts", [str(real_root)])
        aug = RealAugment(scale_jitter=0.2, shift_jitter=0.1, rotation_deg=30, flip=0.5)
        crops, targets = faces.draw(6, SPEC, aug, step_rng(0, 0, 1))
        inside = (targets >= 0) & (targets <= SPEC.size - 1)
        rows = torch.arange(6)[:, None].expand(6, 68)
        u, v = targets[..., 0].round().long(), targets[..., 1].round().long()
        keep = inside.all(-1)
        values = crops.float().mean(1)[rows[keep], v[keep].clamp(0, 63), u[keep].clamp(0, 63)]
        assert values.mean() > 150  # background is below 80

    def test_colour_jitter_changes_only_colours(self, real_root: Path) -> None:
        faces = RealFaces("pts", [str(real_root)])
        _, t0 = faces.draw(4, SPEC, RealAugment(), step_rng(0, 0, 1))
        c1, t1 = faces.draw(4, SPEC, RealAugment(colour_jitter=0.4), step_rng(0, 0, 1))
        torch.testing.assert_close(t0, t1)
        assert c1.dtype == torch.uint8


class TestSynthetic:
    def test_to_image_maps_crop_points_back_to_the_views(self, synthetic_root: Path) -> None:
        views = SyntheticViews(synthetic_root)
        batch = views.draw(2, 4, SPEC, 0.1, np.random.default_rng(0))
        gt = batch["pseudo_gt"].reshape(8, 68, 2).double().numpy()
        to_image = batch["syn_to_image"].double().numpy()
        in_crop = apply_affine(invert_affine(to_image), gt)
        np.testing.assert_allclose(apply_affine(to_image, in_crop), gt, atol=1e-3)
        # without jitter the 1.3x crop box holds every point with a margin
        batch = views.draw(2, 4, SPEC, 0.0, np.random.default_rng(0))
        gt = batch["pseudo_gt"].reshape(8, 68, 2).double().numpy()
        in_crop = apply_affine(invert_affine(batch["syn_to_image"].double().numpy()), gt)
        assert (in_crop > 3).all() and (in_crop < SPEC.size - 4).all()

    def test_pools_identities_of_several_sets(self, tmp_path: Path) -> None:
        roots = [
            write_synthetic(tmp_path / name, 2, 5, seed) for name, seed in (("a", 0), ("b", 7))
        ]
        views = SyntheticViews(roots)
        assert len(views) == 4
        expected = [load_identity(r / f"id{i}").landmarks for r in roots for i in range(2)]
        seen = set()
        for seed in range(40):
            gt = views.draw(1, 5, SPEC, 0.0, np.random.default_rng(seed))["pseudo_gt"][0]
            matches = [k for k, e in enumerate(expected) if np.allclose(gt.numpy(), e, atol=1e-4)]
            assert len(matches) == 1
            seen.add(matches[0])
        assert seen == {0, 1, 2, 3}

    def test_rotated_crops_keep_the_points_on_their_pixels(self, tmp_path: Path) -> None:
        # views with the landmarks drawn white on dark noise: after a rotated, jittered crop the
        # pseudo ground truth mapped into the crop must still sit on bright pixels
        ident = make_identity("dots", 4, seed=3, size=64)
        images = ident.images // 4
        for view, pts in zip(images, ident.landmarks, strict=True):
            for x, y in np.rint(pts).astype(int):
                view[y, x] = 255
        writer = SyntheticWriter(tmp_path / "dots", image_format="png")
        writer.write(replace(ident, images=images))
        writer.write_manifest()
        views = SyntheticViews(tmp_path / "dots")
        spec = CropSpec(96, BoxTransform(1.3, 1.3, square="max"))
        batch = views.draw(1, 4, spec, 0.05, np.random.default_rng(1), rotation_deg=40)
        to_crop = invert_affine(batch["syn_to_image"].double().numpy())
        assert np.abs(to_crop[:, 0, 1]).max() > 0.05  # the crops are rotated
        in_crop = apply_affine(to_crop, batch["pseudo_gt"].reshape(4, 68, 2).double().numpy())
        u, v = np.rint(in_crop).astype(int).transpose(2, 0, 1)
        crops = batch["syn_crops"].float().mean(1).numpy()
        values = crops[np.arange(4)[:, None], v.clip(0, 95), u.clip(0, 95)]
        assert values.mean() > 110  # background is below 64

    def test_max_filled_drops_views_of_the_unseen_side(self, tmp_path: Path) -> None:
        ident = make_identity("turned", 6, seed=4)
        filled = [0.1, 0.9, 0.2, 0.8, 0.3, 0.95]
        writer = SyntheticWriter(tmp_path / "set", image_format="png")
        writer.write(replace(ident, provenance={"filled_fraction": filled}))
        writer.write_manifest()
        views = SyntheticViews(tmp_path / "set")
        expected = ident.landmarks[[0, 2, 4]]
        for seed in range(5):
            rng = np.random.default_rng(seed)
            gt = views.draw(1, 3, SPEC, 0.0, rng, max_filled=0.5)["pseudo_gt"][0].numpy()
            np.testing.assert_allclose(gt, expected, atol=1e-4)
        with pytest.raises(ValueError, match=r"at most 0\.5"):
            views.draw(1, 4, SPEC, 0.0, np.random.default_rng(0), max_filled=0.5)
        # the default draws every view, as before the record existed
        default = views.draw(1, 6, SPEC, 0.0, np.random.default_rng(0))["pseudo_gt"][0]
        np.testing.assert_allclose(default.numpy(), ident.landmarks, atol=1e-4)

    def test_colour_jitter_leaves_the_geometry(self, synthetic_root: Path) -> None:
        views = SyntheticViews(synthetic_root)
        plain = views.draw(2, 4, SPEC, 0.1, np.random.default_rng(5))
        coloured = views.draw(2, 4, SPEC, 0.1, np.random.default_rng(5), colour=0.4)
        assert torch.equal(plain["syn_to_image"], coloured["syn_to_image"])
        assert not torch.equal(plain["syn_crops"], coloured["syn_crops"])

    def test_projections_reproduce_the_pseudo_ground_truth(self, synthetic_root: Path) -> None:
        ident = load_identity(synthetic_root / "id0")
        P = projection_matrices(ident.cameras, 32)
        h = np.einsum("vij,nj->vni", P, np.concatenate([ident.landmarks3d, np.ones((68, 1))], 1))
        np.testing.assert_allclose(h[..., :2] / h[..., 2:], ident.landmarks, atol=1e-3)

    def test_held_out_views_are_fixed(self, heldout_root: Path) -> None:
        a = HeldOutViews(heldout_root, None, 3, SPEC)
        b = HeldOutViews(heldout_root, None, 3, SPEC)
        assert a.crops.shape == (6, 3, 64, 64) and a.projections.shape == (2, 3, 3, 4)
        assert torch.equal(a.crops, b.crops) and a.image_size == (32, 32)
        with pytest.raises(Exception, match="5 views, 9 asked"):
            HeldOutViews(heldout_root, None, 9, SPEC)


class TestStepSampler:
    def test_starts_at_the_restored_step_and_interleaves_ranks(self) -> None:
        state = {"step": 0}
        sampler = StepSampler(5, lambda: state["step"], rank=1, world_size=2)
        it = iter(sampler)
        state["step"] = 2  # read lazily: after Lightning restored a checkpoint
        assert list(it) == [5, 7, 9]
        assert len(sampler) == 5


class TestColourJitter:
    @staticmethod
    def reference(patches: np.ndarray, strength: float, seed: int) -> np.ndarray:
        """Brightness, contrast and saturation applied one after another, in float64."""
        n = len(patches)
        b, c, s = 1.0 + np.random.default_rng(seed).uniform(-strength, strength, (3, n))
        f = patches.astype(np.float64) * b[:, None, None, None]
        mean = f.mean(axis=(1, 2, 3), keepdims=True)
        f = (f - mean) * c[:, None, None, None] + mean
        grey = f @ np.array([[0.299], [0.587], [0.114]])
        f = grey + (f - grey) * s[:, None, None, None]
        return np.clip(np.rint(f), 0, 255).astype(np.uint8)

    def test_equals_the_three_steps_to_rounding(self) -> None:
        patches = np.random.default_rng(0).integers(0, 256, (6, 16, 16, 3), dtype=np.uint8)
        out = colour_jitter(patches, 0.4, np.random.default_rng(7))
        expected = self.reference(patches, 0.4, 7)
        assert out.dtype == np.uint8 and out.shape == patches.shape
        assert np.abs(out.astype(int) - expected).max() <= 1
        assert (out != expected).mean() < 0.1  # rounding ties only
        assert not np.array_equal(out, patches)

    def test_a_flat_grey_crop_only_changes_brightness(self) -> None:
        patches = np.full((3, 8, 8, 3), 100, np.uint8)
        out = colour_jitter(patches, 0.3, np.random.default_rng(1))
        b = 1.0 + np.random.default_rng(1).uniform(-0.3, 0.3, (3, 3))[0]
        np.testing.assert_array_equal(out, np.rint(100 * b)[:, None, None, None] + 0 * out)

    def test_zero_strength_is_the_identity(self) -> None:
        patches = np.zeros((2, 4, 4, 3), np.uint8)
        assert colour_jitter(patches, 0.0, np.random.default_rng(0)) is patches
