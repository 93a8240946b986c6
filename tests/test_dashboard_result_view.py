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

def test_rep_table_has_rep_time_lifting_range_depth_verdict_reasons_and_not_judged(squat_shown):
    at = shown(squat_shown)
    (table,) = at.dataframe
    df = table.value
    assert len(df) == SQUAT_CLIP_REPS
    assert list(df.columns) == ["rep", "verdict", "depth", "rep time (s)", "lowering (s)", "lifting (s)",
                                "range of motion (°)", "reasons", "not judged (camera view)", "start (s)"]
    reps = load_analysis(squat_shown).reps
    # Issue 26 item 3: rep time is the movement, rest to rest (pauses between reps not included), the same
    # number History shows; its two halves add up to it, and a squat lifts from the bottom.
    assert list(df["rep time (s)"]) == [round(r.duration_s, 2) for r in reps]
    assert df["lifting (s)"][0] == round(reps[0].up_s, 2) and df["lowering (s)"][0] == round(reps[0].down_s, 2)
    assert df["range of motion (°)"][0].startswith(f"{reps[0].range_of_motion:.0f} (")
    assert all("(target ≤ 100°)" in d for d in df["depth"])  # depth against the target (side view: judged)
    assert set(df["verdict"]) <= {"correct", "incorrect"}
    # every column is wide enough for its header and values (st.dataframe's defaults clipped "start (s)")
    widths = {k: v["width"] for k, v in json.loads(table.proto.columns).items() if "width" in v}
    for col in df.columns:
        assert widths[col] >= 6.5 * max(len(col), *(len(str(v)) for v in df[col])), (col, widths[col])
    # squat_1 is filmed from the side: the knees-caving check (front/rear only) is named as not judged
    assert all(c == "side view: Knees caved in" for c in df["not judged (camera view)"])
    assert any("Select a rep" in c.value for c in at.caption)


def test_a_result_just_finished_sends_the_rep_table_before_the_video_and_the_rest(squat_shown, monkeypatch):
    """Issue 24: a job watched to its end (the page's progress saw it finish) sends the summary and the rep
    table, pauses FRESH_TABLE_LEAD_S so the browser draws them, then the video, timeline and the rest; later
    runs of the same result (a click on it, a reload) do not pause."""
    from types import SimpleNamespace

    from streamlit.testing.v1 import AppTest

    import dashboard.result_view as rv
    from dashboard.common import FRESH_TABLE_LEAD_S

    order = []
    real_table, real_video = rv._rep_table, rv._video
    monkeypatch.setattr(rv, "_rep_table", lambda *a, **k: (order.append("table"), real_table(*a, **k))[1])
    monkeypatch.setattr(rv, "_video", lambda *a, **k: (order.append("video"), real_video(*a, **k))[1])
    monkeypatch.setattr(rv, "time", SimpleNamespace(sleep=lambda s: order.append(("pause", s))))
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state[keys.ANALYZE_RESULT_DIR] = str(squat_shown)
    at.session_state[keys.ANALYZE_FRESH] = True  # (what the progress sets when it sees the job finish)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert order == ["table", ("pause", FRESH_TABLE_LEAD_S), "video"] and FRESH_TABLE_LEAD_S > 0
    assert at.dataframe and at.metric  # everything is still there
    order.clear()
    at.run()
    assert order == ["table", "video"]
    # A job that ended without a result (failed, nobody in it) leaves nothing behind for a later result.
    other = AppTest.from_file(APP, default_timeout=120)
    other.session_state[keys.ANALYZE_FRESH] = True
    other.run()
    assert keys.ANALYZE_FRESH not in other.session_state


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


