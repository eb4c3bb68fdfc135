"""DAD-3DHeads (FLAME head meshes fitted to in-the-wild photos) reader and projection.

Layout read (the official release; see github.com/PinataFarms/DAD-3DHeads)::

    root/                                  DAD-3DHeadsDataset/, or one split folder
      train/train.json                     metadata: a list of items
      train/images/<ID>.png
      train/annotations/<ID>.json          {"vertices": (5023, 3), "model_view_matrix": (4, 4),
                                            "projection_matrix": (4, 4)}
      val/..., test/... (test: no annotations)

A metadata item is read tolerantly: the image path from ``img_path`` (or ``image_path``,
``image``, ``file_name``), the annotation from ``annotation_path`` (or ``annotation``,
``ann_path``), the id from ``item_id`` (or ``id``), ``bbox`` ``[x, y, w, h]`` pixels as a list
or a ``{"0": x, ...}`` / ``{"x": ...}`` dict, ``attributes`` any dict. Relative paths are tried
against the metadata's folder and its parents, and must name a file inside the dataset folder
given as ``root`` (an item whose path leaves it, by ``..`` or an absolute path elsewhere, is
skipped with a reason). Without metadata, ``images/<ID>.*`` is paired
with ``annotations/<ID>.json`` (the layout of the paper's ``dataset_synthetic/example``).

Projection (:func:`project_dad3d_vertices`), as the official ``visualize.py`` does it:
``clip = P @ MV @ [v, 1]``, ``u = clip_x / clip_w``, ``v = height - clip_y / clip_w``. The
projection matrix already maps to pixels (its principal point is about ``(W/2, H/2)``), with y
up, hence the flip. Verified on the paper's example: the projected FLAME eyeballs fall on the
eyes of its 68 landmarks and every landmark is within 12 px of a projected vertex. Whether the
official pixel origin is a pixel centre or a corner is not documented (half a pixel at most).

**68 landmarks are not in the annotation.** The official code derives them from the mesh with
FLAME's landmark embedding (barycentric coordinates on triangles, under the FLAME licence),
which is not shipped with mvface. So a sample gets ``landmarks`` only from, in this order:

1. ``landmark_indices`` passed to the reader: 68 vertex indices into the mesh (projected);
2. a 68-point ``.npy`` next to the annotation: ``<ID>_68_lm2d_points.npy`` in the annotation
   folder, a sibling ``images_lm2d/`` folder, or the image folder (a ``(68, 2)`` array or a
   pickled ``{"point": (68, 2)}`` as in the paper's data, read without executing code);
3. a ``landmarks_68`` key (68 x 2 pixels) in the annotation JSON.

Otherwise ``landmarks`` is ``None`` and ``meta["landmarks_unavailable_reason"]`` says why; the
matrices are always in ``meta`` and :func:`load_dad3d_annotation` gives the mesh, so landmarks
can be computed later. ``pose`` is ``None`` (the head rotation is the rotation part of
``meta["model_view_matrix"]``).
"""

from __future__ import annotations

import io
import json
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mvface._io import check_readable_file, read_small_file
from mvface.data.image import IMAGE_SUFFIXES
from mvface.data.readers._common import (
    check_dir,
    check_limit,
    finite_array,
    guard_os_errors,
    header_meta,
    os_error_line,
    resolve_relative,
    xywh_to_box,
)
from mvface.data.readers._registry import register_reader
from mvface.data.record import Dataset, FaceSample
from mvface.data.scheme import NUM_LANDMARKS
from mvface.errors import BadInputError

#: Number of vertices of a FLAME mesh.
FLAME_NUM_VERTICES = 5023

#: Largest 68-point ``.npy`` file read, in bytes.
MAX_NPY_BYTES = 10_000_000

_SPLITS = ("train", "val", "test")
_IMAGE_KEYS = ("img_path", "image_path", "image", "file_name", "img")
_ANNOTATION_KEYS = ("annotation_path", "annotation", "ann_path", "annotation_file")
_ID_KEYS = ("item_id", "id", "image_id")
_POINT_KEYS = ("point", "points", "landmarks", "landmarks_68", "lm", "pts")


# --------------------------------------------------------------------------------- projection


