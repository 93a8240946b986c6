"""LiveSession without Streamlit: counting from frames, dropped frames, thread safety, reset, bad frames."""

import math
import random
import threading

import numpy as np
import pytest
from helpers import SQUAT_CLIP, SQUAT_CLIP_REPS, FakeEstimator, needs_videos

from pose_core.store.history import HistoryStore
from pose_core.run.live import LiveSession
from pose_core.core.rules import load_rules

RULES = load_rules()
FPS = 30.0


def frame() -> np.ndarray:
    return np.full((480, 640, 3), 90, np.uint8)


def session(**kw) -> tuple[LiveSession, list]:
    made = []

    def factory():
        made.append(FakeEstimator(**kw))
        return made[-1]

    return LiveSession(RULES["squat"], RULES.defaults, estimator_factory=factory), made


def feed(s: LiveSession, seconds: float = 8.0, keep=lambda i: True) -> None:
    for i in range(int(seconds * FPS)):
        if keep(i):
            s.process_frame(frame(), 100.0 + i / FPS)  # stream clocks do not start at 0


def test_counts_reps_and_publishes_a_snapshot():
    s, made = session(reps=3)
    assert made == []  # the estimator is created lazily, on the streaming thread
    feed(s)
    snap = s.snapshot()
    assert len(made) == 1
    assert snap.rep_count == 3 and len(snap.reps) == 3 and snap.reps_correct == 3
    assert snap.frames_processed == snap.frames_with_pose == int(8 * FPS)
    assert snap.phase == "standing" and snap.label == "correct"
    assert snap.primary_value == pytest.approx(175.0, abs=1.0)
    assert snap.reps[0].start_s >= 0.9  # times relative to the first frame
    assert snap.fps > 0 and snap.process_ms > 0
    assert snap.frames_correct_pct is not None and 50 < snap.frames_correct_pct <= 100


def test_overlay_is_drawn_in_place():
    s, _ = session()
    img = frame()
    before = img.copy()
    out = s.process_frame(img, 0.0)
    assert out is img and not np.array_equal(out, before)


@pytest.mark.parametrize("keep", [lambda i: i % 2 == 0, lambda i: i % 3 != 1,
                                  lambda i, r=random.Random(7): r.random() > 0.4])
def test_dropped_frames_do_not_break_counting(keep):
    s, _ = session(reps=3)
    feed(s, keep=keep)
    assert s.snapshot().rep_count == 3


def test_reset_and_rule_change_restart_counting():
    s, _ = session(reps=3)
    feed(s)
    s.reset()
    snap = s.snapshot()
    assert snap.rep_count == 0 and snap.frames_processed == 0 and snap.reps == ()
    s.set_rule(RULES["squat"], RULES.defaults)  # unchanged: keeps counting state
    feed(s, 4.0)
    n = s.snapshot().frames_processed
    s.set_rule(RULES["squat"], RULES.defaults)
    assert s.snapshot().frames_processed == n
    s.set_rule(RULES["pushup"], RULES.defaults)
    snap = s.snapshot()
    assert snap.exercise == "pushup" and snap.frames_processed == 0


def test_bad_frames_are_passed_through_and_counted():
    s, _ = session()
    bad = np.zeros((480, 640), np.uint8)  # the fake estimator fails on a 2-D image
    assert s.process_frame(bad, 0.0) is bad
    snap = s.snapshot()
    assert snap.errors == 1 and snap.last_error and snap.frames_processed == 0
    s.process_frame(frame(), 0.1)
    assert s.snapshot().frames_processed == 1


def test_repeated_timestamps_keep_time_moving():
    s, _ = session()
    for _ in range(5):
        s.process_frame(frame(), 3.0)
    assert s.snapshot().duration_s > 0


def test_a_restarted_stream_clock_keeps_counting():
    s, _ = session(reps=2)
    feed(s, 6.0)  # stream clock 100 .. 106 s
    assert s.snapshot().rep_count == 2
    for i in range(int(6 * FPS)):  # STOP, then START again: the new stream's clock starts near 0
        s.process_frame(frame(), 0.5 + i / FPS)
    snap = s.snapshot()
    assert snap.rep_count == 4
    assert snap.duration_s > 11.0


