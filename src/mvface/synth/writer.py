"""Writing synthetic identities safely: atomic, resumable, one job per folder.

Each identity is written into a hidden temporary folder next to its final place (named
``.mvface-tmp-<name>-<random>`` and holding the marker file :data:`PARTIAL_MARKER` from the
start) and renamed when complete (``meta.json`` is its last file), so a killed job never leaves
a half-written identity visible, and a re-run skips every identity that has ``meta.json``. Only
folders carrying that name and marker are ever deleted as leftovers; a visible folder is never
deleted or replaced. An exclusive ``flock`` on ``.lock``, held for the job's life, refuses a
second job on the same output folder (the kernel drops it when the job dies, even by ``kill -9``).
The manifest is an index rebuilt from the identities' ``meta.json`` files, so it can always be
regenerated.

Identity folder names (:func:`safe_identity_name`) are the sample name itself when it is a plain
name (ASCII letters, digits, ``._-``, at most :data:`MAX_PLAIN_NAME` characters, not one of
mvface's own files); any other name becomes an ASCII slug plus ``+`` and a hash of the exact
name, so every name gives a folder and distinct names give distinct folders.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from mvface._io import atomic_write_text
from mvface._version import __version__
from mvface.data.readers.synthetic import (
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST_FILE,
    META_FILE,
    OBSERVED_FILE,
    list_identities,
)
from mvface.errors import BadInputError, MvfaceError

LOCK_FILE = ".lock"
#: Prefix of the temporary folder an identity is written into (only mvface makes these).
TEMP_PREFIX = ".mvface-tmp-"
#: File put first into every temporary identity folder: marks it as mvface's unfinished work.
PARTIAL_MARKER = ".mvface-partial"
#: Longest sample name kept as it is (longer ones are cut and hashed; file names stop at 255 bytes).
MAX_PLAIN_NAME = 100
#: Names of mvface's own files in an output folder; no identity folder may take one of them.
RESERVED_NAMES = frozenset({MANIFEST_FILE, LOCK_FILE, "synth_preview.png"})
#: Endings of mvface's own files (manifest, previews, locks): a name ending so is hashed.
RESERVED_SUFFIXES = (".json", ".png", ".jpg", ".jpeg", ".lock", ".tmp")
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_HASHED_NAME = re.compile(r"[A-Za-z0-9._-]*\+[0-9a-f]{12}")
_TEMP_FOLDER = re.compile(re.escape(TEMP_PREFIX) + r".+-[A-Za-z0-9_]{8}")


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
    observed: np.ndarray | None = None  # (V, 68) bool: texture observed, not filled (optional)


def _is_plain_name(name: str) -> bool:
    """A name kept as it is: ASCII word characters, not hidden, not one of mvface's files."""
    return (
        len(name) <= MAX_PLAIN_NAME
        and _PLAIN_NAME.fullmatch(name) is not None
        and not name.endswith((".", "_"))
        and name.lower() not in RESERVED_NAMES
        and not name.lower().endswith(RESERVED_SUFFIXES)
    )


def hashed_identity_name(name: str, key: str | None = None) -> str:
    """``<ASCII slug of name>+<12 hex digits of sha1(key or name)>``: never a plain name."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_name).strip("._-")[:60].rstrip("._-")
    digest = hashlib.sha1((name if key is None else key).encode("utf-8", "surrogatepass"))
    return f"{slug or 'face'}+{digest.hexdigest()[:12]}"


def safe_identity_name(name: str) -> str:
    """The identity folder name of a sample name; exists for every name, distinct for distinct.

    A plain name (``einstein``, ``image_003_1``) is kept; any other (``afw/123 4``, ``张三``,
    ``manifest.json``, a name over :data:`MAX_PLAIN_NAME` characters) becomes
    :func:`hashed_identity_name` of it (``afw_123_4+1f0c...``, ``face+9b2e...``). A name that is
    already such a hashed name is returned unchanged, so the function is idempotent.
    """
    if _is_plain_name(name) or (len(name) <= 80 and _HASHED_NAME.fullmatch(name)):
        return name
    return hashed_identity_name(name)


def check_identity_name(name: str) -> str:
    """``name`` if it can be an identity folder of its own (see :func:`safe_identity_name`).

    Raises:
        BadInputError: a name with path separators, hidden, or one of mvface's own files.
    """
    if safe_identity_name(name) != name:
        raise BadInputError(name or "<empty>", "is not a valid identity folder name")
    return name


class OutputLockedError(MvfaceError):
    """Another job holds the output folder."""


@contextlib.contextmanager
def output_lock(root: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``root/.lock`` for the job's life; refuse if it is held.

    The kernel gives the lock to one open file at a time and drops it when its holder dies (even
    by ``kill -9``), so two jobs can never both hold it and a killed job's lock is free at once.
    The file is unlinked on release while still locked; a job that opened the old file meanwhile
    sees that its file is no longer the one at ``root/.lock`` and tries again.

    Raises:
        OutputLockedError: another job holds the lock.
    """
    root.mkdir(parents=True, exist_ok=True)
    path = root / LOCK_FILE
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise OutputLockedError(
                f"{root}: another synthesis job (pid {holder}) is writing here"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # we locked a file its holder had just unlinked: take the new one
    try:
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())  # for the message of a refused job only
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        os.close(fd)


