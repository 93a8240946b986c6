"""The Analyze page's result (dashboard/result_view.py) driven with AppTest: the rep table a coach reads,
figures that cannot contradict each other, what the camera saw, a clicked rep seeking the video, portrait
videos kept small, the in-page exercise picker, and downloads that never rerun the page.
(Clicking in a real browser: tests/test_browser_analyze.py.)"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import SQUAT_CLIP_REPS, install_analysis

from dashboard import keys
from dashboard.result_view import PORTRAIT_MAX_HEIGHT_PX, SEEK_LEAD_S, rep_start_for_time
from pose_core.core.judging import check_label, view_advice
from pose_core.core.rules import load_rules
from pose_core.core.types import RepEvent
from pose_core.store.outputs import REPS_JSON, SUMMARY_JSON, load_analysis

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")


@pytest.fixture(autouse=True)
def _webrtc_without_runtime(monkeypatch):
    import streamlit_webrtc.component as component

    monkeypatch.setattr(component, "get_this_session_info", lambda: None)


def shown(folder: Path):
    """The Analyze page with `folder` as the analysis on display."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state[keys.ANALYZE_RESULT_DIR] = str(folder)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def rewrite(folder: Path, summary: dict | None = None, reps: list | None = None) -> Path:
    """Change summary.json / reps.json of an installed analysis (another exercise, view or no reps)."""
    if summary is not None:
        doc = json.loads((folder / SUMMARY_JSON).read_text())
        doc.update(summary)
        (folder / SUMMARY_JSON).write_text(json.dumps(doc))
    if reps is not None:
        doc = json.loads((folder / REPS_JSON).read_text())
        doc["reps"] = reps
        (folder / REPS_JSON).write_text(json.dumps(doc))
    return folder


@pytest.fixture
def squat_shown(workspace, squat_analysis):  # noqa: F811
    return install_analysis(squat_analysis, workspace)


# ------------------------------------------------------------------------- item 1: the rep table

def test_rep_table_has_cycle_range_depth_tempo_verdict_reasons_and_not_judged(squat_shown):
    at = shown(squat_shown)
    (table,) = at.dataframe
    df = table.value
    assert len(df) == SQUAT_CLIP_REPS
    assert list(df.columns) == ["rep", "verdict", "depth", "cycle (s)", "down / up (s)", "range of motion, knee (°)",
                                "reasons", "not judged (camera view)", "start (s)"]
    reps = load_analysis(squat_shown).reps
    # the full cycle is rest to rest: rep 1's cycle ends where rep 2 starts (pauses included)
    assert df["cycle (s)"][0] == pytest.approx(reps[1].start_s - reps[0].start_s, abs=0.01)
    assert df["range of motion, knee (°)"][0].startswith(f"{reps[0].range_of_motion:.0f} (")
    assert all("(target <= 100°)" in d for d in df["depth"])  # depth against the target (side view: judged)
    assert df["down / up (s)"][0] == f"{reps[0].down_s:.1f} / {reps[0].up_s:.1f}"
    assert set(df["verdict"]) <= {"correct", "incorrect"}
    # squat_1 is filmed from the side: the knees-caving check (front/rear only) is named as not judged
    assert all(c == "side view: Knees caved in" for c in df["not judged (camera view)"])
    assert any("Select a rep" in c.value for c in at.caption)


def test_a_clicked_rep_plays_the_video_from_just_before_it(squat_shown):
    at = shown(squat_shown)
    (video,) = at.get("video")
    assert video.proto.start_time == 0 and not video.proto.autoplay
    reps = load_analysis(squat_shown).reps
    # what the table's / timeline's selection callbacks store (the click itself: the browser test)
    t = rep_start_for_time(reps, reps[1].peak_s)
    assert t == pytest.approx(reps[1].start_s - SEEK_LEAD_S)
    at.session_state[keys.ANALYZE_SEEK] = (str(squat_shown), int(t), 1)
    at.run()
    (video,) = at.get("video")
    assert video.proto.start_time == int(reps[1].start_s - SEEK_LEAD_S) > 0
    assert video.proto.autoplay and video.proto.muted  # browsers autoplay muted videos only
    assert any("Playing from" in c.value for c in at.caption)
    # the same rep clicked again: another element id (Streamlit autoplays an id once), same start; the end
    # time that makes the id new lies past the video's end, so it never stops the video
    first_id, duration = video.proto.id, load_analysis(squat_shown).summary.duration_s
    at.session_state[keys.ANALYZE_SEEK] = (str(squat_shown), int(t), 2)
    at.run()
    (again,) = at.get("video")
    assert again.proto.id != first_id and again.proto.start_time == video.proto.start_time and again.proto.autoplay
    assert again.proto.end_time > duration and video.proto.end_time > duration
    # a seek stored for another analysis is not applied to this one
    at.session_state[keys.ANALYZE_SEEK] = ("/elsewhere", 7, 3)
    at.run()
    assert at.get("video")[0].proto.start_time == 0


