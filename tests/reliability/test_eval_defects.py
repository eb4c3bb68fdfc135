"""Evaluation and the dataset readers against degenerate annotations and odd folders.

Each test covers a class of inputs, not one file: a face annotation that cannot be scored (all
points equal, points on one line, an absurd coordinate, coinciding eye corners, a missing or
NaN pose or yaw where the protocol bins by yaw) is skipped with one line naming its file, in
every reader and in ``mvface eval``, and the rest is scored; ``eval-synthetic`` lists what it
skips; reports are strict JSON; sub-folders are read or listed (symlinks followed once,
unreadable ones "permission denied").
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import scipy.io
from test_bad_inputs import GOOD_PTS, _identity_folder, png, unreadable
from typer.testing import CliRunner

from mvface.cli.main import app
from mvface.data.readers import read_dataset
from mvface.errors import BadInputError
from mvface.eval.report import write_report
from mvface.eval.runner import EvalConfig, evaluate
from mvface.eval.synthetic import evaluate_synthetic
from mvface.models.base import Landmarks

FACE = GOOD_PTS  # (68, 2) 0-based pixels inside a 64 x 64 image, eye corners apart
TEMPLATE = (FACE - FACE.min(0)) / np.ptp(FACE, axis=0)  # the face shape in [0, 1]


def strict_json(path: Path) -> Any:
    """``path`` parsed as strict JSON (``NaN`` / ``Infinity`` tokens are refused)."""

    def refuse(token: str) -> None:
        raise AssertionError(f"{path} holds the non-JSON token {token}")

    return json.loads(path.read_text(), parse_constant=refuse)


class BoxModel:
    """A fast stand-in model: the face shape stretched over the box it is given."""

    config = SimpleNamespace(name="box-model", to_dict=lambda: {"name": "box-model"})

    def predict(self, images: Any, boxes: Any) -> Landmarks:
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        pts = b[:, None, :2] + TEMPLATE[None] * (b[:, None, 2:] - b[:, None, :2])
        return Landmarks(points=pts + 0.5)

    predict_crops = predict


# ------------------------------------------------------------------------------ bad faces

#: A class of annotations that cannot be scored: name -> (0-based points, words of the reason).
DEGENERATE: dict[str, tuple[np.ndarray, str]] = {
    "all-points-equal": (np.full((68, 2), 30.0), "same point"),
    "points-on-one-line": (np.column_stack([np.full(68, 30.0), FACE[:, 1]]), "no area"),
    "absurd-coordinate": (np.where(np.arange(68)[:, None] == 5, 1e30, FACE), "absurd"),
}


def pts_text(points: np.ndarray) -> str:
    """An iBUG ``.pts`` of 0-based ``points`` (written 1-based, any value, no validation)."""
    rows = "\n".join(f"{float(x) + 1!r} {float(y) + 1!r}" for x, y in points)
    return f"version: 1\nn_points: 68\n{{\n{rows}\n}}\n"


def aflw_mat(path: Path, points: np.ndarray | None = None, **fields: Any) -> None:
    """An AFLW2000-3D image + ``.mat`` (``pt3d_68`` 1-based, a ``Pose_Para`` unless given)."""
    png(path.with_suffix(".jpg"), size=(64, 64))
    pts = FACE if points is None else points
    data: dict[str, Any] = {
        "pt3d_68": np.vstack([(pts + 1.0).T, np.zeros((1, 68))]),
        "Pose_Para": np.array([[0.0, 0.1, 0.0, 0, 0, 0, 1]]),
    }
    data.update(fields)
    scipy.io.savemat(path.with_suffix(".mat"), {k: v for k, v in data.items() if v is not None})


# Each builder writes a dataset of one good face and one with ``bad`` points, and returns
# (what to read, the text naming the bad annotation, the good sample names).
Builder = Callable[[Path, np.ndarray], tuple[Path, str, set[str]]]


def build_pts(root: Path, bad: np.ndarray) -> tuple[Path, str, set[str]]:
    for name, points in (("good", FACE), ("bad", bad)):
        png(root / f"{name}.png", size=(64, 64))
        (root / f"{name}.pts").write_text(pts_text(points))
    return root, str(root / "bad.pts"), {"good"}


def build_list(root: Path, bad: np.ndarray) -> tuple[Path, str, set[str]]:
    build_pts(root, bad)
    (root / "faces.txt").write_text("good.png\nbad.png\n")
    return root / "faces.txt", str(root / "bad.pts"), {"good"}


def build_aflw(root: Path, bad: np.ndarray) -> tuple[Path, str, set[str]]:
    aflw_mat(root / "images" / "image00001.mat")
    aflw_mat(root / "images" / "image00002.mat", bad)
    return root, str(root / "images" / "image00002.mat"), {"image00001"}


def build_300w_lp(root: Path, bad: np.ndarray) -> tuple[Path, str, set[str]]:
    for name, points in (("AFW_1_0", FACE), ("AFW_2_0", bad)):
        png(root / "AFW" / f"{name}.jpg", size=(64, 64))
        scipy.io.savemat(root / "AFW" / f"{name}.mat", {"pt2d": (points + 1.0).T})
    return root, str(root / "AFW" / "AFW_2_0.mat"), {"AFW/AFW_1_0"}


def _coco_json(root: Path, key: str, bad: np.ndarray, extra: dict[str, Any]) -> Path:
    png(root / "good.png", size=(64, 64))
    png(root / "bad.png", size=(64, 64))
    images = [{"id": 1, "file_name": "good.png"}, {"id": 2, "file_name": "bad.png"}]
    anns = [
        {"id": i, "image_id": i, key: np.column_stack([p, np.full(68, 2.0)]).ravel().tolist()}
        | extra
        for i, p in ((1, FACE), (2, bad))
    ]
    path = root / "ann.json"
    path.write_text(json.dumps({"images": images, "annotations": anns}))
    return path


def build_coco_face68(root: Path, bad: np.ndarray) -> tuple[Path, str, set[str]]:
    path = _coco_json(root, "keypoints", bad + 1.0, {})
    return path, f"{path} annotation id 2", {"good#1"}


def build_coco_wholebody(root: Path, bad: np.ndarray) -> tuple[Path, str, set[str]]:
    path = _coco_json(root, "face_kpts", bad, {"face_valid": True, "face_box": [5, 5, 50, 50]})
    return path, f"{path} annotation id 2", {"good#1"}


def build_dlib_xml(root: Path, bad: np.ndarray) -> tuple[Path, str, set[str]]:
    body = ""
    for name, points in (("good", FACE), ("bad", bad)):
        png(root / f"{name}.png", size=(64, 64))
        parts = "".join(
            f"<part name='{k:02d}' x='{float(x)!r}' y='{float(y)!r}'/>"
            for k, (x, y) in enumerate(points)
        )
        box = f"<box top='5' left='5' width='50' height='50'>{parts}</box>"
        body += f"<image file='{name}.png'>{box}</image>"
    path = root / "faces.xml"
    path.write_text(f"<?xml version='1.0'?><dataset><images>{body}</images></dataset>")
    return path, f"{path} bad.png box 0", {"good#0"}


def build_dad3dheads(root: Path, bad: np.ndarray) -> tuple[Path, str, set[str]]:
    for name, points in (("good", FACE), ("bad", bad)):
        png(root / "images" / f"{name}.png", size=(64, 64))
        ann = {
            "vertices": [[0.0, 0.0, 0.0]],
            "model_view_matrix": np.eye(4).tolist(),
            "projection_matrix": np.eye(4).tolist(),
            "landmarks_68": points.tolist(),
        }
        (root / "annotations").mkdir(exist_ok=True)
        (root / "annotations" / f"{name}.json").write_text(json.dumps(ann))
    return root, str(root / "annotations" / "bad.json"), {"good"}


def build_synthetic(root: Path, bad: np.ndarray) -> tuple[Path, str, set[str]]:
    _identity_folder(root, "id0")
    folder = _identity_folder(root, "id1")
    landmarks = np.load(folder / "landmarks.npy")
    landmarks[1] = bad
    np.save(folder / "landmarks.npy", landmarks)
    good = {f"id0/{v:03d}" for v in range(3)} | {"id1/000", "id1/002"}
    return root, f"{folder / 'landmarks.npy'} view 1", good


READERS: dict[str, tuple[str, Builder]] = {
    "pts": ("pts", build_pts),
    "list": ("list", build_list),
    "aflw2000-3d": ("aflw2000-3d", build_aflw),
    "300w-lp": ("300w-lp", build_300w_lp),
    "coco-face68": ("coco-face68", build_coco_face68),
    "coco-wholebody": ("coco-wholebody", build_coco_wholebody),
    "dlib-xml": ("dlib-xml", build_dlib_xml),
    "dad3dheads": ("dad3dheads", build_dad3dheads),
    "mvface-synthetic": ("mvface-synthetic", build_synthetic),
}


@pytest.mark.parametrize("kind", sorted(DEGENERATE))
@pytest.mark.parametrize("reader", sorted(READERS))
def test_every_reader_skips_a_degenerate_face_naming_its_file(
    reader: str, kind: str, tmp_path: Path
) -> None:
    fmt, build = READERS[reader]
    bad, needle = DEGENERATE[kind]
    source, where, good = build(tmp_path / "set", bad)
    ds = read_dataset(fmt, source)
    assert {s.name for s in ds.samples} == good, ds.skipped
    lines = [line for line in ds.skipped if line.startswith(where + ":")]
    assert len(lines) == 1 and needle in lines[0], ds.skipped
    assert "sample " not in " ".join(ds.skipped)


# ------------------------------------------------------------------------------ evaluation


def _pts_set(root: Path, faces: dict[str, np.ndarray | str]) -> Path:
    for name, points in faces.items():
        png(root / f"{name}.png", size=(64, 64))
        text = points if isinstance(points, str) else pts_text(points)
        (root / f"{name}.pts").write_text(text)
    return root


def _eyes_together() -> np.ndarray:
    points = FACE.copy()
    points[45] = points[36]  # the 300-W normalizer (outer eye corners) is 0
    return points


def _assert_skipped(lines: list[str], expected: dict[Path | str, str]) -> None:
    """Each expected file is named by exactly one line saying its problem; no ``sample N``."""
    for where, needle in expected.items():
        hits = [
            line for line in lines if line.startswith(f"{where}:") or line.startswith(f"{where} ")
        ]
        assert len(hits) == 1, (where, lines)
        assert needle.lower() in hits[0].lower(), hits[0]
    assert len(lines) == len(expected), lines
    assert not any("sample " in line for line in lines), lines


def test_eval_300w_skips_unscorable_faces_and_writes_the_report(tmp_path: Path) -> None:
    huge = FACE.copy()
    huge[10, 0] = 1e300
    root = _pts_set(
        tmp_path / "300w",
        {
            "good1": FACE,
            "good2": FACE[::-1] * 0.9 + 3,
            "equal": np.full((68, 2), 30.0),
            "huge": huge,
            "eyes": _eyes_together(),
        },
    )
    report = evaluate(EvalConfig("300w", root, "box"), model=BoxModel(), progress=False)  # type: ignore[arg-type]
    assert report.names == ["good1", "good2"]
    _assert_skipped(
        report.extras["skipped"],
        {
            root / "equal.pts": "same point",
            root / "huge.pts": "absurd",
            root / "eyes.pts": "eye corners",
        },
    )
    write_report(report, tmp_path / "out")
    assert strict_json(tmp_path / "out" / "metrics.json")["n"] == 2


def test_eval_aflw_mat_skips_equal_points_and_missing_or_nan_pose(tmp_path: Path) -> None:
    images = tmp_path / "aflw" / "images"
    aflw_mat(images / "image00001.mat")
    aflw_mat(
        images / "image00002.mat", FACE * 0.8 + 5, Pose_Para=np.array([[0, 0.9, 0, 0, 0, 0, 1]])
    )
    aflw_mat(images / "image00003.mat", np.full((68, 2), 20.0))
    aflw_mat(images / "image00004.mat", Pose_Para=None)  # no pose: no yaw bin
    aflw_mat(images / "image00005.mat", Pose_Para=np.full((1, 7), np.nan))
    aflw_mat(images / "image00006.mat", Pose_Para=np.array([[0, 1e300, 0, 0, 0, 0, 1]]))
    cfg = EvalConfig("aflw2000-3d", tmp_path / "aflw", "box")
    report = evaluate(cfg, model=BoxModel(), progress=False)  # type: ignore[arg-type]
    assert report.names == ["image00001", "image00002"]
    _assert_skipped(
        report.extras["skipped"],
        {
            images / "image00003.mat": "same point",
            images / "image00004.mat": "yaw",
            images / "image00005.mat": "NaN",
            images / "image00006.mat": "pose",
        },
    )
    write_report(report, tmp_path / "out")
    metrics = strict_json(tmp_path / "out" / "metrics.json")
    assert metrics["nme_balanced"] is None  # the 60-90 bin is empty: null, not NaN
    assert metrics["bin_counts"] == {"0-30": 1, "30-60": 1, "60-90": 0}


def _aflw_protocol(root: Path) -> Path:
    """Four faces and 3DDFA-style protocol arrays with bad rows (see the test)."""
    names = [f"image{i:05d}" for i in range(1, 5)]
    for name in names:
        aflw_mat(root / "images" / f"{name}.mat")
    (root / "list.txt").write_text("".join(f"{n}.jpg\n" for n in names))
    proto = root / "3ddfa_protocol"
    proto.mkdir()
    pts = np.stack([np.vstack([(FACE + 1.0).T, np.zeros((1, 68))])] * 4)
    pts[1, :2] = 11.0  # row 1: every point equal
    np.save(proto / "AFLW2000-3D.pts68.npy", pts)
    np.save(proto / "AFLW2000-3D.pose.npy", np.array([10.0, 20.0, 40.0, np.nan]))  # row 3
    np.save(proto / "AFLW2000-3D-new.pose.npy", np.array([10.0, 20.0, 1e300, 70.0]))  # row 2
    return proto


@pytest.mark.parametrize(
    ("yaw_file", "bad_row", "needle"),
    [("AFLW2000-3D.pose.npy", 3, "yaw"), ("AFLW2000-3D-new.pose.npy", 2, "absurd")],
)
def test_eval_aflw_protocol_files_skip_bad_rows_naming_file_and_row(
    tmp_path: Path, yaw_file: str, bad_row: int, needle: str
) -> None:
    proto = _aflw_protocol(tmp_path / "aflw")
    cfg = EvalConfig("aflw2000-3d", tmp_path / "aflw", "box", yaw_file=yaw_file)
    report = evaluate(cfg, model=BoxModel(), progress=False)  # type: ignore[arg-type]
    assert len(report.names) == 2
    _assert_skipped(
        report.extras["skipped"],
        {
            f"{proto / 'AFLW2000-3D.pts68.npy'} row 1": "same point",
            f"{proto / yaw_file} row {bad_row}": needle,
        },
    )


def test_eval_skips_a_face_without_landmarks_instead_of_stopping(tmp_path: Path) -> None:
    root = tmp_path / "dad"
    build_dad3dheads(root, FACE + 2)
    png(root / "images" / "bare.png", size=(64, 64))  # no annotation: no landmarks
    report = evaluate(EvalConfig("dad3dheads", root, "box"), model=BoxModel(), progress=False)  # type: ignore[arg-type]
    assert sorted(report.names) == ["bad", "good"]
    _assert_skipped(report.extras["skipped"], {root / "images" / "bare.png": "cannot evaluate"})


def test_eval_skips_a_face_the_model_predicts_nan_for(tmp_path: Path) -> None:
    root = _pts_set(tmp_path / "300w", {"a": FACE, "b": FACE * 0.9 + 2})

    class HalfNan(BoxModel):
        calls = 0

        def predict(self, images: Any, boxes: Any) -> Landmarks:
            HalfNan.calls += 1
            out = super().predict(images, boxes)
            return Landmarks(points=out.points * (np.nan if HalfNan.calls == 2 else 1.0))

    report = evaluate(EvalConfig("300w", root, "box"), model=HalfNan(), progress=False)  # type: ignore[arg-type]
    assert report.names == ["a"]
    _assert_skipped(report.extras["skipped"], {root / "b.png": "NaN"})


# ------------------------------------------------------------------------------ CLI

runner = CliRunner()


def test_cli_eval_degenerate_pts_is_skipped_report_written_exit_1(tmp_path: Path) -> None:
    huge = FACE + 10
    huge[3, 1] = 1e300
    root = _pts_set(
        tmp_path / "300w",
        {
            "good": FACE + 10,
            "equal": np.full((68, 2), 30.0),
            "huge": huge,
            "eyes": _eyes_together(),
        },
    )
    out = tmp_path / "report"
    args = ["eval", "--dataset", "300w", "--root", str(root), "--model", "mediapipe-68"]
    result = runner.invoke(app, [*args, "--out", str(out), "--quiet"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and "sample " not in result.output
    text = result.output.replace("\n", " ")
    assert "1 faces scored, 3 skipped" in text
    for name in ("equal", "huge", "eyes"):
        assert str(root / f"{name}.pts") in text
    assert strict_json(out / "metrics.json")["n"] == 1


@pytest.mark.parametrize(
    "bad",
    [
        ["--dataset", "no-such-set"],
        ["--crop", "elbow"],
        ["--crop", "protocol"],  # exists only for aflw2000-3d
        ["--ground-truth", "guessed"],
        ["--yaw-file", "yaw.txt"],
    ],
)
def test_cli_eval_bad_option_values_are_usage_errors(tmp_path: Path, bad: list[str]) -> None:
    root = _pts_set(tmp_path / "300w", {"good": FACE})
    args = ["eval", "--dataset", "300w", "--root", str(root), "--model", "mediapipe-68"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "o"), "--quiet", *bad])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------ eval-synthetic


def _synthetic_set(root: Path) -> dict[str, Path]:
    """Two good identities and four that cannot be evaluated, each a different way."""
    folders = {name: _identity_folder(root, name) for name in ("good0", "good1", "nan", "flat")}
    cams = np.load(folders["nan"] / "cameras.npy")
    cams[0, 3] = np.nan
    np.save(folders["nan"] / "cameras.npy", cams)
    lms = np.load(folders["flat"] / "landmarks.npy")
    lms[0] = 5.0
    np.save(folders["flat"] / "landmarks.npy", lms)
    (root / "unfinished").mkdir()  # no meta.json
    folders["locked"] = _identity_folder(root, "locked")
    return folders


def test_eval_synthetic_lists_skipped_identities(tmp_path: Path) -> None:
    root = tmp_path / "set"
    folders = _synthetic_set(root)
    with unreadable(folders["locked"]):
        result = evaluate_synthetic(BoxModel(), root, views=3, progress=False)  # type: ignore[arg-type]
    assert result.identities == ["good0", "good1"]
    _assert_skipped(
        result.skipped,
        {
            folders["nan"] / "cameras.npy": "NaN",
            f"{folders['flat'] / 'landmarks.npy'} view 0": "same point",
            root / "unfinished": "no meta.json",
            folders["locked"]: "permission denied",
        },
    )
    from mvface.eval.report import json_text  # the one JSON writer of reports

    summary = json.loads(json_text(result.to_dict()))
    assert summary["skipped"] == result.skipped


def test_cli_eval_synthetic_exits_1_listing_skips_and_writes_strict_json(tmp_path: Path) -> None:
    root = tmp_path / "set"
    _identity_folder(root, "good0")
    (root / "broken").mkdir()
    (root / "broken" / "meta.json").write_text("{not json")
    out = tmp_path / "o"
    result = runner.invoke(
        app,
        [
            *("eval-synthetic", "--root", str(root), "--model", "mediapipe-68"),
            *("--out", str(out), "--views", "2", "--quiet"),
        ],
    )
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert str(root / "broken" / "meta.json") in result.output.replace("\n", " ")
    metrics = strict_json(out / "metrics.json")  # an empty yaw bin is null, not NaN
    assert None in metrics["nme_bins"].values() and len(metrics["skipped"]) == 1


def test_report_json_has_no_nan_tokens() -> None:
    from mvface.eval.report import json_text

    text = json_text({"a": math.nan, "b": [np.float32("inf"), 1.5], "c": np.array([np.nan])})
    assert json.loads(text) == {"a": None, "b": [None, 1.5], "c": [None]}
    with pytest.raises(ValueError):
        json.dumps({"a": math.nan}, allow_nan=False)  # what json_text guards against


# ------------------------------------------------------------------------------ folders


@pytest.mark.parametrize("fmt", ["pts", "folder", "300w-lp"])
def test_sub_folders_are_read_or_listed(fmt: str, tmp_path: Path) -> None:
    root = tmp_path / "set"
    outside = tmp_path / "elsewhere"

    def face(folder: Path, name: str) -> None:
        png(folder / f"{name}.jpg", size=(64, 64))
        (folder / f"{name}.pts").write_text(pts_text(FACE))
        scipy.io.savemat(folder / f"{name}.mat", {"pt2d": (FACE + 1.0).T})

    face(root / "a", "one")
    face(outside, "two")
    face(root / "locked", "three")
    (root / "linked").symlink_to(outside, target_is_directory=True)  # followed
    (root / "twice").symlink_to(outside, target_is_directory=True)  # the same folder again
    (root / "a" / "loop").symlink_to(root, target_is_directory=True)  # back up: a loop
    with unreadable(root / "locked"):
        ds = read_dataset(fmt, root)
    assert sorted(s.name for s in ds.samples) == ["a/one", "linked/two"]
    _assert_skipped(
        ds.skipped,
        {
            root / "locked": "permission denied",
            root / "twice": "same folder as",
            root / "a" / "loop": "symlink loop",
        },
    )


def test_unreadable_file_is_listed_not_dropped(tmp_path: Path) -> None:
    root = _pts_set(tmp_path / "300w", {"good": FACE, "locked": FACE})
    with unreadable(root / "locked.pts"):
        ds = read_dataset("pts", root)
    assert [s.name for s in ds.samples] == ["good"]
    _assert_skipped(ds.skipped, {root / "locked.pts": "permission denied"})


def test_a_bad_face_raises_naming_its_file_in_single_file_entry_points(tmp_path: Path) -> None:
    from mvface.data.readers.pts import write_pts

    with pytest.raises(BadInputError, match=r"out\.pts: landmark coordinate 1e\+300 is absurd"):
        write_pts(tmp_path / "out.pts", np.where(np.arange(68)[:, None] == 0, 1e300, FACE))


def test_wrapped_fitted_poses_are_kept_and_binned_like_3ddfa(tmp_path: Path) -> None:
    """AFLW2000-3D's own fits hold poses beyond one turn (pitch -12.5 rad, yaw 188 degrees):
    not absurd, binned as 3DDFA does (``|yaw| > 60``), never skipped."""
    images = tmp_path / "aflw" / "images"
    aflw_mat(
        images / "image03123.mat", Pose_Para=np.array([[-12.457, -6.130, -16.969, 0, 0, 0, 1]])
    )
    aflw_mat(images / "image04157.mat", Pose_Para=np.array([[15.599, 3.2775, -16.592, 0, 0, 0, 1]]))
    ds = read_dataset("aflw2000-3d", tmp_path / "aflw")
    assert len(ds) == 2 and ds.skipped == []
    cfg = EvalConfig("aflw2000-3d", tmp_path / "aflw", "box")
    report = evaluate(cfg, model=BoxModel(), progress=False)  # type: ignore[arg-type]
    assert report.extras["skipped"] == []
    assert report.result.bin_counts == {"0-30": 0, "30-60": 0, "60-90": 2}  # -351 and 188 deg