def project_dad3d_vertices(
    vertices: np.ndarray,
    model_view: np.ndarray,
    projection: np.ndarray,
    width: int,
    height: int,
) -> np.ndarray:
    """Project DAD-3DHeads mesh vertices to image pixels (the official convention).

    Args:
        vertices: ``(*, N, 3)`` FLAME vertices (model space, the annotation's ``vertices``).
        model_view: ``(*, 4, 4)`` the annotation's ``model_view_matrix`` (model -> camera,
            OpenGL axes: camera looks along -z).
        projection: ``(*, 4, 4)`` the annotation's ``projection_matrix`` (camera -> pixels
            with y up; ``clip_w = -z_camera``).
        width: image width in pixels; the matrices already encode it, so it is only checked.
        height: image height in pixels, for the y flip.

    Returns:
        ``(*, N, 2)`` float64 pixel positions ``(x, y)``, y down, in the image the annotation
        belongs to. Vertices at or behind the camera plane (``clip_w <= 0``) are NaN.

    Example:
        >>> ann = load_dad3d_annotation("annotations/<ID>.json")  # doctest: +SKIP
        >>> uv = project_dad3d_vertices(ann["vertices"], ann["model_view_matrix"],
        ...                             ann["projection_matrix"], 624, 717)  # doctest: +SKIP
    """
    if width <= 0 or height <= 0:
        raise BadInputError("image size", f"must be positive, got {width}x{height}")
    v = np.asarray(vertices, dtype=np.float64)
    mv = np.asarray(model_view, dtype=np.float64)
    proj = np.asarray(projection, dtype=np.float64)
    if v.shape[-1] != 3 or mv.shape[-2:] != (4, 4) or proj.shape[-2:] != (4, 4):
        raise BadInputError(
            "projection input",
            f"expected vertices (*, N, 3) and 4x4 matrices, got {v.shape}, {mv.shape}, "
            f"{proj.shape}",
        )
    homo = np.concatenate([v, np.ones_like(v[..., :1])], axis=-1)
    clip = homo @ np.swapaxes(proj @ mv, -1, -2)
    w = clip[..., 3:4]
    with np.errstate(divide="ignore", invalid="ignore"):
        xy = np.where(w > 0, clip[..., :2] / np.where(w > 0, w, 1.0), np.nan)
    return np.stack([xy[..., 0], height - xy[..., 1]], axis=-1)


# ------------------------------------------------------------------------------------ loading


def _load_json(path: Path) -> Any:
    check_readable_file(path, "JSON file")
    try:
        with path.open("rb") as f:
            return json.load(f)
    except FileNotFoundError:
        raise BadInputError(path, "does not exist") from None
    except PermissionError:
        raise BadInputError(path, "permission denied") from None
    except IsADirectoryError:
        raise BadInputError(path, "is a directory, not a JSON file") from None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise BadInputError(path, f"not valid JSON ({exc})") from None
    except OSError as exc:
        raise BadInputError(path, f"cannot be read ({exc.strerror or exc})") from None


def load_dad3d_annotation(path: str | Path) -> dict[str, np.ndarray]:
    """Load and check one DAD-3DHeads annotation JSON.

    Returns:
        ``vertices`` ``(N, 3)`` float64 (FLAME: N = 5023), ``model_view_matrix`` and
        ``projection_matrix`` ``(4, 4)``, and ``landmarks_68`` ``(68, 2)`` pixels if the
        file has that key.

    Raises:
        BadInputError: unreadable file, not JSON, a missing key, wrong shapes or NaN.
    """
    path = Path(path)
    data = _load_json(path)
    if not isinstance(data, dict):
        raise BadInputError(path, f"expected a JSON object, got {type(data).__name__}")
    for key in ("vertices", "model_view_matrix", "projection_matrix"):
        if key not in data:
            raise BadInputError(path, f"has no {key!r}")
    try:
        vertices = np.asarray(data["vertices"], dtype=np.float64)
    except (TypeError, ValueError):
        raise BadInputError(path, "vertices are not a numeric (N, 3) array") from None
    if vertices.ndim != 2 or vertices.shape[1] != 3 or vertices.shape[0] == 0:
        raise BadInputError(path, f"vertices have shape {vertices.shape}, expected (N, 3)")
    out = {
        "vertices": finite_array(vertices, vertices.shape, path, "vertices"),
        "model_view_matrix": finite_array(
            data["model_view_matrix"], (4, 4), path, "model_view_matrix"
        ),
        "projection_matrix": finite_array(
            data["projection_matrix"], (4, 4), path, "projection_matrix"
        ),
    }
    if "landmarks_68" in data:
        out["landmarks_68"] = finite_array(data["landmarks_68"], (68, 2), path, "landmarks_68")
    return out