def test_rep_start_for_time_picks_the_rep_clicked_or_the_nearest():
    reps = [RepEvent(index=i + 1, start_s=s, end_s=s + 2, peak_s=s + 1, primary_min=60, primary_max=170,
                     verdict="correct") for i, s in enumerate((2.0, 5.0, 9.0))]
    assert rep_start_for_time(reps, 6.5) == 5.0 - SEEK_LEAD_S  # inside rep 2
    assert rep_start_for_time(reps, 8.2) == 9.0 - SEEK_LEAD_S  # between reps: the nearest
    assert rep_start_for_time([], 4.0) == 4.0 - SEEK_LEAD_S


# ------------------------------------------------------------ items 2 and 3: figures and the view

def test_metrics_with_reps_say_what_they_mean_and_show_the_view(squat_shown):
    at = shown(squat_shown)
    m = metrics(at)
    assert m["Reps"] == str(SQUAT_CLIP_REPS)
    assert m["Correct reps"].endswith(f"of {SQUAT_CLIP_REPS}")
    assert m["Camera view"] == "side"
    s = load_analysis(squat_shown).summary
    assert m["Avg rep time"] == f"{s.avg_rep_s:.1f} s"  # the full cycle (rest to rest), not the movement alone
    assert s.avg_rep_s > (s.avg_down_s + s.avg_up_s) - 0.01
    for metric in at.metric:
        assert metric.help, f"metric {metric.label!r} says nothing about what it means"
    assert "Frames with correct form" not in m  # the per-frame share is a sentence, not a headline figure
    said = " ".join(c.value for c in at.caption)
    assert "Per frame" in said and "Knees caved in" in said  # what this view could not judge


@pytest.mark.parametrize("exercise, view, says, never", [
    ("pushup", "front", ["from the front", "Hips sagged", "from the side or at an angle"], ["visible from the side"]),
    ("jumping_jacks", "front", ["every jumping jacks check can be judged"], ["from the side or"]),
    ("squat", "side", ["Knees caved in", "from the front or from behind"], []),
    ("squat", None, ["could not be read", "from the side, from the front or at an angle"], []),  # (depth: 3D from the front)
])
def test_no_reps_hides_per_rep_figures_and_advice_follows_rule_and_view(squat_shown, exercise, view, says, never):
    folder = rewrite(squat_shown, summary={"exercise": exercise, "view": view, "reps": 0, "reps_correct": 0,
                                           "reps_incorrect": 0, "avg_rep_s": None, "avg_extreme": None,
                                           "primary_angle": load_rules()[exercise].primary_angle}, reps=[])
    at = shown(folder)
    m = metrics(at)
    assert m["Reps"] == "0"
    assert set(m) == {"Reps", "Camera view"}, m  # no "Correct reps 0 / 0", no average of nothing
    assert m["Camera view"] == (view or "not known")
    assert not any("Per frame" in c.value for c in at.caption)  # the per-frame share is hidden with 0 reps
    (hint,) = [i.value for i in at.info if "No complete rep" in i.value]
    text = hint.replace("\\", "")
    for s in says:
        assert s in text, text
    for s in never:
        assert s not in text, text
    assert not at.dataframe


def test_view_advice_comes_from_the_rules_data():
    rules = load_rules()
    # every check of the rule that cannot be seen from the view is named, with the views it needs
    advice = view_advice(rules["squat"], "front")
    for c in rules["squat"].rep_checks:  # (a name judged by another check from that view is not missed: the
        judged = any(check_label(o) == check_label(c) and "front" in o.views for o in rules["squat"].rep_checks)
        assert (check_label(c) in advice) == (not judged)  # squat's depth is judged in 3D from the front)
    assert "from the side or at an angle" in advice
    assert view_advice(rules["pushup"], "side").endswith("every push-up check can be judged from this view.")


def test_timeline_names_the_view_and_what_it_could_not_judge(squat_shown):
    at = shown(squat_shown)
    (chart,) = at.get("plotly_chart")
    spec = json.loads(chart.proto.spec)
    assert "Camera view: side" in spec["layout"]["title"]["text"]
    assert "Knees caved in" in spec["layout"]["title"]["text"]
    reps_trace = next(t for t in spec["data"] if t.get("name") == "reps")
    assert all("not judged from the side view: Knees caved in" in h for h in reps_trace["hovertext"])
    assert spec["layout"]["legend"]["y"] < 0  # below the plot: the toolbar (top right) never covers it


