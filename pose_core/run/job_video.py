"""A finished job's annotated video, drawn after its result (run.render_video): on a thread of its own at the
lowest priority (the decoder and encoder it starts inherit it), one drawing at a time in a process. The job's
status (already done: the result is on the page) follows it: stage "drawing" with frames and time left, then
"drawn", or "not_drawn" with `video_message` saying why."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

from .job_progress import ProgressClock
from .render_video import draw_annotated, video_error

DRAWING, DRAWN, NOT_DRAWN = "drawing", "drawn", "not_drawn"
DRAW_NICE = 19  # the lowest: the next analysis (and anything interactive) goes first
# The drawing starts this long after the result is published: the page that shows the result needs the
# processor for it then, and the drawing's decoder, overlay and encoder threads took it from the browser even
# at DRAW_NICE (the nice of a thread only weighs within its process group). Measured in Chromium on this
# 2-core machine (squat_4): the rep table on the page 5.1 s after the result without this, 2.0 s with it; the
# video is ready ~1.5 s later.
DRAW_GRACE_S = 2.0
_one_drawing = threading.Lock()


def draw_later(status, video: Path, out_dir: Path, write: Callable, throttle_s: float = 0.25) -> threading.Thread:
    """Start drawing `out_dir`'s video from `video` (the upload); `write(status)` saves the job's status."""
    th = threading.Thread(target=_draw, args=(status, video, out_dir, write, throttle_s), name="gympose-draw",
                          daemon=True)
    th.start()
    return th


def _draw(status, video: Path, out_dir: Path, write: Callable, throttle_s: float) -> None:
    time.sleep(DRAW_GRACE_S)  # (the status stays "judged, done" meanwhile: the page shows the result)
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), DRAW_NICE)
    clock = ProgressClock()
    clock.stage(DRAWING)
    current = [replace(status, stage=DRAWING, done=0, total=0, eta_s=None, busy=False)]
    last = [0.0]

    def progress(done: int, total: int) -> None:
        eta, busy = clock.update(done, total)
        current[0] = replace(current[0], done=done, total=total, eta_s=eta, busy=busy)
        if time.monotonic() - last[0] >= throttle_s:
            last[0] = time.monotonic()
            with contextlib.suppress(Exception):
                write(current[0])

    with _one_drawing:
        with contextlib.suppress(Exception):
            write(current[0])
        ok = draw_annotated(out_dir, video, progress=progress)
    with contextlib.suppress(Exception):
        write(replace(current[0], stage=DRAWN if ok else NOT_DRAWN, eta_s=None if not ok else 0.0,
                      video_message="" if ok else video_error(out_dir)))
