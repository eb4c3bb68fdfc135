"""Fuzz mvface's file readers with hypothesis: nothing but a one-line BadInputError may escape.

Each target writes a generated file (random bytes, mutated valid files, structured-but-wrong
content) and calls a reader on it; any exception other than
:class:`~mvface.errors.BadInputError` (or a message over several lines) is a failure that
hypothesis shrinks and prints. The CI runs a few hundred cases
(``tests/reliability/test_fuzz_readers.py``); the benchmark run is::

    OMP_NUM_THREADS=1 python benchmarks/fuzz_readers.py --cases 10000

and prints the cases run per target, the total and the time (docs/reliability.md has the
numbers of the last run).
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np
import scipy.io
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from mvface.data.image import image_size, load_image
from mvface.data.readers import read_dataset
from mvface.data.readers.aflw2000_3d import load_mat
from mvface.data.readers.dad3dheads import load_dad3d_annotation, load_landmarks_npy
from mvface.data.readers.pts import read_pts
from mvface.errors import BadInputError

Target = Callable[[Path, int], int]


def clean(fn: Callable[[], Any]) -> None:
    """Run ``fn``; a BadInputError must be one line, any other exception propagates."""
    try:
        fn()
    except BadInputError as exc:
        assert "\n" not in str(exc), repr(str(exc))


@st.composite
def mutated(draw: st.DrawFn, bases: list[bytes]) -> bytes:
    """One of ``bases`` with up to 8 random byte changes, cuts and insertions."""
    data = bytearray(draw(st.sampled_from(bases)))
    for _ in range(draw(st.integers(0, 8))):
        op = draw(st.sampled_from(["set", "cut", "insert"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "set" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "cut":
            data = data[:pos]
        else:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**20), 10**20),
    st.sampled_from(["nan", "inf", "-0", "1e999", "", "x", "0x10", "1_0"]),
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=8) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=40,
)


def _encoded(fmt: str, mode: str) -> bytes:
    rng = np.random.default_rng(0)
    im = Image.fromarray(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8))
    if mode == "I;16":
        im = Image.fromarray(rng.integers(0, 65535, (12, 16), dtype=np.uint16))
    elif mode != "RGB":
        im = im.convert(mode)
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    return buf.getvalue()


def image_bases() -> list[bytes]:
    pairs = [("PNG", "RGB"), ("PNG", "P"), ("PNG", "RGBA"), ("PNG", "I;16"), ("JPEG", "RGB"),
             ("JPEG", "CMYK"), ("GIF", "P"), ("BMP", "RGB"), ("TIFF", "RGB"), ("WEBP", "RGB"),
             ("PPM", "RGB"), ("PNG", "L")]  # fmt: skip
    return [_encoded(fmt, mode) for fmt, mode in pairs]


def _runner(body: Callable[[Any], None], strategy: st.SearchStrategy[Any], n: int) -> int:
    count = 0

    @settings(
        max_examples=n,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def run(value: Any) -> None:
        nonlocal count
        count += 1
        body(value)

    run()
    return count


# ------------------------------------------------------------------------------ the targets


def fuzz_images(work: Path, n: int) -> int:
    """``load_image`` and ``image_size`` on mutated encodings of 12 formats and random bytes."""
    path = work / "fuzz.img"
    strategy = mutated(image_bases()) | st.binary(max_size=3000)

    def body(data: bytes) -> None:
        path.write_bytes(data)
        clean(lambda: image_size(path))
        clean(lambda: load_image(path))

    return _runner(body, strategy, n)


@st.composite
def pts_text(draw: st.DrawFn) -> bytes:
    header = draw(st.sampled_from(["version: 1", "version: x", "", "n_points: 68", "{"]))
    count = draw(st.sampled_from(["n_points: 68", "n_points: 67", "n_points: -1", "n_points"]))
    rows = draw(st.integers(0, 70))
    lines = [header, count, draw(st.sampled_from(["{", "", "{ {"]))]
    for _ in range(rows):
        if draw(st.booleans()):
            lines.append(f"{draw(NUMBERS)} {draw(NUMBERS)}")
        else:
            lines.append(draw(st.text(max_size=20)))
    lines.append(draw(st.sampled_from(["}", "", "} extra", "}\n}"])))
    return "\n".join(lines).encode("utf-8", "surrogatepass")


def fuzz_pts(work: Path, n: int) -> int:
    """``read_pts`` on structured-but-wrong ``.pts`` text and random bytes."""
    path = work / "fuzz.pts"

    def body(data: bytes) -> None:
        path.write_bytes(data)
        clean(lambda: read_pts(path))

    return _runner(body, pts_text() | st.binary(max_size=2000), n)


@st.composite
def dlib_xml(draw: st.DrawFn) -> bytes:
    parts = "".join(
        f"<part name={quoteattr(str(draw(NUMBERS)))} x={quoteattr(str(draw(NUMBERS)))}"
        f" y={quoteattr(str(draw(NUMBERS)))}/>"
        for _ in range(draw(st.sampled_from([0, 1, 67, 68, 69])))
    )
    keys = ("top", "left", "width", "height", "ignore")
    attrs = " ".join(f"{k}={quoteattr(str(draw(NUMBERS)))}" for k in keys if draw(st.booleans()))
    file = draw(st.sampled_from(["face.png", "../face.png", "/etc/passwd", "", "missing.jpg"]))
    box = f"<box {attrs}>{parts}</box>"
    root = draw(st.sampled_from(["<dataset><images>{}</images></dataset>", "<images>{}</images>",
                                 "<dataset>{}</dataset>", "{}"]))  # fmt: skip
    return root.format(f"<image file={quoteattr(file)}>{box * draw(st.integers(0, 3))}</image>")\
        .encode()  # fmt: skip


def fuzz_dlib_xml(work: Path, n: int) -> int:
    """The ``dlib-xml`` reader on generated imglab XML, mutated XML and random bytes."""
    folder = work / "xml"
    folder.mkdir(exist_ok=True)
    Image.new("RGB", (32, 32)).save(folder / "face.png")
    path = folder / "fuzz.xml"
    base = b"<dataset><images><image file='face.png'><box top='1' left='2' width='9' height='9'>"
    strategy = dlib_xml() | mutated([base + b"</box></image></images></dataset>"]) | st.binary()

    def body(data: bytes) -> None:
        path.write_bytes(data)
        clean(lambda: read_dataset("dlib-xml", path))

    return _runner(body, strategy, n)


@st.composite
def coco_json(draw: st.DrawFn) -> Any:
    kp = draw(st.one_of(st.lists(NUMBERS.filter(lambda v: not isinstance(v, str)),
                                 min_size=203, max_size=205), JSON_VALUES))  # fmt: skip
    image = {"id": draw(JSON_VALUES | st.just(1)), "file_name": draw(st.sampled_from(
        ["face.png", "../../x.png", "/etc/passwd", "missing.png", 3]))}  # fmt: skip
    if draw(st.booleans()):
        image.update(width=draw(JSON_VALUES), height=draw(JSON_VALUES))
    ann = {"id": draw(JSON_VALUES), "image_id": draw(st.just(1) | JSON_VALUES), "keypoints": kp,
           "face_kpts": kp, "face_valid": draw(JSON_VALUES), "bbox": draw(JSON_VALUES),
           "face_box": draw(JSON_VALUES)}  # fmt: skip
    return {"images": [image, draw(JSON_VALUES)], "annotations": [ann, draw(JSON_VALUES)]}


def fuzz_coco_json(work: Path, n: int) -> int:
    """Both COCO readers on generated COCO documents, random JSON and random bytes."""
    folder = work / "coco" / "set"
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 32)).save(folder / "face.png")
    path = folder / "fuzz.json"
    strategy = (coco_json() | JSON_VALUES).map(lambda v: json.dumps(v).encode()) | st.binary()

    def body(data: bytes) -> None:
        path.write_bytes(data)
        clean(lambda: read_dataset("coco-face68", path))
        clean(lambda: read_dataset("coco-wholebody", path))

    return _runner(body, strategy, n)


@st.composite
def dad_annotation(draw: st.DrawFn) -> Any:
    def matrix() -> Any:
        return draw(st.one_of(st.lists(st.lists(NUMBERS.filter(lambda v: not isinstance(v, str)),
                                                min_size=4, max_size=4), min_size=3, max_size=5),
                              JSON_VALUES))  # fmt: skip

    verts = draw(st.lists(st.lists(st.floats(), min_size=2, max_size=4), max_size=5) | JSON_VALUES)
    doc = {"vertices": verts, "model_view_matrix": matrix(), "projection_matrix": matrix()}
    if draw(st.booleans()):
        doc["landmarks_68"] = draw(JSON_VALUES)
    return doc


def fuzz_dad3dheads(work: Path, n: int) -> int:
    """DAD-3DHeads annotation JSON and 68-point ``.npy`` files (mutated, pickled, random)."""
    ann = work / "ann.json"
    npy = work / "x_68_lm2d_points.npy"
    bases = []
    for value in (np.full((68, 2), 3.0), np.zeros((1, 68, 3), np.float32)):
        buf = io.BytesIO()
        np.save(buf, value)
        bases.append(buf.getvalue())
    obj = np.empty((), dtype=object)
    obj[()] = {"point": np.ones((68, 2))}
    buf = io.BytesIO()
    np.save(buf, obj, allow_pickle=True)
    bases.append(buf.getvalue())
    strategy = st.tuples(
        (dad_annotation() | JSON_VALUES).map(lambda v: json.dumps(v).encode()) | st.binary(),
        mutated(bases) | st.binary(max_size=500),
    )

    def body(files: tuple[bytes, bytes]) -> None:
        ann.write_bytes(files[0])
        npy.write_bytes(files[1])
        clean(lambda: load_dad3d_annotation(ann))
        clean(lambda: load_landmarks_npy(npy))

    return _runner(body, strategy, n)


def fuzz_mat(work: Path, n: int) -> int:
    """``load_mat`` and the ``aflw2000-3d`` reader on mutated MATLAB files."""
    folder = work / "aflw"
    folder.mkdir(exist_ok=True)
    Image.new("RGB", (32, 32)).save(folder / "image00001.jpg")
    path = folder / "image00001.mat"
    bases = []
    for fields in (
        {"pt3d_68": np.ones((3, 68)), "Pose_Para": np.zeros((1, 7)), "roi": np.ones((1, 4))},
        {"pt3d_68": np.ones((68, 3)), "Pose_Para": np.array(["abc"])},
    ):
        buf = io.BytesIO()
        scipy.io.savemat(buf, fields)
        bases.append(buf.getvalue())

    def body(data: bytes) -> None:
        path.write_bytes(data)
        clean(lambda: load_mat(path))
        clean(lambda: read_dataset("aflw2000-3d", folder))

    return _runner(body, mutated(bases) | st.binary(max_size=1000), n)


TARGETS: dict[str, Target] = {
    "images": fuzz_images,
    "pts": fuzz_pts,
    "dlib-xml": fuzz_dlib_xml,
    "coco-json": fuzz_coco_json,
    "dad3dheads": fuzz_dad3dheads,
    "mat": fuzz_mat,
}


def run_all(cases: int, work: Path | None = None) -> dict[str, int]:
    """Run every target with ``ceil(cases / len(TARGETS))`` examples; cases run per target."""
    per_target = max(1, -(-cases // len(TARGETS)))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(work or tmp)
        counts = {}
        for name, target in TARGETS.items():
            folder = root / name
            folder.mkdir(parents=True, exist_ok=True)
            counts[name] = target(folder, per_target)
    return counts


def main(argv: list[str] | None = None) -> None:
    """Command line: ``--cases N`` (total, split evenly over the targets)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000, help="total cases (default 10000)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    counts = run_all(args.cases)
    seconds = time.perf_counter() - start
    for name, count in counts.items():
        print(f"{name:12s} {count:7d} cases")
    print(f"{'total':12s} {sum(counts.values()):7d} cases, 0 failures, {seconds:.0f} s")


if __name__ == "__main__":
    main()
