"""The frame loop's input when nothing is drawn during the loop (no video, or the video drawn after): poses
with their picture signatures in frame order (`stream_items`); from the pose workers (run.parallel), no frame
is decoded in this process at all. Auto recognises the exercise on the first seconds of that same pass
(`recognise_from_stream`): each frame is decoded once. And the progress of a chunked analysis
(`ParallelProgress`)."""

from __future__ import annotations

import itertools
from typing import Iterator

from ..core.rules import RuleSet
from ..media.video import ProgressFn
from .parallel import StreamedPoses


def stream_items(source: Iterator, progress: ProgressFn | None, expected: int, head: list = ()) -> Iterator[tuple]:
    """(t, None, pose, signature) per frame (no image: nothing is drawn in the loop) from `source`'s (t, pose,
    signature); `head`: items already taken from it (the recognised first seconds), given first.
    progress(frames, expected) per frame."""
    n = 0
    for t, pose, sig in itertools.chain(head, source):
        yield t, None, pose, sig
        n += 1
        if progress is not None:
            progress(n, max(expected, n))


def recognise_from_stream(video, source: Iterator, rules: RuleSet, seconds: float, progress: ProgressFn | None,
                          expected: int):
    """exercise="auto" in the same pass as the analysis: the poses of the first `seconds` of `source` ((t, pose,
    signature) per frame: the pose workers' stream, or this process's decoding) are recognised and kept (the
    frame loop uses them: each frame is decoded and estimated once). Returns (exercise, extra, notes, head,
    rest): head = the items taken, rest = `source` from there on. Raises CannotTellError."""
    from ..recognition import default_recognizer
    from .crosscheck import decide_exercise

    head: list = []
    for item in source:
        head.append(item)
        if progress is not None:
            progress(len(head), max(expected, len(head)))
        if item[0] > seconds:
            break
    first = [pose for t, pose, _ in head if t <= seconds]
    rec = default_recognizer().predict(first, allowed=list(rules.exercises))
    exercise, extra, notes = decide_exercise(video, rec, first, rules)
    return exercise, extra, notes, head, source


class ParallelProgress:
    """progress(done, expected) in chunked mode, never going back, reported from the caller's thread only (the
    frame loop, or while it waits for poses). With exercise="auto" the recognition pass is reported first as it
    is (its own frames), then the analysis from 0 again, as in the single-process path.

    What `done` counts is what the time left depends on:
    - cheap_loop (nothing drawn in the frame loop: ~1 ms a frame against the model's ~20): the poses
      estimated by all workers. The frame loop takes the chunks in order, so a later chunk's poses wait for it
      and are gone through in a fraction of a second at the end: counting frames analysed would show half the
      rate while the first chunk runs (a time left twice too long), then a jump.
    - else (the video drawn in the loop, as slow as the model): the mean of poses estimated and frames
      analysed."""

    def __init__(self, progress: ProgressFn | None, expected: int, recognising: bool = False,
                 cheap_loop: bool = True):
        self.progress, self.expected = progress, expected
        self.recognising = recognising
        self.cheap_loop = cheap_loop
        self.stream: StreamedPoses | None = None
        self.frames = 0
        self.last = -1

    def __call__(self, done: int, expected: int) -> None:
        if self.recognising:
            if done >= self.frames:
                self.frames = done
                if self.progress is not None:
                    self.progress(done, expected)
                return
            self.recognising, self.last = False, -1  # the analysis pass starts
        self.frames = max(self.frames, done) if done >= self.frames or self.last >= 0 else done
        self.refresh()

    def refresh(self) -> None:
        if self.progress is None or self.recognising:
            return
        estimated = self.stream.estimated if self.stream is not None else 0
        done = max(estimated, self.frames) if self.cheap_loop else (estimated + self.frames) // 2
        expected = max(self.expected, done)
        done = max(done, self.last)
        if done != self.last:
            self.last = done
            self.progress(done, expected)
