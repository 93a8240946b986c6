"""Re-judging stored angles with other thresholds, angle distributions, and saving the user's rules file."""

import csv
import json
import math
import tomllib

import pytest
from helpers import SQUAT_CLIP_REPS, needs_videos, squat_knee_schedule

from pose_core.store.outputs import frames_csv_header, list_analyses, load_analysis, read_frames_csv
from pose_core.core.rules import RulesError, load_rules
from pose_core.store.tuning import (angle_distribution, axis_range, backup_path, correct_bands,
                                    open_bounds, rejudge,
                                    reset_user_rule, rule_toml, save_user_rule, save_user_rules_text, slider_bounds,
                                    with_check_bounds)

RULES = load_rules()
SQUAT = RULES["squat"]


def write_frames_csv(path, reps=3, low=70.0, fps=30.0, missing_every=0):
    """A frames.csv as the pipeline writes it, for a synthetic squat session (raw angles only)."""
    names = list(SQUAT.angles)
    header = frames_csv_header(names)
    n = int((1.0 + reps * 2.0 + 1.0) * fps)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for i in range(n):
            t = i / fps
            knee = squat_knee_schedule(t, reps=reps, low=low)
            row = dict.fromkeys(header, "")
            row.update(frame=i, time_s=f"{t:.4f}", has_pose=1, phase="", label="", rep_count=0)
            if not (missing_every and i % missing_every == 0):
                row.update(raw_knee=f"{knee:.2f}", raw_hip=f"{knee:.2f}", raw_torso_lean="10.0", raw_hip_height="0",
                           knee=f"{knee:.2f}", torso_lean="10.0")
            row["phase"] = "unknown"  # re-judging recomputes phases; the stored ones are not read
            w.writerow([row[c] for c in header])
    return path


def test_rejudge_counts_and_labels(tmp_path):
    p = write_frames_csv(tmp_path / "frames.csv", reps=3, low=70)
    r = rejudge(p, SQUAT, RULES.defaults)
    assert r.rep_count == 3 and r.reps_correct == 3
    assert r.frames == len(r.labels) and r.frames_judged == r.frames
    # Frames near the bottom but above the depth check (100) are "go deeper".
    assert 80.0 < r.frames_correct_pct < 100.0


def test_stricter_depth_lowers_correct_frames_and_reps(tmp_path):
    p = write_frames_csv(tmp_path / "frames.csv", reps=3, low=70)
    strict = with_check_bounds(SQUAT, frame_check_bounds={0: (-math.inf, 60.0)}, rep_check_bounds={0: (-math.inf, 60.0)})
    r = rejudge(p, strict, RULES.defaults)
    assert r.rep_count == 3
    assert r.reps_correct == 0
    assert r.frames_correct_pct < 100.0
    assert all("Not deep enough" in rep.reasons[0] for rep in r.reps)


def test_check_ranges_judge_reps_but_never_change_the_count(tmp_path):
    p = write_frames_csv(tmp_path / "frames.csv", reps=3, low=110)  # shallow squats
    as_is = rejudge(p, SQUAT, RULES.defaults)
    assert as_is.rep_count == 3 and as_is.reps_correct == 0
    assert all(r.reasons[0].startswith("Not deep enough: knees reached 11") for r in as_is.reps)
    lenient = rejudge(p, with_check_bounds(SQUAT, rep_check_bounds={0: (-math.inf, 120.0)}), RULES.defaults)
    assert lenient.rep_count == 3 and lenient.reps_correct == 3


def test_missing_frames_do_not_break_counting(tmp_path):
    p = write_frames_csv(tmp_path / "frames.csv", reps=3, missing_every=3)
    r = rejudge(p, SQUAT, RULES.defaults)
    assert r.rep_count == 3
    assert r.frames_judged < r.frames


def test_invalid_check_ranges_are_refused():
    with pytest.raises(RulesError, match="min"):
        with_check_bounds(SQUAT, frame_check_bounds={0: (120.0, 100.0)})
    with pytest.raises(RulesError, match="min"):
        with_check_bounds(SQUAT, rep_check_bounds={1: (160.0, 150.0)})


