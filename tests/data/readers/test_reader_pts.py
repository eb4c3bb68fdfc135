"""iBUG .pts: read_pts / write_pts and the "pts" folder reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from _shared import SHARED, requires_shared
from mvface.data.readers import read_dataset
from mvface.data.readers.pts import read_pts, read_pts_folder, write_pts
from mvface.data.record import landmark_box
from mvface.errors import BadInputError

SAMPLES = SHARED / "data" / "samples"


def _pts_text(points_1based: np.ndarray, n_points: int | None = None) -> str:
    n = len(points_1based) if n_points is None else n_points
    body = "\n".join(f"{x} {y}" for x, y in points_1based)
    return f"version: 1\nn_points:  {n}\n{{\n{body}\n}}\n"


def _grid() -> np.ndarray:
    """68 distinct 0-based points."""
    return np.stack([np.arange(68) * 2.5 + 3, np.arange(68) * 1.25 + 7], axis=1)


def _image(path: Path, size: tuple[int, int] = (300, 200)) -> Path:
    Image.new("RGB", size, (120, 80, 40)).save(path)
    return path


class TestReadPts:
    def test_subtracts_one(self, tmp_path: Path) -> None:
        path = tmp_path / "a.pts"
        path.write_text(_pts_text(_grid() + 1))
        pts = read_pts(path)
        assert pts.shape == (68, 2) and pts.dtype == np.float64
        np.testing.assert_allclose(pts, _grid())

    def test_round_trip(self, tmp_path: Path) -> None:
        rng = np.random.default_rng(1)
        pts = rng.uniform(-5, 500, (68, 2))
        write_pts(tmp_path / "r.pts", pts)
        np.testing.assert_allclose(read_pts(tmp_path / "r.pts"), pts, atol=1e-6)

    def test_writes_one_based_ibug_layout(self, tmp_path: Path) -> None:
        write_pts(tmp_path / "w.pts", _grid())
        lines = (tmp_path / "w.pts").read_text().splitlines()
        assert lines[:3] == ["version: 1", "n_points: 68", "{"] and lines[-1] == "}"
        assert [float(v) for v in lines[3].split()] == [4.0, 8.0]

    def test_write_drops_z(self, tmp_path: Path) -> None:
        pts3 = np.concatenate([_grid(), np.ones((68, 1))], axis=1)
        write_pts(tmp_path / "z.pts", pts3)
        np.testing.assert_allclose(read_pts(tmp_path / "z.pts"), _grid(), atol=1e-6)

    def test_write_rejects_bad_points(self, tmp_path: Path) -> None:
        with pytest.raises(BadInputError, match="68"):
            write_pts(tmp_path / "bad.pts", np.zeros((5, 2)))
        with pytest.raises(BadInputError, match="cannot be written"):
            write_pts(tmp_path / "no_such_dir" / "x.pts", _grid())

    def test_tolerates_crlf_bom_and_blank_lines(self, tmp_path: Path) -> None:
        text = "\ufeff" + _pts_text(_grid() + 1).replace("\n", "\r\n\r\n")
        (tmp_path / "w.pts").write_bytes(text.encode("utf-8"))
        np.testing.assert_allclose(read_pts(tmp_path / "w.pts"), _grid())

    @pytest.mark.parametrize(
        ("text", "needle"),
        [
            (_pts_text(np.ones((67, 2)), 67), "n_points: 67"),
            (_pts_text(np.ones((67, 2)), 68), "has 67 points"),
            (_pts_text(np.ones((69, 2)), 68), "has 69 points"),
            (_pts_text(np.ones((68, 2))).replace("1.0 1.0", "nan 1.0", 1), "NaN"),
            (_pts_text(np.ones((68, 2))).replace("1.0 1.0", "inf 1.0", 1), "NaN or infinite"),
            (_pts_text(np.ones((68, 2))).replace("1.0 1.0", "1.0,1.0", 1), "expected 2 numbers"),
            (_pts_text(np.ones((68, 2))).replace("1.0 1.0", "a b", 1), "not numbers"),
            (_pts_text(np.ones((68, 2))).replace("1.0 1.0", "1 2 3", 1), "expected 2 numbers"),
            (_pts_text(np.ones((68, 2))).replace("version: 1", "versio 1"), "version"),
            (_pts_text(np.ones((68, 2))).replace("version: 1", "version: x"), "version"),
            (_pts_text(np.ones((68, 2))).replace("n_points:  68", "n_points: 6x"), "integer"),
            (_pts_text(np.ones((68, 2))).replace("{", "[", 1), "expected '{'"),
            (_pts_text(np.ones((68, 2))).replace("}", ""), "closing"),
            (_pts_text(np.ones((68, 2))) + "extra\n", "after the closing"),
            ("version: 1\n", "too short"),
            ("hello world, this is not a pts file\n" * 3, "version"),
            ("   \n\n", "empty"),
        ],
    )
    def test_bad_files(self, tmp_path: Path, text: str, needle: str) -> None:
        path = tmp_path / "bad.pts"
        path.write_text(text)
        with pytest.raises(BadInputError, match=needle) as info:
            read_pts(path)
        assert info.value.source == str(path)

    def test_binary_missing_directory_and_huge(self, tmp_path: Path) -> None:
        (tmp_path / "b.pts").write_bytes(b"\xff\xfe\x00garbage\x80\x81")
        with pytest.raises(BadInputError, match="not a text file"):
            read_pts(tmp_path / "b.pts")
        with pytest.raises(BadInputError, match="does not exist"):
            read_pts(tmp_path / "missing.pts")
        with pytest.raises(BadInputError, match="directory"):
            read_pts(tmp_path)
        (tmp_path / "huge.pts").write_bytes(b"1" * 2_000_000)
        with pytest.raises(BadInputError, match="too large"):
            read_pts(tmp_path / "huge.pts")


_VALID = _pts_text(_grid() + 1).encode()


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    data=st.one_of(
        st.binary(max_size=3000),
        st.text(max_size=400).map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.tuples(st.integers(0, len(_VALID)), st.binary(max_size=20)).map(
            lambda cut: _VALID[: cut[0]] + cut[1] + _VALID[cut[0] + len(cut[1]) :]
        ),
    )
)
def test_read_pts_fuzz_raises_only_bad_input(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.pts"
    path.write_bytes(data)
    try:
        pts = read_pts(path)
    except BadInputError:
        return
    assert pts.shape == (68, 2) and np.all(np.isfinite(pts))


class TestPtsReader:
    def _layout(self, root: Path) -> None:
        (root / "sub").mkdir(parents=True)
        _image(root / "b.jpg")
        (root / "b.pts").write_text(_pts_text(_grid() + 1))
        _image(root / "sub" / "a.png", (100, 50))
        (root / "sub" / "a.pts").write_text(_pts_text(_grid() + 11))
        _image(root / "c.ppm")
        (root / "c.pts").write_text(_pts_text(_grid() + 1))
        _image(root / "no_pts.jpg")
        (root / "orphan.pts").write_text(_pts_text(_grid() + 1))
        _image(root / "bad_pts.jpg")
        (root / "bad_pts.pts").write_text(_pts_text(np.ones((67, 2)), 67))
        (root / "corrupt.jpg").write_bytes(b"not an image")
        (root / "corrupt.pts").write_text(_pts_text(_grid() + 1))
        (root / "notes.txt").write_text("ignored")

    def test_reads_pairs_and_reports_the_rest(self, tmp_path: Path) -> None:
        self._layout(tmp_path)
        ds = read_dataset("pts", tmp_path)
        assert ds.name == "pts" and ds.root == tmp_path
        assert [s.name for s in ds.samples] == ["b", "c", "sub/a"]
        np.testing.assert_allclose(ds.samples[2].landmarks, _grid() + 10)
        assert ds.samples[2].meta["width"] == 100 and ds.samples[2].meta["height"] == 50
        assert all(s.box is None and s.pose is None for s in ds.samples)
        reasons = "\n".join(ds.skipped)
        assert len(ds.skipped) == 4
        for needle in ("no_pts.jpg: no .pts", "orphan.pts: no image", "bad_pts.pts: has n_points"):
            assert needle in reasons
        assert "corrupt.jpg: not a recognised image" in reasons
        assert all("\n" not in line for line in ds.skipped)

    def test_limit(self, tmp_path: Path) -> None:
        self._layout(tmp_path)
        assert [s.name for s in read_pts_folder(tmp_path, limit=2).samples] == ["b", "c"]
        assert len(read_pts_folder(tmp_path, limit=0)) == 0
        with pytest.raises(BadInputError, match="limit"):
            read_pts_folder(tmp_path, limit=-1)

    def test_bad_roots(self, tmp_path: Path) -> None:
        with pytest.raises(BadInputError, match="does not exist"):
            read_dataset("pts", tmp_path / "missing")
        _image(tmp_path / "x.jpg")
        with pytest.raises(BadInputError, match="not a folder"):
            read_pts_folder(tmp_path / "x.jpg")
        ds = read_pts_folder(tmp_path)
        assert len(ds) == 0 and len(ds.skipped) == 1


@requires_shared("data/samples/einstein.pts")
class TestRealSamples:
    def test_read_pts_einstein(self) -> None:
        pts = read_pts(SAMPLES / "einstein.pts")
        first = (SAMPLES / "einstein.pts").read_text().splitlines()[3].split()
        np.testing.assert_allclose(pts[0], [float(first[0]) - 1, float(first[1]) - 1])

    def test_samples_folder(self) -> None:
        ds = read_dataset("pts", SAMPLES)
        names = {s.name for s in ds.samples}
        assert {"einstein", "takeo", "breakingbad"} <= names
        assert {f"lfpw/image_{i:04d}" for i in (1, 2, 3, 4, 5, 10)} <= names
        takeo = next(s for s in ds.samples if s.name == "takeo")
        assert takeo.image_path is not None and takeo.image_path.suffix == ".ppm"
        for s in ds.samples:  # the faces lie inside their images
            x0, y0, x1, y1 = landmark_box(s.landmarks)
            assert x0 > -1 and y0 > -1 and x1 < s.meta["width"] and y1 < s.meta["height"]


@requires_shared("data/300w/afw")
def test_real_afw_limit() -> None:
    ds = read_dataset("pts", SHARED / "data" / "300w" / "afw", limit=20)
    assert len(ds) == 20 and ds.skipped == []
    assert [s.name for s in ds.samples] == sorted(s.name for s in ds.samples)
    eye_dist = [np.linalg.norm(s.landmarks[36] - s.landmarks[45]) for s in ds.samples]
    assert min(eye_dist) > 10  # plausible faces, scheme order respected