def test_snapshots_are_consistent_while_another_thread_streams():
    s, _ = session(reps=6)
    errors = []

    def stream():
        try:
            feed(s, 14.0)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    th = threading.Thread(target=stream)
    th.start()
    was_reset = False
    while th.is_alive():
        snap = s.snapshot()
        assert snap.rep_count == len(snap.reps)
        assert snap.frames_processed >= snap.frames_with_pose
        if not was_reset and snap.frames_processed > 100:
            s.reset()  # from the page's thread, mid-stream
            was_reset = True
    th.join()
    assert not errors and was_reset
    assert 0 < s.snapshot().frames_processed < int(14 * FPS)


def test_av_frame_adapter_keeps_timing():
    av = pytest.importorskip("av")
    s, _ = session()
    vf = av.VideoFrame.from_ndarray(frame(), format="bgr24")
    from fractions import Fraction

    vf.pts, vf.time_base = 9000, Fraction(1, 90000)
    out = s.process_av_frame(vf)
    assert (out.width, out.height) == (640, 480)
    assert out.pts == 9000 and out.time_base == Fraction(1, 90000)
    assert s.snapshot().frames_processed == 1


def test_saved_to_history(tmp_path):
    s, _ = session(reps=2)
    feed(s, 6.0)
    store = HistoryStore(tmp_path / "h.sqlite3")
    sid = store.add(s.to_record())
    s.mark_saved(sid)
    rec = store.get(sid)
    assert rec.source == "live" and rec.rep_count == 2 and rec.exercise == "squat"
    assert s.snapshot().saved_id == sid


@needs_videos
def test_real_clip_through_mediapipe_at_640x480():
    import cv2

    from pose_core.media.video import read_frames

    s = LiveSession(RULES["squat"], RULES.defaults)
    for t, img in read_frames(SQUAT_CLIP):
        s.process_frame(cv2.resize(img, (640, 480)), t)
    s.close()
    snap = s.snapshot()
    assert snap.rep_count == SQUAT_CLIP_REPS
    assert snap.frames_with_pose > 0.9 * snap.frames_processed


# ------------------------------------------------------------------------------------------ auto mode

class ScriptedModel:
    """Stands in for ExerciseRecognizer: `exercise` with `confidence` once the window reaches `from_s`
    (stream time of the frames), "cannot tell" before. OnlineRecognizer's own locking logic is used."""

    classes = tuple(sorted(RULES.exercises))

    def __init__(self, exercise: str = "squat", from_s: float = 101.0, confidence: float = 0.95):
        self.exercise, self.from_s, self.confidence = exercise, from_s, confidence
        self.calls = 0

    def predict(self, frames, allowed=None):
        from pose_core.recognition import Recognition

        self.calls += 1
        ts = [f.timestamp_s for f in frames if f is not None]
        if not ts or max(ts) < self.from_s:
            return Recognition(None, 0.4, (("pushup", 0.4), ("squat", 0.35)), "low confidence: test")
        rest = (1.0 - self.confidence) / 2
        return Recognition(self.exercise, self.confidence, ((self.exercise, self.confidence), ("situp", rest)), "",
                           len(frames), len(ts), 1)


def auto_session(model: ScriptedModel | None = None, reps: int = 3) -> tuple[LiveSession, ScriptedModel]:
    from pose_core.recognition import OnlineRecognizer

    model = model or ScriptedModel()
    s = LiveSession(RULES["pushup"], RULES.defaults, estimator_factory=lambda: FakeEstimator(reps=reps),
                    online_factory=lambda: OnlineRecognizer(model))
    s.set_auto(RULES.exercises, RULES.defaults)
    return s, model


