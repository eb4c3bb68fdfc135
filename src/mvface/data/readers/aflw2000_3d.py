"""AFLW2000-3D (3DDFA's fitted 68-point 3D landmarks on 2000 AFLW photos) and its protocol.

Layout read (the original release and the ``aflw2000_3d_dev`` copy both fit)::

    root/
      images/imageNNNNN.jpg + imageNNNNN.mat   (or the .jpg/.mat directly in root)
      list.txt                                 (optional: protocol order, one name a line)
      3ddfa_protocol/AFLW2000-3D*.npy          (optional: the 3DDFA benchmark arrays)

``.mat`` fields used: ``pt3d_68`` (3, 68) 1-based pixel x, y plus z; ``Pose_Para`` (1, 7)
``[pitch, yaw, roll, tx, ty, tz, scale]`` in radians; ``roi``.

Conventions: x and y become 0-based (``-1``); z is kept as stored: the same pixel scale as x and
y, growing towards the camera, with an arbitrary origin. ``roi`` is *not* used as the face box:
it is in the frame of the original AFLW photo, not of the 450x450 crop (on the 1000 dev images
its centre is on average about 200 px away from the landmarks' centre, and only 13 of them
agree with the landmarks even loosely), so ``box`` is always ``None`` (use
:func:`~mvface.data.record.landmark_box`); the raw values are kept in ``meta["roi"]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import scipy.io

from mvface._io import check_readable_file
from mvface.data.readers._common import (
    check_dir,
    check_limit,
    finite_array,
    guard_os_errors,
    header_meta,
    is_inside,
    os_error_line,
    sample_name,
)
from mvface.data.readers._registry import register_reader
from mvface.data.record import Dataset, FaceSample
from mvface.errors import BadInputError

#: File names of the 3DDFA protocol arrays, by the key :func:`load_aflw2000_protocol` returns.
PROTOCOL_FILES: dict[str, str] = {
    "pts68": "AFLW2000-3D.pts68.npy",
    "pts68_reannotated": "AFLW2000-3D-Reannotated.pts68.npy",
    "yaw_deg": "AFLW2000-3D.pose.npy",
    "yaw_deg_new": "AFLW2000-3D-new.pose.npy",
    "roi_box": "AFLW2000-3D_crop.roi_box.npy",
    "pts21": "AFLW2000-3D.pts21.npy",
}


def load_mat(path: Path) -> dict[str, Any]:
    """Load a MATLAB ``.mat`` file, turning every failure into BadInputError."""
    check_readable_file(path, ".mat file")
    try:
        return dict(scipy.io.loadmat(str(path)))
    except FileNotFoundError:
        raise BadInputError(path, "does not exist") from None
    except PermissionError:
        raise BadInputError(path, "permission denied") from None
    except MemoryError:
        raise BadInputError(path, "not enough memory to read the .mat file") from None
    except Exception as exc:  # scipy raises ValueError, TypeError, OSError... on bad files
        raise BadInputError(
            path, f"not a readable .mat file ({type(exc).__name__}: {exc})"
        ) from None


def _images_dir(root: Path) -> Path:
    images = root / "images"
    return images if images.is_dir() else root


def read_list(root: Path) -> list[str] | None:
    """Names in ``root/list.txt`` (protocol order), or ``None`` when there is no list."""
    list_file = root / "list.txt"
    if not list_file.is_file():
        return None
    try:
        text = list_file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(list_file, f"cannot be read ({exc})") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def _listed_image(root: Path, images_dir: Path, name: str) -> Path:
    """The image a ``list.txt`` line names (a bare name, or a path relative to ``root``)."""
    if not Path(name).suffix:
        name += ".jpg"
    candidate = images_dir / name
    if not candidate.exists() and (root / name).exists():
        return root / name
    return candidate


def _mat_sample(
    image: Path, root: Path, protocol_index: int | None, source_name: str
) -> FaceSample:
    mat_path = image.with_suffix(".mat")
    if not mat_path.is_file():
        raise BadInputError(image, "no .mat annotation next to it")
    mat = load_mat(mat_path)
    if "pt3d_68" not in mat:
        raise BadInputError(mat_path, "has no 'pt3d_68' field")
    pt3d = finite_array(mat["pt3d_68"], (3, 68), mat_path, "pt3d_68")
    landmarks = pt3d.T.copy()
    landmarks[:, :2] -= 1.0
    pose = None
    pose_para = None
    if "Pose_Para" in mat:
        pose_para = finite_array(np.ravel(mat["Pose_Para"]), (7,), mat_path, "Pose_Para")
        pose = pose_para[:3].copy()
    size = header_meta(image)
    roi = np.ravel(mat["roi"]).astype(np.float64) if "roi" in mat else None
    meta: dict[str, Any] = {
        "dataset": source_name,
        "mat_file": mat_path,
        "landmarks_from": str(mat_path),
        "pose_para": pose_para,
        "protocol_index": protocol_index,
        "roi": roi,
        **size,
    }
    return FaceSample(
        image=image,
        landmarks=landmarks,
        pose=pose,
        name=sample_name(image, _images_dir(root)),
        meta=meta,
    )


@register_reader("aflw2000-3d")
@guard_os_errors
def read_aflw2000_3d(root: Path, limit: int | None = None) -> Dataset:
    """Read AFLW2000-3D images with their ``.mat`` annotations.

    Args:
        root: the dataset folder (with ``images/``, or the ``.jpg``/``.mat`` pairs directly).
        limit: stop after this many samples (``None``: all).

    Returns:
        A Dataset named ``"aflw2000-3d"``, in ``list.txt`` order when it exists (else sorted
        by name). Each sample: ``landmarks`` ``(68, 3)``: 0-based pixel x, y and z (see the
        module docstring); ``pose`` ``[pitch, yaw, roll]`` radians from ``Pose_Para[:3]``;
        ``box`` ``None`` (``roi`` is in another frame, see the module docstring); meta
        ``pose_para`` (7,), ``protocol_index`` (position in ``list.txt``: the row of the
        3DDFA protocol arrays, or ``None``), ``roi`` (raw), ``mat_file``, ``width``,
        ``height``. Items named in ``list.txt`` but missing, or with a bad ``.mat``, are
        skipped with a reason.

    Raises:
        BadInputError: ``root`` is not a readable folder, or ``list.txt`` cannot be read.
    """
    root = check_dir(Path(root))
    limit = check_limit(limit)
    images_dir = _images_dir(root)
    names = read_list(root)
    entries: list[tuple[Path, int | None]]
    if names is not None:
        entries = [(_listed_image(root, images_dir, n), i) for i, n in enumerate(names)]
    else:
        jpgs = sorted(p for p in images_dir.iterdir() if p.suffix.lower() == ".jpg")
        entries = [(p, None) for p in jpgs]
    samples: list[FaceSample] = []
    skipped: list[str] = []
    for image, index in entries:
        if limit is not None and len(samples) >= limit:
            break
        if not is_inside(image, root):
            skipped.append(f"{root / 'list.txt'}: entry {image.name!r} leaves the dataset folder")
            continue
        if not image.is_file():
            skipped.append(f"{image}: listed in list.txt but missing")
            continue
        try:
            samples.append(_mat_sample(image, root, index, "aflw2000-3d"))
        except BadInputError as exc:
            skipped.append(str(exc))
        except OSError as exc:
            skipped.append(os_error_line(exc, image))
    return Dataset(samples=samples, skipped=skipped, name="aflw2000-3d", root=root)


def _points(arr: np.ndarray, source: Path, n: int, dims: int) -> np.ndarray:
    """``(N, dims, P)`` 1-based -> ``(N, P, dims)`` with x, y 0-based."""
    if arr.ndim != 3 or arr.shape[0] != n or arr.shape[1] != dims:
        raise BadInputError(source, f"has shape {arr.shape}, expected ({n}, {dims}, P)")
    out = np.transpose(arr.astype(np.float64), (0, 2, 1)).copy()
    out[..., :2] -= 1.0
    return out


def load_aflw2000_protocol(
    root: str | Path, keep_nonfinite_rows: bool = False
) -> dict[str, np.ndarray]:
    """Load the 3DDFA AFLW2000-3D benchmark arrays, aligned with ``root/list.txt``.

    Args:
        root: the dataset folder holding ``list.txt`` and ``3ddfa_protocol/``.
        keep_nonfinite_rows: keep rows holding NaN or infinite values (the caller skips those
            faces, naming the file and row) instead of refusing the whole file.

    Returns:
        A dict of arrays, row ``i`` for the ``i``-th name of ``list.txt`` (keys present only
        when their file exists, ``names`` always):

        - ``names`` ``(N,)`` str: the image file names of ``list.txt``.
        - ``pts68`` ``(N, 68, 3)`` float64: original ground truth, 0-based pixel x, y and z.
        - ``pts68_reannotated`` ``(N, 68, 2)``: the re-annotated ground truth, 0-based pixels.
        - ``yaw_deg`` ``(N,)``: yaw in degrees used for the [0, 30], (30, 60], (60, 90] bins.
        - ``yaw_deg_new`` ``(N,)``: the alternative yaw file (``-new.pose.npy``).
        - ``roi_box`` ``(N, 4)``: 3DDFA's crop boxes ``[x0, y0, x1, y1]`` exactly as stored:
          the 3DDFA benchmark crops with them as 0-based pixel boxes.
        - ``pts21`` ``(N, 21, 2)``: AFLW's 21 points, 0-based pixels.

    Raises:
        BadInputError: no ``list.txt`` or ``3ddfa_protocol/`` folder, an unreadable array,
            an array whose first dimension differs from the number of names, or (unless
            ``keep_nonfinite_rows``) one holding NaN or infinite values.
    """
    root = Path(root)
    names = read_list(root)
    if names is None:
        raise BadInputError(root / "list.txt", "does not exist (needed to align the protocol)")
    folder = root / "3ddfa_protocol"
    if not folder.is_dir():
        raise BadInputError(folder, "does not exist")
    n = len(names)
    out: dict[str, np.ndarray] = {"names": np.asarray(names, dtype=str)}
    for key, file_name in PROTOCOL_FILES.items():
        path = folder / file_name
        if not path.is_file():
            continue
        try:
            arr = np.load(path, allow_pickle=False)
        except Exception as exc:  # ValueError (pickled objects, bad header), OSError, ...
            raise BadInputError(path, f"not a readable .npy array ({exc})") from None
        if key == "pts68":
            out[key] = _points(arr, path, n, 3)
        elif key in ("pts68_reannotated", "pts21"):
            out[key] = _points(arr, path, n, 2)
        elif key == "roi_box":
            if arr.shape != (n, 4):
                raise BadInputError(path, f"has shape {arr.shape}, expected ({n}, 4)")
            # as stored: 3DDFA's benchmark feeds them unchanged to its 0-based crop, so the
            # stored values *are* the protocol's crop (shifting them moves NME by 0.015)
            out[key] = arr.astype(np.float64)
        else:
            if arr.shape != (n,):
                raise BadInputError(path, f"has shape {arr.shape}, expected ({n},)")
            out[key] = arr.astype(np.float64)
        if not keep_nonfinite_rows and not np.all(np.isfinite(out[key])):
            raise BadInputError(path, "contains NaN or infinite values")
    return out


__all__ = ["PROTOCOL_FILES", "load_aflw2000_protocol", "load_mat", "read_aflw2000_3d"]
