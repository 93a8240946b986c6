"""Every dashboard page driven with Streamlit's AppTest (no browser): widgets set, results asserted.
(The settings the pages rely on are tested in test_settings.py.)"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from helpers import (SQUAT_CLIP, SQUAT_CLIP_REPS, FakeEstimator, install_analysis, needs_penn, needs_videos,
                     wait_for_job)

from dashboard import keys
from dashboard.common import AUTO, LOW_CONFIDENCE, plain
from pose_core.store.history import HistoryStore, SessionRecord
from pose_core.run.live import LiveSession
from pose_core.core.rules import load_rules
from pose_core.store.settings import load_settings
from pose_core.store.tuning import backup_path

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")
TIMEOUT = 120


@pytest.fixture(autouse=True)
def _webrtc_without_runtime(monkeypatch):
    """streamlit-webrtc looks up the live server's session (absent under AppTest); it handles None."""
    import streamlit_webrtc.component as component

    monkeypatch.setattr(component, "get_this_session_info", lambda: None)


def app(page: str | None = None):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if page:
        at.switch_page(f"views/{page}")
    return at


def metric(at, label: str) -> str:
    found = [m.value for m in at.metric if m.label == label]
    assert found, f"no metric {label!r}; have {[m.label for m in at.metric]}"
    return found[0]


def no_failure(at) -> None:
    assert not at.exception, [e.message for e in at.exception]


# ------------------------------------------------------------------------------------------ shell

def test_no_legacy_pages_folder():
    # A dashboard/pages/ folder makes Streamlit start in legacy multipage mode: a first visit to /live
    # would run that page alone, without the sidebar. Page scripts belong in dashboard/views/.
    assert not (Path(APP).parent / "pages").exists(), "move page scripts to dashboard/views/ (see dashboard/app.py)"


def test_shell_sidebar_and_default_page(workspace):
    at = app().run()
    no_failure(at)
    assert at.title[0].value == "Analyze a workout video"
    ex = at.selectbox(key=keys.EXERCISE)
    assert ex.value == "squat"
    ex.set_value("pushup").run()
    no_failure(at)
    assert "push-up" in at.button(key=keys.ANALYZE_RUN).label.lower()
    assert any("built-in defaults" in c.value for c in at.sidebar.caption)


# ---------------------------------------------------------------------------------------- analyze

def _upload(at, name: str, data: bytes, mime: str = "video/mp4"):
    at.file_uploader(key=keys.ANALYZE_UPLOAD).set_value((name, data, mime))
    at.run()
    at.button(key=keys.ANALYZE_RUN).click()
    at.run(timeout=TIMEOUT)
    return wait_for_job(at, TIMEOUT)  # (the analysis runs as a job in the background)


@needs_videos
def test_analyze_upload_shows_counted_reps_chart_video_and_downloads(workspace):
    at = _upload(app().run(), "squat_1.mp4", SQUAT_CLIP.read_bytes())
    at = wait_for_job(at, TIMEOUT, video=True)  # (the annotated video and its download come after the result)
    no_failure(at)
    assert not at.error, [e.value for e in at.error]
    assert metric(at, "Reps") == str(SQUAT_CLIP_REPS)
    assert metric(at, "Correct reps").endswith(f"of {SQUAT_CLIP_REPS}")
    assert metric(at, "Camera view") == "side"
    assert any("Per frame:" in c.value.replace("\\", "") and "%" in c.value for c in at.caption)
    assert len(at.get("plotly_chart")) == 1
    assert len(at.get("video")) == 1
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == SQUAT_CLIP_REPS
    assert {b.key for b in at.get("download_button")} >= {keys.ANALYZE_DL_VIDEO, keys.ANALYZE_DL_FRAMES, keys.ANALYZE_DL_REPS}
    # Stored: the upload (sanitized name), the analysis folder and a history session.
    home = workspace
    assert [p.name.split("_", 1)[1] for p in (home / "uploads").iterdir() if not p.name.startswith(".")] \
        == ["squat_1.mp4"]
    (adir,) = list((home / "analyses").iterdir())
    assert (adir / "annotated.mp4").stat().st_size > 0
    sessions = HistoryStore(home / "history.sqlite3").list_sessions()
    assert [(s.exercise, s.rep_count, s.source) for s in sessions] == [("squat", SQUAT_CLIP_REPS, "video")]
    # Secondary angles on demand.
    at.multiselect(key=keys.ANALYZE_EXTRA_ANGLES).set_value(["hip"]).run()
    no_failure(at)
    # The earlier upload can be picked again.
    at.radio(key=keys.ANALYZE_SOURCE).set_value(keys.SOURCE_EARLIER).run()
    assert at.selectbox(key=keys.ANALYZE_EARLIER).value.endswith("squat_1.mp4")