def test_auto_mode_counts_nothing_until_it_locks_then_counts_the_recognised_exercise():
    s, model = auto_session(ScriptedModel("squat", from_s=101.0), reps=3)
    assert s.auto and s.snapshot().auto is not None and not s.snapshot().auto.locked
    feed(s, 0.9)  # the fake squatter stands for 1 s, then squats; the model is sure from 101 s on
    snap = s.snapshot()
    assert not snap.counting and snap.exercise == "" and snap.rep_count == 0
    assert snap.auto.recognising and snap.auto.candidate == "pushup" and "test" in snap.auto.reason
    assert snap.frames_processed == 27  # frames are still processed (and drawn) while recognising
    with pytest.raises(ValueError, match="not been recognised"):
        s.to_record()
    feed_from(s, 0.9, 8.0)
    snap = s.snapshot()
    assert snap.auto.locked and snap.auto.exercise == "squat" and snap.auto.source == "auto"
    assert snap.auto.confidence == pytest.approx(0.95)
    assert 101.0 - 100.0 <= snap.auto.locked_at_s <= 3.0  # three confident checks 0.5 s apart
    assert snap.exercise == "squat" and snap.primary_angle == "knee" and snap.counting
    # The recent poses were replayed on the lock: the first squat (from 1 s on) is counted too.
    assert snap.rep_count == 3
    calls = model.calls
    feed_from(s, 8.0, 9.0)
    assert model.calls == calls  # once locked, the recogniser costs nothing
    rec = s.to_record()
    assert rec.exercise == "squat" and rec.extra["exercise_auto"] is True and rec.rep_count == 3
    assert snap.auto.recognition_ms > 0 and snap.auto.predictions >= 3


def feed_from(s: LiveSession, start_s: float, end_s: float) -> None:
    for i in range(int(start_s * FPS), int(end_s * FPS)):
        s.process_frame(frame(), 100.0 + i / FPS)


def test_auto_mode_override_reset_and_leaving_auto():
    s, _ = auto_session(ScriptedModel("squat", from_s=100.5))
    feed(s, 4.0)
    assert s.snapshot().exercise == "squat"
    s.reset()  # "Reset count" keeps the recognised exercise
    snap = s.snapshot()
    assert snap.rep_count == 0 and snap.frames_processed == 0 and snap.exercise == "squat" and snap.auto.locked
    s.override("pushup")  # the user knows better: the rule switches at once
    snap = s.snapshot()
    assert snap.exercise == "pushup" and snap.primary_angle == RULES["pushup"].primary_angle
    assert snap.auto.locked and snap.auto.source == "user" and snap.auto.exercise == "pushup"
    feed(s, 2.0)
    assert s.snapshot().exercise == "pushup"  # the recogniser does not take it back
    assert s.to_record().extra["exercise_auto"] is False
    with pytest.raises(KeyError):
        s.override("yoga")
    s.reset_recognition()  # back to recognising: nothing counted, exercise forgotten
    snap = s.snapshot()
    assert not snap.counting and snap.auto.recognising and snap.auto.top == () and snap.frames_processed == 0
    feed(s, 4.0)
    assert s.snapshot().exercise == "squat"  # recognised again
    s.set_auto(RULES.exercises, RULES.defaults)  # the page calls this on every run: no restart
    assert s.snapshot().exercise == "squat" and s.snapshot().frames_processed == int(4 * FPS)
    s.set_rule(RULES["situp"], RULES.defaults)  # an exercise picked in the sidebar leaves auto mode
    snap = s.snapshot()
    assert not s.auto and snap.auto is None and snap.exercise == "situp" and s.auto_exercises == []
    with pytest.raises(RuntimeError):
        s.override("squat")


def test_auto_mode_new_thresholds_keep_the_recognised_exercise():
    from pose_core.store.tuning import with_check_bounds

    s, _ = auto_session(ScriptedModel("squat", from_s=100.5))
    feed(s, 4.0)
    tuned = dict(RULES.exercises, squat=with_check_bounds(RULES["squat"], rep_check_bounds={0: (-math.inf, 90.0)}))
    s.set_auto(tuned, RULES.defaults)
    snap = s.snapshot()
    assert snap.exercise == "squat" and snap.frames_processed == 0  # count restarted, exercise kept
    assert s.rule.rep_checks[0].max == 90.0


def test_overlay_names_the_exercise_while_recognising_and_once_locked(monkeypatch):
    import pose_core.media.drawing as drawing
    import pose_core.run.live as live

    drawn = []
    monkeypatch.setattr(live, "draw_session_overlay", lambda img, overlay, extra=None: drawn.append(overlay.exercise))
    monkeypatch.setattr(drawing, "draw_text_box", lambda img, lines, origin, **kw: drawn.append(lines[0][0]))
    s, _ = auto_session(ScriptedModel("squat", from_s=100.5))
    feed(s, 3.0)
    assert drawn[0] == "Recognising the exercise..."
    assert drawn[-1] == "Squat (auto 95%)"
    s.override("pushup")
    feed_from(s, 3.0, 3.1)
    assert drawn[-1] == "Push-up (your choice)"


