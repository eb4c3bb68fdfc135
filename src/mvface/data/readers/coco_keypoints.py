"""COCO-style keypoint JSONs with 68 face points: COCO-WholeBody and mmpose's face datasets.

Both readers take a COCO JSON (``images`` + ``annotations``); image ``file_name`` is tried
relative to ``image_root`` (when given), the JSON's folder, its ``images/`` folder, the parent
folder, the parent's ``images/`` and, for a JSON named like ``*val*``/``*train*``, the
parent's ``val2017/``/``train2017/``.

Coordinate conventions (what the data says, checked on the shared samples):

- ``"coco-wholebody"``: ``face_kpts`` are COCO keypoints, which are pixel indices: integers in
  ``[0, W - 1]`` for the body keypoints (detectron2 reads them so, adding 0.5 to get its
  continuous frame). They are therefore already 0-based pixel centres: **no shift**.
- ``"coco-face68"`` (mmpose's 300-W, 300-VW, 300W-LP JSONs): mmpose copied the datasets'
  1-based positions verbatim (the 300-VW sample's JSON equals its ``.pts`` files exactly), so
  **1 is subtracted** by default, like :func:`~mvface.data.readers.pts.read_pts`
  (``one_based=False`` turns it off for JSONs written in 0-based pixels).

Paths are confined: a ``file_name`` must name a file under the JSON's parent folder (the
dataset root, which holds the JSON's folder and ``val2017/``-style siblings) or under
``image_root``; one that leaves it (``../..``, an absolute path elsewhere) is skipped with a
reason.

Boxes ``[x, y, w, h]`` become ``[x, y, x + w, y + h]`` with the same shift as the points.
Visibility is ``v > 0``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from mvface._io import check_readable_file
from mvface.data.readers._common import (
    check_limit,
    find_single_file,
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


def load_coco_json(path: Path) -> tuple[dict[Any, dict[str, Any]], list[Any]]:
    """Load a COCO JSON: ``({image id: image entry}, annotations)``; BadInputError if bad."""
    check_readable_file(path, "JSON file")
    try:
        with path.open("rb") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise BadInputError(path, "does not exist") from None
    except PermissionError:
        raise BadInputError(path, "permission denied") from None
    except (ValueError, RecursionError) as exc:
        raise BadInputError(path, f"not valid JSON ({exc})") from None
    except OSError as exc:
        raise BadInputError(path, f"cannot be read ({exc.strerror or exc})") from None
    if not isinstance(data, dict):
        raise BadInputError(path, "a COCO JSON must be an object with 'images' and 'annotations'")
    images, annotations = data.get("images"), data.get("annotations")
    if not isinstance(images, list) or not isinstance(annotations, list):
        raise BadInputError(path, "'images' and 'annotations' must both be lists")
    by_id: dict[Any, dict[str, Any]] = {}
    for entry in images:
        if (
            isinstance(entry, dict)
            and isinstance(entry.get("id"), (int, str))  # a list or dict id is not an id
            and isinstance(entry.get("file_name"), str)
        ):
            by_id[entry["id"]] = entry
    return by_id, annotations


def _image_bases(json_file: Path, image_root: Path | None) -> list[Path]:
    folder = json_file.parent
    bases = [image_root] if image_root is not None else []
    bases += [folder, folder / "images", folder.parent, folder.parent / "images"]
    stem = json_file.stem.lower()
    for split in ("train", "val", "test"):
        if split in stem:
            bases.append(folder.parent / f"{split}2017")
    return bases


def _dataset_roots(json_file: Path, image_root: Path | None) -> list[Path]:
    """Where image files may be: under the JSON's parent folder, or under ``image_root``."""
    roots = [json_file.parent.parent]
    return [image_root, *roots] if image_root is not None else roots