@contextlib.contextmanager
def staged_identity(root: Path, name: str) -> Iterator[Path]:
    """A temporary identity folder in ``root``, renamed to ``root / name`` when the block ends.

    The folder carries :data:`TEMP_PREFIX` and :data:`PARTIAL_MARKER` from the start (mvface's
    unfinished work, which :meth:`SyntheticWriter.remove_stale_temporaries` may delete); a
    block that fails leaves nothing behind. Write ``meta.json`` last.

    Raises:
        BadInputError: something of that name exists, before or when the block ends (it is
            never replaced or deleted).
    """
    final = root / name
    taken = BadInputError(final, "exists but is not an identity mvface finished; left as it is")
    if final.exists() or final.is_symlink():
        raise taken
    tmp = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{name}-", dir=root))
    try:
        (tmp / PARTIAL_MARKER).touch()
        yield tmp
        os.chmod(tmp, 0o755)  # mkdtemp makes 0700 folders
        if final.exists() or final.is_symlink():  # appeared meanwhile: never replace it
            raise taken
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    with contextlib.suppress(OSError):  # kept until the rename: the temporary is ours
        (final / PARTIAL_MARKER).unlink()


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

    def is_taken(self, name: str) -> bool:
        """Whether something that is not a finished identity has the name ``name`` (a user's
        folder or file): it is never replaced, so the identity cannot be written."""
        path = self.root / safe_identity_name(name)
        return (path.exists() or path.is_symlink()) and not (path / META_FILE).is_file()

    def remove_stale_temporaries(self) -> int:
        """Delete what killed jobs left, and only that: temporary identity folders mvface made
        (its name pattern, and its marker file or empty) and half-written manifest files; never
        a visible folder or anything else. Returns how many."""
        stale = [
            p
            for p in self.root.glob(f"{TEMP_PREFIX}*")
            if _TEMP_FOLDER.fullmatch(p.name)
            and p.is_dir()
            and not p.is_symlink()
            and ((p / PARTIAL_MARKER).is_file() or not any(p.iterdir()))
        ]
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
            BadInputError: the arrays disagree on the number of views, or something of the
                identity's name (:func:`safe_identity_name` of ``record.name``) exists already:
                a finished identity (duplicate name) or anything else (a user's folder or file),
                which is never replaced or deleted.
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
            and (record.observed is None or record.observed.shape == (v, 68))
        ):
            raise BadInputError(
                name, "images, cameras, landmarks, visibility and observed disagree on V"
            )
        with staged_identity(self.root, name) as tmp:
            (tmp / "images").mkdir()
            for i, image in enumerate(record.images):
                (tmp / "images" / f"{i:03d}.{self.image_format}").write_bytes(self._encode(image))
            (tmp / f"source.{self.image_format}").write_bytes(self._encode(record.source_image))
            np.save(tmp / "cameras.npy", record.cameras.astype(np.float32))
            np.save(tmp / "landmarks.npy", record.landmarks.astype(np.float32))
            np.save(tmp / "landmarks3d.npy", record.landmarks3d.astype(np.float32))
            np.save(tmp / "visibility.npy", record.visibility.astype(bool))
            if record.observed is not None:
                np.save(tmp / OBSERVED_FILE, record.observed.astype(bool))
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