@needs_videos
def test_analyze_with_a_locked_history_keeps_the_session(workspace):
    import sqlite3

    HistoryStore(workspace / "history.sqlite3").count()  # create the database
    blocker = sqlite3.connect(workspace / "history.sqlite3", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        at = _upload(app().run(), "squat_1.mp4", SQUAT_CLIP.read_bytes())
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    no_failure(at)
    assert metric(at, "Reps") == str(SQUAT_CLIP_REPS)  # the result is shown anyway
    assert at.warning and "busy" in at.warning[0].value and "kept in" in at.warning[0].value
    store = HistoryStore(workspace / "history.sqlite3")
    assert len(store.pending()) == 1
    at = app("history.py").run()  # the next visit to History imports it
    no_failure(at)
    assert store.count() == 1 and store.pending() == []


def _no_person_video(path: Path) -> bytes:
    from pose_core.media.writer import H264Writer

    with H264Writer(path, 160, 120, 10) as w:
        for i in range(10):
            w.write(i / 10, np.full((120, 160, 3), 40 + 10 * i, np.uint8))
    return path.read_bytes()


# A wrong extension (notes.txt) never reaches the page: the browser's picker and Streamlit's own server
# check refuse it (see test_store_upload_checks_size_and_type for our own check).
@pytest.mark.parametrize("case", ["not_a_video", "corrupt", "nobody", "too_big", "empty"])
def test_analyze_bad_input_gives_a_clear_message(workspace, monkeypatch, tmp_path, case):
    if case == "too_big":
        monkeypatch.setenv("GYMPOSE_MAX_UPLOAD_MB", "0.01")
    name, data = {
        "not_a_video": ("clip.mp4", b"just some text, not a video\n" * 50),
        "corrupt": ("clip.mp4", b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20),
        "nobody": ("empty_room.mp4", None),
        "too_big": ("clip.mp4", b"\x00" * 20_000),
        "empty": ("clip.mp4", b""),
    }[case]
    if data is None:
        data = _no_person_video(tmp_path / "nobody.mp4")
    at = _upload(app().run(), name, data)
    no_failure(at)
    assert len(at.error) == 1
    text = at.error[0].value.lower()
    expected = {"not_a_video": "not a video", "corrupt": "not a video", "nobody": "nobody was found",
                "too_big": "too large", "empty": "the file is empty"}[case]
    assert expected in text
    assert "traceback" not in text
    assert not at.metric  # no result shown
    assert not list((workspace / "uploads").glob("*")) if case != "nobody" else True
    # The app keeps working: the page renders again.
    at.run()
    no_failure(at)
    assert at.title[0].value == "Analyze a workout video"


# ------------------------------------------------------------------------------- analyze: auto

def auto_app(page: str | None = None):
    at = app(page)
    at.session_state[keys.EXERCISE] = AUTO
    return at


@needs_videos
def test_analyze_auto_recognises_the_exercise_and_counts_with_its_rule(workspace):
    at = auto_app().run()
    no_failure(at)
    assert at.selectbox(key=keys.EXERCISE).value == AUTO
    assert "recognise" in at.button(key=keys.ANALYZE_RUN).label.lower()
    at = _upload(at, "squat_1.mp4", SQUAT_CLIP.read_bytes())
    no_failure(at)
    assert not at.error, [e.value for e in at.error]
    assert metric(at, "Reps") == str(SQUAT_CLIP_REPS)
    assert at.subheader[0].value == "Squat" and at.text[0].value == "squat_1.mp4"  # exercise, then the file
    (adir,) = list((workspace / "analyses").iterdir())
    summary = json.loads((adir / "summary.json").read_text())
    assert summary["exercise"] == "squat" and summary["exercise_auto"] is True
    # The recognised exercise and its confidence, said plainly; below 70% with a "low confidence" warning
    # (this clip ends with the person walking off, which pulls the confidence down to about 70%).
    conf = summary["exercise_confidence"]
    shown = [e.value for e in (at.warning if conf < LOW_CONFIDENCE else at.success)]
    assert len(shown) == 1 and shown[0].startswith(f"Recognised: **Squat** ({conf:.0%} sure)"), shown
    assert ("Low confidence" in shown[0]) == (conf < LOW_CONFIDENCE)
    assert "Other candidates: " in shown[0]
    (rec,) = HistoryStore(workspace / "history.sqlite3").list_sessions()
    assert rec.exercise == "squat" and rec.rep_count == SQUAT_CLIP_REPS
    assert rec.extra["exercise_auto"] is True and rec.extra["exercise_confidence"] == conf
    assert at.selectbox(key=keys.EXERCISE).value == AUTO  # the sidebar stays on Auto


def test_analyze_auto_on_a_clip_with_nobody_cannot_tell(workspace, tmp_path):
    from media import write_video

    data = write_video(tmp_path / "empty_room.mp4", frames=45).read_bytes()
    at = _upload(auto_app().run(), "empty_room.mp4", data)
    no_failure(at)
    assert not at.error and len(at.warning) == 1
    text = at.warning[0].value
    assert "cannot tell which exercise" in text and "no person" in text and "whole body" in text
    assert "traceback" not in text.lower()
    assert not at.metric and not list((workspace / "analyses").glob("*"))
    assert not list((workspace / "uploads").glob("*"))
    assert HistoryStore(workspace / "history.sqlite3").count() == 0


def test_analyze_auto_low_confidence_offers_the_candidates(workspace, monkeypatch):
    """Cannot tell with candidates: the reason and the candidates are shown, and one click analyses the clip as
    the chosen candidate (the sidebar switches to it)."""
    import pose_core.run.pipeline as pipeline
    from pose_core.recognition import Recognition

    calls = []

    def fake_analyze(video, exercise, **kw):
        calls.append(exercise)
        if exercise == "auto":
            rec = Recognition(None, 0.45, (("situp", 0.45), ("pushup", 0.4), ("squat", 0.1)),
                              "low confidence: the best candidate situp has 45% (threshold 50%)", 90, 90, 5)
            raise pipeline.CannotTellError("cannot tell", rec, {"situp": 0, "pushup": 6, "squat": 0})
        raise pipeline.NoPersonError("stop here")

    monkeypatch.setattr(pipeline, "analyze_video", fake_analyze)
    at = _upload(auto_app().run(), "clip.mp4", b"\x00" * 100)
    no_failure(at)
    text = at.warning[0].value
    assert "cannot tell which exercise" in text and "low confidence" in text
    assert "Sit-up 45%, Push-up 40%, Squat 10%" in text and "Pick the exercise" in text
    assert "0 sit-up reps, 6 push-up reps, 0 squat reps" in text  # what counting says about each candidate
    picks = [b for b in at.button if b.key and b.key.startswith("analyze.pick.")]
    assert [b.label for b in picks] == ["Analyze as sit-up", "Analyze as push-up", "Analyze as squat"]
    at.button(key=keys.analyze_pick("pushup")).click().run()
    wait_for_job(at)
    no_failure(at)
    assert calls == ["auto", "pushup"]  # analysed again at once, as a push-up
    assert at.selectbox(key=keys.EXERCISE).value == "pushup"


def test_analyze_auto_not_one_of_the_exercises_is_said_as_such(workspace, monkeypatch):
    """"Not one of these" is its own answer on the page (not "cannot tell"), still with the candidates."""
    import pose_core.run.pipeline as pipeline
    from pose_core.recognition import Recognition

    def fake_analyze(video, exercise, **kw):
        rec = Recognition(None, 0.6, (("pullup", 0.6), ("squat", 0.3)), "nothing moves: the body holds still",
                          90, 90, 5, "none_of_these")
        raise pipeline.CannotTellError("not one of the exercises", rec, {"pullup": 0, "squat": 0})

    monkeypatch.setattr(pipeline, "analyze_video", fake_analyze)
    at = _upload(auto_app().run(), "clip.mp4", b"\x00" * 100)
    no_failure(at)
    text = at.warning[0].value
    assert "does not look like one of the exercises" in text and "cannot tell" not in text
    assert "nothing moves" in text and "Pull-up 60%" in text


@needs_videos
def test_analyze_auto_result_with_low_confidence_says_so(workspace, squat_analysis):  # noqa: F811
    adir = install_analysis(squat_analysis, workspace)
    summary = json.loads((adir / "summary.json").read_text())
    summary.update(exercise_auto=True, exercise_confidence=0.58,
                   exercise_candidates=[["squat", 0.58], ["clean_and_jerk", 0.3], ["situp", 0.05]])
    (adir / "summary.json").write_text(json.dumps(summary))
    at = auto_app()
    at.session_state[keys.ANALYZE_RESULT_DIR] = str(adir)
    at.run()
    no_failure(at)
    text = at.warning[0].value
    assert "Recognised: **Squat** (58% sure)" in text and "Low confidence" in text
    assert "Clean and jerk 30%, Sit-up 5%" in text
    assert metric(at, "Reps") == str(SQUAT_CLIP_REPS)


def test_auto_on_every_page(workspace, monkeypatch, tmp_path):
    monkeypatch.setenv("GYMPOSE_SHARED_DATA", str(tmp_path / "no_shared_data"))
    for page in ("analyze.py", "live.py", "thresholds.py", "history.py", "dataset.py"):
        at = auto_app(page)
        at.session_state[keys.EXERCISE_LAST] = "pushup"
        at.run()
        no_failure(at)
        assert not at.error, (page, [e.value for e in at.error])
        if page == "thresholds.py":  # thresholds need one exercise: the last one picked, said plainly
            assert any("set to **Auto**" in i.value and "Push-up" in i.value for i in at.info)
            assert at.title[0].value == "Tune thresholds" and at.slider(key=keys.thr_frame_check("pushup", 0))


# ----------------------------------------------------------------------------------------- live

def test_live_page_renders_its_controls(workspace):
    at = app("live.py").run()
    no_failure(at)
    assert at.title[0].value == "Live coaching"
    reset = at.button(key=keys.LIVE_RESET)
    assert reset.label == "Reset count" and not reset.disabled
    assert metric(at, "Reps") == "0"
    assert any("Frames processed: 0" in c.value for c in at.caption)
    assert not [b for b in at.button if b.key == keys.LIVE_SAVE]  # nothing to save yet


def test_live_session_is_shown_reset_and_saved(workspace):
    rules = load_rules()
    fake = FakeEstimator(reps=2)
    session = LiveSession(rules["squat"], rules.defaults, estimator_factory=lambda: fake)
    for i in range(int(6 * 30)):
        session.process_frame(np.zeros((480, 640, 3), np.uint8), i / 30)
    at = app("live.py")
    at.session_state[keys.LIVE_SESSION] = session
    at.run()
    no_failure(at)
    assert metric(at, "Reps") == "2"
    assert any("Frames processed: 180" in c.value for c in at.caption)
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == 2  # the rep log
    at.button(key=keys.LIVE_SAVE).click().run()
    no_failure(at)
    assert at.success and "History" in at.success[0].value
    (rec,) = HistoryStore(workspace / "history.sqlite3").list_sessions()
    assert rec.source == "live" and rec.rep_count == 2
    at.run()
    assert not [b for b in at.button if b.key == keys.LIVE_SAVE]  # saved once only
    at.button(key=keys.LIVE_RESET).click().run()
    assert metric(at, "Reps") == "0"


def test_live_after_stop_and_save_says_saved_and_offers_no_second_save(workspace):
    # Issue 13 item 12: after Stop and Save the button stayed next to "Saved as session #1", and the rep log
    # once showed its heading alone although reps were counted.
    rules = load_rules()
    session = LiveSession(rules["squat"], rules.defaults, estimator_factory=lambda: FakeEstimator(reps=4))
    for i in range(int(10 * 30)):
        session.process_frame(np.zeros((480, 640, 3), np.uint8), i / 30)
    assert session.snapshot().rep_count == 4
    at = app("live.py")
    at.session_state[keys.LIVE_SESSION] = session
    at.run()
    assert any(m.value.startswith("#### Rep log · 4 reps") for m in at.markdown)
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == 4
    at.button(key=keys.LIVE_SAVE).click().run()
    no_failure(at)
    store = HistoryStore(workspace / "history.sqlite3")
    (rec,) = store.list_sessions()
    # A frame still in flight when STOP was pressed, then the reruns the camera component triggers after STOP:
    session.process_frame(np.zeros((480, 640, 3), np.uint8), 10.0)
    for _ in range(3):
        assert not [b for b in at.button if b.key == keys.LIVE_SAVE]
        assert [s.value for s in at.success] == [f"Saved as session #{rec.id}: see the History page."]
        assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == 4
        at.run()
        no_failure(at)
    assert store.count() == 1  # saved once


def test_live_page_auto_mode_controls_override_and_recognise_again(workspace):
    at = auto_app("live.py").run()
    no_failure(at)
    session = at.session_state[keys.LIVE_SESSION]
    assert session.auto
    assert any("Recognising the exercise" in i.value for i in at.info)
    again = at.button(key=keys.LIVE_RECOGNISE_AGAIN)
    assert again.label == "Recognise again" and not again.disabled
    pick = at.pills(key=keys.LIVE_OVERRIDE)  # one tap per exercise, not a drop-down
    assert pick.value is None and set(pick.options) >= {"Squat", "Push-up", "Sit-up"} and len(pick.options) == 8
    assert metric(at, "Reps") == "0" and metric(at, "Angle") == "–"
    pick.set_value("pushup").run()  # the user's choice: counted as push-ups at once
    no_failure(at)
    snap = session.snapshot()
    assert snap.exercise == "pushup" and snap.auto.source == "user"
    assert any("Counting **Push-up** (your choice)" in s.value for s in at.success)
    assert at.pills(key=keys.LIVE_OVERRIDE).value is None  # ready for another correction
    at.button(key=keys.LIVE_RECOGNISE_AGAIN).click().run()
    no_failure(at)
    assert session.snapshot().auto.recognising and not session.snapshot().counting
    assert any("Recognising the exercise" in i.value for i in at.info)
    # Back to a concrete exercise in the sidebar: manual mode, no auto controls.
    at.selectbox(key=keys.EXERCISE).set_value("squat").run()
    no_failure(at)
    assert not session.auto and session.snapshot().exercise == "squat"
    assert not [b for b in at.button if b.key == keys.LIVE_RECOGNISE_AGAIN]


def test_live_auto_session_that_recognised_nothing_cannot_be_saved(workspace):
    rules = load_rules()
    session = LiveSession(rules["squat"], rules.defaults, estimator_factory=lambda: FakeEstimator(reps=2))
    session.set_auto(rules.exercises, rules.defaults)
    for i in range(30):
        session.process_frame(np.zeros((480, 640, 3), np.uint8), i / 30)
    at = auto_app("live.py")
    at.session_state[keys.LIVE_SESSION] = session
    at.run()
    no_failure(at)
    assert not [b for b in at.button if b.key == keys.LIVE_SAVE]
    assert any("Nothing to save" in c.value for c in at.caption)


# ------------------------------------------------------------------------------------ thresholds

@pytest.mark.parametrize("exercise", sorted(load_rules().exercises))
def test_every_exercise_renders_on_every_page(workspace, monkeypatch, tmp_path, exercise):
    monkeypatch.setenv("GYMPOSE_SHARED_DATA", str(tmp_path / "no_shared_data"))
    for page in ("analyze.py", "live.py", "thresholds.py", "history.py"):
        at = app(page)
        at.session_state[keys.EXERCISE] = exercise
        at.run()
        no_failure(at)
        assert not at.error, (page, [e.value for e in at.error])
    assert at.selectbox(key=keys.EXERCISE).value == exercise


def test_thresholds_without_data_explains_what_to_do(workspace, monkeypatch, tmp_path):
    monkeypatch.setenv("GYMPOSE_SHARED_DATA", str(tmp_path / "no_shared_data"))  # no Penn Action either
    monkeypatch.delenv("GYMPOSE_PENN_DIR", raising=False)
    at = app("thresholds.py").run()
    no_failure(at)
    # Issue 13 item 13: the Penn Action reference is there from the first run (shipped histogram counts).
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    titles = [a.get("text", "") for a in spec["layout"].get("annotations", [])]
    assert any(t.startswith("Penn Action: ") and int(t.split()[2]) > 1000 for t in titles), titles
    assert [t["type"] for t in spec["data"]].count("bar") == 3  # rest, transition, peak
    assert any("shipped with GymPose" in c.value and "ICCV 2013" in c.value for c in at.caption)
    assert any("Your own knee angles appear under this reference" in c.value for c in at.caption)
    assert len(at.get("plotly_chart")) == 1
    assert at.slider(key=keys.thr_frame_check("squat", 0)).value == (0.0, 100.0)
    assert any("relative to the person's own range" in c.value and "at least 30 deg" in c.value for c in at.caption)


@needs_videos
def test_thresholds_slider_changes_correct_percentage_and_saves(workspace, squat_analysis):  # noqa: F811
    install_analysis(squat_analysis, workspace)
    at = app("thresholds.py").run()
    no_failure(at)
    before = metric(at, "Frames correct")
    assert metric(at, "Reps counted") == str(SQUAT_CLIP_REPS)
    depth = at.slider(key=keys.thr_frame_check("squat", 0))
    assert depth.value == (0.0, 100.0)
    depth.set_value((0.0, 50.0)).run()
    no_failure(at)
    after = metric(at, "Frames correct")
    assert float(after.rstrip("%")) < float(before.rstrip("%"))
    # A stricter depth per rep judges the same reps incorrect; the count does not depend on it.
    rep_depth = at.slider(key=keys.thr_rep_check("squat", 0))
    rep_depth.set_value((0.0, 40.0)).run()
    assert metric(at, "Reps counted") == str(SQUAT_CLIP_REPS)
    assert metric(at, "Reps judged correct") == f"0 / {SQUAT_CLIP_REPS}"
    # An impossible range (empty) is refused with the reason.
    at.slider(key=keys.thr_rep_check("squat", 0)).set_value((40.0, 40.0)).run()
    assert any("not a valid rule" in e.value for e in at.error)
    at.slider(key=keys.thr_rep_check("squat", 0)).set_value((0.0, 100.0)).run()
    # Save: the user's rules file holds the new depth and becomes the active rules.
    at.button(key=keys.THR_SAVE).click().run()
    no_failure(at)
    rules_file = workspace / "rules.toml"
    assert load_rules(user_path=rules_file)["squat"].frame_checks[0].max == 50.0
    assert at.success and "Saved" in at.success[0].value
    assert "Active rules: rules.toml" in at.caption[0].value
    assert at.slider(key=keys.thr_frame_check("squat", 0)).value == (0.0, 50.0)
    # Reset to defaults removes the override (previous file kept as .bak).
    at.button(key=keys.THR_RESET).click().run()
    no_failure(at)
    assert load_rules(user_path=rules_file)["squat"].frame_checks[0].max == 100.0
    assert backup_path(rules_file).exists()
    assert at.slider(key=keys.thr_frame_check("squat", 0)).value == (0.0, 100.0)
    assert metric(at, "Frames correct") == before


def test_thresholds_rules_upload_is_validated(workspace):
    at = app("thresholds.py").run()
    bad = b'[exercises.squat.counting]\nrest_threshold = 90\n'  # the first rules format: refused, said why
    at.file_uploader(key=keys.THR_UPLOAD).set_value(("mine.toml", bad, "application/toml")).run()
    at.button(key=keys.THR_APPLY_UPLOAD).click().run()
    no_failure(at)
    assert any("Refused, nothing was changed" in e.value and "no longer used" in e.value for e in at.error)
    assert not (workspace / "rules.toml").exists()
    good = b'[exercises.squat.counting]\nmin_amplitude = 40\n'
    at.file_uploader(key=keys.THR_UPLOAD).set_value(("mine.toml", good, "application/toml")).run()
    at.button(key=keys.THR_APPLY_UPLOAD).click().run()
    no_failure(at)
    assert load_rules(user_path=workspace / "rules.toml")["squat"].counting.min_amplitude == 40
    assert any("at least 40 deg" in c.value for c in at.caption)  # the page now uses the uploaded rules
    assert "Active rules: rules.toml" in at.caption[0].value


def test_thresholds_upload_nested_too_deeply_names_the_refused_file_and_why(workspace):
    """Issue 25, item 7: a rules file nested 200,000 levels deep is refused with its own name and the reason,
    not a generic error box naming the current rules file; the current rules stay."""
    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / "rules.toml").write_text("[exercises.squat.counting]\nmin_amplitude = 40\n")
    at = app("thresholds.py").run()
    deep = ("x = " + "[" * 200_000 + "]" * 200_000 + "\n").encode()
    at.file_uploader(key=keys.THR_UPLOAD).set_value(("deep rules.toml", deep, "application/toml")).run()
    at.button(key=keys.THR_APPLY_UPLOAD).click().run()
    no_failure(at)
    (err,) = [e.value for e in at.error if "Refused" in e.value]
    assert err.startswith("Refused, nothing was changed: " + plain("deep rules.toml: nested too deeply")), err
    assert load_rules(user_path=workspace / "rules.toml")["squat"].counting.min_amplitude == 40


