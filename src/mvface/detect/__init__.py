"""Detect faces and their 68 landmarks in files, folders, globs and videos: ``mvface detect``.

Every input is processed independently: an unreadable file is one line in the summary and the
batch goes on. Images are decoded in a background thread while the face detector runs on the
previous ones; the landmarks of all faces of
:attr:`~mvface.detect.records.DetectConfig.batch` images come from one ``predict`` call (the
model batches its network calls across images). Results are listed in
input order whatever order they complete in. Folder walks list, with a reason, every entry
they cannot use (a pipe, a socket, a broken or looping symbolic link, an unreadable sub-folder)
instead of skipping it silently; files that are neither images nor videos (by extension, or by
their first bytes when the extension says nothing) are counted in one note.

Results are written atomically once every input is done: ``detections.json`` (or ``.csv`` /
COCO keypoints ``coco.json``). Overlays (``draw``) are drawn afterwards, from the saved results,
so a full disk while drawing loses nothing computed. Overlays a previous run wrote into the same
folder are listed in ``overlays/.mvface-overlays.txt`` and removed before new ones are drawn;
no other file there is touched.

The modules, in the order a run uses them: :mod:`mvface.detect.inputs` (paths to files, video
frames), :mod:`mvface.detect.run` (:func:`~mvface.detect.run.run_detect`, also importable from
here: decoding, detection, batched landmarks), :mod:`mvface.detect.records` (options and
results), :mod:`mvface.detect.writers` (the results file) and :mod:`mvface.detect.overlays`.
"""

from mvface.detect.records import DetectConfig, DetectSummary, FrameResult
from mvface.detect.run import run_detect

__all__ = ["DetectConfig", "DetectSummary", "FrameResult", "run_detect"]