def test_auto_mode_snapshots_stay_consistent_under_concurrent_override():
    s, _ = auto_session(ScriptedModel("squat", from_s=100.5), reps=6)
    errors = []

    def stream():
        try:
            feed(s, 14.0)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    th = threading.Thread(target=stream)
    th.start()
    actions = [lambda: s.override("pushup"), s.reset_recognition, lambda: s.override("situp")]
    while th.is_alive():
        snap = s.snapshot()
        assert snap.rep_count == len(snap.reps)
        assert snap.counting == bool(snap.auto.locked)
        if snap.counting:
            assert snap.exercise == snap.auto.exercise
        if actions and snap.frames_processed > 60:
            actions.pop(0)()
    th.join()
    assert not errors and not actions
    assert s.snapshot().exercise == "situp"


@needs_videos
def test_auto_mode_on_a_real_clip_locks_and_counts(videos_dir):
    import cv2

    from pose_core.media.video import read_frames

    clip, exercise, reps = "pushup_3.mp4", "pushup", 8  # videos.csv: 8 complete reps
    s = LiveSession(RULES["squat"], RULES.defaults)
    s.set_auto(RULES.exercises, RULES.defaults)
    locked_after = None
    for t, img in read_frames(videos_dir / clip):
        s.process_frame(cv2.resize(img, (640, 480)), t)
        if locked_after is None and s.snapshot().auto.locked:
            locked_after = t
    s.close()
    snap = s.snapshot()
    assert snap.auto.exercise == exercise and snap.auto.source == "auto" and snap.auto.confidence >= 0.7
    assert locked_after is not None and locked_after < 8.0
    assert snap.exercise == exercise and snap.rep_count >= reps // 2
    assert snap.auto.recognition_ms < 5.0  # averaged over the frames before the lock


# ------------------------------------------------------------------ FreshFrames: only the newest frame is analysed

class SlowEstimator(FakeEstimator):
    """The fake pose model, taking `delay_s` per frame (a busy machine)."""

    def __init__(self, delay_s: float, **kw):
        super().__init__(**kw)
        self.delay_s = delay_s

    def process(self, rgb, t):
        import time

        time.sleep(self.delay_s)
        return super().process(rgb, t)


def test_fresh_frames_drop_stale_frames_and_stay_current_when_behind_the_camera():
    import time

    from pose_core.run.live import FreshFrames

    # The camera at 30 fps, the model at 10 fps: two of every three frames cannot be analysed. Queueing them
    # would take 3x the camera's time and put the overlay seconds behind.
    delay, cam_fps, seconds = 0.1, 30.0, 8.0
    s = LiveSession(RULES["squat"], RULES.defaults, estimator_factory=lambda: SlowEstimator(delay, reps=3))
    fresh = FreshFrames(s, wait_s=0.0)
    try:
        t0 = time.monotonic()
        for i in range(int(cam_fps * seconds)):
            time.sleep(max(0.0, t0 + i / cam_fps - time.monotonic()))
            img = frame()
            assert fresh.process_frame(img, 100.0 + i / cam_fps) is img  # the camera's own, current image
        elapsed = time.monotonic() - t0
        fresh.wait_for(fresh.received, 1.0)
        st = fresh.stats()
    finally:
        fresh.close()
    assert elapsed < 1.5 * seconds  # the camera's thread never waited for the model
    assert st["received"] == int(cam_fps * seconds)
    assert st["skipped"] > st["received"] / 2  # stale frames were dropped ...
    assert st["processed"] + st["skipped"] == st["received"]  # ... never queued: each analysed or skipped
    # The overlay is about one analysis (+ one camera frame) old: bounded, never growing.
    assert st["latency_p95_ms"] is not None and st["latency_p95_ms"] < 1000 * (2 * delay + 1 / cam_fps + 0.1), st
    assert s.snapshot().rep_count == 3  # counting on the analysed frames is still right


