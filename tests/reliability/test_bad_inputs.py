"""A corpus of bad inputs, generated here, and what mvface does with each kind.

Every kind is one entry of :data:`CORPUS`: a function that writes the bad input into a fresh
folder and checks the library's answer. The contract: a bad item is one
:class:`~mvface.errors.BadInputError` line naming the file and the problem (a single-file entry
point raises it; a reader skips the item, lists the line in ``Dataset.skipped`` and goes on);
inputs that are merely unusual (CMYK, 16-bit, palette, alpha, grey, a PNG named ``.jpg``) load.
``docs/reliability.md`` has the same table in words.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.io
from PIL import Image

from mvface._io import atomic_write_bytes
from mvface.data.image import image_size, load_image
from mvface.data.readers import read_dataset
from mvface.data.readers.aflw2000_3d import load_mat
from mvface.data.readers.dad3dheads import load_dad3d_annotation
from mvface.data.readers.pts import read_pts, write_pts
from mvface.data.readers.synthetic import load_identity
from mvface.data.record import Dataset
from mvface.errors import BadInputError
from mvface.eval.consistency import multiview_consistency_error
from mvface.synth.writer import SyntheticWriter
from train.conftest import make_identity

GOOD_PTS = np.random.default_rng(0).uniform(10, 50, (68, 2))
GOOD_KPTS = np.column_stack([GOOD_PTS, np.full(68, 2.0)]).ravel().tolist()  # COCO x, y, v


# ------------------------------------------------------------------------------ helpers


def refused(fn: Callable[[], Any], path: Path | str, needle: str) -> BadInputError:
    """``fn()`` raises one BadInputError line that names ``path`` and contains ``needle``."""
    with pytest.raises(BadInputError) as info:
        fn()
    line = str(info.value)
    assert "\n" not in line, line
    assert str(path) in line, f"{line!r} does not name {path}"
    assert needle.lower() in line.lower(), f"{line!r} does not say {needle!r}"
    return info.value


def skipped_once(ds: Dataset, path: Path | str, needle: str) -> str:
    """``ds.skipped`` has exactly one line naming ``path``, and it says ``needle``."""
    lines = [s for s in ds.skipped if str(path) in s]
    assert len(lines) == 1, ds.skipped
    assert needle.lower() in lines[0].lower() and "\n" not in lines[0], lines[0]
    return lines[0]


def png(path: Path, mode: str = "RGB", size: tuple[int, int] = (48, 48)) -> Path:
    """A small image of ``mode`` (random content) saved as PNG (JPEG for CMYK)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    im = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    if mode == "I;16":
        im = Image.fromarray(rng.integers(0, 65535, (size[1], size[0]), dtype=np.uint16))
    elif mode != "RGB":
        im = im.convert(mode)
    im.save(path, format="JPEG" if mode == "CMYK" else "PNG")
    return path


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG that declares ``width`` x ``height`` but holds almost no data (a bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = zlib.compress(b"\x00" * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data))
    return path


def pts_folder(root: Path, bad_name: str, pts_text: str | bytes) -> tuple[Path, Path]:
    """A 300-W folder: one good face and one whose ``.pts`` holds ``pts_text``."""
    png(root / "good.png")
    write_pts(root / "good.pts", GOOD_PTS)
    png(root / f"{bad_name}.png")
    bad = root / f"{bad_name}.pts"
    bad.write_bytes(pts_text if isinstance(pts_text, bytes) else pts_text.encode())
    return root, bad


def read_pts_batch(root: Path, bad: Path, needle: str) -> None:
    """The single-file reader refuses ``bad``; the folder reader skips it and keeps the good."""
    refused(lambda: read_pts(bad), bad, needle)
    ds = read_dataset("pts", root)
    assert [s.name for s in ds.samples] == ["good"]
    skipped_once(ds, bad, needle)


def image_batch(root: Path, bad: Path, needle: str) -> None:
    """Both image entry points refuse ``bad``; the folder reader skips it and goes on."""
    for fn in (load_image, image_size):
        refused(lambda fn=fn: fn(bad), bad, needle)  # type: ignore[misc]
    png(root / "good.png")
    ds = read_dataset("folder", root)
    assert "good" in [s.name for s in ds.samples]
    skipped_once(ds, bad, needle)


