import json
import os
from pathlib import Path

import numpy as np
import pytest

from mvface.data.readers import read_dataset
from mvface.data.readers.synthetic import (
    SyntheticMultiviewSet,
    _safe_child,
    load_identity,
    projection_matrices,
)
from mvface.errors import BadInputError
from mvface.geometry.cameras import EG3D_FOCAL
from mvface.synth.writer import (
    IdentityRecord,
    OutputLockedError,
    SyntheticWriter,
    output_lock,
    safe_identity_name,
)
from train.conftest import make_identity

SIZE = 64


def _record(name: str = "face_a", views: int = 6) -> IdentityRecord:
    """An identity whose landmarks are exact projections of its 3D points (see conftest)."""
    return make_identity(name, views, seed=0, size=SIZE)


def test_write_read_round_trip_is_geometrically_exact(tmp_path: Path) -> None:
    writer = SyntheticWriter(tmp_path, image_format="png")
    rec = _record()
    folder = writer.write(rec)
    ident = load_identity(folder)
    assert ident.num_views == 6 and ident.meta["backend"] == "test"
    assert pytest.approx(ident.cameras[0, 16]) == EG3D_FOCAL
    # projecting landmarks3d with the stored cameras reproduces the stored landmarks
    P = projection_matrices(ident.cameras, SIZE)
    Xh = np.concatenate([ident.landmarks3d, np.ones((68, 1))], 1)
    proj = np.einsum("vij,nj->vni", P, Xh)
    np.testing.assert_allclose(proj[..., :2] / proj[..., 2:], ident.landmarks, atol=0.01)
    from mvface.data.image import load_image

    np.testing.assert_array_equal(load_image(ident.image_files[2]), rec.images[2])


def test_resume_and_manifest(tmp_path: Path) -> None:
    writer = SyntheticWriter(tmp_path)
    assert not writer.is_done("face_a")
    writer.write(_record("face_a"))
    writer.write(_record("face_b"))
    assert writer.is_done("face_a")
    manifest = json.loads(
        writer.write_manifest(skipped=[{"source": "c.jpg", "reason": "no face"}]).read_text()
    )
    assert [m["identity"] for m in manifest["identities"]] == ["face_a", "face_b"]
    assert manifest["skipped"][0]["reason"] == "no face"


def test_failed_write_leaves_nothing_visible(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = SyntheticWriter(tmp_path)
    real_save = np.save

    def failing_save(path, arr):  # type: ignore[no-untyped-def]
        if str(path).endswith("visibility.npy"):
            raise OSError(28, "No space left on device")
        real_save(path, arr)

    monkeypatch.setattr(np, "save", failing_save)
    with pytest.raises(OSError, match="No space"):
        writer.write(_record())
    assert list(tmp_path.iterdir()) == []  # no identity, no temporary folder


def test_lock_refuses_a_second_job_and_takes_over_stale_locks(tmp_path: Path) -> None:
    with (
        output_lock(tmp_path),
        pytest.raises(OutputLockedError, match="another synthesis job"),
        output_lock(tmp_path),
    ):
        pass
    (tmp_path / ".lock").write_text("999999999")  # a pid that does not exist
    with output_lock(tmp_path):
        assert (tmp_path / ".lock").read_text() == str(os.getpid())
    assert not (tmp_path / ".lock").exists()


def test_names_and_paths_stay_inside(tmp_path: Path) -> None:
    assert safe_identity_name("../../etc/passwd").startswith("etc_passwd+")
    assert safe_identity_name("afw/123 4").startswith("afw_123_4+")
    assert safe_identity_name("image_003_1") == "image_003_1"  # plain names stay as they are
    with pytest.raises(BadInputError, match="leaves the dataset"):
        _safe_child(tmp_path, "../outside")


def test_multiview_sampling_and_reader(tmp_path: Path) -> None:
    writer = SyntheticWriter(tmp_path)
    writer.write(_record("face_a", views=8))
    (tmp_path / ".mvface-tmp-face_b-abcd1234").mkdir()  # an abandoned temporary folder: ignored
    data = SyntheticMultiviewSet(tmp_path)
    assert len(data) == 1
    s = data.sample(0, 4, np.random.default_rng(1))
    assert s.images.shape == (4, SIZE, SIZE, 3) and len(set(s.view_indices)) == 4
    assert s.projections.shape == (4, 3, 4)
    ds = read_dataset("mvface-synthetic", tmp_path)
    assert len(ds) == 8 and ds.samples[3].meta["view"] == 3
    assert writer.remove_stale_temporaries() == 1
    with pytest.raises(ValueError, match="8 views"):
        data.sample(0, 9, np.random.default_rng(0))


def test_corrupt_identity_is_a_clear_error(tmp_path: Path) -> None:
    folder = SyntheticWriter(tmp_path).write(_record())
    np.save(folder / "landmarks.npy", np.full((6, 68, 2), np.nan, np.float32))
    with pytest.raises(BadInputError, match=r"landmarks\.npy: contains NaN"):
        load_identity(folder)
    assert read_dataset("mvface-synthetic", tmp_path).skipped
