"""Live coaching on a camera stream, independent of any UI framework.

`LiveSession.process_frame(rgb, t)` runs pose -> angles -> smoothing -> counter -> label -> overlay on one
frame and returns the annotated frame. It is called on the streaming thread (streamlit-webrtc's frame
callback); the page reads `snapshot()` from its own thread. The two meet only through a lock-guarded,
immutable snapshot, so the page never sees a half-updated state.

Dropped frames are harmless: the counter works on timestamps and zones, not on frame counts, and the
smoother restarts after a gap longer than the rule's `max_gap_s`.

Auto mode (`set_auto(rules)`): the exercise is not given but recognised from the stream. An
`OnlineRecognizer` sees every frame's pose; until it locks, nothing is counted (the overlay says
"Recognising"). When it locks (the same exercise predicted confidently a few times in a row, typically
2-4 s after the person starts moving), counting starts with that exercise's rule, replayed over the
poses of the recogniser's window (the last WINDOW_S = 3 s): reps are counted from about 3 s before the
lock on, not from the start of the stream. `override(exercise)` locks the user's choice instead (same
replay); `reset_recognition()` forgets the exercise and recognises again. Once locked, the recogniser
stops predicting and costs nothing.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import math
import threading
import time
from typing import Callable, Iterable, Mapping

import numpy as np

from ..core.session import Session
from ..media.drawing import draw_recognising, draw_session_overlay
from ..media.estimator import PoseEstimator
from ..media.shots import frame_signature, signature_distance
from ..store.history import SessionRecord
from ..core.rules import Defaults, ExerciseRule
from ..core.types import FrameLabelKind, Phase, PoseFrame
# FreshFrames and the snapshot types live in their own modules; imported here for the callers that take them
# from the live session's module.
from .live_frames import FreshFrames  # noqa: F401
from .live_snapshot import AutoStatus, LiveSnapshot


class EstimatorFactory:
    """Makes one tracking PoseEstimator per stream / video (tracking state must not leak between them).
    Creating the factory imports MediaPipe once, so the first stream does not pay for it. keep_spare=True
    also keeps one estimator ready, its graph warmed on a blank image (the ~0.25 s first-frame cost paid in
    advance; nobody is found, so no tracking state is carried over): the next analysis or stream starts at
    once, and a new spare is prepared in the background."""

    def __init__(self, static_image_mode: bool = False, warm_up: bool = True, keep_spare: bool = False):
        self.static_image_mode = static_image_mode
        self.keep_spare = keep_spare
        self._spare: PoseEstimator | None = None
        self._lock = threading.Lock()
        if warm_up:
            import mediapipe  # noqa: F401  (slow import, done once)
        if keep_spare:
            self._refill()

    def _refill(self) -> None:
        from .parallel import _blank_warm

        est = PoseEstimator(static_image_mode=self.static_image_mode)
        _blank_warm(est)
        with self._lock:
            if self._spare is None:
                self._spare, est = est, None
        if est is not None:
            est.close()

    def __call__(self) -> PoseEstimator:
        with self._lock:
            est, self._spare = self._spare, None
        if est is None:
            est = PoseEstimator(static_image_mode=self.static_image_mode)
        if self.keep_spare:
            threading.Thread(target=self._refill, name="estimator-spare", daemon=True).start()
        return est


def default_online_recognizer():
    """An OnlineRecognizer on the committed model (the model is loaded once per process and shared: its
    predictions are read-only; each session has its own window and lock state)."""
    from ..recognition import OnlineRecognizer, default_recognizer

    return OnlineRecognizer(default_recognizer())


class LiveSession:
    """Per-stream state for live coaching: one estimator, one Session (and in auto mode one
    OnlineRecognizer).

    estimator_factory: a callable returning an object with `process(rgb, t) -> PoseFrame | None` (and
    optionally `close()`); created lazily on the first frame, on the streaming thread.
    online_factory: makes the OnlineRecognizer when auto mode is entered (default: the committed model)."""

    def __init__(self, rule: ExerciseRule, defaults: Defaults | None = None,
                 estimator_factory: Callable[[], object] | None = None, rules_source: str = "",
                 draw: bool = True, fps_window: int = 30, online_factory: Callable[[], object] | None = None):
        self._factory = estimator_factory or EstimatorFactory(warm_up=False)
        self._online_factory = online_factory or default_online_recognizer
        self._estimator = None
        self._est_lock = threading.Lock()  # the estimator is only ever used by one thread at a time
        self._lock = threading.Lock()  # guards everything below
        self.rules_source = rules_source
        self.draw = draw
        self._done_times: collections.deque[float] = collections.deque(maxlen=fps_window)
        self._proc_ms: collections.deque[float] = collections.deque(maxlen=fps_window)
        self._online = None  # OnlineRecognizer while in auto mode
        self._auto_rules: dict[str, ExerciseRule] = {}  # the exercises auto mode may lock on
        self._recent: collections.deque[tuple[float, PoseFrame | None]] = collections.deque()  # replayed on a lock
        self._recog_ms: list[float] = [0.0, 0.0, 0.0]  # total, frames, max while recognising
        self._predictions = 0
        self._gen = 0  # bumped whenever counting restarts: a frame in flight does not publish over it
        self.last_drawer: Callable[[np.ndarray], object] | None = None  # draws the last overlay on any frame
        self._setup(rule, defaults)

    # ------------------------------------------------------------------------------- state handling
    def _setup(self, rule: ExerciseRule | None, defaults: Defaults | None) -> None:
        """Everything from zero (stream clock, statistics, counting). Recognition state is kept."""
        self.defaults = defaults or Defaults()
        self._t0: float | None = None
        self._last_t = -math.inf
        self._wall_t0 = time.monotonic()
        self._frames = self._with_pose = self._errors = 0
        self._signature = None  # the last frame's picture signature (camera cuts: media.shots)
        self._last_error = ""
        self._done_times.clear()
        self._proc_ms.clear()
        self._recent.clear()
        self._start_counting(rule)

    def _start_counting(self, rule: ExerciseRule | None, replay: Iterable[tuple[float, PoseFrame | None]] = (),
                        ) -> None:
        """A fresh session for `rule` (None: nothing is counted), fed the `replay` poses first."""
        self.rule = rule
        self._session = Session(rule, self.defaults) if rule is not None else None
        self._saved_id: int | None = None
        counting_auto = rule is not None and self._online is not None
        self._locked_at: float | None = max(self._last_t, 0.0) if counting_auto else None
        self._gen += 1
        if self._session is not None:
            for t, pose in replay:
                self._session.step(pose, t)
        self._publish()

    @property
    def auto(self) -> bool:
        """True in auto mode (the exercise is recognised from the stream)."""
        return self._online is not None

    @property
    def auto_exercises(self) -> list[str]:
        """The exercises auto mode can lock on or be overridden to (names)."""
        with self._lock:
            if self._online is None:
                return []
            return [n for n in self._auto_rules if n in self._online.recognizer.classes]

    def reset(self) -> None:
        """Start counting from zero (same exercise; in auto mode the recognised exercise is kept). Safe to
        call while frames are being processed."""
        with self._lock:
            self._setup(self.rule, self.defaults)

    def set_rule(self, rule: ExerciseRule, defaults: Defaults | None = None) -> None:
        """Manual mode with this exercise (leaves auto mode); counting restarts when anything changed."""
        with self._lock:
            if self._online is None and rule == self.rule and (defaults or Defaults()) == self.defaults:
                return
            self._online = None
            self._auto_rules = {}
            self._setup(rule, defaults)

    def set_auto(self, rules: Mapping[str, ExerciseRule], defaults: Defaults | None = None) -> None:
        """Auto mode: recognise which of `rules` (name -> rule) is being done, then count it. Idempotent;
        entering auto mode restarts everything; new thresholds for the exercise being counted restart its
        count but keep the recognised exercise."""
        rules = dict(rules)
        defaults = defaults or Defaults()
        with self._lock:
            if self._online is not None:
                if rules == self._auto_rules and defaults == self.defaults:
                    return
                self._auto_rules = rules
                locked = self._online.state.exercise
                if locked is not None and locked not in rules:
                    self._online.reset()
                    locked = None
                self._setup(rules[locked] if locked is not None else None, defaults)
                return
        online = self._online_factory()  # may load the model: outside the lock
        with self._lock:
            self._online = online
            self._auto_rules = rules
            self._recog_ms = [0.0, 0.0, 0.0]
            self._predictions = 0
            self._setup(None, defaults)

    def override(self, exercise: str) -> None:
        """Auto mode: count `exercise` from now on (the user's choice wins over the recogniser). Counting
        restarts over the recent poses, unless that exercise is already being counted."""
        with self._lock:
            if self._online is None:
                raise RuntimeError("override() is for auto mode; use set_rule() to pick an exercise")
            if exercise not in self._auto_rules:
                raise KeyError(f"unknown exercise {exercise!r}; known: {', '.join(sorted(self._auto_rules))}")
            self._online.override(exercise)
            if self.rule is None or self.rule.name != exercise:
                self._start_counting(self._auto_rules[exercise], replay=tuple(self._recent))
            else:
                self._publish()

    def reset_recognition(self) -> None:
        """Auto mode: forget the exercise and recognise again (counting restarts from zero)."""
        with self._lock:
            if self._online is None:
                return
            self._online.reset()
            self._recog_ms = [0.0, 0.0, 0.0]
            self._predictions = 0
            self._setup(None, self.defaults)

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
    def _estimate(self, img: np.ndarray, t: float) -> PoseFrame | None:
        with self._est_lock:
            if self._estimator is None:
                self._estimator = self._factory()
            return self._estimator.process(img, t)

    def _recognise(self, pose: PoseFrame | None, rel: float) -> None:
        """Auto mode, under the lock: feed the recogniser; on a lock, start counting the exercise over the
        recent poses. The recent poses are kept for a later override as well."""
        online = self._online
        if not online.state.locked:
            t0 = time.perf_counter()
            before = online.state.last
            state = online.update(pose, rel)
            self._predictions += state.last is not before
            if state.locked:
                rule = self._auto_rules.get(state.exercise)
                if rule is None:  # an exercise without a rule here (a custom rule set): keep recognising
                    online.reset()
                else:
                    self._start_counting(rule, replay=tuple(self._recent))
            ms = (time.perf_counter() - t0) * 1000.0
            self._recog_ms[0] += ms
            self._recog_ms[1] += 1
            self._recog_ms[2] = max(self._recog_ms[2], ms)
        self._recent.append((rel, pose))
        while self._recent and self._recent[0][0] < rel - online.window_s:
            self._recent.popleft()

    def _session_time(self, t: float) -> float:
        """Stream time t as session time (from the first frame), always moving forward. Under the lock."""
        if self._t0 is None:
            self._t0 = t
        rel = t - self._t0
        if rel < self._last_t - 0.5:  # the clock restarted (camera stopped and started again): rebase
            self._t0 = t - (self._last_t + 1.0 / 30)
            rel = t - self._t0
        if rel <= self._last_t:  # repeated / out-of-order timestamps: keep time moving forward
            rel = self._last_t + 1e-3
        self._last_t = rel
        return rel

    def process_frame(self, rgb: np.ndarray, t: float | None = None, draw_here: bool = True) -> np.ndarray:
        """Analyse one RGB frame taken at stream time t (seconds; None = arrival time) and return it with the
        coaching overlay drawn in place. Never raises on a bad frame: it is returned as it came.
        draw_here=False: the overlay is only prepared (`last_drawer`), for a caller that draws it on another
        image (FreshFrames draws it on the frame it returns; drawing it here too cost ~3 ms a frame)."""
        start = time.perf_counter()
        if t is None or not math.isfinite(t):
            t = time.monotonic() - self._wall_t0
        try:
            pose = self._estimate(rgb, t)
            signature = frame_signature(rgb)
        except Exception as e:  # a broken frame must not kill the stream
            with self._lock:
                self._errors += 1
                self._last_error = f"{type(e).__name__}: {e}"
                self._snapshot = _replace(self._snapshot, errors=self._errors, last_error=self._last_error)
            return rgb
        with self._lock:
            rel = self._session_time(t)
            if self._online is not None:
                self._recognise(pose, rel)
            session = self._session
            change = signature_distance(self._signature, signature) if self._signature is not None else None
            self._signature = signature
            r = session.step(pose, rel, change) if session is not None else None
            overlay = None
            self._frames += 1
            self._with_pose += pose is not None
            auto = self._auto_status() if self._online is not None else None
            if r is not None and self.draw:
                name = None
                if auto is not None:
                    name = session.rule.display_name + (
                        " (your choice)" if auto.source == "user" else f" (auto {auto.confidence:.0%})")
                overlay = session.overlay(r, name)
            fps = self._fps()
            gen = self._gen
        if self.draw:
            extra = f"{fps:.0f} fps" if fps else None
            if overlay is None:
                drawer = functools.partial(draw_recognising, pose=pose, auto=auto, extra=extra)
            else:
                drawer = functools.partial(draw_session_overlay, overlay=overlay, extra=extra)
            if draw_here:
                drawer(rgb)
            self.last_drawer = drawer  # (an atomic reference swap: FreshFrames reads it from another thread)
        done = time.perf_counter()
        with self._lock:
            if self._gen == gen:  # counting was not restarted meanwhile
                self._proc_ms.append((done - start) * 1000.0)
                self._done_times.append(done)
                self._publish()
        return rgb

    def process_av_frame(self, frame):
        """streamlit-webrtc / PyAV adapter: av.VideoFrame in, annotated av.VideoFrame out."""
        import av

        img = frame.to_ndarray(format="rgb24")  # the edge: webrtc frames in and out as RGB
        out = self.process_frame(img, frame.time)
        new = av.VideoFrame.from_ndarray(out, format="rgb24")
        new.pts, new.time_base = frame.pts, frame.time_base
        return new

    def _fps(self) -> float:
        d = self._done_times
        if len(d) < 2 or d[-1] <= d[0]:
            return 0.0
        return (len(d) - 1) / (d[-1] - d[0])

    def _auto_status(self) -> AutoStatus:
        st = self._online.state
        last = st.last
        total, n, worst = self._recog_ms
        return AutoStatus(
            locked=st.locked, exercise=st.exercise if st.locked else None, source=st.source,
            confidence=last.confidence if last is not None else 0.0, top=last.top if last is not None else (),
            reason=last.reason if last is not None else "", streak=st.streak, needed=self._online.lock_after,
            locked_at_s=self._locked_at if st.locked else None, predictions=self._predictions,
            recognition_ms=round(total / n, 3) if n else 0.0, recognition_max_ms=round(worst, 2))

    def _publish(self) -> None:
        stream = dict(frames_processed=self._frames, frames_with_pose=self._with_pose, errors=self._errors,
                      last_error=self._last_error, fps=round(self._fps(), 1),
                      process_ms=round(sum(self._proc_ms) / len(self._proc_ms), 1) if self._proc_ms else 0.0,
                      duration_s=round(max(self._last_t, 0.0), 3), saved_id=self._saved_id,
                      auto=self._auto_status() if self._online is not None else None)
        session = self._session
        if session is None:  # auto mode, still recognising
            self._snapshot = LiveSnapshot(exercise="", display_name="", primary_angle="", **stream)
            return
        rule, r = session.rule, session.last
        o = session.overlay(r) if r is not None else None
        self._snapshot = LiveSnapshot(
            exercise=rule.name, display_name=rule.display_name, primary_angle=rule.primary_angle,
            rep_count=o.rep_count if o else 0, partial_reps=r.partial_reps if r else 0,
            phase=o.phase if o else Phase.UNKNOWN, label=o.label if o else FrameLabelKind.UNKNOWN,
            feedback=o.feedback if o else (), primary_value=o.primary_value if o else math.nan,
            reps=tuple(session.reps), labels=dict(session.labels), reps_correct=session.reps_correct,
            frames_correct_pct=session.frames_correct_pct, view=session.view, notes=tuple(session.notes()),
            **stream)

    # ------------------------------------------------------------------------------------- reading
    def snapshot(self) -> LiveSnapshot:
        """The latest consistent state (immutable; cheap)."""
        with self._lock:
            return self._snapshot

    def to_record(self, name: str | None = None) -> SessionRecord:
        """A history record of the session so far. Raises ValueError while auto mode has not recognised
        the exercise yet (nothing was counted)."""
        with self._lock:
            s, rule = self._snapshot, self.rule
        if rule is None or not s.exercise:
            raise ValueError("nothing to save: the exercise has not been recognised yet")
        extra = {"rest": rule.counting.rest, "fps": s.fps}
        if s.auto is not None:
            extra.update(exercise_auto=s.auto.source == "auto", exercise_confidence=round(s.auto.confidence, 3))
        return SessionRecord(
            exercise=s.exercise, name=name or f"Live session ({s.display_name})", source="live", reps=s.reps,
            partial_reps=s.partial_reps, frames=s.frames_processed, frames_correct_pct=s.frames_correct_pct,
            duration_s=s.duration_s, primary_angle=s.primary_angle, rules_source=self.rules_source, extra=extra)


def _replace(s: LiveSnapshot, **kw) -> LiveSnapshot:
    return dataclasses.replace(s, **kw)
