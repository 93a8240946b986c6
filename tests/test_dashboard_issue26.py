"""Issue 26 (dashboard, third pass) with AppTest: one name per upload on every page, wording that follows the
rules data, one-click "Analyze as <exercise>" when the movement looks like another one, an empty file said so,
earlier uploads listed once with readable dates, progress that never goes back, whole reps on the progress
chart, a re-analysed video counted once, the Thresholds page's human names, units, per-rep limits drawn and
the unsaved draft kept, and the Live page without a camera. (Clicks and layout in the real browser:
tests/test_browser_issue26.py.)"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from helpers import SQUAT_CLIP_REPS, install_analysis, wait_for_job

from dashboard import keys
from dashboard.common import progress_text
from pose_core.run import jobs, pipeline
from pose_core.store.history import HistoryStore, SessionRecord
from pose_core.store.outputs import REPS_JSON, SUMMARY_JSON, load_analysis
from pose_core.store.settings import load_settings
from pose_core.store.uploads import store_upload

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")
TIMEOUT = 120
ODD = "[click me](http://example.com) **bold** <b>x</b>.mp4"


@pytest.fixture(autouse=True)
def _webrtc_without_runtime(monkeypatch):
    import streamlit_webrtc.component as component

    monkeypatch.setattr(component, "get_this_session_info", lambda: None)


def app(page: str | None = None, exercise: str | None = None):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if page:
        at.switch_page(f"views/{page}")
    if exercise:
        at.session_state[keys.EXERCISE] = exercise
    return at


def ok(at):
    assert not at.exception, [e.message for e in at.exception]
    return at


def upload_and_start(at, name: str, data: bytes):
    ok(at.run())
    at.file_uploader(key=keys.ANALYZE_UPLOAD).set_value((name, data, "video/mp4"))
    at.run()
    at.button(key=keys.ANALYZE_RUN).click()
    return wait_for_job(at.run(), TIMEOUT)


def fake_pipeline(monkeypatch, src: Path, no_reps_as: str | None = None, looks_like: str = "pushup") -> list:
    """analyze_video replaced by a copy of an analysed squat_1 (named after the upload); with `no_reps_as`,
    analysing as that exercise finds no rep and the movement looks like `looks_like`."""
    calls: list = []

    def fake(video, exercise, out_dir=None, rules=None, **kw):
        calls.append((Path(video).name, exercise))
        shutil.copytree(src, out_dir, dirs_exist_ok=True)
        doc = json.loads((Path(out_dir) / SUMMARY_JSON).read_text())
        doc.update(video=Path(video).name, exercise=exercise)
        if exercise == no_reps_as:
            doc.update(reps=0, reps_correct=0, reps_incorrect=0, looks_like=looks_like, avg_extreme=None,
                       notes=["The movement is too small to be a rep: it moved 12 deg, a rep needs 30 deg.",
                              f"The movement looks more like {looks_like} (80% sure): try analysing it as {looks_like}."])
            reps = json.loads((Path(out_dir) / REPS_JSON).read_text())
            (Path(out_dir) / REPS_JSON).write_text(json.dumps({**reps, "reps": []}))
        (Path(out_dir) / SUMMARY_JSON).write_text(json.dumps(doc))
        a = load_analysis(out_dir)
        return pipeline.AnalysisResult(a.summary, list(a.reps), Path(out_dir))

    monkeypatch.setattr(pipeline, "analyze_video", fake)
    return calls


# ------------------------------------------------------------------------------ item 1: one name

def test_one_upload_has_one_name_on_the_result_in_history_and_in_earlier_uploads(workspace, squat_analysis,
                                                                                 monkeypatch):
    fake_pipeline(monkeypatch, squat_analysis)
    at = ok(upload_and_start(app(), ODD, b"\x00" * 1000))
    # the result's heading: the exercise, then the name as typed, in a plain-text element (never Markdown)
    assert at.subheader[0].value == "Squat" and at.text[0].value == ODD
    markdown = " ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption)
    assert "](http" not in markdown and "**bold**" not in markdown  # nowhere rendered as Markdown
    # History: the table, the session picker and the details show the same name
    hist = ok(app("history.py").run())
    assert hist.dataframe[0].value["name"].tolist() == [ODD]
    assert hist.selectbox(key=keys.HIST_SELECTED).options[0].endswith(f"· Squat · {ODD}")
    assert ODD in [t.value for t in hist.text]
    # "Use an earlier upload": the same name, with a date a person reads
    at.radio(key=keys.ANALYZE_SOURCE).set_value(keys.SOURCE_EARLIER).run()
    (option,) = at.selectbox(key=keys.ANALYZE_EARLIER).options
    assert option.startswith(f"{ODD} · uploaded today ")


def test_earlier_uploads_are_listed_once_each_with_a_readable_date(workspace):
    up = load_settings().ensure_dirs().uploads_dir
    for name, data in (("squat.mp4", b"a" * 50), ("squat.mp4", b"a" * 50), ("pushup.mp4", b"b" * 60)):
        store_upload(data, name, up, 10_000)
        time.sleep(0.01)
    at = ok(app().run())
    at.radio(key=keys.ANALYZE_SOURCE).set_value(keys.SOURCE_EARLIER).run()
    options = at.selectbox(key=keys.ANALYZE_EARLIER).options
    assert [o.split(" · ")[0] for o in options] == ["pushup.mp4", "squat.mp4"]  # the twice-uploaded video once
    assert all(" · uploaded today " in o and "2026" not in o and "20" + time.strftime("%y%m%d") not in o
               for o in options)


# ----------------------------------------------------------------------------------- item 8: wording

def test_no_reps_is_one_box_with_a_one_click_analyze_as_the_exercise_it_looks_like(workspace, squat_analysis,
                                                                                  monkeypatch):
    calls = fake_pipeline(monkeypatch, squat_analysis, no_reps_as="squat", looks_like="pushup")
    at = ok(upload_and_start(app(), "pushups.mp4", b"\x00" * 1000))
    boxes = [b.value for b in list(at.info) + list(at.warning) + list(at.success)]
    assert len(boxes) == 1, boxes  # the notes, the advice and the hint in one box (three before)
    assert "No complete squat rep" in boxes[0] and "too small" in boxes[0] and "looks more like pushup" in boxes[0]
    button = at.button(key=keys.analyze_looks_like("pushup"))
    assert button.label == "Analyze as push-up"
    button.click().run()
    at = ok(wait_for_job(at, TIMEOUT))
    (upload,) = [p.name for p in (workspace / "uploads").iterdir() if not p.name.startswith(".")]
    assert calls == [(upload, "squat"), (upload, "pushup")]  # the same upload, now as a push-up
    assert at.selectbox(key=keys.EXERCISE).value == "pushup"
    assert [m.value for m in at.metric if m.label == "Reps"] == [str(SQUAT_CLIP_REPS)]


def test_an_empty_earlier_upload_is_said_to_be_empty(workspace):
    up = load_settings().ensure_dirs().uploads_dir
    (up / "20260101-000000_empty.mp4").write_bytes(b"")
    at = ok(app().run())
    at.radio(key=keys.ANALYZE_SOURCE).set_value(keys.SOURCE_EARLIER).run()
    at.button(key=keys.ANALYZE_RUN).click().run()
    assert [e.value for e in at.error if "The file is empty (0 bytes)" in e.value]
    assert not list(load_settings().jobs_dir.iterdir())  # nothing was started


@pytest.mark.parametrize("exercise, figure, absent", [
    ("pullup", "Avg top elbow angle", "Avg depth"),
    ("jumping_jacks", "Avg arm raise", "Avg depth"),
    ("squat", "Avg depth", None),
    ("jump_rope", None, "Avg depth"),
])
def test_the_extremes_figure_is_named_by_the_rules(workspace, squat_analysis, exercise, figure, absent):
    adir = install_analysis(squat_analysis, workspace)
    doc = json.loads((adir / SUMMARY_JSON).read_text())
    doc.update(exercise=exercise, partial_reps=1)
    (adir / SUMMARY_JSON).write_text(json.dumps(doc))
    at = app(exercise=exercise)
    at.session_state[keys.ANALYZE_RESULT_DIR] = str(adir)
    ok(at.run())
    labels = [m.label for m in at.metric]
    if figure:
        assert figure in labels, labels
    if absent:
        assert absent not in labels and not any(lab.startswith("Avg ") and lab != "Avg rep time" and lab != figure
                                                for lab in labels), labels
    said = " ".join(c.value for c in at.caption)
    assert "1 partial rep cut off at the start or end was not counted" in said and "rep(s)" not in said
    assert "jackss" not in said and "jacks**s" not in said


def test_progress_text_never_goes_back():
    def texts(states, exercise):
        return [progress_text(jobs.JobStatus(id="x", state=jobs.RUNNING, exercise=exercise, stage=st, done=d, total=t))
                for st, d, t in states]

    auto = texts([("", 0, 0), ("recognising", 0, 0), ("recognising", 40, 300), ("analysing", 0, 0),
                  ("analysing", 12, 300)], "auto")
    assert auto == ["Starting the analysis...", "Recognising the exercise...", "Recognising the exercise: frame 40 of 300...",
                    "Recognised; analysing...", "Recognised; analysing frame 12 of 300..."]
    assert texts([("", 0, 0), ("analysing", 0, 0), ("analysing", 5, 10)], "squat") == [
        "Starting the analysis...", "Analysing...", "Analysing frame 5 of 10..."]


def _history_with_reps(workspace, counts):
    store = HistoryStore(workspace / "history.sqlite3")
    from pose_core.core.types import RepEvent

    for day, n in enumerate(counts, start=1):
        reps = tuple(RepEvent(i + 1, 2.0 * i, 2.0 * i + 1.6, 2.0 * i + 0.8, 90.0, 176.0, "correct") for i in range(n))
        store.add(SessionRecord(exercise="squat", name=f"s{day}.mp4", reps=reps, extra={"rest": "high"},
                                created_at=f"2026-01-0{day}T09:00:00+00:00"))
    return store


def test_reps_per_session_has_whole_number_ticks(workspace):
    _history_with_reps(workspace, [1, 2, 1])
    at = ok(app("history.py").run())
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert spec["layout"]["yaxis"]["dtick"] == 1 and spec["layout"]["yaxis"]["tick0"] == 0
    assert [a["text"] for a in spec["layout"]["annotations"]][2] == "Avg depth (knee, °)"


def test_a_reanalysed_video_counts_once_in_the_histogram_of_your_videos(workspace, squat_analysis):
    first = install_analysis(squat_analysis, workspace)
    again = workspace / "analyses" / (squat_analysis.name + "-2")
    shutil.copytree(first, again)  # the same upload analysed a second time
    at = ok(app("thresholds.py", exercise="squat").run())
    frames = len(load_analysis(first).frames)
    (said,) = [c.value for c in at.caption if "of yours" in c.value]
    assert "from 1 video of yours" in said
    n = int(said.split("Below: ")[1].split(" frames")[0]) if "Below: " in said else int(said.split(" frames")[0])
    assert 0 < n <= frames  # the frames of one video, not two


# ------------------------------------------------------------------------ item 5: thresholds

def test_thresholds_names_units_per_rep_limits_and_a_draft_that_outlasts_pages_and_reloads(workspace):
    at = ok(app("thresholds.py", exercise="squat").run())
    depth = at.slider(key=keys.thr_frame_check("squat", 0))
    assert depth.label == "Go deeper (knee, bottom phase)" and depth.proto.format == "%.0f°"
    rep_depth = at.slider(key=keys.thr_rep_check("squat", 0))
    assert rep_depth.label.startswith("Not deep enough (lowest knee in a rep")
    assert at.selectbox(key=keys.THR_ANGLE).options[0] == "Knee (counts the reps)"
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    dashed = [s for s in spec["layout"]["shapes"] if s.get("line", {}).get("dash") == "dash"]
    assert [(s["x0"], s["label"]["text"]) for s in dashed] == [(100.0, "rep ≤ 100°"), (150.0, "rep ≥ 150°")]
    assert not [w for w in at.warning if "Unsaved" in w.value]
    # a change: the banner says so, the draft is in the address
    depth.set_value((0.0, 90.0)).run()
    assert [w for w in at.warning if "Unsaved changes" in w.value and "reload keeps them" in w.value]
    assert at.query_params[keys.QUERY_DRAFT] == ["squat:f0=0_90"]
    # another angle: its own slider, the knee's change still counted
    at.selectbox(key=keys.THR_ANGLE).set_value("torso_lean").run()
    at.slider(key=keys.thr_rep_check("squat", 2)).set_value((0.0, 50.0)).run()
    assert any("2 ranges" in w.value for w in at.warning)
    # another page and back: the sliders still show the draft
    at.switch_page("views/history.py").run()
    at.switch_page("views/thresholds.py").run()
    at.selectbox(key=keys.THR_ANGLE).set_value("knee").run()
    assert at.slider(key=keys.thr_frame_check("squat", 0)).value == (0.0, 90.0)
    # a reload (a new session with the address): the draft comes back from it
    fresh = app("thresholds.py", exercise="squat")
    fresh.query_params[keys.QUERY_DRAFT] = "squat:f0=0_90,r2=0_50,x9=1_2,r99=0_1"  # (nonsense is ignored)
    ok(fresh.run())
    assert fresh.slider(key=keys.thr_frame_check("squat", 0)).value == (0.0, 90.0)
    assert any("2 ranges" in w.value for w in fresh.warning)
    # discard: back to the rules, no banner, nothing in the address
    fresh.button(key=keys.THR_DISCARD).click().run()
    assert fresh.slider(key=keys.thr_frame_check("squat", 0)).value == (0.0, 100.0)
    assert not [w for w in fresh.warning if "Unsaved" in w.value] and keys.QUERY_DRAFT not in fresh.query_params


def test_thresholds_never_show_internal_angle_names(workspace):
    at = ok(app("thresholds.py", exercise="pushup").run())
    at.selectbox(key=keys.THR_ANGLE).set_value("hip_sag").run()
    sag = at.slider(key=keys.thr_frame_check("pushup", 1))
    assert sag.label == "Hips sagging or piking (hip sag, every frame)" and sag.proto.format == "%.0f%% body"
    shown = [s.label for s in at.slider] + list(at.selectbox(key=keys.THR_ANGLE).options)
    shown += [c.value for c in at.caption] + [m.value for m in at.markdown]
    for internal in ("hip_sag", "body_line", "shoulder_height", "when always"):
        assert not [t for t in shown if internal in t], internal
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert spec["layout"]["xaxis2" if "xaxis2" in spec["layout"] else "xaxis"]["title"]["text"] == "Hip sag (% body)"


# ------------------------------------------------------------------------------- item 6: live

def test_live_without_a_camera_says_so_plainly_and_offers_the_picker(workspace, monkeypatch):
    import dashboard.camera_check as cc

    monkeypatch.setattr(cc, "camera_state", lambda key: "none")
    at = ok(app("live.py").run())
    assert any("No camera found on this device" in i.value for i in at.info)
    assert not [e for e in at.get("bidi_component") if "webrtc" in str(e)] and not at.button  # no START, no reset
    assert at.selectbox(key=keys.LIVE_EXERCISE_INLINE).value == "squat"  # the picker, for phones
    monkeypatch.setattr(cc, "camera_state", lambda key: "ok")
    at = ok(app("live.py").run())
    assert not any("No camera" in i.value for i in at.info)


# ------------------------------------------------------------------- item 7 and the report, in History

def test_history_keeps_a_portrait_video_small_and_offers_the_report(workspace, squat_analysis):
    adir = install_analysis(squat_analysis, workspace)
    doc = json.loads((adir / SUMMARY_JSON).read_text())
    doc.update(width=360, height=640)
    (adir / SUMMARY_JSON).write_text(json.dumps(doc))
    a = load_analysis(adir)
    HistoryStore(workspace / "history.sqlite3").add(SessionRecord(
        exercise="squat", name="portrait.mp4", reps=a.reps, analysis_dir=str(adir), extra={"rest": "high"}))
    at = ok(app("history.py").run())
    (video,) = at.get("video")
    assert video.proto.width_config.pixel_width == int(460 * 360 / 640)
    assert [b.proto.label for b in at.get("download_button")] == ["Report (HTML)"]
    # the rep table is the Analyze page's, with the same rep times
    reps = at.dataframe[-1].value
    assert list(reps["rep time (s)"]) == [round(r.duration_s, 2) for r in a.reps]
    assert "lifting (s)" in reps.columns


def test_the_reasons_are_listed_in_full_under_the_rep_table(workspace, squat_analysis):
    """Item 7: on a phone the table's last columns are off-screen; the reasons are also written out in full."""
    adir = install_analysis(squat_analysis, workspace)
    doc = json.loads((adir / REPS_JSON).read_text())
    doc["reps"][1].update(verdict="incorrect", reasons=["Not deep enough: knees reached 128 deg, aim for 100 deg or less"])
    (adir / REPS_JSON).write_text(json.dumps(doc))
    at = app()
    at.session_state[keys.ANALYZE_RESULT_DIR] = str(adir)
    ok(at.run())
    (fix,) = [m.value for m in at.markdown if m.value.startswith("**What to fix**")]
    assert "Rep 2: Not deep enough" in fix.replace("\\", "") and "Rep 1" not in fix


def test_analyze_and_history_show_the_same_rep_time_and_velocity_loss(workspace, squat_analysis):
    """Item 3 and the set's fatigue: one definition, one rounding, the same numbers on both pages."""
    adir = install_analysis(squat_analysis, workspace)
    a = load_analysis(adir)
    HistoryStore(workspace / "history.sqlite3").add(SessionRecord(
        exercise="squat", name="squat_1.mp4", reps=a.reps, analysis_dir=str(adir), extra={"rest": "high"}))
    page = app()
    page.session_state[keys.ANALYZE_RESULT_DIR] = str(adir)
    ok(page.run())
    figures = {m.label: m.value for m in page.metric}
    hist = ok(app("history.py").run())
    mine = hist.dataframe[1].value.set_index("")  # "This session"
    column = mine.columns[0]
    assert mine.loc["rep time", column] == figures["Avg rep time"]
    assert mine.loc["velocity loss", column] == figures["Velocity loss"]
    assert mine.loc["depth", column] == figures["Avg depth"]
