"""Check the count on the Analyze page (dashboard/count_review.py), driven with AppTest: an unsure rep is shown
with why, one click removes or keeps it, a missed rep is added at a time, the corrected count goes to the
history row (History shows it beside GymPose's), and the analysis is exported as a labelled clip that
`gympose evaluate` reads. (Clicking in a real browser: tests/test_browser_issue26.py's count review test.)"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from helpers import SQUAT_CLIP, SQUAT_CLIP_REPS, install_analysis

from dashboard import keys
from pose_core.store.corrections import CORRECTED_COUNT, CORRECTIONS_JSON, load_corrections
from pose_core.store.history import HistoryStore, record_from_analysis
from pose_core.store.outputs import REPS_JSON, SUMMARY_JSON, load_analysis
from pose_core.store.settings import load_settings

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")
HISTORY = str(Path(__file__).resolve().parent.parent / "dashboard" / "views" / "history.py")
DOUBT = "seen by one signal only (the hips did not rise)"


@pytest.fixture(autouse=True)
def _webrtc_without_runtime(monkeypatch):
    import streamlit_webrtc.component as component

    monkeypatch.setattr(component, "get_this_session_info", lambda: None)


@pytest.fixture
def unsure(workspace, squat_analysis):
    """squat_1 analysed, its second rep marked unsure, its upload kept and a history row for it."""
    folder = install_analysis(squat_analysis, workspace)
    doc = json.loads((folder / REPS_JSON).read_text())
    doc["reps"][1]["doubt"] = DOUBT
    (folder / REPS_JSON).write_text(json.dumps(doc))
    summary = json.loads((folder / SUMMARY_JSON).read_text())
    summary["uncertain_reps"] = [{"index": 2, "reason": DOUBT}]
    (folder / SUMMARY_JSON).write_text(json.dumps(summary))
    settings = load_settings()
    settings.uploads_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(SQUAT_CLIP, settings.uploads_dir / summary["video"])
    a = load_analysis(folder)
    store = HistoryStore(settings.history_db)
    store.add(record_from_analysis(a.summary, list(a.reps), folder, rest="high", name="my squats.mp4"))
    return folder, store


def page(folder: Path):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state[keys.ANALYZE_RESULT_DIR] = str(folder)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def button(at, key: str):
    (b,) = [b for b in at.button if b.key == key]
    return b


def texts(at) -> str:
    return "\n".join(t.value for t in at.text)


def test_an_unsure_rep_is_shown_with_why_and_one_click_removes_it_everywhere(unsure):
    folder, store = unsure
    at = page(folder)
    assert "Rep 2 (" in texts(at) and DOUBT in texts(at)
    # the rep table says which rep is unsure and why
    table = at.dataframe[0].value
    assert list(table["count"]) == ["sure", f"unsure: {DOUBT}", "sure"]
    button(at, keys.review_rep("remove", 2)).click().run()
    assert not at.exception
    assert load_corrections(folder).removed == (2,)
    (rec,) = store.list_sessions()
    assert rec.extra[CORRECTED_COUNT] == SQUAT_CLIP_REPS - 1
    assert "[removed by you]" in texts(at)
    assert any(f"{SQUAT_CLIP_REPS - 1} (GymPose counted {SQUAT_CLIP_REPS})" in c.value for c in at.caption)
    # keeping it again restores GymPose's count, in the history too
    button(at, keys.review_rep("keep", 2)).click().run()
    (rec,) = store.list_sessions()
    assert CORRECTED_COUNT not in rec.extra or rec.extra[CORRECTED_COUNT] == SQUAT_CLIP_REPS
    assert "[kept by you]" in texts(at)


def test_a_missed_rep_is_added_at_a_time_and_history_shows_both_counts(unsure):
    folder, store = unsure
    at = page(folder)
    at.number_input(key=keys.ANALYZE_ADD_REP_AT).set_value(9.5)
    button(at, keys.review_rep("add", 0)).click().run()
    assert not at.exception
    assert load_corrections(folder).added == (9.5,)
    assert "Added by you at 9.5 s" in texts(at)
    (rec,) = store.list_sessions()
    assert rec.extra[CORRECTED_COUNT] == SQUAT_CLIP_REPS + 1

    from streamlit.testing.v1 import AppTest

    hist = AppTest.from_file(HISTORY, default_timeout=60)
    hist.run()
    assert not hist.exception, [e.message for e in hist.exception]
    sessions = hist.dataframe[0].value
    assert list(sessions["reps"]) == [SQUAT_CLIP_REPS] and list(sessions["your count"]) == [str(SQUAT_CLIP_REPS + 1)]


def test_export_as_a_labelled_clip_writes_the_clip_and_a_row_evaluate_reads(unsure):
    folder, _ = unsure
    at = page(folder)
    button(at, keys.review_rep("remove", 2)).click().run()
    button(at, keys.ANALYZE_EXPORT_CLIP).click().run()
    assert not at.exception
    dest = load_settings().labelled_dir
    rows = list(csv.DictReader((dest / "videos.csv").open()))
    assert len(rows) == 1 and rows[0]["exercise"] == "squat"
    assert int(rows[0]["reps_complete"]) == SQUAT_CLIP_REPS - 1
    assert (dest / rows[0]["file"]).stat().st_size == SQUAT_CLIP.stat().st_size
    assert any("Saved as" in i.value for i in at.info)
    # the folder is one evaluate reads (its clip list parses)
    from pose_core.run.evaluate import read_manifest

    assert [r["file"] for r in read_manifest(dest)] == [rows[0]["file"]]


def test_corrections_that_cannot_be_read_are_said_and_the_page_still_shows(unsure):
    folder, _ = unsure
    (folder / CORRECTIONS_JSON).write_text("{not json")
    at = page(folder)
    assert any("cannot be read" in e.value for e in at.error)
    assert at.dataframe  # the result is still there
