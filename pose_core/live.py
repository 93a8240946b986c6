"""Live coaching on a camera stream, independent of any UI framework.

`LiveSession.process_frame(bgr, t)` runs pose -> angles -> smoothing -> counter -> label -> overlay on one
frame and returns the annotated frame. It is called on the streaming thread (streamlit-webrtc's frame
callback); the page reads `snapshot()` from its own thread. The two meet only through a lock-guarded,
immutable snapshot, so the page never sees a half-updated state.

Dropped frames are harmless: the counter works on timestamps and zones, not on frame counts, and the
smoother restarts after a gap longer than the rule's `max_gap_s`.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .analysis import FrameAnalyzer, FrameResult
from .drawing import draw_overlay, primary_joint_landmark
from .estimator import PoseEstimator
from .history import SessionRecord
from .rules import Defaults, ExerciseRule
from .types import PoseFrame, RepEvent

EstimatorLike = Callable[[np.ndarray, float], PoseFrame | None]


class EstimatorFactory:
    """Makes one tracking PoseEstimator per stream / video (tracking state must not leak between them).
    Creating the factory imports MediaPipe once, so the first stream does not pay for it."""

    def __init__(self, static_image_mode: bool = False, warm_up: bool = True):
        self.static_image_mode = static_image_mode
        if warm_up:
            import mediapipe  # noqa: F401  (slow import, done once)

    def __call__(self) -> PoseEstimator:
        return PoseEstimator(static_image_mode=self.static_image_mode)


@dataclass(frozen=True)
class LiveSnapshot:
    """Everything the page shows about a live session at one moment."""

    exercise: str
    display_name: str
    primary_angle: str
    frames_processed: int = 0
    frames_with_pose: int = 0
    errors: int = 0
    last_error: str = ""
    rep_count: int = 0
    partial_reps: int = 0
    phase: str = "unknown"  # display name of the current phase
    label: str = "unknown"  # correct | incorrect | unknown
    feedback: tuple[str, ...] = ()
    primary_value: float = math.nan
    reps: tuple[RepEvent, ...] = ()  # times relative to the first processed frame
    fps: float = 0.0  # processed frames per second over the last ~2 s
    process_ms: float = 0.0  # mean processing time per frame (pose + analysis + overlay), recent frames
    duration_s: float = 0.0
    labels: dict[str, int] = field(default_factory=dict)
    saved_id: int | None = None  # set once the session was stored in the history

    @property
    def frames_correct_pct(self) -> float | None:
        judged = self.labels.get("correct", 0) + self.labels.get("incorrect", 0)
        return round(100.0 * self.labels.get("correct", 0) / judged, 1) if judged else None

    @property
    def reps_correct(self) -> int:
        return sum(r.verdict == "correct" for r in self.reps)


class LiveSession:
    """Per-stream state for live coaching: one estimator, one FrameAnalyzer.

    estimator_factory: a callable returning an object with `process(bgr, t) -> PoseFrame | None` (and
    optionally `close()`); created lazily on the first frame, on the streaming thread."""

    def __init__(self, rule: ExerciseRule, defaults: Defaults | None = None,
                 estimator_factory: Callable[[], object] | None = None, rules_source: str = "",
                 draw: bool = True, fps_window: int = 30):
        self._factory = estimator_factory or EstimatorFactory(warm_up=False)
        self._estimator = None
        self._est_lock = threading.Lock()  # the estimator is only ever used by one thread at a time
        self._lock = threading.Lock()  # guards everything below
        self.rules_source = rules_source
        self.draw = draw
        self._done_times: collections.deque[float] = collections.deque(maxlen=fps_window)
        self._proc_ms: collections.deque[float] = collections.deque(maxlen=fps_window)
        self._setup(rule, defaults)

    # ------------------------------------------------------------------------------- state handling
    def _setup(self, rule: ExerciseRule, defaults: Defaults | None) -> None:
        self.rule = rule
        self.defaults = defaults or Defaults()
        self._analyzer = FrameAnalyzer(rule, self.defaults)
        self._t0: float | None = None
        self._last_t = -math.inf
        self._wall_t0 = time.monotonic()
        self._frames = self._with_pose = self._errors = 0
        self._last_error = ""
        self._labels: dict[str, int] = {}
        self._last: FrameResult | None = None
        self._saved_id: int | None = None
        self._done_times.clear()
        self._proc_ms.clear()
        self._snapshot = LiveSnapshot(exercise=rule.name, display_name=rule.display_name,
                                      primary_angle=rule.primary_angle)

    def reset(self) -> None:
        """Start counting from zero (same exercise). Safe to call while frames are being processed."""
        with self._lock:
            self._setup(self.rule, self.defaults)

    def set_rule(self, rule: ExerciseRule, defaults: Defaults | None = None) -> None:
        """Switch exercise or thresholds; counting restarts when anything changed."""
        with self._lock:
            if rule != self.rule or (defaults or Defaults()) != self.defaults:
                self._setup(rule, defaults)

    def mark_saved(self, session_id: int) -> None:
        with self._lock:
            self._saved_id = session_id
            self._snapshot = _replace(self._snapshot, saved_id=session_id)

    def close(self) -> None:
        with self._est_lock:
            if self._estimator is not None and hasattr(self._estimator, "close"):
                self._estimator.close()
            self._estimator = None

    # ----------------------------------------------------------------------------------- processing
    def _estimate(self, img: np.ndarray, t: float, color: str) -> PoseFrame | None:
        with self._est_lock:
            if self._estimator is None:
                self._estimator = self._factory()
            if color == "bgr":
                return self._estimator.process(img, t)
            return self._estimator.process(img, t, color=color)

    def process_frame(self, bgr: np.ndarray, t: float | None = None, color: str = "bgr") -> np.ndarray:
        """Analyse one frame taken at stream time t (seconds; None = arrival time) and return it with the
        coaching overlay drawn in place. The frame is BGR, or RGB with color="rgb" (saves a conversion).
        Never raises on a bad frame: it is returned as it came."""
        start = time.perf_counter()
        if t is None or not math.isfinite(t):
            t = time.monotonic() - self._wall_t0
        try:
            pose = self._estimate(bgr, t, color)
        except Exception as e:  # a broken frame must not kill the stream
            with self._lock:
                self._errors += 1
                self._last_error = f"{type(e).__name__}: {e}"
                self._snapshot = _replace(self._snapshot, errors=self._errors, last_error=self._last_error)
            return bgr
        with self._lock:
            if self._t0 is None:
                self._t0 = t
            rel = t - self._t0
            if rel < self._last_t - 0.5:  # the clock restarted (camera stopped and started again): rebase
                self._t0 = t - (self._last_t + 1.0 / 30)
                rel = t - self._t0
            if rel <= self._last_t:  # repeated / out-of-order timestamps: keep time moving forward
                rel = self._last_t + 1e-3
            self._last_t = rel
            r = self._analyzer.process(pose, rel)
            rule = self.rule
            self._frames += 1
            self._with_pose += pose is not None
            self._labels[r.label.label] = self._labels.get(r.label.label, 0) + 1
            self._last = r
            last_rep = self._analyzer.last_rep
            fps = self._fps()
        if self.draw:
            draw_overlay(bgr, pose=pose, exercise=rule.display_name, primary_name=rule.primary_angle,
                         primary_value=r.angles.get(rule.primary_angle, math.nan),
                         primary_joint=primary_joint_landmark(rule.primary.joints, pose), rep_count=r.rep_count,
                         phase=rule.counting.display_phase(r.phase), label=r.label.label, feedback=r.feedback,
                         last_rep_verdict=last_rep.verdict if last_rep else None,
                         extra=f"{fps:.0f} fps" if fps else None, rgb=color == "rgb")
        done = time.perf_counter()
        with self._lock:
            if self._last is r:  # not reset meanwhile
                self._proc_ms.append((done - start) * 1000.0)
                self._done_times.append(done)
                self._publish(r)
        return bgr

    def process_av_frame(self, frame):
        """streamlit-webrtc / PyAV adapter: av.VideoFrame in, annotated av.VideoFrame out."""
        import av

        img = frame.to_ndarray(format="rgb24")  # the model takes RGB: no extra conversion
        out = self.process_frame(img, frame.time, color="rgb")
        new = av.VideoFrame.from_ndarray(out, format="rgb24")
        new.pts, new.time_base = frame.pts, frame.time_base
        return new

    def _fps(self) -> float:
        d = self._done_times
        if len(d) < 2 or d[-1] <= d[0]:
            return 0.0
        return (len(d) - 1) / (d[-1] - d[0])

    def _publish(self, r: FrameResult) -> None:
        self._snapshot = LiveSnapshot(
            exercise=self.rule.name, display_name=self.rule.display_name, primary_angle=self.rule.primary_angle,
            frames_processed=self._frames, frames_with_pose=self._with_pose, errors=self._errors,
            last_error=self._last_error, rep_count=r.rep_count, partial_reps=r.partial_reps,
            phase=self.rule.counting.display_phase(r.phase), label=r.label.label, feedback=r.feedback,
            primary_value=r.angles.get(self.rule.primary_angle, math.nan), reps=tuple(self._analyzer.reps),
            fps=round(self._fps(), 1), process_ms=round(sum(self._proc_ms) / len(self._proc_ms), 1),
            duration_s=round(max(self._last_t, 0.0), 3), labels=dict(self._labels), saved_id=self._saved_id)

    # ------------------------------------------------------------------------------------- reading
    def snapshot(self) -> LiveSnapshot:
        """The latest consistent state (immutable; cheap)."""
        with self._lock:
            return self._snapshot

    def to_record(self, name: str | None = None) -> SessionRecord:
        """A history record of the session so far."""
        s = self.snapshot()
        return SessionRecord(
            exercise=s.exercise, name=name or f"Live session ({s.display_name})", source="live", reps=s.reps,
            partial_reps=s.partial_reps, frames=s.frames_processed, frames_correct_pct=s.frames_correct_pct,
            duration_s=s.duration_s, primary_angle=s.primary_angle, rules_source=self.rules_source,
            extra={"rest": self.rule.counting.rest, "fps": s.fps})


def _replace(s: LiveSnapshot, **kw) -> LiveSnapshot:
    return dataclasses.replace(s, **kw)
