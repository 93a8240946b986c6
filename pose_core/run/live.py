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
import contextlib
import dataclasses
import functools
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

import numpy as np

from ..core.session import Session
from ..media.drawing import (GREY, WHITE, draw_session_overlay, draw_skeleton, draw_text_box, person_box,
                             place_box, text_box_size)
from ..media.estimator import PoseEstimator
from ..media.shots import frame_signature, signature_distance
from ..store.history import SessionRecord
from ..core.rules import Defaults, ExerciseRule
from ..core.types import FrameLabelKind, Phase, PoseFrame, RepEvent

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


@dataclass(frozen=True)
class AutoStatus:
    """Exercise recognition in a live session (`LiveSnapshot.auto`; None in manual mode)."""

    locked: bool = False
    exercise: str | None = None  # the exercise being counted; None while recognising
    source: str = "none"  # "auto" (recognised) | "user" (overridden) | "none" (still recognising)
    confidence: float = 0.0  # top probability of the latest prediction (of the lock, once locked)
    top: tuple[tuple[str, float], ...] = ()  # the latest prediction's best candidates
    reason: str = ""  # why the latest prediction could not tell ("" when it could, or none was made yet)
    streak: int = 0  # confident predictions of the same exercise in a row
    needed: int = 3  # ... needed to lock
    locked_at_s: float | None = None  # session time of the lock / override
    predictions: int = 0  # predictions made so far (one per `every_s` of stream time until the lock)
    recognition_ms: float = 0.0  # mean time the recogniser added per frame while recognising
    recognition_max_ms: float = 0.0  # its worst frame (a frame on which a prediction ran)

    @property
    def recognising(self) -> bool:
        return not self.locked

    @property
    def candidate(self) -> str | None:
        return self.top[0][0] if self.top else None


@dataclass(frozen=True)
class LiveSnapshot:
    """Everything the page shows about a live session at one moment."""

    exercise: str  # "" while auto mode is still recognising (nothing is counted then)
    display_name: str
    primary_angle: str
    frames_processed: int = 0
    frames_with_pose: int = 0
    errors: int = 0
    last_error: str = ""
    rep_count: int = 0
    partial_reps: int = 0
    phase: str = Phase.UNKNOWN  # display name of the current phase
    label: FrameLabelKind = FrameLabelKind.UNKNOWN
    feedback: tuple[str, ...] = ()
    primary_value: float = math.nan
    reps: tuple[RepEvent, ...] = ()  # times relative to the first processed frame
    fps: float = 0.0  # processed frames per second over the last ~2 s
    process_ms: float = 0.0  # mean processing time per frame (pose + analysis + overlay), recent frames
    duration_s: float = 0.0
    labels: dict[str, int] = field(default_factory=dict)
    reps_correct: int = 0
    frames_correct_pct: float | None = None  # % of the judged frames labelled correct
    saved_id: int | None = None  # set once the session was stored in the history
    auto: AutoStatus | None = None  # exercise recognition (None: the exercise was given)
    view: str | None = None  # the camera's view of the body (side / front / rear / oblique)
    notes: tuple[str, ...] = ()  # why nothing is counted yet, with the numbers (empty while it counts)


    @property
    def counting(self) -> bool:
        """An exercise is known (given, or recognised and locked) and reps are being counted."""
        return bool(self.exercise)


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
            if self._t0 is None:
                self._t0 = t
            rel = t - self._t0
            if rel < self._last_t - 0.5:  # the clock restarted (camera stopped and started again): rebase
                self._t0 = t - (self._last_t + 1.0 / 30)
                rel = t - self._t0
            if rel <= self._last_t:  # repeated / out-of-order timestamps: keep time moving forward
                rel = self._last_t + 1e-3
            self._last_t = rel
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