def test_sidebar_toggle_switches_between_user_and_default_rules(workspace):
    from pose_core.store.tuning import save_user_rule, with_check_bounds

    rules = load_rules()
    save_user_rule(load_settings().user_rules_path,
                   with_check_bounds(rules["squat"], rep_check_bounds={0: (-math.inf, 90.0)}))
    at = app().run()  # (AppTest shows the sidebar of the default page only)
    assert at.toggle(key=keys.USE_USER_RULES).value is True
    assert any("rules.toml" in c.value for c in at.sidebar.caption)
    at.toggle(key=keys.USE_USER_RULES).set_value(False).run()
    no_failure(at)
    assert any("built-in defaults" in c.value for c in at.sidebar.caption)


@needs_penn
def test_thresholds_show_the_penn_action_distribution(workspace):
    at = app("thresholds.py").run(timeout=TIMEOUT)
    no_failure(at)
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    titles = [a.get("text", "") for a in spec["layout"].get("annotations", [])]
    assert any(t.startswith("Penn Action:") for t in titles)


def test_invalid_user_rules_file_falls_back_to_defaults(workspace):
    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / "rules.toml").write_text("[exercises.squat]\nbogus = 1\n")
    at = app().run()
    no_failure(at)
    assert any("rules file is invalid" in e.value for e in at.sidebar.error)
    assert at.title[0].value == "Analyze a workout video"