# --------------------------------------------------------------------------- item 7: phone layout

def test_portrait_video_is_kept_small_and_landscape_stretches(squat_shown):
    at = shown(squat_shown)
    assert at.get("video")[0].proto.width_config.use_stretch
    rewrite(squat_shown, summary={"width": 360, "height": 640})
    at = shown(squat_shown)
    w = at.get("video")[0].proto.width_config.pixel_width
    assert w == int(PORTRAIT_MAX_HEIGHT_PX * 360 / 640)
    assert w * 640 / 360 <= PORTRAIT_MAX_HEIGHT_PX + 1


def test_exercise_picker_in_the_page_follows_and_drives_the_sidebar(workspace):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=60).run()
    inline = at.selectbox(key=keys.ANALYZE_EXERCISE_INLINE)
    assert inline.value == "squat"
    inline.set_value("pushup").run()
    assert not at.exception
    assert at.selectbox(key=keys.EXERCISE).value == "pushup"
    assert "push-up" in at.button(key=keys.ANALYZE_RUN).label.lower()
    at.selectbox(key=keys.EXERCISE).set_value("auto").run()  # and the other way round
    assert at.selectbox(key=keys.ANALYZE_EXERCISE_INLINE).value == "auto"


# ----------------------------------------------------------------------- item 9 / 14: downloads

def test_downloads_are_read_on_click_and_do_not_rerun_the_page(squat_shown):
    at = shown(squat_shown)
    buttons = {b.proto.label: b.proto for b in at.get("download_button")}
    assert set(buttons) == {"Annotated video (mp4)", "Per-frame data (CSV)", "Reps (JSON)", "Labelled frames (zip)"}
    for label, proto in buttons.items():
        assert proto.ignore_rerun, label  # a click downloads; the page does not rerun under the next click
        assert proto.deferred_file_id and not proto.url, label  # nothing read until clicked
    assert not (squat_shown / "frames.zip").exists() and not (squat_shown / "frames").exists()


def test_labelled_frames_button_without_the_video_is_not_offered(squat_shown):
    (squat_shown / "annotated.mp4").unlink()
    at = shown(squat_shown)
    labels = {b.proto.label for b in at.get("download_button")}
    assert "Labelled frames (zip)" not in labels and "Per-frame data (CSV)" in labels


def test_result_of_a_removed_folder_shows_an_error_not_a_traceback(squat_shown):
    shutil.rmtree(squat_shown)
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state[keys.ANALYZE_RESULT_DIR] = str(squat_shown)
    at.run()
    assert not at.exception and not at.metric


@pytest.mark.parametrize("exercise, expected", [("squat", 60.0), ("jumping_jacks", 165.0)])
def test_summary_average_extreme_is_taken_away_from_rest(exercise, expected):
    # A squat rests high (its "depth" is the lowest knee), jumping jacks rest low (their "peak" is the highest
    # arm): the page labels the figure by the rest side, so the summary must average that same extreme.
    from pose_core.core.session import Session

    session = Session(load_rules()[exercise])
    session.analyzer.reps.extend(RepEvent(index=i, start_s=2.0 * i, end_s=2.0 * i + 1.5, peak_s=2.0 * i + 0.7,
                                          primary_min=m, primary_max=M, verdict="correct")
                                 for i, (m, M) in enumerate([(50.0, 160.0), (70.0, 170.0)], start=1))
    assert session.summary().avg_extreme == pytest.approx(expected)


EVIL_CHECK = "Knees in <img src=x> **BOLD** ![m](javascript) [l](javascript): {value}"


def test_a_rules_files_check_names_stay_plain_text_in_the_advice_table_and_chart(squat_shown, workspace):
    # The not-judged check's name comes from a rules file (its message): shown literally everywhere.
    from test_dashboard_injection import LIVE

    (workspace / "rules.toml").write_text(f'''
[[exercises.squat.rep_checks]]
angle = "knee_width"
stat = "peak_median"
min = 80
views = ["front", "rear"]
message = "{EVIL_CHECK}"
''', encoding="utf-8")
    at = shown(squat_shown)  # squat_1, from the side: the knees' check is not judged, by its name
    texts = [c.value for c in at.caption]
    assert any("Knees in" in t for t in texts), texts
    for t in texts:
        for pattern in LIVE:
            assert not pattern.search(t), (pattern.pattern, t)
        assert "<img" not in t.replace("\\<img", "")
    assert all("Knees in <img src=x> **BOLD**" in c for c in at.dataframe[0].value["not judged (camera view)"])
    spec = json.dumps(json.loads(at.get("plotly_chart")[0].proto.spec))
    assert "Knees in &lt;img src=x&gt;" in spec and "<img" not in spec  # plotly renders some HTML: escaped
