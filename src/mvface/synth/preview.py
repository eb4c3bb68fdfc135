"""A contact sheet of a synthetic dataset: sampled views with their landmarks, to judge at a glance.

One row per identity (sampled), ``views`` sampled views per row, in view order; landmarks the
depth test found visible are drawn as filled green dots, hidden ones as hollow orange rings
(:func:`mvface.viz.overlay.draw_landmarks`).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from mvface.data.image import load_image
from mvface.data.readers.synthetic import list_identities, load_identity
from mvface.errors import BadInputError
from mvface.viz.overlay import draw_landmarks


def check_preview_path(out_png: str | Path) -> Path:
    """``out_png`` if it names an image file OpenCV can write (``.png``, ``.jpg``...).

    Raises:
        ValueError: a folder, or a name without an image suffix (one line naming it).
    """
    out = Path(out_png)
    if out.is_dir():
        raise ValueError(f"{out}: is a folder; give the image file to write, e.g. {out / 'p.png'}")
    if not out.suffix or not cv2.haveImageWriter(str(out)):
        raise ValueError(f"{out}: needs an image suffix such as .png (got {out.suffix!r})")
    return out


def write_preview(
    dataset_dir: str | Path,
    out_png: str | Path,
    identities: int = 4,
    views: int = 8,
    seed: int = 0,
    tile: int | None = None,
) -> Path:
    """Write a PNG contact sheet of a synthetic dataset.

    Args:
        dataset_dir: a folder written by :func:`mvface.synth.pipeline.run_synth`.
        out_png: the PNG to write (its folder is created).
        identities: rows: at most this many identities, sampled with ``seed``.
        views: columns: this many views per identity, sampled with ``seed`` (in view order).
        seed: seed of the sampling.
        tile: side of each tile in pixels (default: the views' own size).

    Returns:
        The written path.

    Raises:
        BadInputError: no finished identity in ``dataset_dir``, or the PNG cannot be written.
        ValueError: ``out_png`` is a folder or has no image suffix (:func:`check_preview_path`).
    """
    if identities < 1 or views < 1:
        raise ValueError("identities and views must be >= 1")
    out = check_preview_path(out_png)
    root = Path(dataset_dir)
    folders = list_identities(root) if root.is_dir() else []
    if not folders:
        raise BadInputError(root, "no finished identities to preview")
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(folders), min(identities, len(folders)), replace=False))
    rows: list[list[np.ndarray]] = []
    for index in chosen:
        ident = load_identity(folders[int(index)])
        picks = sorted(rng.choice(ident.num_views, min(views, ident.num_views), replace=False))
        row = []
        for v in picks:
            image = load_image(ident.image_files[int(v)])
            drawn = draw_landmarks(image, ident.landmarks[v], visibility=ident.visibility[v])
            cv2.putText(
                drawn, f"{ident.name[:18]} #{int(v)}", (3, 12), cv2.FONT_HERSHEY_SIMPLEX,
                0.35, (255, 255, 255), 1, cv2.LINE_AA,
            )  # fmt: skip
            row.append(drawn)
        rows.append(row)
    side = tile or max(img.shape[0] for row in rows for img in row)
    n_cols = max(len(row) for row in rows)
    sheet = np.zeros((side * len(rows), side * n_cols, 3), np.uint8)
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            if img.shape[:2] != (side, side):
                img = cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA)
            sheet[r * side : (r + 1) * side, c * side : (c + 1) * side] = img
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        written = cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    except cv2.error as exc:  # OpenCV raises for some names instead of returning False
        raise BadInputError(out, f"could not write the image ({str(exc).strip()[-80:]})") from None
    if not written:
        raise BadInputError(out, "could not write the image")
    return out
