"""A video's poses: the one decode + estimate loop (the pipeline and recognition both read videos through it)."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import ContextManager, Iterator, Sequence

import numpy as np

from ..core.types import PoseFrame
from .estimator import PoseEstimator
from .video import ProgressFn, probe, read_frames


def estimator_for(estimator: PoseEstimator | None = None) -> ContextManager[PoseEstimator]:
    """`with estimator_for(est) as est:` a tracking estimator closed at the end of the block, or the
    caller's own `est`, left open (its owner closes it)."""
    if estimator is not None:
        return contextlib.nullcontext(estimator)
    return PoseEstimator(static_image_mode=False)


def poses(video: str | Path, estimator: PoseEstimator, max_side: int = 1280, max_seconds: float | None = None,
          known: Sequence[PoseFrame | None] = (), progress: ProgressFn | None = None, backend: str = "auto",
          gaps: list | None = None) -> Iterator[tuple[float, np.ndarray, PoseFrame | None]]:
    """Yield (timestamp_s, rgb_frame, pose_or_None) for each decoded frame (the first `max_seconds` only,
    when given). `known`: poses already estimated for the first frames (reused, the model runs once per
    frame; the tracker continues from the last of them). progress(frames done, frames expected).
    backend: the decoder; gaps: receives the stretches that could not be read (damage), each before the first
    frame after it is yielded (`video.read_frames`)."""
    expected = 0
    if progress is not None:
        info = probe(video)
        expected = info.frame_count
        if max_seconds is not None and info.fps > 0:
            expected = min(expected, int(math.ceil(max_seconds * info.fps))) if expected else 0
    n = 0
    for t, img in read_frames(video, max_side=max_side, backend=backend, gaps=gaps):
        if max_seconds is not None and t > max_seconds:
            break
        pose = known[n] if n < len(known) else estimator.process(img, t)
        n += 1
        yield t, img, pose
        if progress is not None:
            progress(n, max(expected, n))