def test_fresh_frames_analyse_every_frame_when_the_model_keeps_up():
    import time

    from pose_core.run.live import FreshFrames

    s = LiveSession(RULES["squat"], RULES.defaults, estimator_factory=lambda: FakeEstimator(reps=2))
    fresh = FreshFrames(s, wait_s=0.05)
    try:
        for i in range(int(FPS * 6)):
            fresh.process_frame(frame(), 100.0 + i / FPS)
            time.sleep(0.002)
        st = fresh.stats()
    finally:
        fresh.close()
    assert st["skipped"] <= 2 and st["processed"] >= st["received"] - 2
    assert s.snapshot().rep_count == 2


def test_fresh_frames_draw_the_overlay_once_on_the_returned_frame():
    """The analysis thread only prepares the overlay; it is drawn once, on the frame handed back to the camera
    stream (drawing it on the analysis' own copy as well cost ~3 ms a frame on the model's thread)."""
    import numpy as np

    from pose_core.run.live import FreshFrames

    s = LiveSession(RULES["squat"], RULES.defaults, estimator_factory=lambda: FakeEstimator(reps=1))
    analysed: list = []
    real = s.process_frame
    s.process_frame = lambda rgb, t=None, draw_here=True: analysed.append(
        (rgb.copy(), real(rgb, t, draw_here=draw_here), draw_here))
    fresh = FreshFrames(s, wait_s=1.0)
    try:
        for i in range(5):
            img = frame()
            blank = img.copy()
            out = fresh.process_frame(img, 100.0 + i / FPS)
            assert out is img and not np.array_equal(out, blank)  # the overlay is on the returned frame
    finally:
        fresh.close()
    assert len(analysed) == 5
    for before, after, draw_here in analysed:
        assert draw_here is False and np.array_equal(before, after)  # nothing drawn on the analysis' copy
    # Used on its own, the session still draws in place.
    img = frame()
    blank = img.copy()
    assert not np.array_equal(real(img, 200.0), blank)


def test_fresh_frames_latency_counts_the_wait_before_a_frame_arrives():
    """Issue 14, item 3: latency is measured from each frame's capture timestamp, so a frame that waited on its
    way (a busy event loop, the network) counts that wait, not just the analysis."""
    from pose_core.run.live import FreshFrames

    fresh = FreshFrames(LiveSession(RULES["squat"], RULES.defaults, estimator_factory=lambda: FakeEstimator(reps=1)),
                        wait_s=0.0)
    try:
        # Frames captured every 1/30 s; the first arrives 10 ms after capture, later ones ever later.
        arrivals = [(i / 30, 1000.0 + i / 30 + 0.010 + (0.0 if i < 5 else 0.2)) for i in range(10)]
        got = [fresh.capture_time(t, now) for t, now in arrivals]
        assert got[0] == pytest.approx(1000.0 + 0.010)
        assert all(now - c == pytest.approx(0.0 if i < 5 else 0.2) for i, ((_, now), c) in
                   enumerate(zip(arrivals, got)))  # the 200 ms delay is seen, relative to the fastest frame
        # A new stream (its clock starts again) is aligned afresh, not with the old one's offset.
        assert fresh.capture_time(0.0, 5000.0) == pytest.approx(5000.0)
        assert fresh.capture_time(None, 6000.0) == 6000.0  # no timestamp: its arrival
    finally:
        fresh.close()


def test_the_server_never_stalls_a_live_session_with_a_full_garbage_collection():
    """Issue 14, item 3: a full collection of the server's heap holds Python's GIL ~110 ms. Streamlit runs one
    after every script run by default, and a page polling an analysis reruns twice a second: under py-spy
    that was 62% of the GIL's time beside a live session (overlay p95 512 ms). The dashboard turns it off
    and freezes its start-up heap (imported modules), so Python's own collector does not walk it either."""
    import subprocess
    import sys
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    cfg = tomllib.loads((root / ".streamlit" / "config.toml").read_text())
    assert cfg["runner"]["postScriptGC"] is False
    code = "import gc, dashboard.common; print(gc.get_freeze_count(), len(gc.get_objects()))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True)
    frozen, tracked = (int(x) for x in out.stdout.split())
    assert frozen > 50_000 and tracked < frozen / 10  # the heap is frozen: little is left for a full collection
