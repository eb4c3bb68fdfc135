"""evaluate_synthetic: an oracle detector scores 0; a known shift gives the closed-form NME."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from mvface.data.image import load_image
from mvface.data.readers.synthetic import SyntheticMultiviewSet
from mvface.errors import BadInputError
from mvface.eval.synthetic import evaluate_synthetic
from mvface.models.base import LandmarkModel, Landmarks, ModelConfig
from train.conftest import write_synthetic


class _Oracle(LandmarkModel):
    """Returns the stored landmarks of each view (found by its pixels), plus ``shift`` px."""

    def __init__(self, root: Path, shift: float = 0.0) -> None:
        self.config = ModelConfig(name="oracle", input_size=32)
        self.shift = shift
        self.table: dict[bytes, np.ndarray] = {}
        for ident in SyntheticMultiviewSet(root).identities:
            for i in range(ident.num_views):
                self.table[load_image(ident.image_files[i]).tobytes()] = ident.landmarks[i]

    def _predict(self, images: Sequence[np.ndarray], crop_boxes: np.ndarray) -> Landmarks:
        points = np.stack([self.table[np.asarray(img).tobytes()] for img in images])
        return Landmarks(points=points + np.array([self.shift, 0.0]))


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("synthetic-eval"), 2, 6, seed=3)


def test_oracle_is_consistent_and_exact(root: Path) -> None:
    result = evaluate_synthetic(_Oracle(root), root, views=6, progress=False)
    assert result.consistency == pytest.approx(0.0, abs=1e-4)  # x100: 3e-5 px at 32 px
    assert result.nme_mean == pytest.approx(0.0, abs=1e-9)
    assert result.views == 6 and result.identities == ["id0", "id1"]


def test_shift_gives_closed_form_nme(root: Path) -> None:
    result = evaluate_synthetic(_Oracle(root, shift=1.5), root, views=4, progress=False)
    expected = []
    for ident in SyntheticMultiviewSet(root).identities:
        idx = np.unique(np.linspace(0, ident.num_views - 1, 4).round().astype(int))
        lm = ident.landmarks[idx]
        w = lm[..., 0].max(-1) - lm[..., 0].min(-1)
        h = lm[..., 1].max(-1) - lm[..., 1].min(-1)
        expected.append(100 * 1.5 / np.sqrt(w * h))
    assert result.nme_mean == pytest.approx(float(np.concatenate(expected).mean()), rel=1e-9)
    assert result.consistency > 0


def test_needs_two_views(root: Path) -> None:
    with pytest.raises(ValueError, match="at least 2 views"):
        evaluate_synthetic(_Oracle(root), root, views=1, progress=False)
    with pytest.raises(BadInputError, match="has 6 views, 7 asked"):
        evaluate_synthetic(_Oracle(root), root, views=7, progress=False)
