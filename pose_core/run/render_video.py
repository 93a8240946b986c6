"""The annotated video, drawn after the result: the analysis stores what the overlay shows on each frame
(`OverlayLog`, `overlay.jsonl` in the analysis folder, ~2 KB a frame), publishes the result (summary, reps,
frames.csv) and only then is the video drawn from it: the source decoded once more, the overlay drawn, H.264
encoded (`draw_annotated`). So the user waits for the reps and the verdicts, not for the encoder.

The video is written under a temporary name and renamed into the folder when complete; `overlay.jsonl` is
removed then. A drawing that fails leaves the result as it was, with `video_error.txt` saying why (the page
says the video could not be drawn). `video_state(folder)` tells the pages which of these a folder is in.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..core.io import atomic_write_text
from ..core.session import Overlay
from ..core.types import PoseFrame
from ..store.outputs import ANNOTATED_VIDEO, OVERLAY_DATA, VIDEO_NOTE

READY, DRAWING, FAILED, NONE = "ready", "drawing", "failed", "none"
_drawing_here: set[str] = set()  # folders whose video this process is drawing now
_lock = threading.Lock()


def video_state(folder: str | Path) -> str:
    """"ready" (annotated.mp4 is there), "drawing" (its overlay data waits to be drawn), "failed"
    (video_error.txt says why) or "none" (no video was asked for)."""
    folder = Path(folder)
    if (folder / ANNOTATED_VIDEO).is_file():
        return READY
    if (folder / VIDEO_NOTE).is_file():
        return FAILED
    return DRAWING if (folder / OVERLAY_DATA).is_file() else NONE


def video_error(folder: str | Path) -> str:
    with contextlib.suppress(OSError):
        return (Path(folder) / VIDEO_NOTE).read_text().strip()
    return ""


def _num(v: float) -> float | None:
    return None if v is None or not math.isfinite(v) else round(float(v), 2)


class OverlayLog:
    """overlay.jsonl written line by line during the frame loop (memory does not grow with the video)."""

    def __init__(self, path: str | Path, backend: str = "auto", max_side: int = 1280):
        self._file = open(path, "w")
        # (the drawing decodes as the analysis did: the same frames, the same timestamps)
        self._file.write(json.dumps({"backend": backend, "max_side": max_side}) + "\n")
        self.rows = 0

    def write(self, t: float, o: Overlay) -> None:
        p = o.pose
        pose = None if p is None else {"lm": np.round(p.landmarks, 5).ravel().tolist(),
                                       "v": np.round(p.visibility, 3).tolist(), "size": list(p.image_size)}
        doc = {"t": round(t, 4), "pose": pose, "exercise": o.exercise, "primary_name": o.primary_name,
               "primary_joints": list(o.primary_joints), "primary_value": _num(o.primary_value),
               "rep_count": o.rep_count, "phase": o.phase, "label": o.label, "feedback": list(o.feedback),
               "last_rep_verdict": o.last_rep_verdict, "last_rep_reason": o.last_rep_reason, "view": o.view,
               "not_judged": list(o.not_judged)}
        self._file.write(json.dumps(doc, separators=(",", ":")) + "\n")
        self.rows += 1

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "OverlayLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def overlay_header(path: str | Path) -> dict:
    """How the analysis decoded the video: {"backend": ..., "max_side": ...}."""
    with open(path) as f:
        return json.loads(f.readline())


def read_overlays(path: str | Path) -> Iterator[tuple[float, Overlay]]:
    """(t, Overlay) per frame, as OverlayLog wrote them."""
    with open(path) as f:
        f.readline()  # (the header)
        for line in f:
            d = json.loads(line)
            p = d.pop("pose")
            pose = None if p is None else PoseFrame(np.asarray(p["lm"], float).reshape(-1, 3), np.asarray(p["v"], float),
                                                    tuple(p["size"]))
            t = d.pop("t")
            pv = d.pop("primary_value")
            yield t, Overlay(pose=pose, primary_value=math.nan if pv is None else pv,
                             primary_joints=tuple(d.pop("primary_joints")), feedback=tuple(d.pop("feedback")),
                             not_judged=tuple(d.pop("not_judged")), **d)


def draw_annotated(folder: str | Path, source: str | Path,
                   progress: Callable[[int, int], None] | None = None) -> bool:
    """Draw annotated.mp4 in `folder` from its overlay data over the frames of `source` (the analysed video).
    True when the video is there; on failure, video_error.txt says why (never raised: the result stays).
    progress(frames drawn, frames to draw)."""
    folder = Path(folder)
    key = str(folder.resolve())
    with _lock:
        _drawing_here.add(key)
    try:
        _draw(folder, Path(source), progress)
        with contextlib.suppress(OSError):
            (folder / OVERLAY_DATA).unlink()  # (drawn: no longer needed)
        return True
    except Exception as e:  # the result must never be lost for the video's sake
        with contextlib.suppress(OSError):
            atomic_write_text(folder / VIDEO_NOTE, f"The annotated video could not be drawn: {type(e).__name__}: {e}\n")
        return False
    finally:
        with _lock:
            _drawing_here.discard(key)


def _draw(folder: Path, source: Path, progress) -> None:
    from ..media.drawing import draw_session_overlay
    from ..media.video import probe, read_frames
    from ..media.writer import H264Writer

    info = probe(source)
    tmp = folder / f".{ANNOTATED_VIDEO}.tmp-{os.getpid()}-{time.monotonic_ns()}"
    head = overlay_header(folder / OVERLAY_DATA)
    overlays = read_overlays(folder / OVERLAY_DATA)
    total = info.frame_count
    try:
        with contextlib.ExitStack() as stack:
            writer = None
            n = 0
            for (t, img), (to, o) in zip(read_frames(source, max_side=head["max_side"], backend=head["backend"]), overlays):
                if abs(t - to) > 0.5 / (info.fps or 30.0):
                    raise RuntimeError(f"the video's frame at {t:.3f} s does not match the analysis' at {to:.3f} s")
                if writer is None:
                    writer = stack.enter_context(H264Writer(tmp, img.shape[1], img.shape[0], info.fps))
                writer.write(t, img, draw=lambda im, o=o: draw_session_overlay(im, o))
                n += 1
                if progress is not None:
                    progress(n, max(total, n))
            if writer is None:
                raise RuntimeError("no frame to draw")
        os.replace(tmp, folder / ANNOTATED_VIDEO)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def drawing_here(folder: str | Path) -> bool:
    with _lock:
        return str(Path(folder).resolve()) in _drawing_here


def abandon_unfinished(folders) -> list[Path]:
    """Analysis folders whose video was waiting to be drawn by a server that no longer runs (no process draws
    it now): given a note that the video could not be drawn (the result itself is complete). Returns them."""
    marked = []
    for folder in folders:
        folder = Path(folder)
        if video_state(folder) == DRAWING and not drawing_here(folder):
            with contextlib.suppress(OSError):
                atomic_write_text(folder / VIDEO_NOTE, "The annotated video could not be drawn: the server stopped "
                                                       "before it was finished.\n")
                marked.append(folder)
    return marked
