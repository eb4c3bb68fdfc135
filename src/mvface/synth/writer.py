"""Writing synthetic identities safely: atomic, resumable, one job per folder.

Each identity is written into a hidden temporary folder next to its final place and renamed
when complete (``meta.json`` is its last file), so a killed job never leaves a half-written
identity visible, and a re-run skips every identity that has ``meta.json``. A lock file refuses
a second job on the same output folder. The manifest is an index rebuilt from the identities'
``meta.json`` files, so it can always be regenerated.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from mvface import __version__
from mvface._io import atomic_write_text
from mvface.data.readers.synthetic import (
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST_FILE,
    META_FILE,
    list_identities,
)
from mvface.errors import BadInputError, MvfaceError

LOCK_FILE = ".lock"


@dataclass
class IdentityRecord:
    """Everything written for one identity (see :mod:`mvface.data.readers.synthetic`)."""

    name: str
    images: np.ndarray  # (V, H, W, 3) uint8 RGB
    cameras: np.ndarray  # (V, 25) EG3D labels
    landmarks: np.ndarray  # (V, 68, 2) pixels, mvface convention
    landmarks3d: np.ndarray  # (68, 3) world
    visibility: np.ndarray  # (V, 68) bool
    source_image: np.ndarray  # (h, w, 3) uint8 RGB aligned crop
    source_camera: np.ndarray  # (25,)
    provenance: dict[str, Any] = field(default_factory=dict)


def safe_identity_name(name: str) -> str:
    """A folder name from a sample name: ``a/b c.jpg`` → ``a_b_c.jpg`` (no path separators)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    if not cleaned:
        raise BadInputError(name or "<empty>", "cannot make an identity name from it")
    return cleaned


class OutputLockedError(MvfaceError):
    """Another job holds the output folder."""


@contextlib.contextmanager
def output_lock(root: Path) -> Iterator[None]:
    """Hold ``root/.lock`` for the duration of a job; refuse if a live job holds it."""
    root.mkdir(parents=True, exist_ok=True)
    lock = root / LOCK_FILE
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                pid = int(lock.read_text().strip() or "0")
            except (OSError, ValueError):
                pid = 0
            if pid and _alive(pid):
                raise OutputLockedError(
                    f"{root}: another synthesis job (pid {pid}) is writing here"
                ) from None
            lock.unlink(missing_ok=True)  # stale lock of a killed job
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        break
    else:  # pragma: no cover - a race with another job removing/creating the lock
        raise OutputLockedError(f"{root}: could not take the output lock")
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SyntheticWriter:
    """Writes identities into a synthetic dataset folder."""

    def __init__(self, root: str | Path, image_format: str = "jpg", quality: int = 95) -> None:
        if image_format not in ("jpg", "png"):
            raise ValueError(f"image_format must be jpg or png, got {image_format!r}")
        self.root = Path(root)
        self.image_format = image_format
        self.quality = quality
        self.root.mkdir(parents=True, exist_ok=True)

    def is_done(self, name: str) -> bool:
        """Whether identity ``name`` is already finished (has its ``meta.json``)."""
        return (self.root / safe_identity_name(name) / META_FILE).is_file()

    def remove_stale_temporaries(self) -> int:
        """Delete what killed jobs left: identity folders and manifest files half-written under
        temporary names (never visible under a final name); returns how many."""
        stale = [p for p in self.root.glob(".tmp-*") if p.is_dir()]
        stale += [p for p in self.root.glob(f".{MANIFEST_FILE}.*.tmp*") if p.is_file()]
        for path in stale:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        return len(stale)

    def _encode(self, image: np.ndarray) -> bytes:
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        params = [cv2.IMWRITE_JPEG_QUALITY, self.quality] if self.image_format == "jpg" else []
        ok, buf = cv2.imencode(f".{self.image_format}", bgr, params)
        if not ok:  # pragma: no cover
            raise BadInputError("image", "could not be encoded")
        return buf.tobytes()

    def write(self, record: IdentityRecord) -> Path:
        """Write one identity atomically; returns its folder.

        Raises:
            BadInputError: the arrays disagree on the number of views, or a finished identity
                of the same (sanitised) name exists: a finished identity is never replaced.
            OSError: the disk is full or the folder not writable (nothing is left behind).
        """
        name = safe_identity_name(record.name)
        final = self.root / name
        if (final / META_FILE).is_file():
            raise BadInputError(
                name, "a finished identity of this name exists (duplicate identity name)"
            )
        v = len(record.cameras)
        if not (
            record.images.shape[0] == v
            and record.landmarks.shape == (v, 68, 2)
            and record.visibility.shape == (v, 68)
        ):
            raise BadInputError(name, "images, cameras, landmarks and visibility disagree on V")
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=self.root))
        try:
            (tmp / "images").mkdir()
            for i, image in enumerate(record.images):
                (tmp / "images" / f"{i:03d}.{self.image_format}").write_bytes(self._encode(image))
            (tmp / f"source.{self.image_format}").write_bytes(self._encode(record.source_image))
            np.save(tmp / "cameras.npy", record.cameras.astype(np.float32))
            np.save(tmp / "landmarks.npy", record.landmarks.astype(np.float32))
            np.save(tmp / "landmarks3d.npy", record.landmarks3d.astype(np.float32))
            np.save(tmp / "visibility.npy", record.visibility.astype(bool))
            np.save(tmp / "source_camera.npy", record.source_camera.astype(np.float32))
            meta = {
                "format": FORMAT_NAME,
                "format_version": FORMAT_VERSION,
                "mvface_version": __version__,
                "identity": name,
                "views": v,
                "image_size": [int(record.images.shape[2]), int(record.images.shape[1])],
                "image_format": self.image_format,
                **record.provenance,
            }
            (tmp / META_FILE).write_text(json.dumps(meta, indent=1, default=_json_default))
            os.chmod(tmp, 0o755)  # mkdtemp makes 0700 folders
            if final.exists():  # an unfinished leftover without meta.json: replace it
                shutil.rmtree(final)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    def write_manifest(self, skipped: list[dict[str, str]] | None = None, **info: Any) -> Path:
        """Rebuild ``manifest.json`` from the finished identities (atomically)."""
        identities = []
        for folder in list_identities(self.root):
            try:
                identities.append(json.loads((folder / META_FILE).read_text()))
            except (OSError, json.JSONDecodeError):
                continue
        manifest = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "mvface_version": __version__,
            "identities": identities,
            "skipped": skipped or [],
            **info,
        }
        path = self.root / MANIFEST_FILE
        atomic_write_text(path, json.dumps(manifest, indent=1, default=_json_default) + "\n")
        return path


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")