class FreshFrames:
    """Keeps live coaching current when processing falls behind the camera: only the newest frame is analysed.

    `process_av_frame` (the streamlit-webrtc frame callback, run synchronously) never waits for the model: it
    hands the frame to one analysis thread (replacing a frame still waiting there: that stale frame is
    skipped, never queued), waits at most `wait_s` for it, and returns the camera's current image with the
    newest overlay drawn on it (this frame's if the analysis finished in time, else the last one). So the
    video never lags, and the overlay is at most one analysis behind.

    Latency, per returned frame: from the capture of the frame whose analysis the overlay shows to the
    moment it is returned (`stats()`: median and 95th percentile over the recent frames; processed and
    skipped counts; processed fps). A frame's capture time is its own timestamp (`process_av_frame`: the
    sender's capture clock, from the RTP timestamps), put on our clock by the frame that arrived soonest
    after its capture: so a frame that waited anywhere on its way (the network, the decoder, a busy event
    loop) counts that wait; only the fastest frame's transport is left out."""

    def __init__(self, session: LiveSession, wait_s: float = 0.02, window: int = 300,
                 clock: Callable[[], float] = time.monotonic, gate=None):
        self.session = session
        self.gate = gate  # a run.live_gate.LiveGate: held while a frame is analysed (analyses on this machine wait)
        self.wait_s = wait_s
        self.clock = clock
        self._cv = threading.Condition()
        self._pending: tuple | None = None  # (rgb, t, captured_at, seq) waiting for the analysis thread
        self._seq = 0
        self._done_seq = 0
        self._overlay_captured_at: float | None = None  # capture time of the frame the overlay comes from
        self._latencies: collections.deque[float] = collections.deque(maxlen=window)
        self._done_times: collections.deque[float] = collections.deque(maxlen=60)
        self.received = self.processed = self.skipped = 0
        self._offset: float | None = None  # our clock minus the sender's capture clock (the smallest seen)
        self._last_frame_t: float | None = None
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="live-analysis", daemon=True)
        self._thread.start()

    def submit(self, rgb: np.ndarray, t: float | None, captured_at: float | None = None) -> int:
        """Hand a frame to the analysis thread (the frame must not be modified afterwards); returns its number."""
        with self._cv:
            self._seq += 1
            self.received += 1
            if self._pending is not None:
                self.skipped += 1  # stale: a newer frame replaces it
            self._pending = (rgb, t, self.clock() if captured_at is None else captured_at, self._seq)
            self._cv.notify_all()
            return self._seq

    def _run(self) -> None:
        while True:
            with self._cv:
                while self._pending is None and not self._stop:
                    self._cv.wait()
                if self._stop:
                    return
                rgb, t, captured_at, seq = self._pending
                self._pending = None
            with self.gate.held() if self.gate is not None else contextlib.nullcontext():
                self.session.process_frame(rgb, t, draw_here=False)  # never raises; overlay_on draws its overlay
            with self._cv:
                self.processed += 1
                self._done_seq = seq
                self._overlay_captured_at = captured_at
                self._done_times.append(self.clock())
                self._cv.notify_all()

    def wait_for(self, seq: int, timeout_s: float) -> bool:
        """Wait until frame `seq` (or a newer one) has been analysed, at most timeout_s."""
        end = self.clock() + timeout_s
        with self._cv:
            while self._done_seq < seq:
                left = end - self.clock()
                if left <= 0:
                    return False
                self._cv.wait(left)
            return True

    def overlay_on(self, rgb: np.ndarray, now: float | None = None) -> np.ndarray:
        """Draw the newest overlay on `rgb` (in place) and record its latency."""
        drawer = self.session.last_drawer
        with self._cv:
            captured_at = self._overlay_captured_at
        if drawer is not None and captured_at is not None:
            drawer(rgb)
            self._latencies.append((self.clock() if now is None else now) - captured_at)
        return rgb

    def process_frame(self, rgb: np.ndarray, t: float | None = None, captured_at: float | None = None) -> np.ndarray:
        """The camera's frame `rgb`, returned at once with the newest overlay drawn on it."""
        seq = self.submit(rgb.copy(), t, captured_at)
        if self.wait_s > 0:
            self.wait_for(seq, self.wait_s)
        return self.overlay_on(rgb)

    def process_av_frame(self, frame):
        """streamlit-webrtc / PyAV adapter. It blocks at most `wait_s` (the Live page runs it in streamlit-webrtc's
        async mode: on its worker thread, which is handed only the newest frame)."""
        import av

        captured_at = self.capture_time(frame.time, self.clock())
        img = frame.to_ndarray(format="rgb24")
        out = self.process_frame(img, frame.time, captured_at)
        new = av.VideoFrame.from_ndarray(out, format="rgb24")
        new.pts, new.time_base = frame.pts, frame.time_base
        return new

    def capture_time(self, frame_t: float | None, now: float) -> float:
        """When a frame stamped `frame_t` (the sender's capture clock, seconds) was captured, on our clock."""
        if frame_t is None:
            return now
        if self._last_frame_t is not None and frame_t < self._last_frame_t:
            self._offset = None  # a new stream: its clock starts again
        self._last_frame_t = frame_t
        if self._offset is None or now - frame_t < self._offset:
            self._offset = now - frame_t
        return frame_t + self._offset

    def stats(self) -> dict:
        """Latency (ms, median / p95 over the recent returned frames), processed fps, frame counts."""
        with self._cv:
            lat = sorted(self._latencies)
            d = list(self._done_times)
            counts = dict(received=self.received, processed=self.processed, skipped=self.skipped)
        pick = (lambda q: round(1000 * lat[min(len(lat) - 1, int(q * len(lat)))], 1)) if lat else (lambda q: None)
        fps = (len(d) - 1) / (d[-1] - d[0]) if len(d) >= 2 and d[-1] > d[0] else 0.0
        return dict(latency_median_ms=pick(0.5), latency_p95_ms=pick(0.95), processed_fps=round(fps, 1), **counts)

    def close(self) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        self._thread.join(timeout=5)
        if self.gate is not None:
            self.gate.close()


def draw_recognising(img: np.ndarray, pose: PoseFrame | None, auto: AutoStatus | None, extra: str | None = None,
                     ) -> np.ndarray:
    """The overlay while auto mode is still recognising: the skeleton and what the recogniser thinks."""
    if pose is not None:
        draw_skeleton(img, pose, colour=GREY)
    lines = [("Recognising the exercise...", WHITE)]
    if pose is None:
        lines.append(("NO PERSON", GREY))
    elif auto is not None and auto.candidate:
        lines.append((f"best guess: {auto.candidate.replace('_', ' ')} {auto.confidence:.0%}", GREY))
    else:
        lines.append(("keep moving", GREY))
    if extra:
        lines.append((extra, GREY))
    h, w = img.shape[:2]
    margin = max(4, int(0.015 * min(h, w)))
    draw_text_box(img, lines, place_box((w, h), text_box_size(img, lines), person_box(pose), margin))
    return img


def _replace(s: LiveSnapshot, **kw) -> LiveSnapshot:
    return dataclasses.replace(s, **kw)
