"""The counter fed angle sequences: it never sees images (STYLE.md)."""
import math

import numpy as np
import pytest

from pose_core.core.analysis import FrameAnalyzer
from pose_core.core.counter import RepCounter
from pose_core.core.rules import Counting, RepCheck, load_rules

SQUAT = Counting(rest="high", rest_threshold=150, peak_threshold=120, min_rep_s=0.3)
FPS = 30.0


def rep(top=175.0, bottom=80.0, n=30):
    down = np.linspace(top, bottom, n // 2)
    return list(down) + list(down[::-1])


def feed(counter, values, t0=0.0):
    events = []
    for i, v in enumerate(values):
        ev = counter.update(t0 + i / FPS, v, {"primary": v})
        events.append(ev)
    return events


def test_clean_reps_are_counted_once_each():
    c = RepCounter(SQUAT, primary_name="primary")
    values = [175.0] * 10 + rep() * 3 + [175.0] * 10
    events = feed(c, values)
    c.finish()
    done = [e for e in events if e is not None]
    assert c.count == 3 and len(done) == 3
    assert [e.index for e in done] == [1, 2, 3]
    assert c.partial_reps == 0
    for e in done:
        assert e.primary_min == pytest.approx(80.0, abs=1e-6)
        assert e.start_s < e.peak_s < e.end_s
        assert e.down_s > 0 and e.up_s > 0


def test_rep_event_is_emitted_on_the_frame_it_completes():
    c = RepCounter(SQUAT)
    values = [175.0] * 5 + rep() + [175.0] * 5
    events = feed(c, values)
    first = next(i for i, e in enumerate(events) if e is not None)
    assert values[first] >= 150 and values[first - 1] < 150


@pytest.mark.parametrize("around", [150.0, 120.0])
def test_jitter_around_a_threshold_does_not_double_count(around):
    rng = np.random.default_rng(0)
    jitter = list(around + rng.uniform(-4, 4, 60))
    c = RepCounter(SQUAT)
    values = [175.0] * 5 + rep()[:15] + jitter + rep()[15:] + [175.0] * 5 if around == 120.0 else \
        [175.0] * 5 + jitter + rep() + jitter + [175.0] * 5
    feed(c, values)
    c.finish()
    assert c.count == 1


def test_shallow_movement_is_not_a_rep():
    c = RepCounter(SQUAT)
    feed(c, [175.0] * 5 + rep(bottom=130.0) * 3 + [175.0] * 5)
    assert c.count == 0


def test_missing_frames_do_not_break_the_count():
    values = [175.0] * 5 + rep() * 2 + [175.0] * 5
    holes = [math.nan if 20 <= i < 30 or i % 7 == 0 else v for i, v in enumerate(values)]
    c = RepCounter(SQUAT)
    feed(c, holes)
    assert c.count == 2
    none_values = [None if i % 5 == 0 else v for i, v in enumerate(values)]
    c2 = RepCounter(SQUAT)
    feed(c2, none_values)
    assert c2.count == 2


def test_partial_rep_at_the_start_is_not_counted():
    c = RepCounter(SQUAT)
    values = list(np.linspace(85, 175, 15)) + [175.0] * 5 + rep() * 2  # begins at the bottom
    feed(c, values)
    c.finish()
    assert c.count == 2
    assert c.partial_reps == 1


def test_partial_rep_at_the_end_is_not_counted():
    c = RepCounter(SQUAT)
    values = [175.0] * 5 + rep() * 2 + list(np.linspace(175, 85, 15))  # ends at the bottom
    feed(c, values)
    c.finish()
    assert c.count == 2
    assert c.partial_reps == 1


def test_complete_at_peak_counts_a_rep_whose_return_was_cut_off():
    situp = Counting(rest="high", rest_threshold=50, peak_threshold=30, min_rep_s=0.3, complete_at="peak")
    c = RepCounter(situp)
    values = [70.0] * 5 + list(np.linspace(70, 10, 15)) + list(np.linspace(10, 70, 15)) + list(np.linspace(70, 10, 15)) + [20.0] * 5
    feed(c, values)
    c.finish()
    assert c.count == 2 and c.partial_reps == 0


def test_rest_low_direction():
    jacks = Counting(rest="low", rest_threshold=60, peak_threshold=110, min_rep_s=0.2)
    c = RepCounter(jacks)
    one = list(np.linspace(20, 160, 10)) + list(np.linspace(160, 20, 10))
    feed(c, [20.0] * 3 + one * 4 + [20.0] * 3)
    assert c.count == 4


def test_too_fast_rep_is_ignored():
    c = RepCounter(Counting(rest="high", rest_threshold=150, peak_threshold=120, min_rep_s=1.0))
    feed(c, [175.0] * 5 + rep(n=10) + [175.0] * 5)  # 0.33 s
    assert c.count == 0


def test_rep_checks_give_verdict_and_reasons():
    checks = (RepCheck("primary", "min", "Not deep enough", max=100.0),
              RepCheck("primary", "max", "No lockout", min=160.0))
    c = RepCounter(SQUAT, checks, primary_name="primary")
    events = feed(c, [175.0] * 5 + rep(bottom=80) + rep(bottom=110) + [175.0] * 5)
    reps = [e for e in events if e]
    assert [r.verdict for r in reps] == ["correct", "incorrect"]
    assert reps[1].reasons == ("Not deep enough",)
    c2 = RepCounter(SQUAT, checks, primary_name="primary")
    feed(c2, [155.0] * 5 + rep(top=155, bottom=80) + [155.0] * 5)
    assert c2.reps[0].reasons == ("No lockout",)


def test_scene_cut_gap_then_new_shot_keeps_counting():
    c = RepCounter(SQUAT)
    values = [175.0] * 5 + rep() + [math.nan] * 45 + [175.0] * 5 + rep() + [175.0] * 3
    feed(c, values)
    assert c.count == 2


def test_analyzer_end_to_end_on_angles_with_posture_gate():
    rules = load_rules()
    a = FrameAnalyzer(rules["squat"], rules.defaults)
    t = 0.0
    for knee in [175.0] * 10 + rep() + rep():
        a.process_angles({"knee": knee, "hip": 170.0, "torso_lean": 10.0, "hip_height": 0.0}, t)
        t += 1 / FPS
    # A final descent then straight knees with folded hips (a plank): not a completed squat.
    for knee in list(np.linspace(175, 85, 15)) + list(np.linspace(85, 175, 15)) + [175.0] * 10:
        a.process_angles({"knee": knee, "hip": 80.0, "torso_lean": 10.0, "hip_height": 0.0}, t)
        t += 1 / FPS
    a.finish()
    assert a.counter.count == 2
    assert a.counter.partial_reps == 1


def test_frame_labels_follow_phase_checks():
    rules = load_rules()
    a = FrameAnalyzer(rules["squat"], rules.defaults)
    r = None
    for i, knee in enumerate([175.0] * 5 + list(np.linspace(175, 110, 20))):
        r = a.process_angles({"knee": knee, "hip": 170.0, "torso_lean": 10.0, "hip_height": 0.0}, i / FPS)
    assert r.phase == "peak"
    assert r.label.label == "incorrect"
    assert any("deeper" in m for m in r.label.reasons)
    r = a.process_angles({"knee": math.nan, "hip": math.nan, "torso_lean": math.nan, "hip_height": math.nan}, 5.0)
    assert r.label.label == "unknown"
