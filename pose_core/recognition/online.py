"""Recognition on a live stream: `OnlineRecognizer` is fed one pose at a time, recognises the last few
seconds every so often, and locks an exercise once it is predicted confidently several times in a row."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from ..core.types import PoseFrame
from .features import WINDOW_S
from .model import MIN_DURATION_S, SURE_CONFIDENCE, ExerciseRecognizer, Recognition

LOW_CONFIDENCE = SURE_CONFIDENCE  # below this a recognition is "low confidence": live does not lock on it, the UI says so


@dataclass
class OnlineState:
    """What the live page shows. `exercise` is the locked exercise (user's override first), else None."""

    exercise: str | None
    locked: bool
    source: str  # "none" | "auto" | "user"
    last: Recognition | None
    streak: int  # consecutive confident predictions of the same exercise


class OnlineRecognizer:
    """Feed PoseFrames (or None) one at a time; every `every_s` seconds of stream time the last `window_s`
    seconds are recognised. Once the same exercise is predicted with confidence >= lock_confidence
    `lock_after` times in a row it is locked (and prediction stops, costing nothing). `override(name)`
    locks the user's choice; `reset()` forgets everything (back to automatic). While nothing is locked,
    `state.last` is the latest Recognition (candidate, confidence, top list, or the cannot-tell reason)."""

    def __init__(self, recognizer: ExerciseRecognizer | None = None, window_s: float = WINDOW_S,
                 every_s: float = 0.5, lock_after: int = 3, lock_confidence: float = LOW_CONFIDENCE):
        self.recognizer = recognizer or ExerciseRecognizer.load()
        self.window_s = window_s
        self.every_s = every_s
        self.lock_after = lock_after
        self.lock_confidence = lock_confidence
        self.reset()

    def reset(self) -> None:
        self._buf: deque[tuple[float, PoseFrame | None]] = deque()
        self._next_t: float | None = None
        self.state = OnlineState(None, False, "none", None, 0)

    def override(self, exercise: str) -> OnlineState:
        if exercise not in self.recognizer.classes:
            raise KeyError(f"unknown exercise {exercise!r}; known: {', '.join(self.recognizer.classes)}")
        self.state = OnlineState(exercise, True, "user", self.state.last, self.state.streak)
        return self.state

    def update(self, frame: PoseFrame | None, timestamp_s: float | None = None) -> OnlineState:
        if timestamp_s is None:
            if frame is None:
                raise ValueError("a frame without a pose needs its timestamp_s")
            timestamp_s = frame.timestamp_s
        t = float(timestamp_s)
        if self._buf and t < self._buf[-1][0]:  # the stream's clock restarted: start the window afresh
            self._buf.clear()
            self._next_t = None
        self._buf.append((t, frame))
        while self._buf and self._buf[0][0] < t - self.window_s:
            self._buf.popleft()
        if self.state.locked:
            return self.state
        if self._next_t is None:
            self._next_t = t + MIN_DURATION_S
        if t < self._next_t:
            return self.state
        self._next_t = t + self.every_s
        rec = self.recognizer.predict([f for _, f in self._buf])
        prev = self.state.last.exercise if self.state.last is not None else None
        confident = rec.exercise is not None and rec.confidence >= self.lock_confidence
        streak = (self.state.streak + 1 if rec.exercise == prev else 1) if confident else 0
        if confident and streak >= self.lock_after:
            self.state = OnlineState(rec.exercise, True, "auto", rec, streak)
        else:
            self.state = OnlineState(None, False, "none", rec, streak)
        return self.state
