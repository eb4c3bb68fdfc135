"""Dataset readers, one module per format, each registered by name.

>>> from mvface.data.readers import list_readers, read_dataset
>>> list_readers()  # doctest: +NORMALIZE_WHITESPACE
['300w-lp', 'aflw2000-3d', 'coco-face68', 'coco-wholebody', 'dad3dheads', 'dlib-xml',
 'folder', 'list', 'mvface-synthetic', 'pts']

``read_dataset(name, root, limit=None)`` returns a :class:`~mvface.data.record.Dataset`.
Every reader gives landmarks in 0-based pixel coordinates (pixel centres at integers) of the
image as :func:`mvface.data.image.load_image` returns it.
"""

from __future__ import annotations

# Importing the format modules registers their readers.
from mvface.data.readers import (  # noqa: F401
    aflw2000_3d,
    coco_keypoints,
    dad3dheads,
    dlib_xml,
    folder,
    image_list,
    lp300w,
    pts,
    synthetic,
)
from mvface.data.readers._registry import (
    ReaderFn,
    get_reader,
    list_readers,
    read_dataset,
    register_reader,
)

__all__ = ["ReaderFn", "get_reader", "list_readers", "read_dataset", "register_reader"]