def _allowed_globals() -> dict[tuple[str, str], Any]:
    """The only globals a pickled numpy array needs (taken from numpy itself, not imported)."""
    reconstruct = np.empty(0).__reduce__()[0]
    scalar = np.float64(0).__reduce__()[0]
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = reconstruct
        allowed[(module, "scalar")] = scalar
    return allowed


_ALLOWED_GLOBALS = _allowed_globals()


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that rebuilds numpy arrays, dtypes, dicts and lists, and nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}") from None


def load_landmarks_npy(path: str | Path) -> np.ndarray:
    """Load 68 2D landmarks (pixels) from a ``.npy`` file, safely.

    Accepts a numeric ``(68, 2)`` (or ``(1, 68, 2)``, or ``(68, 3)``: z dropped) array, or a
    0-d object array holding a dict with a ``point``/``points``/``landmarks`` entry, as the
    DAD-3DHeads-derived ``*_68_lm2d_points.npy`` files store it. Object arrays are unpickled
    with an unpickler that only rebuilds numpy arrays (no code from the file runs).

    Returns:
        ``(68, 2)`` float64 pixel positions as stored (no shift).

    Raises:
        BadInputError: unreadable, not an ``.npy``, a disallowed pickle, wrong shape or NaN.
    """
    path = Path(path)
    raw = read_small_file(path, MAX_NPY_BYTES, "68-point .npy file")
    fp = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            _, _, dtype = np.lib.format.read_array_header_1_0(fp)
        else:
            _, _, dtype = np.lib.format.read_array_header_2_0(fp)
        if dtype.hasobject:
            obj: Any = _NumpyOnlyUnpickler(fp).load()
        else:
            obj = np.load(io.BytesIO(raw), allow_pickle=False)
    except BadInputError:
        raise
    except Exception as exc:  # ValueError, UnpicklingError, EOFError, ...
        raise BadInputError(path, f"not a readable .npy landmark array ({exc})") from None
    if isinstance(obj, np.ndarray) and obj.dtype == object and obj.size == 1:
        obj = obj.reshape(-1)[0]
    if isinstance(obj, dict):
        key = next((k for k in _POINT_KEYS if k in obj), None)
        if key is None:
            raise BadInputError(path, f"dict without any of the keys {', '.join(_POINT_KEYS)}")
        obj = obj[key]
    try:
        arr = np.asarray(obj, dtype=np.float64)
    except (TypeError, ValueError):
        raise BadInputError(path, "landmarks are not numeric") from None
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2 or arr.shape[0] != NUM_LANDMARKS or arr.shape[1] not in (2, 3):
        raise BadInputError(path, f"landmarks have shape {arr.shape}, expected (68, 2)")
    return finite_array(arr[:, :2], (68, 2), path, "landmarks")


# -------------------------------------------------------------------------------- the reader


def _first(item: dict[str, Any], keys: Sequence[str]) -> Any:
    return next((item[k] for k in keys if item.get(k) not in (None, "")), None)


def _bbox(value: Any) -> np.ndarray | None:
    if isinstance(value, dict):
        if all(k in value for k in ("x", "y", "w", "h")):
            value = [value["x"], value["y"], value["w"], value["h"]]
        elif all(str(i) in value for i in range(4)):
            value = [value[str(i)] for i in range(4)]
        else:
            return None
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        return None
    return xywh_to_box(value)


def _metadata_items(meta_file: Path) -> list[Any]:
    data = _load_json(meta_file)
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        for key in ("items", "data", "images", "annotations"):
            if isinstance(data.get(key), list):
                return list(data[key])
        if data and all(isinstance(v, dict) for v in data.values()):
            return [{"item_id": k, **v} for k, v in data.items()]
    raise BadInputError(meta_file, "metadata must be a JSON list of items")


def _metadata_files(root: Path, split: str | None) -> list[Path]:
    if root.is_file():
        return [root]
    found: list[Path] = []
    names = (split,) if split else _SPLITS
    for name in names:
        for candidate in (root / f"{name}.json", root / name / f"{name}.json"):
            if candidate.is_file():
                found.append(candidate)
    if not found and root.name and (root / f"{root.name}.json").is_file():
        found.append(root / f"{root.name}.json")
    return found


