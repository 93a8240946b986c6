"""Rep timing (pose_core/core/tempo.py), one definition everywhere: rep time, lifting (concentric) time per
rep from the rules' `counting.concentric`, and the set's velocity loss, on synthetic reps; and where they
show up (summary.json, reps.json, the History comparison). Issue 26: "set fatigue for coaches", item 3."""

from __future__ import annotations

import json

import pytest

from pose_core.core.rules import RulesError, load_rules
from pose_core.core.session import Session
from pose_core.core.tempo import avg_rep_time_s, concentric_s, velocity_loss_pct
from pose_core.core.types import RepEvent
from pose_core.core.wording import plural
from pose_core.store.history import SessionRecord
from pose_core.store.history_compare import compare_sessions
from pose_core.store.outputs import write_reps


def rep(i: int, start: float, down: float, up: float, verdict: str = "correct") -> RepEvent:
    return RepEvent(index=i, start_s=start, end_s=start + down + up, peak_s=start + down, primary_min=80,
                    primary_max=175, verdict=verdict)


# A squat set slowing down: each lift (the way up) slower than the one before, the way down steady.
SLOWING = [rep(1, 1.0, 0.8, 0.6), rep(2, 4.0, 0.8, 0.7), rep(3, 7.0, 0.8, 0.9), rep(4, 10.0, 0.8, 1.2)]


def test_which_half_lifts_is_rules_data():
    rules = load_rules()
    assert rules["squat"].counting.concentric == "from_peak"  # standing up from the bottom
    assert rules["pushup"].counting.concentric == "from_peak"
    assert rules["bench_press"].counting.concentric == "from_peak"
    assert rules["pullup"].counting.concentric == "to_peak"  # pulling up to the top
    assert rules["situp"].counting.concentric == "to_peak"
    assert rules["jumping_jacks"].counting.concentric == "" and rules["jump_rope"].counting.concentric == ""
    with pytest.raises(RulesError, match=r"exercises.squat.counting.concentric: 'upward' is not one of"):
        load_rules(user_text='[exercises.squat.counting]\nconcentric = "upward"\n')


def test_lifting_time_follows_the_concentric_half():
    r = rep(1, 2.0, 0.9, 0.6)
    assert concentric_s(r, "from_peak") == pytest.approx(0.6)  # a squat: bottom -> standing
    assert concentric_s(r, "to_peak") == pytest.approx(0.9)  # a pull-up: hanging -> top
    assert concentric_s(r, "") is None


def test_velocity_loss_is_slowest_against_fastest_lift():
    # v ~ 1 / lifting time: fastest 0.6 s, slowest 1.2 s -> the slowest lift at half the velocity: 50% loss
    assert velocity_loss_pct(SLOWING, "from_peak") == pytest.approx(50.0)
    assert velocity_loss_pct(SLOWING, "to_peak") == pytest.approx(0.0)  # the way down never slowed
    assert velocity_loss_pct(SLOWING[:1], "from_peak") is None  # one rep: nothing to compare
    assert velocity_loss_pct(SLOWING, "") is None  # jumping jacks: lifting means nothing
    # a one-frame "lift" is a counting artefact, not the fastest rep
    assert velocity_loss_pct(SLOWING + [rep(5, 14.0, 0.8, 0.01)], "from_peak") == pytest.approx(50.0)
    # the order does not matter: the slowest against the fastest, wherever they are in the set
    assert velocity_loss_pct(list(reversed(SLOWING)), "from_peak") == pytest.approx(50.0)


def test_rep_time_is_the_movement_not_the_cycle():
    # rest to rest: leaving rest -> back at rest; the 1.6-1.6 s pauses between reps are not part of it
    assert avg_rep_time_s(SLOWING) == pytest.approx((1.4 + 1.5 + 1.7 + 2.0) / 4, abs=0.01)
    assert avg_rep_time_s([]) is None


def test_summary_reps_json_and_history_agree():
    rule = load_rules()["squat"]
    session = Session(rule)
    session.analyzer.reps.extend(SLOWING)
    s = session.summary()
    assert s.velocity_loss_pct == pytest.approx(50.0) and s.avg_rep_s == avg_rep_time_s(SLOWING)
    assert "velocity_loss_pct" in s.to_dict()
    record = SessionRecord(exercise="squat", name="a.mp4", reps=tuple(SLOWING))
    assert record.avg_rep_s == s.avg_rep_s  # History's rep time is the page's
    faster = SessionRecord(exercise="squat", name="b.mp4", reps=tuple(SLOWING[:2]), created_at="2030-01-01T00:00:00+00:00")
    rows = {c.measure: c for c in compare_sessions(record, faster, "high", concentric="from_peak")}
    assert rows["velocity loss"].earlier == pytest.approx(50.0) and rows["velocity loss"].later == pytest.approx(14.3)
    assert rows["velocity loss"].better is None  # how far to push a set is the coach's call
    assert "velocity loss" not in {c.measure for c in compare_sessions(record, faster, "low", concentric="")}


def test_reps_json_has_each_reps_lifting_time(tmp_path):
    write_reps(tmp_path / "reps.json", "squat", SLOWING, 0, "side", concentric="from_peak")
    doc = json.loads((tmp_path / "reps.json").read_text())
    assert [r["concentric_s"] for r in doc["reps"]] == [0.6, 0.7, 0.9, 1.2]
    write_reps(tmp_path / "jj.json", "jumping_jacks", SLOWING[:1], 0, "front")
    assert json.loads((tmp_path / "jj.json").read_text())["reps"][0]["concentric_s"] is None


@pytest.mark.parametrize("n, noun, text", [(1, "rep", "1 rep"), (0, "rep", "0 reps"), (2, "partial rep", "2 partial reps"),
                                           (1, "analysis", "1 analysis"), (3, "analysis", "3 analyses")])
def test_counts_in_words(n, noun, text):
    assert plural(n, noun, "analyses" if noun == "analysis" else None) == text