def loads_as_rgb(path: Path) -> np.ndarray:
    image = load_image(path)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert image_size(path) == (image.shape[1], image.shape[0])
    return image


# ------------------------------------------------------------------------------ images


def empty_image(tmp: Path) -> None:
    (tmp / "empty.jpg").write_bytes(b"")
    image_batch(tmp, tmp / "empty.jpg", "file is empty")


def truncated_image(tmp: Path) -> None:
    path = tmp / "cut.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    refused(lambda: load_image(path), path, "truncated or corrupt")
    png(tmp / "good.png")
    ds = read_dataset("folder", tmp)  # the header is intact: listed; loading it fails cleanly
    assert {s.name for s in ds.samples} == {"cut", "good"}


def truncated_header(tmp: Path) -> None:
    path = png(tmp / "head.png")
    path.write_bytes(path.read_bytes()[:20])
    image_batch(tmp, path, "head.png")


def corrupt_image(tmp: Path) -> None:
    (tmp / "noise.jpg").write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(3000))
    image_batch(tmp, tmp / "noise.jpg", "jpg")


def text_as_image(tmp: Path) -> None:
    (tmp / "notes.png").write_text("version: 1\nn_points: 68\n")
    image_batch(tmp, tmp / "notes.png", "not a recognised image")


def wrong_extension(tmp: Path) -> None:
    path = tmp / "really_a_png.jpg"
    png(tmp / "x.png").rename(path)
    assert loads_as_rgb(path).shape == (48, 48, 3)  # the content decides, not the name


def cmyk_image(tmp: Path) -> None:
    assert loads_as_rgb(png(tmp / "cmyk.jpg", "CMYK")).shape == (48, 48, 3)


def sixteen_bit_image(tmp: Path) -> None:
    path = png(tmp / "deep.png", "I;16")
    raw = np.asarray(Image.open(path)).astype(np.float64)
    np.testing.assert_array_equal(loads_as_rgb(path)[..., 0], np.rint(raw / 257))


def palette_image(tmp: Path) -> None:
    assert loads_as_rgb(png(tmp / "pal.png", "P")).shape == (48, 48, 3)


def alpha_image(tmp: Path) -> None:
    path = tmp / "alpha.png"
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., :3] = 200  # stored colour, fully transparent: black after compositing
    Image.fromarray(rgba).save(path)
    assert loads_as_rgb(path).max() == 0