# --------------------------------------------------------------------------------------- history

def _store_with_sessions(home: Path) -> tuple[HistoryStore, list[int]]:
    from pose_core.core.types import RepEvent

    store = HistoryStore(home / "history.sqlite3")
    ids = []
    for day, (n, low) in enumerate([(3, 95.0), (5, 85.0), (6, 75.0)], start=1):
        reps = tuple(RepEvent(i + 1, 2.0 * i, 2.0 * i + 1.6, 2.0 * i + 0.8, low, 176.0,
                              "correct" if i > 0 else "incorrect", () if i > 0 else ("Not deep enough",))
                     for i in range(n))
        ids.append(store.add(SessionRecord(exercise="squat", name=f"day {day}", reps=reps, frames=200,
                                           frames_correct_pct=80.0 + day, duration_s=12.0, primary_angle="knee",
                                           created_at=f"2026-01-0{day}T09:00:00+00:00")))
    ids.append(store.add(SessionRecord(exercise="pushup", name="push", source="live",
                                       created_at="2026-01-02T09:00:00+00:00")))
    return store, ids


def test_history_lists_progress_details_and_deletes_with_confirmation(workspace):
    store, ids = _store_with_sessions(workspace)
    at = app("history.py").run()
    no_failure(at)
    assert len(at.dataframe[0].value) == 4
    assert len(at.get("plotly_chart")) == 1
    sel = at.selectbox(key=keys.HIST_SELECTED)
    sel.set_value(ids[1]).run()
    details = at.dataframe[1].value.set_index("")
    (col,) = [c for c in details.columns if c.startswith(f"#{ids[1]} ")]
    assert details.loc["reps", col] == "5" and details.loc["correct reps", col] == "80.0%"
    assert len(at.dataframe[2].value) == 5  # rep table
    # Delete asks first; Cancel keeps the session.
    at.button(key=keys.HIST_DELETE).click().run()
    assert at.warning and "for good" in at.warning[0].value
    at.button(key=keys.HIST_CANCEL).click().run()
    assert store.count() == 4
    at.button(key=keys.HIST_DELETE).click().run()
    at.button(key=keys.HIST_CONFIRM).click().run()
    no_failure(at)
    assert store.count() == 3 and store.get(ids[1]) is None
    assert at.success and f"#{ids[1]} deleted" in at.success[0].value
    assert len(at.dataframe[0].value) == 3