def test_slider_bounds_round_trip():
    ax = axis_range(SQUAT, "knee")
    assert ax == (0.0, 180.0)
    assert slider_bounds(-math.inf, 100.0, ax) == (0.0, 100.0)
    assert open_bounds((0.0, 100.0), ax) == (-math.inf, 100.0)
    assert open_bounds((20.0, 180.0), ax) == (20.0, math.inf)
    bands = correct_bands(SQUAT, "knee")
    assert [(b.lo, b.hi, b.phase) for b in bands] == [(0.0, 100.0, "peak")]


def test_save_user_rule_validates_backs_up_and_keeps_other_exercises(tmp_path):
    path = tmp_path / "rules.toml"
    save_user_rule(path, with_check_bounds(RULES["pushup"], rep_check_bounds={1: (155.0, math.inf)}))
    first = path.read_text()
    tuned = with_check_bounds(SQUAT, frame_check_bounds={0: (-math.inf, 95.0)}, rep_check_bounds={0: (-math.inf, 110.0)})
    save_user_rule(path, tuned)
    assert backup_path(path).read_text() == first
    loaded = load_rules(user_path=path)
    assert loaded["squat"].rep_checks[0].max == 110.0
    assert loaded["squat"].frame_checks[0].max == 95.0 and loaded["squat"].frame_checks[0].min == -math.inf
    assert loaded["pushup"].rep_checks[1].min == 155.0
    assert "exercises" in tomllib.loads(path.read_text())
    assert reset_user_rule(path, "squat") is True
    assert load_rules(user_path=path)["squat"] == SQUAT
    assert reset_user_rule(path, "squat") is False


def test_invalid_upload_is_refused_and_changes_nothing(tmp_path):
    path = tmp_path / "rules.toml"
    save_user_rule(path, with_check_bounds(SQUAT, rep_check_bounds={0: (-math.inf, 110.0)}))
    before = path.read_bytes()
    bad = '[exercises.squat.counting]\nrest = "high"\nmin_amplitude = -5\n'
    with pytest.raises(RulesError, match="min_amplitude"):
        save_user_rules_text(path, bad)
    with pytest.raises(RulesError, match="unknown key"):
        save_user_rules_text(path, "[exercises.squat]\nbogus = 1\n")
    with pytest.raises(RulesError, match="not valid TOML"):
        save_user_rules_text(path, "this is = = not toml")
    with pytest.raises(RulesError, match="UTF-8"):
        save_user_rules_text(path, b"\xff\xfe\x00")
    assert path.read_bytes() == before
    good = rule_toml({"squat": with_check_bounds(SQUAT, rep_check_bounds={0: (-math.inf, 115.0)})})
    rules = save_user_rules_text(path, good)
    assert rules["squat"].rep_checks[0].max == 115.0
    assert backup_path(path).read_bytes() == before


@needs_videos
def test_rejudge_reproduces_the_pipeline_on_a_real_clip(squat_analysis):  # noqa: F811
    summary = json.loads((squat_analysis / "summary.json").read_text())
    r = rejudge(squat_analysis / "frames.csv", SQUAT, RULES.defaults)
    assert r.rep_count == summary["reps"] == SQUAT_CLIP_REPS
    assert r.frames_correct_pct == summary["frames_correct_pct"]
    assert r.partial_reps == summary["partial_reps"]


@needs_videos
def test_distribution_and_listing_from_analyses(squat_analysis):  # noqa: F811
    analyses = list_analyses(squat_analysis.parent, "squat")
    assert [a.path for a in analyses] == [squat_analysis]
    assert list_analyses(squat_analysis.parent, "pushup") == []
    dist = angle_distribution(analyses, SQUAT, "knee")
    assert set(dist["phase"]) == {"rest", "transition", "peak"}
    assert set(dist["phase_name"]) == {"standing", "transition", "bottom"}
    # Phases are relative to the person's range: the bottom frames are deeper than every standing frame.
    assert dist[dist["phase"] == "peak"]["value"].max() < dist[dist["phase"] == "rest"]["value"].min()
    a = load_analysis(squat_analysis)
    assert len(a.reps) == SQUAT_CLIP_REPS and a.video is not None
    assert "raw_knee" in read_frames_csv(squat_analysis / "frames.csv").columns
    assert not any(c.endswith("_x") for c in a.frames.columns)