def single_channel_image(tmp: Path) -> None:
    image = loads_as_rgb(png(tmp / "grey.png", "L"))
    assert (image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all()


def one_pixel_image(tmp: Path) -> None:
    path = png(tmp / "dot.png", size=(1, 1))
    assert loads_as_rgb(path).shape == (1, 1, 3)
    write_pts(tmp / "dot.pts", GOOD_PTS)  # a face can't fit: the synth crop refuses it
    from mvface.synth.identity import align_crop

    refused(lambda: align_crop(load_image(path), GOOD_PTS, 64, str(path)), path, "outside")


def decompression_bomb(tmp: Path) -> None:
    path = png_header_only(tmp / "bomb.png", 20000, 20000)
    assert path.stat().st_size < 200
    image_batch(tmp, path, "megapixel")


def directory_named_like_image(tmp: Path) -> None:
    (tmp / "folder.jpg").mkdir()
    for fn in (load_image, image_size):
        refused(lambda fn=fn: fn(tmp / "folder.jpg"), tmp / "folder.jpg", "is a directory")


def fifo_named_like_image(tmp: Path) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes here")
    os.mkfifo(tmp / "pipe.png")  # opening it would block forever: refused from its stat
    image_batch(tmp, tmp / "pipe.png", "not a regular file")


def symlink_loop(tmp: Path) -> None:
    (tmp / "a.jpg").symlink_to(tmp / "b.jpg")
    (tmp / "b.jpg").symlink_to(tmp / "a.jpg")
    for fn in (load_image, image_size):
        refused(lambda fn=fn: fn(tmp / "a.jpg"), tmp / "a.jpg", "cannot be read")


@contextlib.contextmanager
def unreadable(path: Path) -> Iterator[None]:
    """Make ``path`` unreadable: ``chmod 0`` as a normal user, a denying ``os.access`` as root."""
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        path.chmod(0)
        try:
            yield
        finally:
            path.chmod(0o644)
    else:  # root reads anything: simulate what the kernel would say
        with pytest.MonkeyPatch.context() as m:
            real = os.access
            m.setattr(os, "access", lambda p, mode, **kw: Path(p) != path and real(p, mode))
            yield


def unreadable_files(tmp: Path) -> None:
    image = png(tmp / "locked.png")
    root, pts = pts_folder(tmp / "pts", "locked_pts", (tmp / "x").name)
    write_pts(pts, GOOD_PTS)
    with unreadable(image):
        image_batch(tmp, image, "permission denied")
    with unreadable(pts):
        read_pts_batch(root, pts, "permission denied")


def image_without_face(tmp: Path) -> None:
    from mvface.synth.sources import detect_landmarks

    path = png(tmp / "wall.png", "L", size=(96, 96))
    refused(lambda: detect_landmarks(load_image(path), "mediapipe-68", str(path)), path, "no face")


# ------------------------------------------------------------------------------ .pts


def pts_wrong_count(tmp: Path) -> None:
    lines = "\n".join(f"{x} {y}" for x, y in GOOD_PTS[:67])
    read_pts_batch(*pts_folder(tmp, "short", f"version: 1\nn_points: 68\n{{\n{lines}\n}}\n"),
                   "67 points")  # fmt: skip
    root, bad = pts_folder(tmp / "b", "n67", "version: 1\nn_points: 67\n{\n}\n")
    read_pts_batch(root, bad, "expected 68")


def pts_nan(tmp: Path) -> None:
    rows = [f"{x} {y}" for x, y in GOOD_PTS]
    rows[30] = "nan 12.0"
    text = "version: 1\nn_points: 68\n{\n" + "\n".join(rows) + "\n}\n"
    read_pts_batch(*pts_folder(tmp, "nan", text), "NaN")


def pts_garbage(tmp: Path) -> None:
    read_pts_batch(*pts_folder(tmp, "junk", "hello world\nthis is not\na pts file\n"), "version")


def pts_binary(tmp: Path) -> None:
    read_pts_batch(*pts_folder(tmp, "bin", b"\xff\xfe\x00\x81" * 100), "not a text file")


def pts_huge(tmp: Path) -> None:
    read_pts_batch(*pts_folder(tmp, "huge", "version: 1\n" + "x" * 1_100_000), "too large")


# ------------------------------------------------------------------------------ .mat


def mat_missing_keys(tmp: Path) -> None:
    png(tmp / "images" / "image00001.jpg")
    scipy.io.savemat(tmp / "images" / "image00001.mat", {"roi": np.zeros((1, 4))})
    ds = read_dataset("aflw2000-3d", tmp)
    assert ds.samples == []
    skipped_once(ds, tmp / "images" / "image00001.mat", "has no 'pt3d_68'")


def mat_corrupt(tmp: Path) -> None:
    path = tmp / "bad.mat"
    path.write_bytes(b"MATLAB 5.0 MAT-file" + os.urandom(200))
    refused(lambda: load_mat(path), path, "not a readable .mat file")


def mat_wrong_types(tmp: Path) -> None:
    png(tmp / "image00002.jpg")
    scipy.io.savemat(tmp / "image00002.mat", {"pt3d_68": np.array(["abc"] * 3)})
    ds = read_dataset("aflw2000-3d", tmp)
    assert ds.samples == []
    skipped_once(ds, tmp / "image00002.mat", "pt3d_68")


# ------------------------------------------------------------------------------ XML / JSON


def _dlib_xml(tmp: Path, body: str) -> Path:
    png(tmp / "face.png")
    path = tmp / "faces.xml"
    path.write_text(f"<?xml version='1.0'?><dataset><images>{body}</images></dataset>")
    return path


def xml_wrong_types(tmp: Path) -> None:
    box = "<box top='1' left='oops' width='20' height='20'/>"
    xml = _dlib_xml(tmp, f"<image file='face.png'>{box}</image>")
    ds = read_dataset("dlib-xml", xml)
    assert ds.samples == [] and len(ds.skipped) == 1
    assert "left='oops' is not a number" in ds.skipped[0] and str(xml) in ds.skipped[0]


def xml_entity_bomb(tmp: Path) -> None:
    path = tmp / "lol.xml"
    lol = "<!ENTITY l0 'lol'>" + "".join(
        f"<!ENTITY l{i} '{f'&l{i - 1};' * 10}'>" for i in range(1, 9)
    )
    path.write_text(f"<?xml version='1.0'?><!DOCTYPE d [{lol}]><dataset>&l8;</dataset>")
    refused(lambda: read_dataset("dlib-xml", path), path, "DOCTYPE or ENTITY")


def _coco(tmp: Path, annotations: list[Any], images: Any = None) -> Path:
    png(tmp / "face.png", size=(64, 64))
    images = images if images is not None else [{"id": 1, "file_name": "face.png"}]
    path = tmp / "ann.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations}))
    return path


def json_wrong_types(tmp: Path) -> None:
    good = {"id": 7, "image_id": 1, "keypoints": GOOD_KPTS, "bbox": [1, 1, 40, 40]}
    bad = {"id": 8, "image_id": 1, "keypoints": "all of them"}
    ds = read_dataset("coco-face68", _coco(tmp, [good, bad, 42]))
    assert len(ds.samples) == 1
    skipped_once(ds, "annotation id 8", "not numbers")
    skipped_once(ds, "annotation 2", "expected an object")
    path = _coco(tmp / "b", [], images={"not": "a list"})
    refused(lambda: read_dataset("coco-face68", path), path, "must both be lists")


def json_invalid(tmp: Path) -> None:
    path = tmp / "broken.json"
    path.write_text('{"images": [')
    refused(lambda: read_dataset("coco-wholebody", path), path, "not valid JSON")
    deep = tmp / "deep" / "deep.json"
    deep.parent.mkdir()
    deep.write_text("[" * 100_000 + "]" * 100_000)  # recursion: refused, not a crash
    refused(lambda: read_dataset("coco-face68", deep), deep, "")


def dad_json_wrong_types(tmp: Path) -> None:
    path = tmp / "a.json"
    path.write_text(
        json.dumps({"vertices": "oops", "model_view_matrix": 1, "projection_matrix": 2})
    )
    refused(lambda: load_dad3d_annotation(path), path, "vertices")
    path.write_text(
        json.dumps(
            {"vertices": [[0, 0, 0]], "model_view_matrix": [[1, 2]], "projection_matrix": None}
        )
    )
    refused(lambda: load_dad3d_annotation(path), path, "model_view_matrix")


def landmarks_outside_image(tmp: Path) -> None:
    """Kept by readers (occluded points may lie outside); the synth crop refuses the face."""
    root, _ = pts_folder(tmp, "out", "")
    write_pts(root / "out.pts", GOOD_PTS + 500)
    ds = read_dataset("pts", root)
    assert sorted(s.name for s in ds.samples) == ["good", "out"] and ds.skipped == []
    from mvface.synth.identity import align_crop

    image = load_image(root / "out.png")
    refused(lambda: align_crop(image, GOOD_PTS + 500, 64, "out.png"), "out.png", "outside")


# ------------------------------------------------------------------------------ cameras


def _identity_folder(tmp: Path, name: str = "id0") -> Path:
    writer = SyntheticWriter(tmp, image_format="png")
    writer.write(make_identity(name, views=3, seed=0, size=16))
    return tmp / name


def camera_nan(tmp: Path) -> None:
    folder = _identity_folder(tmp)
    cams = np.load(folder / "cameras.npy")
    cams[1, 5] = np.nan
    np.save(folder / "cameras.npy", cams)
    refused(lambda: load_identity(folder), folder / "cameras.npy", "NaN")
    _identity_folder(tmp, "id1")
    ds = read_dataset("mvface-synthetic", tmp)
    assert {s.meta["identity"] for s in ds.samples} == {"id1"}
    skipped_once(ds, folder / "cameras.npy", "NaN")
    P = np.full((1, 2, 3, 4), np.nan)
    refused(
        lambda: multiview_consistency_error(P, np.zeros((1, 2, 68, 2)), 64), "identity 0", "NaN"
    )


def camera_singular(tmp: Path) -> None:
    folder = _identity_folder(tmp)
    cams = np.load(folder / "cameras.npy")
    cams[0, :16] = 0.0  # cam2world all zeros: no rotation
    np.save(folder / "cameras.npy", cams)
    refused(lambda: load_identity(folder), folder / "cameras.npy", "singular")
    cams[0, :16] = np.eye(4).ravel()
    cams[0, 16:] = 0.0  # intrinsics all zeros
    np.save(folder / "cameras.npy", cams)
    refused(lambda: load_identity(folder), folder / "cameras.npy", "singular")
    P = np.zeros((1, 2, 3, 4))  # every camera the zero matrix: no triangulation
    pts = np.ones((1, 2, 68, 2))
    refused(lambda: multiview_consistency_error(P, pts, 64), "identity 0", "")


def npy_object_array(tmp: Path) -> None:
    folder = _identity_folder(tmp)
    np.save(folder / "landmarks.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    refused(lambda: load_identity(folder), folder / "landmarks.npy", "unreadable array")


# ------------------------------------------------------------------------------ paths


def traversal_coco(tmp: Path) -> None:
    secret = png(tmp / "secret.png", size=(64, 64))  # outside the dataset root tmp/a
    root = tmp / "a" / "b"
    kp = GOOD_KPTS
    images = [
        {"id": 1, "file_name": "face.png"},
        {"id": 2, "file_name": "../../secret.png"},
        {"id": 3, "file_name": str(secret)},
    ]
    anns = [{"id": i, "image_id": i, "keypoints": kp} for i in (1, 2, 3)]
    ds = read_dataset("coco-face68", _coco(root, anns, images))
    assert [s.image_path for s in ds.samples] == [root / "face.png"]
    skipped_once(ds, "annotation id 2", "leaves the dataset folder")
    skipped_once(ds, "annotation id 3", "leaves the dataset folder")


def traversal_dlib_xml(tmp: Path) -> None:
    secret = png(tmp / "secret.png")
    root = tmp / "set"
    box = "<box top='1' left='1' width='20' height='20'/>"
    body = "".join(
        f"<image file='{f}'>{box}</image>" for f in ("face.png", "../secret.png", secret)
    )
    ds = read_dataset("dlib-xml", _dlib_xml(root, body))
    assert [s.image_path for s in ds.samples] == [root / "face.png"]
    assert len(ds.skipped) == 2 and all("leaves the dataset folder" in s for s in ds.skipped)


def traversal_dad3dheads(tmp: Path) -> None:
    png(tmp / "secret.png")
    root = tmp / "dad"
    png(root / "train" / "images" / "a.png")
    items = [
        {"item_id": "a", "img_path": "images/a.png"},
        {"item_id": "b", "img_path": "../../../secret.png"},
        {"item_id": "c", "img_path": "images/a.png", "annotation_path": "/etc/passwd"},
    ]
    (root / "train" / "train.json").write_text(json.dumps(items))
    ds = read_dataset("dad3dheads", root)
    assert [s.name for s in ds.samples] == ["a"]
    skipped_once(ds, "item 1", "leaves the dataset folder")
    skipped_once(ds, "item 2", "leaves the dataset folder")


def traversal_aflw_list(tmp: Path) -> None:
    png(tmp / "secret.jpg")
    root = tmp / "aflw"
    (root / "images").mkdir(parents=True)
    (root / "list.txt").write_text("../../secret.jpg\n")
    ds = read_dataset("aflw2000-3d", root)
    assert ds.samples == []
    skipped_once(ds, root / "list.txt", "leaves the dataset folder")


def traversal_synthetic(tmp: Path) -> None:
    root = tmp / "set"
    folder = _identity_folder(root)
    meta = json.loads((folder / "meta.json").read_text())
    meta["image_format"] = "png/../../../../secret"
    (folder / "meta.json").write_text(json.dumps(meta))
    refused(lambda: load_identity(folder), folder / "meta.json", "image_format")
    outside = _identity_folder(tmp / "elsewhere", "id9")
    (root / "linked").symlink_to(outside, target_is_directory=True)
    ds = read_dataset("mvface-synthetic", root)
    assert ds.samples == []
    skipped_once(ds, root / "linked", "leaves the dataset folder")


# ------------------------------------------------------------------------------ writes


def duplicate_identity_names(tmp: Path) -> None:
    """``a b`` and ``a_b`` get distinct folders; a second ``a_b`` is refused, the first intact."""
    writer = SyntheticWriter(tmp, image_format="png")
    writer.write(make_identity("a b", views=3, seed=0, size=16))
    writer.write(make_identity("a_b", views=3, seed=1, size=16))
    first = (tmp / "a_b" / "cameras.npy").read_bytes()
    refused(
        lambda: writer.write(make_identity("a_b", views=3, seed=2, size=16)), "a_b", "duplicate"
    )
    assert (tmp / "a_b" / "cameras.npy").read_bytes() == first  # the finished one is intact
    names = sorted(p.name for p in tmp.iterdir())
    assert len(names) == 2 and "a_b" in names


def _full_disk(monkeypatch: pytest.MonkeyPatch, after: int = 0) -> None:
    """The next writes through ``open(..., "wb")`` fail with ENOSPC after ``after`` bytes."""
    import builtins

    real_open = builtins.open

    class FullFile:
        def __init__(self, f: Any) -> None:
            self.f, self.left = f, after

        def write(self, data: bytes) -> int:
            if len(data) > self.left:
                self.f.write(data[: self.left])
                raise OSError(28, "No space left on device", self.f.name)
            self.left -= len(data)
            return int(self.f.write(data))

        def __getattr__(self, name: str) -> Any:
            return getattr(self.f, name)

        def __enter__(self) -> FullFile:
            return self

        def __exit__(self, *exc: object) -> None:
            self.f.close()

    def full_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        f = real_open(file, mode, *args, **kwargs)
        return FullFile(f) if "w" in mode and "b" in mode else f

    monkeypatch.setattr(builtins, "open", full_open)


def full_disk(tmp: Path) -> None:
    path = tmp / "result.json"
    atomic_write_bytes(path, b'{"old": true}')
    pts = tmp / "face.pts"
    write_pts(pts, GOOD_PTS)
    with pytest.MonkeyPatch.context() as m:
        _full_disk(m, after=5)
        with pytest.raises(OSError, match="No space"):
            atomic_write_bytes(path, b'{"new": "a longer text"}')
        refused(lambda: write_pts(pts, GOOD_PTS + 1), pts, "No space left on device")
        m.setattr(np, "save", lambda f, a, **kw: (_ for _ in ()).throw(OSError(28, "No space")))
        with pytest.raises(OSError, match="No space"):
            SyntheticWriter(tmp / "synth").write(make_identity("x", views=2, seed=0, size=16))
    assert path.read_bytes() == b'{"old": true}'  # the old file is intact
    np.testing.assert_allclose(read_pts(pts), GOOD_PTS, atol=1e-5)
    assert sorted(p.name for p in tmp.iterdir()) == ["face.pts", "result.json", "synth"]
    assert list((tmp / "synth").iterdir()) == []  # no identity, no temporary folder


# ------------------------------------------------------------------------------ the corpus

CORPUS: dict[str, Callable[[Path], None]] = {
    f.__name__.replace("_", "-"): f
    for f in (
        empty_image,
        truncated_image,
        truncated_header,
        corrupt_image,
        text_as_image,
        wrong_extension,
        cmyk_image,
        sixteen_bit_image,
        palette_image,
        alpha_image,
        single_channel_image,
        one_pixel_image,
        decompression_bomb,
        directory_named_like_image,
        fifo_named_like_image,
        symlink_loop,
        unreadable_files,
        image_without_face,
        pts_wrong_count,
        pts_nan,
        pts_garbage,
        pts_binary,
        pts_huge,
        mat_missing_keys,
        mat_corrupt,
        mat_wrong_types,
        xml_wrong_types,
        xml_entity_bomb,
        json_wrong_types,
        json_invalid,
        dad_json_wrong_types,
        landmarks_outside_image,
        camera_nan,
        camera_singular,
        npy_object_array,
        traversal_coco,
        traversal_dlib_xml,
        traversal_dad3dheads,
        traversal_aflw_list,
        traversal_synthetic,
        duplicate_identity_names,
        full_disk,
    )
}


def test_the_corpus_has_at_least_25_kinds() -> None:
    assert len(CORPUS) >= 25


@pytest.mark.parametrize("kind", sorted(CORPUS))
def test_bad_input(kind: str, tmp_path: Path) -> None:
    CORPUS[kind](tmp_path)