def _keypoints_68(value: Any, where: str, what: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise BadInputError(where, f"{what} are not numbers") from None
    if arr.shape != (NUM_LANDMARKS * 3,):
        raise BadInputError(where, f"{what} has {arr.size} values, expected {NUM_LANDMARKS * 3}")
    if not np.all(np.isfinite(arr)):
        raise BadInputError(where, f"{what} contains NaN or infinite values")
    return arr.reshape(NUM_LANDMARKS, 3)


def _read_coco(
    root: Path,
    limit: int | None,
    image_root: Path | None,
    dataset_name: str,
    keypoints_key: str,
    box_key: str,
    shift: float,
    valid_key: str | None,
) -> Dataset:
    limit = check_limit(limit)
    json_file = find_single_file(Path(root), ".json")
    images, annotations = load_coco_json(json_file)
    bases = _image_bases(json_file, Path(image_root) if image_root is not None else None)
    roots = _dataset_roots(json_file, Path(image_root) if image_root is not None else None)
    sizes: dict[Path, dict[str, Any]] = {}
    samples: list[FaceSample] = []
    skipped: list[str] = []
    for position, ann in enumerate(annotations):
        if limit is not None and len(samples) >= limit:
            break
        where = f"{json_file} annotation {position}"
        try:
            if not isinstance(ann, dict):
                raise BadInputError(where, f"expected an object, got {type(ann).__name__}")
            if valid_key is not None and not ann.get(valid_key, False):
                continue  # a person without a face annotation: not an error
            where = f"{json_file} annotation id {ann.get('id', position)}"
            image_id = ann.get("image_id")
            entry = images.get(image_id) if isinstance(image_id, (int, str)) else None
            if entry is None:
                raise BadInputError(where, f"image_id {ann.get('image_id')!r} is not in 'images'")
            if keypoints_key not in ann:
                raise BadInputError(where, f"has no {keypoints_key!r}")
            kpts = _keypoints_68(ann[keypoints_key], where, keypoints_key)
            if not np.any(kpts[:, 2] > 0):
                raise BadInputError(where, f"no labelled point in {keypoints_key!r}")
            image = resolve_relative(entry["file_name"], bases, roots, where)
            if image is None:
                raise BadInputError(where, f"image not found: {entry['file_name']}")
            if image not in sizes:
                sizes[image] = header_meta(image)
            size = sizes[image]
            json_size = (entry.get("width"), entry.get("height"))
            if None not in json_size and json_size != (size["width"], size["height"]):
                raise BadInputError(
                    where,
                    f"image is {size['width']}x{size['height']} but the JSON says "
                    f"{json_size[0]}x{json_size[1]} (EXIF rotation or wrong file?)",
                )
            meta: dict[str, Any] = {
                "dataset": dataset_name,
                "json_file": json_file,
                "landmarks_from": where,
                "image_id": ann.get("image_id"),
                "annotation_id": ann.get("id"),
                **size,
            }
            for key in ("center", "scale"):
                if key in ann:
                    meta[key] = ann[key]
            if box_key != "bbox" and "bbox" in ann:
                meta["person_box"] = xywh_to_box(ann["bbox"])
            box = xywh_to_box(ann[box_key], shift) if box_key in ann else None
            stem = Path(entry["file_name"]).with_suffix("").as_posix()
            samples.append(
                FaceSample(
                    image=image,
                    landmarks=kpts[:, :2] - shift,
                    box=box,
                    visibility=kpts[:, 2] > 0,
                    name=f"{stem}#{ann.get('id', position)}",
                    meta=meta,
                )
            )
        except BadInputError as exc:
            skipped.append(str(exc))
        except OSError as exc:
            skipped.append(os_error_line(exc, where))
    return Dataset(samples=samples, skipped=skipped, name=dataset_name, root=json_file)


@register_reader("coco-wholebody")
@guard_os_errors
def read_coco_wholebody(
    root: Path, limit: int | None = None, *, image_root: Path | None = None
) -> Dataset:
    """Read the 68 face points of COCO-WholeBody (one sample per person with a valid face).

    Args:
        root: the COCO-WholeBody JSON, or a folder holding exactly one ``.json``.
        limit: stop after this many samples (``None``: all).
        image_root: the folder of the images (e.g. ``val2017/``) when it is not found
            automatically (see the module docstring).

    Returns:
        A Dataset named ``"coco-wholebody"``: ``landmarks`` ``(68, 2)`` 0-based pixels
        (``face_kpts`` unshifted, see the module docstring); ``visibility`` ``v > 0``; ``box``
        from ``face_box``; ``name`` ``"<file stem>#<annotation id>"``; meta ``image_id``,
        ``annotation_id``, ``person_box``, ``json_file``, ``width``, ``height``. Persons with
        ``face_valid`` false are left out silently (they are not faces); a face with a bad
        ``face_kpts``, a missing image or a size that differs from the JSON is skipped with
        a reason.

    Raises:
        BadInputError: no readable JSON, or not a COCO JSON.
    """
    return _read_coco(
        root, limit, image_root, "coco-wholebody", "face_kpts", "face_box", 0.0, "face_valid"
    )


@register_reader("coco-face68")
@guard_os_errors
def read_coco_face68(
    root: Path,
    limit: int | None = None,
    *,
    image_root: Path | None = None,
    one_based: bool = True,
) -> Dataset:
    """Read a COCO-style JSON whose ``keypoints`` are 68 face points (mmpose's face datasets).

    Args:
        root: the JSON (mmpose ``test_300w.json``, ``anno_300vw.json``, ``test_300wlp.json``
            ...), or a folder holding exactly one ``.json``.
        limit: stop after this many samples (``None``: all).
        image_root: the folder the ``file_name`` entries are relative to, when it is not
            found automatically.
        one_based: the keypoints are 1-based (the default: mmpose kept the source datasets'
            MATLAB/iBUG positions) and 1 is subtracted; ``False`` keeps them as they are.

    Returns:
        A Dataset named ``"coco-face68"``: ``landmarks`` ``(68, 2)`` 0-based pixels,
        ``visibility`` ``v > 0``, ``box`` from ``bbox`` (same shift), ``name``
        ``"<file name without extension>#<annotation id>"``; meta ``image_id``,
        ``annotation_id``, ``center``/``scale`` (mmpose's, unshifted, when present),
        ``json_file``, ``width``, ``height``.

    Raises:
        BadInputError: no readable JSON, or not a COCO JSON.
    """
    shift = 1.0 if one_based else 0.0
    return _read_coco(root, limit, image_root, "coco-face68", "keypoints", "bbox", shift, None)


__all__ = ["load_coco_json", "read_coco_face68", "read_coco_wholebody"]