def _paired_items(root: Path) -> list[dict[str, Any]]:
    """Items for a folder with ``images/`` and ``annotations/`` but no metadata JSON."""
    images_dir = root / "images"
    ann_dir = root / "annotations"
    items: list[dict[str, Any]] = []
    for image in sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        ann = ann_dir / f"{image.stem}.json"
        items.append(
            {
                "item_id": image.stem,
                "img_path": str(image),
                "annotation_path": str(ann) if ann.is_file() else None,
            }
        )
    return items


def _find_npy(stem: str, annotation: Path | None, image: Path) -> Path | None:
    name = f"{stem}_68_lm2d_points.npy"
    folders: list[Path] = []
    if annotation is not None:
        folders += [annotation.parent, annotation.parent.parent / "images_lm2d"]
    folders += [image.parent, image.parent.parent / "images_lm2d"]
    return next((f / name for f in folders if (f / name).is_file()), None)


def _check_indices(landmark_indices: Any) -> np.ndarray | None:
    if landmark_indices is None:
        return None
    try:
        idx = np.asarray(landmark_indices)
    except (TypeError, ValueError):
        idx = np.asarray([])
    if idx.shape != (NUM_LANDMARKS,) or not np.issubdtype(idx.dtype, np.integer):
        raise BadInputError("landmark_indices", f"must be 68 integers, got shape {idx.shape}")
    if idx.min() < 0:
        raise BadInputError("landmark_indices", "must be >= 0")
    return idx.astype(np.int64)


def _dad_sample(
    item: Any,
    position: int,
    meta_file: Path | None,
    root: Path,
    split: str | None,
    indices: np.ndarray | None,
) -> FaceSample:
    where = f"{meta_file or root} item {position}"
    if not isinstance(item, dict):
        raise BadInputError(where, f"expected an object, got {type(item).__name__}")
    img_str = _first(item, _IMAGE_KEYS)
    if not isinstance(img_str, str):
        raise BadInputError(where, "has no image path (img_path)")
    base = meta_file.parent if meta_file is not None else root
    bases = [base, base.parent, base.parent.parent, root, root.parent]
    roots = [root]
    image = resolve_relative(img_str, bases, roots, where) or resolve_relative(
        Path(img_str).name, [base / "images"], roots, where
    )
    if image is None:
        raise BadInputError(where, f"image not found: {img_str}")
    item_id = _first(item, _ID_KEYS)
    item_id = str(item_id) if item_id is not None else image.stem
    meta: dict[str, Any] = {"dataset": "dad3dheads", "split": split, "item_id": item_id}
    if isinstance(item.get("attributes"), dict):
        meta["attributes"] = dict(item["attributes"])
    box = _bbox(item["bbox"]) if "bbox" in item else None
    meta.update(header_meta(image))

    ann_str = _first(item, _ANNOTATION_KEYS)
    annotation: Path | None = None
    ann: dict[str, np.ndarray] | None = None
    if ann_str is not None:
        if not isinstance(ann_str, str):
            raise BadInputError(where, "annotation_path is not a string")
        annotation = resolve_relative(ann_str, bases, roots, where) or resolve_relative(
            Path(ann_str).name, [base / "annotations"], roots, where
        )
        if annotation is None:
            raise BadInputError(where, f"annotation not found: {ann_str}")
        ann = load_dad3d_annotation(annotation)
        meta["annotation_file"] = annotation
        meta["model_view_matrix"] = ann["model_view_matrix"]
        meta["projection_matrix"] = ann["projection_matrix"]
        meta["num_vertices"] = int(ann["vertices"].shape[0])

    landmarks: np.ndarray | None = None
    source: str | None = None
    reason: str | None = None
    npy = _find_npy(annotation.stem if annotation else image.stem, annotation, image)
    if indices is not None and ann is not None:
        if indices.max() >= ann["vertices"].shape[0]:
            raise BadInputError(
                annotation or where,
                f"landmark_indices go up to {indices.max()}, the mesh has "
                f"{ann['vertices'].shape[0]} vertices",
            )
        uv = project_dad3d_vertices(
            ann["vertices"][indices],
            ann["model_view_matrix"],
            ann["projection_matrix"],
            meta["width"],
            meta["height"],
        )
        if not np.all(np.isfinite(uv)):
            raise BadInputError(annotation or where, "a landmark vertex is behind the camera")
        landmarks, source = uv, "landmark_indices"
    elif npy is not None:
        landmarks, source = load_landmarks_npy(npy), "npy"
        meta["landmarks_file"] = npy
    elif ann is not None and "landmarks_68" in ann:
        landmarks, source = ann["landmarks_68"], "annotation"
    elif ann is None:
        reason = "no annotation for this item (e.g. the test split) and no 68-point .npy"
    else:
        reason = (
            "the annotation has no 68 landmarks (FLAME's landmark embedding is not shipped); "
            "pass landmark_indices or put <ID>_68_lm2d_points.npy next to the annotation"
        )
    meta["landmark_source"] = source
    if source == "npy":
        meta["landmarks_from"] = str(npy)
    elif source is not None:
        meta["landmarks_from"] = str(annotation or where)
    if reason is not None:
        meta["landmarks_unavailable_reason"] = reason
    return FaceSample(image=image, landmarks=landmarks, box=box, name=item_id, meta=meta)


