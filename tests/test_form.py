"""Form verdicts a coach agrees with: each fault a measured quantity (core/geometry.py), judged per rep from
the views that can see it, checked on the form-labelled clips of ../shared/data/form."""
import dataclasses

import numpy as np
import pytest

from helpers import FORM, needs_form, run_evaluate
from pose_core.core.geometry import line_offset_pct, measure
from pose_core.core.landmarks import PoseLandmark as L
from pose_core.core.rules import RulesError, load_rules, parse_rules
from pose_core.core.types import PoseFrame

def frame_with(points: dict[int, tuple[float, float]], size=(1000, 1000)) -> PoseFrame:
    """A pose with only `points` seen (the other landmarks invisible, so they do not enter the body's scale)."""
    lm = np.zeros((33, 3))
    lm[:, :2] = 0.5
    vis = np.zeros(33)
    for i, (x, y) in points.items():
        lm[i, :2] = (x / size[0], y / size[1])
        vis[i] = 1.0
    return PoseFrame(lm, vis, size)


@pytest.mark.parametrize("hip_y,expected", [(500.0, 0.0), (560.0, 6.0), (400.0, -10.0)])
def test_hip_sag_is_the_distance_from_the_shoulder_ankle_line_in_percent_of_it(hip_y, expected):
    # A push-up from the side: shoulders at x=0, ankles at x=1000 on the line y=500; image y grows down.
    assert line_offset_pct((0, 500), (500, hip_y), (1000, 500)) == pytest.approx(expected)
    # Same from the other side (head on the right): below the line is still positive.
    assert line_offset_pct((1000, 500), (500, hip_y), (0, 500)) == pytest.approx(expected)


def test_hips_on_the_floor_are_a_large_sag_even_where_the_hip_angle_is_mild():
    shoulder, ankle = (100.0, 300.0), (900.0, 600.0)  # chest up, feet on the floor: the "worm"
    hip = (500.0, 560.0)  # hips resting on the floor
    sag = line_offset_pct(shoulder, hip, ankle)
    assert sag > 10


def test_knee_width_and_chin_height_measurements():
    rules = load_rules()
    knees_in = frame_with({L.LEFT_KNEE: (480, 700), L.RIGHT_KNEE: (520, 700), L.LEFT_ANKLE: (400, 900),
                           L.RIGHT_ANKLE: (600, 900)})
    assert measure(knees_in, rules["squat"].angles["knee_width"]) == pytest.approx(20.0)
    top = frame_with({L.NOSE: (500, 250), L.LEFT_WRIST: (400, 300), L.RIGHT_WRIST: (600, 300),
                      L.LEFT_SHOULDER: (420, 400), L.RIGHT_SHOULDER: (580, 400), L.LEFT_HIP: (440, 900),
                      L.RIGHT_HIP: (560, 900)})
    # 50 px of a body whose size (the torso: the only segment seen) is 500 px
    assert measure(top, rules["pullup"].angles["chin_height"]) == pytest.approx(10.0)


def test_a_width_needs_sideless_joint_names():
    doc = {"exercises": {"squat": {"primary_angle": "knee", "angles": {
        "knee": {"kind": "joint", "joints": ["hip", "knee", "ankle"]},
        "w": {"kind": "width", "joints": ["left_knee", "ankle"]}},
        "counting": {"rest": "high", "min_amplitude": 30}}}}
    with pytest.raises(RulesError, match="without a side"):
        parse_rules(doc)


def test_every_fault_in_the_rules_names_its_views_and_its_measurement():
    rules = load_rules()
    push = rules["pushup"]
    sag = [c for c in push.rep_checks if c.angle == "hip_sag"]
    assert {c.stat for c in sag} == {"max", "min", "range"} and all(set(c.views) == {"side", "oblique"} for c in sag)
    # The body line is what a push-up's verdict needs: sag and pike are essential, measured in 3D.
    assert {c.stat for c in sag if c.essential} == {"max", "min"} and push.angles["hip_sag"].space == "world"
    # From an angle the 3D offset is noisier: looser limits there, the side's own elsewhere.
    sag_max = next(c for c in sag if c.stat == "max")
    assert sag_max.bounds_for("oblique")[1] > sag_max.bounds_for("side")[1] == sag_max.max
    assert [c for c in rules["squat"].rep_checks if c.angle == "knee_width"][0].views == ("front", "rear")


@pytest.fixture(scope="module")
def form_report():
    return run_evaluate(FORM)


@needs_form
def test_form_labelled_clips_every_clip_and_every_judged_rep_agree(form_report):
    clips = form_report["clips"]
    table = "\n".join(f"{c['file']:20s} counted {c['counted']}/{c['expected']} verdicts {c['verdicts']} "
                      f"(labelled {c['expected_verdicts']}) view {c['view']}" for c in clips)
    print("\n" + table)
    o = form_report["overall"]
    assert o["clips_with_verdicts"] == len(clips) >= 5, table
    assert o["clip_verdicts_right"] == len(clips), table
    assert o["reps_agreeing"] == o["reps_judged"] > 0, table
    assert o["verdict_confusion"]["I->I"] >= 2 and o["verdict_confusion"]["C->C"] >= 3
    limit = next(c.max for c in load_rules()["pushup"].rep_checks if (c.angle, c.stat) == ("hip_sag", "max"))
    for c in clips:  # the sagging-hips sets (the only faulty ones here) say so, with the measurement and limit
        if "I" in c["expected_verdicts"]:
            assert any(f.startswith("Hips sagged: ") and "% of body length" in f and f"(limit {limit:g}%)" in f
                       for f in c["faults"]), c


def test_the_overlay_shows_the_last_reps_fault_under_its_verdict():
    from pose_core.core.session import Session
    from pose_core.media.drawing import draw_session_overlay

    rules = load_rules()
    s = Session(rules["squat"], rules.defaults, view="side")
    knees = [175.0] * 10 + list(np.linspace(175, 120, 15)) + list(np.linspace(120, 175, 15)) + [175.0] * 20
    r = None
    for i, k in enumerate(knees):  # a shallow squat seen from the side: "Not deep enough: ..."
        r = s.step_angles({"knee": k, "hip": 170.0, "torso_lean": 5.0, "hip_height": 0.0}, i / 30)
    assert s.analyzer.last_rep is not None
    o = s.overlay(r)
    assert o.last_rep_verdict == "incorrect" and o.last_rep_reason.startswith("Not deep enough: knees reached 12")
    plain_img = draw_session_overlay(np.zeros((480, 640, 3), np.uint8), dataclasses.replace(o, last_rep_reason=""))
    with_reason = draw_session_overlay(np.zeros((480, 640, 3), np.uint8), o)
    assert (with_reason != plain_img).any()  # the measurement is drawn under the verdict
