"""dlib imglab XML datasets (``training_with_face_landmarks.xml`` and the like).

Format::

    <dataset><images>
      <image file='photo.jpg'>
        <box top='90' left='194' width='37' height='37' [ignore='1']>
          <part name='00' x='201' y='107'/> ... <part name='67' .../>
        </box>
      </image>
    </images></dataset>

Image paths are relative to the XML file's folder and must stay inside it (an ``<image>`` whose
``file`` leaves it, by ``..`` or an absolute path elsewhere, is skipped with a reason).
Part positions are dlib pixel indices, already 0-based (no shift).
A box becomes ``[left, top, left + width, top + height]``.

The XML is parsed safely: documents with a ``<!DOCTYPE`` or ``<!ENTITY`` declaration are refused
(no entity expansion), and ``defusedxml`` is used when it is installed.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

from mvface.data.readers._common import (
    check_limit,
    find_single_file,
    guard_os_errors,
    header_meta,
    os_error_line,
    read_file_bytes,
    resolve_relative,
    sample_name,
    xywh_to_box,
)
from mvface.data.readers._registry import register_reader
from mvface.data.record import Dataset, FaceSample
from mvface.data.scheme import NUM_LANDMARKS
from mvface.errors import BadInputError

try:  # optional hardening; our own DOCTYPE/ENTITY check below is always applied
    from defusedxml.ElementTree import fromstring as _fromstring
except ImportError:  # pragma: no cover - depends on the environment
    _fromstring = ET.fromstring

_DECLARATION = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)

#: Largest XML file read, in bytes.
MAX_XML_BYTES = 200_000_000


def parse_xml_safely(path: Path) -> ET.Element:
    """Parse an XML file, refusing DOCTYPE/ENTITY declarations; BadInputError on any failure."""
    data = read_file_bytes(path, MAX_XML_BYTES, "XML file")
    if _DECLARATION.search(data):
        raise BadInputError(path, "XML with a DOCTYPE or ENTITY declaration is refused (unsafe)")
    try:
        root: ET.Element = _fromstring(data)
    except Exception as exc:  # ET.ParseError, defusedxml's errors, ValueError
        raise BadInputError(path, f"not valid XML ({exc})") from None
    return root


def _number(element: ET.Element, key: str, where: str) -> float:
    value = element.get(key)
    if value is None:
        raise BadInputError(where, f"<{element.tag}> has no {key!r} attribute")
    try:
        number = float(value)
    except ValueError:
        raise BadInputError(
            where, f"<{element.tag}> {key}={value[:20]!r} is not a number"
        ) from None
    if not np.isfinite(number):
        raise BadInputError(where, f"<{element.tag}> {key} is not finite")
    return number


def _parts(box: ET.Element, where: str) -> np.ndarray | None:
    parts = box.findall("part")
    if not parts:
        return None
    if len(parts) != NUM_LANDMARKS:
        raise BadInputError(where, f"has {len(parts)} parts, expected {NUM_LANDMARKS}")
    points = np.full((NUM_LANDMARKS, 2), np.nan)
    for part in parts:
        name = part.get("name", "")
        try:
            index = int(name)
        except ValueError:
            raise BadInputError(where, f"part name {name[:20]!r} is not an index 0-67") from None
        if not 0 <= index < NUM_LANDMARKS or not np.isnan(points[index, 0]):
            raise BadInputError(where, f"part name {name!r} out of range or repeated")
        points[index] = (_number(part, "x", where), _number(part, "y", where))
    return points


@register_reader("dlib-xml")
@guard_os_errors
def read_dlib_xml(root: Path, limit: int | None = None) -> Dataset:
    """Read a dlib imglab XML dataset: one sample per (non-ignored) box.

    Args:
        root: the XML file, or a folder holding exactly one ``.xml``.
        limit: stop after this many samples (``None``: all).

    Returns:
        A Dataset named ``"dlib-xml"``, in file order: ``name`` ``"<image>#<box index>"``;
        ``landmarks`` ``(68, 2)`` 0-based pixels, or ``None`` when the box has no parts;
        ``box`` ``[left, top, left + width, top + height]``; meta ``xml_file``,
        ``box_index``, ``label`` (when present), ``width``, ``height``. Boxes with
        ``ignore='1'`` are left out (not reported); a box with a wrong part count, bad
        numbers or a missing image is skipped with a reason.

    Raises:
        BadInputError: no readable XML, invalid or unsafe XML, or no ``<images>`` element.
    """
    limit = check_limit(limit)
    xml_file = find_single_file(Path(root), ".xml")
    tree = parse_xml_safely(xml_file)
    images = tree.find("images") if tree.tag != "images" else tree
    if images is None:
        raise BadInputError(xml_file, "no <images> element (not a dlib imglab dataset)")
    base = xml_file.parent
    samples: list[FaceSample] = []
    skipped: list[str] = []
    for image_el in images.findall("image"):
        if limit is not None and len(samples) >= limit:
            break
        file_attr = image_el.get("file")
        if not file_attr:
            skipped.append(f"{xml_file}: <image> without a file attribute")
            continue
        try:  # confined to the XML's folder (no ../ or absolute paths elsewhere)
            found = resolve_relative(file_attr, [base], [base], f"{xml_file} {file_attr}")
        except BadInputError as exc:
            skipped.append(str(exc))
            continue
        image = found if found is not None else base / file_attr
        size: dict[str, Any] | None = None
        for box_index, box_el in enumerate(image_el.findall("box")):
            if limit is not None and len(samples) >= limit:
                break
            if box_el.get("ignore", "0").strip() not in ("", "0", "false"):
                continue
            where = f"{xml_file} {file_attr} box {box_index}"
            try:
                if size is None:
                    if not image.is_file():
                        raise BadInputError(where, f"image not found: {image}")
                    size = header_meta(image)
                xywh = [_number(box_el, k, where) for k in ("left", "top", "width", "height")]
                box = xywh_to_box(xywh)
                if box is None:
                    raise BadInputError(where, "box has no area")
                meta: dict[str, Any] = {
                    "dataset": "dlib-xml",
                    "xml_file": xml_file,
                    "landmarks_from": where,
                    "box_index": box_index,
                    **size,
                }
                label = box_el.findtext("label")
                if label:
                    meta["label"] = label.strip()
                samples.append(
                    FaceSample(
                        image=image,
                        landmarks=_parts(box_el, where),
                        box=box,
                        name=f"{sample_name(image, base)}#{box_index}",
                        meta=meta,
                    )
                )
            except BadInputError as exc:
                skipped.append(str(exc))
            except OSError as exc:
                skipped.append(os_error_line(exc, where))
    return Dataset(samples=samples, skipped=skipped, name="dlib-xml", root=xml_file)


__all__ = ["parse_xml_safely", "read_dlib_xml"]