def test_a_click_near_a_rep_plays_it_and_a_second_click_on_it_replays_it(monkeypatch):
    """Item 2: what the timeline's and the table's selection callbacks do. A click on the curve inside a rep
    (or near it) is that rep; a second click on the same marker or row unselects it (the selection comes back
    empty): the same rep plays again, from its start, as a new click (a new element: it plays)."""
    from types import SimpleNamespace

    import dashboard.result_view as rv

    reps = [RepEvent(index=i + 1, start_s=s, end_s=s + 2, peak_s=s + 1, primary_min=60, primary_max=170,
                     verdict="correct") for i, s in enumerate((2.0, 5.0, 9.0))]
    state: dict = {}
    monkeypatch.setattr(rv.st, "session_state", state)

    def click_timeline(points):
        state[keys.ANALYZE_TIMELINE] = SimpleNamespace(selection=SimpleNamespace(points=points))
        rv._on_timeline_select("/a", reps)
        return state[keys.ANALYZE_SEEK]

    assert click_timeline([{"x": 6.2, "y": 120.0, "curve_number": 0}]) == ("/a", 4, 1)  # the curve, inside rep 2
    assert click_timeline([{"x": 10.0, "y": 60.0, "curve_number": 2}]) == ("/a", 8, 2)  # rep 3's marker
    assert click_timeline([]) == ("/a", 8, 3)  # rep 3 clicked again: unselected -> played again
    state[keys.ANALYZE_REP_TABLE] = SimpleNamespace(selection=SimpleNamespace(rows=[0]))
    rv._on_table_select("/a", reps)
    assert state[keys.ANALYZE_SEEK] == ("/a", 1, 4)
    state[keys.ANALYZE_REP_TABLE] = SimpleNamespace(selection=SimpleNamespace(rows=[]))  # the same row again
    rv._on_table_select("/a", reps)
    assert state[keys.ANALYZE_SEEK] == ("/a", 1, 5)
    state[keys.ANALYZE_TIMELINE_REP] = ("/another", 2)  # a rep of another analysis is never replayed here
    click_timeline([])
    assert state[keys.ANALYZE_SEEK] == ("/a", 1, 5)


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
    a = load_analysis(squat_shown)
    # one definition of rep time (the movement), the same as History's (SessionRecord.avg_rep_s)
    mean_duration = sum(r.duration_s for r in a.reps) / len(a.reps)
    assert m["Avg rep time"] == f"{mean_duration:.1f} s"
    from pose_core.store.history import record_from_analysis
    assert f"{record_from_analysis(a.summary, list(a.reps)).avg_rep_s:.1f} s" == m["Avg rep time"]
    assert m["Avg depth"].endswith("°")  # a squat's extreme is its depth (the rules' extreme_name)
    assert m["Velocity loss"].endswith("%")  # 3 reps: the set's slowdown
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
    (hint,) = [i.value for i in at.info if "No complete" in i.value]  # one box: why, and what to do
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
    # Issue 26 item 4: no title inside the chart (it ran under the toolbar) and no x-axis title (it overlapped
    # the legend): the view is said above the chart, the seconds are on the ticks.
    assert not spec["layout"].get("title", {}).get("text")
    assert not spec["layout"]["xaxis"].get("title", {}).get("text") and spec["layout"]["xaxis"]["ticksuffix"] == " s"
    assert any("Camera view: side" in c.value.replace("\\", "") and "Knees caved in" in c.value for c in at.caption)
    reps_trace = next(t for t in spec["data"] if t.get("name", "").startswith("reps"))
    assert all("not judged from the side view: Knees caved in" in h for h in reps_trace["hovertext"])
    assert spec["layout"]["legend"]["y"] < 0  # below the plot: the toolbar (top right) never covers it
    # Item 2: the rep markers are drawn last (on top), large, and the curve's clicks select too (they are
    # mapped to the rep they fall in), without showing markers of their own
    assert spec["data"][-1] is reps_trace and reps_trace["marker"]["size"] >= 16
    line, curve = spec["data"][0], spec["data"][1]
    assert line["mode"] == "lines" and line["hoverinfo"] == "skip"  # the drawn curve takes no clicks itself...
    assert curve["mode"] == "markers" and curve["marker"]["opacity"] == 0 and curve["showlegend"] is False
    assert 0 < len(curve["x"]) <= 600  # ...its invisible, thinned markers do (and show the frame on hover)
    assert spec["layout"]["yaxis"]["title"]["text"].startswith("Knee (")  # the angle's name, not "knee"


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
    assert set(buttons) == {"Report (HTML)", "Annotated video (mp4)", "Per-frame data (CSV)", "Reps (JSON)",
                            "Labelled frames (zip)"}
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