def test_history_empty_and_damaged_database(workspace):
    at = app("history.py").run()
    no_failure(at)
    assert any("No sessions yet" in i.value for i in at.info)
    (workspace / "history.sqlite3").write_bytes(b"garbage" * 1000)
    at = app("history.py").run()
    no_failure(at)
    assert at.error and "damaged" in at.error[0].value
    assert (workspace / "history.sqlite3").read_bytes() == b"garbage" * 1000


def test_history_lists_sessions_not_yet_saved_and_imports_them_when_it_can(workspace):
    """Issue 25, item 6: sessions kept in .pending are listed, marked "not yet saved" (the database busy, or
    damaged), and the next visit that can write imports them."""
    import sqlite3

    from pose_core.store.history import HistoryError

    store = HistoryStore(workspace / "history.sqlite3", timeout_s=0.2)
    store.add(SessionRecord(exercise="squat", name="saved.mp4", created_at="2026-01-01T10:00:00+00:00"))
    blocker = sqlite3.connect(store.path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(HistoryError, match="kept in"):
            store.add(SessionRecord(exercise="pushup", name="kept.mp4", created_at="2026-01-02T10:00:00+00:00"))
        at = app("history.py").run()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    no_failure(at)
    tables = [d.value for d in at.dataframe]
    kept = [t for t in tables if "saved" in t.columns]
    assert kept and list(kept[0]["name"]) == ["kept.mp4"] and list(kept[0]["saved"]) == ["not yet saved"]
    assert any("Not yet saved: 1 session(s) kept safely" in c.value for c in at.caption)
    assert any("saved.mp4" in list(t.get("name", [])) for t in tables if "saved" not in t.columns)
    at = app("history.py").run()  # the database is free again: this visit imports it
    no_failure(at)
    assert store.pending() == [] and store.count() == 2
    assert not any("Not yet saved" in c.value for c in at.caption)
    # A damaged database: the error, and still the sessions kept meanwhile.
    (workspace / "history.sqlite3").write_bytes(b"garbage" * 1000)
    for suffix in ("-wal", "-shm"):
        (workspace / f"history.sqlite3{suffix}").unlink(missing_ok=True)
    with pytest.raises(HistoryError, match="kept in"):
        HistoryStore(store.path).add(SessionRecord(exercise="situp", name="during damage.mp4"))
    at = app("history.py").run()
    no_failure(at)
    assert at.error and "damaged" in at.error[0].value
    assert [list(d.value["name"]) for d in at.dataframe] == [["during damage.mp4"]]


def test_history_progress_chart_data_comes_from_store(workspace):
    store, _ = _store_with_sessions(workspace)
    rows = store.progress("squat")
    assert [r["avg_depth"] for r in rows] == [95.0, 85.0, 75.0]
    assert [r["reps_correct_pct"] for r in rows] == [66.7, 80.0, 83.3]
    at = app("history.py")
    at.run()
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert [a["text"] for a in spec["layout"]["annotations"]][:2] == ["Reps per session", "Correct reps (%)"]


@needs_videos
def test_thresholds_tune_a_fault_limit_with_its_own_histogram_and_slider(workspace, squat_analysis):  # noqa: F811
    install_analysis(squat_analysis, workspace)
    at = app("thresholds.py").run()
    at.selectbox(key=keys.THR_ANGLE).set_value("torso_lean").run()
    no_failure(at)
    assert len(at.get("plotly_chart")) == 1  # its distribution
    lean = at.slider(key=keys.thr_rep_check("squat", 2))  # torso lean per rep, judged from the side
    assert lean.value == (0.0, 60.0) and "side" in lean.label
    assert metric(at, "Reps judged correct") == f"{SQUAT_CLIP_REPS} / {SQUAT_CLIP_REPS}"
    lean.set_value((0.0, 5.0)).run()  # a stricter limit: the same reps, now faulted for leaning
    assert metric(at, "Reps counted") == str(SQUAT_CLIP_REPS)
    assert metric(at, "Reps judged correct") == f"0 / {SQUAT_CLIP_REPS}"
    at.selectbox(key=keys.THR_ANGLE).set_value("knee_width").run()
    no_failure(at)
    width = at.slider(key=keys.thr_rep_check("squat", 3))
    assert width.value == (80.0, 250.0) and "front, rear" in width.label


def test_analyze_auto_confident_but_no_rep_is_never_a_success(workspace, squat_analysis):  # noqa: F811
    """A confident recognition over a 0-rep result is a warning that says the name may be wrong."""
    adir = install_analysis(squat_analysis, workspace)
    summary = json.loads((adir / "summary.json").read_text())
    summary.update(exercise="clean_and_jerk", exercise_auto=True, exercise_confidence=0.81, reps=0,
                   reps_correct=0, reps_incorrect=0,
                   exercise_candidates=[["clean_and_jerk", 0.81], ["squat", 0.17]])
    (adir / "summary.json").write_text(json.dumps(summary))
    (adir / "reps.json").write_text(json.dumps({**json.loads((adir / "reps.json").read_text()), "reps": []}))
    at = auto_app()
    at.session_state[keys.ANALYZE_RESULT_DIR] = str(adir)
    at.run()
    no_failure(at)
    assert not at.success
    text = at.warning[0].value
    assert "Recognised: **Clean and jerk** (81% sure)" in text and "no complete clean and jerk repetition" in text
    assert "Squat 17%" in text


# ------------------------------------------------------------------------- choices that last (item 4)

def test_sidebar_exercise_comes_from_and_goes_to_the_url(workspace):
    at = app()
    at.query_params["exercise"] = "pushup"  # a shared link / a reload
    at.run()
    no_failure(at)
    assert at.selectbox(key=keys.EXERCISE).value == "pushup"
    assert "push-up" in at.button(key=keys.ANALYZE_RUN).label.lower()
    at.selectbox(key=keys.EXERCISE).set_value(AUTO).run()
    assert at.query_params["exercise"] == [AUTO]  # the new choice is in the address
    fresh = app()  # a new tab with that address
    fresh.query_params["exercise"] = AUTO
    fresh.run()
    assert fresh.selectbox(key=keys.EXERCISE).value == AUTO
    bad = app()
    bad.query_params["exercise"] = "**nonsense**"
    bad.run()
    no_failure(bad)
    assert bad.selectbox(key=keys.EXERCISE).value == "squat"  # an unknown name falls back quietly


def test_history_selection_and_thresholds_angle_survive_pages_and_reloads(workspace):
    store, ids = _store_with_sessions(workspace)
    at = app("history.py").run()
    at.selectbox(key=keys.HIST_SELECTED).set_value(ids[0]).run()
    assert at.query_params["session"] == [str(ids[0])]
    at.switch_page("views/analyze.py").run()
    no_failure(at)
    at.switch_page("views/history.py").run()
    assert at.selectbox(key=keys.HIST_SELECTED).value == ids[0]  # switching pages kept it
    link = app("history.py")
    link.query_params["session"] = str(ids[1])
    link.run()
    assert link.selectbox(key=keys.HIST_SELECTED).value == ids[1]  # a link reopens that session
    thr = app("thresholds.py")
    thr.query_params["angle"] = "torso_lean"
    thr.run()
    no_failure(thr)
    assert thr.selectbox(key=keys.THR_ANGLE).value == "torso_lean"
    thr.switch_page("views/history.py").run()
    thr.switch_page("views/thresholds.py").run()
    assert thr.selectbox(key=keys.THR_ANGLE).value == "torso_lean"
    thr.selectbox(key=keys.EXERCISE).set_value("pushup").run()  # no torso_lean there: its primary angle
    no_failure(thr)
    assert thr.selectbox(key=keys.THR_ANGLE).value == load_rules()["pushup"].primary_angle


# ------------------------------------------------------------------------------ history (item 6)

def _record(name="squat_1.mp4", reps=3, low=90.0, day=1, pct=80.0, source="video", exercise="squat"):
    from pose_core.core.types import RepEvent

    rs = tuple(RepEvent(i + 1, 2.0 * i, 2.0 * i + 1.6, 2.0 * i + 0.8, low, 176.0, "correct", ()) for i in range(reps))
    return SessionRecord(exercise=exercise, name=name, source=source, reps=rs, frames=100, frames_correct_pct=pct,
                         duration_s=8.0, primary_angle="knee", extra={"rest": "high"},
                         created_at=f"2026-01-0{day}T09:00:00+00:00")


def test_history_folds_identical_reanalyses_and_shows_no_none(workspace):
    store = HistoryStore(workspace / "history.sqlite3")
    a = store.add(_record(day=1))
    b = store.add(_record(day=2))  # the same upload analysed again, same result
    c = store.add(_record(day=3, reps=4))  # re-analysed with other rules: another result, its own row
    d = store.add(SessionRecord(exercise="squat", name="Live session (Squat)", source="live",
                                created_at="2026-01-04T09:00:00+00:00"))  # no reps: no depth
    at = app("history.py").run()
    no_failure(at)
    table = at.dataframe[0].value
    assert list(table["#"]) == [d, c, b]  # a folded into b (newest kept)
    assert list(table["source"]) == ["live", "video", "video ×2"]
    assert "None" not in table.astype(str).to_numpy().ravel().tolist()
    assert table.loc[table["#"] == d, "avg key angle"].item() == "–"
    assert table.loc[table["#"] == b, "avg key angle"].item() == "90° (depth)"  # named by the rules' extreme_name
    assert any("×N" in c_.value for c_ in at.caption)
    at.selectbox(key=keys.HIST_SELECTED).set_value(b).run()
    assert any(f"Analysed 2 times" in c_.value and f"#{a}" in c_.value for c_ in at.caption)
    # The progress chart counts the result once: 2 squat sessions (b, c) + the live one.
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert len(spec["data"][0]["x"]) == 3


def test_history_one_session_says_so_instead_of_a_one_bar_chart(workspace):
    HistoryStore(workspace / "history.sqlite3").add(_record())
    at = app("history.py").run()
    no_failure(at)
    assert not at.get("plotly_chart")
    assert any("One squat session so far (3 reps)" in i.value for i in at.info)
    assert at.selectbox(key=keys.HIST_COMPARE).disabled  # nothing to compare with yet


def test_history_compares_two_sessions_with_the_difference(workspace):
    store = HistoryStore(workspace / "history.sqlite3")
    old = store.add(_record(day=1, reps=3, low=100.0, pct=70.0))
    new = store.add(_record(name="squat_2.mp4", day=2, reps=5, low=85.0, pct=90.0))
    at = app("history.py").run()
    no_failure(at)
    assert at.selectbox(key=keys.HIST_SELECTED).value == new
    assert at.selectbox(key=keys.HIST_COMPARE).value == old  # the one before, by default
    cmp = at.dataframe[1].value.set_index("")
    assert list(cmp.columns)[0].startswith(f"#{old} ") and list(cmp.columns)[1].startswith(f"#{new} ")
    assert cmp.loc["reps"].tolist()[:2] == ["3", "5"] and cmp.loc["reps", "change"] == "+2 better"
    assert cmp.loc["depth", "change"] == "-15° better"  # knees bent further: deeper
    assert cmp.loc["correct frames", "change"] == "+20.0% better"
    assert cmp.loc["rep time", "change"] == "no change"
    assert cmp.loc["velocity loss"].tolist()[:2] == ["0.0%", "0.0%"]  # every lift as fast as the others
    assert at.query_params["compare"] == [str(old)]


@needs_videos
def test_analysed_result_survives_switching_pages(workspace, squat_analysis):  # noqa: F811
    adir = install_analysis(squat_analysis, workspace)
    at = app()
    at.session_state[keys.ANALYZE_RESULT_DIR] = str(adir)  # what the page keeps after an analysis
    at.run()
    no_failure(at)
    assert metric(at, "Reps") == str(SQUAT_CLIP_REPS)
    at.switch_page("views/history.py").run()
    at.switch_page("views/analyze.py").run()
    no_failure(at)
    assert metric(at, "Reps") == str(SQUAT_CLIP_REPS)  # still on display after a visit elsewhere


@needs_penn
def test_thresholds_tuned_checks_keep_the_shipped_reference_without_relabelling(workspace, monkeypatch):
    # A saved threshold does not change what is measured: the shipped Penn Action histograms still apply,
    # and the dataset (configured here) is not labelled again, which would take minutes on a first visit.
    import pose_core.datasets.reference_histograms as ref

    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / "rules.toml").write_text(
        '[[exercises.squat.frame_checks]]\nangle = "knee"\nphase = "peak"\nmax = 90\n'
        'views = ["side", "oblique"]\nmessage = "Go deeper"\n')
    monkeypatch.setattr(ref, "penn_histograms", lambda *a, **k: pytest.fail("the dataset was labelled again"))
    at = app("thresholds.py").run()
    no_failure(at)
    assert "rules.toml" in at.sidebar.caption[0].value
    assert any("shipped with GymPose" in c.value for c in at.caption)
