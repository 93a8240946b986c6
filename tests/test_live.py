"""LiveSession without Streamlit: counting from frames, dropped frames, thread safety, reset, bad frames."""

import random
import threading

import numpy as np
import pytest
from conftest import needs_videos
from conftest_browser import SQUAT_CLIP, SQUAT_CLIP_REPS, FakeEstimator

from pose_core.history import HistoryStore
from pose_core.live import LiveSession
from pose_core.rules import load_rules

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

    from pose_core.video import read_frames

    s = LiveSession(RULES["squat"], RULES.defaults)
    for t, img in read_frames(SQUAT_CLIP):
        s.process_frame(cv2.resize(img, (640, 480)), t)
    s.close()
    snap = s.snapshot()
    assert snap.rep_count == SQUAT_CLIP_REPS
    assert snap.frames_with_pose > 0.9 * snap.frames_processed
