"""The frame loop's input when the pose workers estimate (run.parallel) and nothing is drawn during the loop:
the poses come with their picture signatures, in frame order, and no frame is decoded in this process
(`stream_items`); Auto recognises the exercise on the first seconds of that same stream
(`recognise_from_stream`). And the progress of a chunked analysis (`ParallelProgress`)."""

from __future__ import annotations

import itertools
from typing import Iterator

from ..core.rules import RuleSet
from ..media.video import ProgressFn
from .parallel import StreamedPoses


def stream_items(stream: StreamedPoses, gaps: list, progress: ProgressFn | None, expected: int,
                 head: list = (), rest: Iterator | None = None) -> Iterator[tuple]:
    """(t, None, pose, signature) per frame (no image: nothing is decoded here); `head`: items already taken
    from `rest` (the recognised first seconds), given first. progress(frames, expected) per frame."""
    n = 0
    for t, pose, sig in itertools.chain(head, rest if rest is not None else stream.frames(gaps)):
        yield t, None, pose, sig
        n += 1
        if progress is not None:
            progress(n, max(expected, n))


def recognise_from_stream(video, stream: StreamedPoses, gaps: list, rules: RuleSet, seconds: float,
                          progress: ProgressFn | None, expected: int):
    """exercise="auto" on the stream: the poses of its first `seconds` are recognised (and kept: the frame loop
    uses them, the model runs once per frame). Returns (exercise, extra, notes, head, rest): head = the items
    taken, rest = the stream from there on. Raises CannotTellError."""
    from ..datasets.recognition import default_recognizer
    from .pipeline import decide_exercise

    rest = stream.frames(gaps)
    head: list = []
    for item in rest:
        head.append(item)
        if progress is not None:
            progress(len(head), max(expected, len(head)))
        if item[0] > seconds:
            break
    first = [pose for t, pose, _ in head if t <= seconds]
    rec = default_recognizer().predict(first, allowed=list(rules.exercises))
    exercise, extra, notes = decide_exercise(video, rec, first, rules)
    return exercise, extra, notes, head, rest


class ParallelProgress:
    """progress(done, expected) in chunked mode: done = (poses estimated + frames analysed) / 2, never going
    back, reported from the caller's thread only (the frame loop, or while it waits for poses). With
    exercise="auto" the recognition pass is reported first as it is (its own frames), then the analysis
    from 0 again, as in the single-process path."""

    def __init__(self, progress: ProgressFn | None, expected: int, recognising: bool = False):
        self.progress, self.expected = progress, expected
        self.recognising = recognising
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
        done = (estimated + self.frames) // 2
        expected = max(self.expected, done)
        done = max(done, self.last)
        if done != self.last:
            self.last = done
            self.progress(done, expected)