@register_reader("dad3dheads")
@guard_os_errors
def read_dad3dheads(
    root: Path,
    limit: int | None = None,
    *,
    split: str | None = None,
    landmark_indices: Sequence[int] | np.ndarray | None = None,
) -> Dataset:
    """Read DAD-3DHeads items (image, FLAME mesh, camera matrices, landmarks when known).

    See the module docstring for the layouts read and, importantly, where 68 landmarks can
    come from: without ``landmark_indices``, a 68-point ``.npy`` or a ``landmarks_68`` key,
    samples have ``landmarks=None`` and ``meta["landmarks_unavailable_reason"]``.

    Args:
        root: ``DAD-3DHeadsDataset/`` (with ``train/ val/ test/``), one split folder, a
            metadata ``.json`` file, or a folder with ``images/`` + ``annotations/``.
        limit: stop after this many samples (``None``: all).
        split: read only this split's metadata (``"train"``, ``"val"``, ``"test"``).
        landmark_indices: 68 FLAME vertex indices (iBUG order) whose projections become the
            landmarks.

    Returns:
        A Dataset named ``"dad3dheads"``: ``name`` the item id; ``landmarks`` ``(68, 2)``
        pixels or ``None``; ``box`` ``[x, y, x + w, y + h]`` from ``bbox`` (pixels) or
        ``None``; ``pose`` ``None``; meta ``split``, ``item_id``, ``attributes``,
        ``annotation_file``, ``model_view_matrix``, ``projection_matrix``, ``num_vertices``,
        ``landmark_source`` (``"landmark_indices"``, ``"npy"``, ``"annotation"`` or
        ``None``), ``landmarks_file``, ``width``, ``height``.

    Raises:
        BadInputError: ``root`` missing or unreadable, no metadata and no ``images/`` folder,
            metadata that is not a list of items, or bad ``landmark_indices``.
    """
    root = Path(root)
    limit = check_limit(limit)
    indices = _check_indices(landmark_indices)
    if not root.exists():
        raise BadInputError(root, "does not exist")
    if root.is_dir():
        check_dir(root)
    meta_files = _metadata_files(root, split)
    sources: list[tuple[Path | None, str | None, list[Any]]] = []
    if meta_files:
        for meta_file in meta_files:
            split_name = meta_file.stem if meta_file.stem in _SPLITS else split
            sources.append((meta_file, split_name, _metadata_items(meta_file)))
    elif root.is_dir() and (root / "images").is_dir():
        split_name = root.name if root.name in _SPLITS else split
        sources.append((None, split_name, _paired_items(root)))
    else:
        raise BadInputError(
            root, "no DAD-3DHeads metadata (train.json, val.json, test.json) or images/ folder"
        )
    samples: list[FaceSample] = []
    skipped: list[str] = []
    base_root = root if root.is_dir() else root.parent
    for source_file, split_name, items in sources:
        for position, item in enumerate(items):
            if limit is not None and len(samples) >= limit:
                break
            try:
                samples.append(
                    _dad_sample(item, position, source_file, base_root, split_name, indices)
                )
            except BadInputError as exc:
                skipped.append(str(exc))
            except OSError as exc:
                skipped.append(os_error_line(exc, root))
    return Dataset(samples=samples, skipped=skipped, name="dad3dheads", root=root)


__all__ = [
    "FLAME_NUM_VERTICES",
    "load_dad3d_annotation",
    "load_landmarks_npy",
    "project_dad3d_vertices",
    "read_dad3dheads",
]
