"""Issue 12, items 15, 9 and 10 on the Analyze page (AppTest): the analysis is a job that outlives the page.
A reload (a new AppTest session with ?job=<id>) shows the running job's progress and then its result; the
history row is added even when nobody watches; a queued job says how many run before it; a job id in the URL
that is not ours is refused plainly; a full disk and a truncated file are said on the page.
(The real browser version: tests/test_browser.py::test_analyze_survives_a_reload_mid_analysis.)"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from helpers import SQUAT_CLIP, SQUAT_CLIP_REPS, VIDEOS, needs_videos, wait_for_job

from dashboard import keys
from pose_core.run import job_status, jobs, pipeline
from pose_core.store.history import HistoryStore
from pose_core.store.settings import load_settings

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")
TIMEOUT = 180


@pytest.fixture(autouse=True)
def _webrtc_without_runtime(monkeypatch):
    import streamlit_webrtc.component as component

    monkeypatch.setattr(component, "get_this_session_info", lambda: None)


def app(job: str | None = None, exercise: str | None = None):
    """A fresh browser session on the Analyze page (a reload, or the URL opened in a new tab)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if job is not None:
        at.query_params[keys.QUERY_JOB] = job
    if exercise is not None:
        at.session_state[keys.EXERCISE] = exercise
    return at


def upload_and_start(at, name: str, data: bytes):
    at.run()
    at.file_uploader(key=keys.ANALYZE_UPLOAD).set_value((name, data, "video/mp4"))
    at.run()
    at.button(key=keys.ANALYZE_RUN).click()
    return at.run()


def job_in_url(at) -> str:
    value = at.query_params[keys.QUERY_JOB]
    job = value[0] if isinstance(value, list) else value
    assert job_status.JOB_ID.match(job), job
    return job


def progress_texts(at) -> list[str]:
    return [e.proto.text for e in at.get("progress")]


def status(job: str):
    return jobs.read_status(load_settings().jobs_dir, job)


def wait_state(job: str, pred, timeout_s: float = 60.0):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        s = status(job)
        if pred(s):
            return s
        time.sleep(0.1)
    raise AssertionError(f"job {job} never got there: {status(job)}")


def gated_analyze(monkeypatch, gate: threading.Event, hold_at: int = 30):
    """The real analyze_video, held at frame `hold_at` until the gate opens (a long analysis, on demand). Held
    at the first count at or past it: with the pose workers the count goes up by the poses they send, which
    may step over `hold_at` (the job then ran to its end unheld)."""
    real = pipeline.analyze_video

    def analyze(video, exercise, progress=None, **kw):
        passed = [False]

        def held(done, total):
            progress(done, total)
            if done >= hold_at and not passed[0]:
                passed[0] = True
                gate.wait(120)

        return real(video, exercise, progress=held, **kw)

    monkeypatch.setattr(pipeline, "analyze_video", analyze)


@needs_videos
def test_reload_mid_analysis_shows_the_progress_then_the_result(workspace, monkeypatch):
    gate = threading.Event()
    gated_analyze(monkeypatch, gate)
    first = upload_and_start(app(), "squat_1.mp4", SQUAT_CLIP.read_bytes())
    assert not first.exception and not first.error
    job = job_in_url(first)
    assert first.session_state[keys.ANALYZE_JOB] == job
    try:
        wait_state(job, lambda s: s.state == jobs.RUNNING and s.done > 0, 120)
        # Held at frame 30, its status stays as last written once the throttled writes have caught up: wait until
        # it has not changed for a second (CI once read 13 on the page and 25 right after: a write in between).
        last, since = status(job).done, time.monotonic()
        while time.monotonic() - since < 1.0:
            time.sleep(0.1)
            now = status(job).done
            if now != last:
                last, since = now, time.monotonic()
        # The page is reloaded (the first session is never run again: the user left it).
        again = app(job).run()
        assert not again.exception, [e.message for e in again.exception]
        s = status(job)
        assert 0 < s.done <= 40 and s.total == 322
        assert progress_texts(again) == [f"Analysing frame {s.done} of 322..."], progress_texts(again)
        assert not again.metric  # no result yet
        assert any("goes on if you reload or leave" in c.value for c in again.caption)
        assert job_in_url(again) == job
    finally:
        gate.set()
    s = wait_state(job, lambda s: s.final, 120)
    assert s.state == jobs.DONE
    # Saved although nobody was watching: the history row and the analysis folder.
    (row,) = HistoryStore(workspace / "history.sqlite3").list_sessions()
    assert row.id == s.history_id and row.name == "squat_1.mp4" and row.rep_count == SQUAT_CLIP_REPS
    again.run()
    assert not again.exception
    assert [m.value for m in again.metric if m.label == "Reps"] == [str(SQUAT_CLIP_REPS)]
    assert not progress_texts(again)
    # The same URL opened in yet another tab shows the result too.
    tab = app(job).run()
    assert [m.value for m in tab.metric if m.label == "Reps"] == [str(SQUAT_CLIP_REPS)]


def test_a_queued_job_says_how_many_analyses_are_ahead(workspace, monkeypatch):
    gate = threading.Event()
    seen = []

    def slow(video, exercise, progress=None, **kw):
        seen.append(exercise)
        progress(1, 10)
        gate.wait(60)
        raise pipeline.NoPersonError("nobody")

    monkeypatch.setattr(pipeline, "analyze_video", slow)
    try:
        first_at = upload_and_start(app(), "a.mp4", b"\x00" * 100)
        first = job_in_url(first_at)
        wait_state(first, lambda s: s.state == jobs.RUNNING)
        first_at.run()
        assert first_at.button(key=keys.ANALYZE_RUN).disabled  # one click, one analysis: a second tab queues
        second_at = upload_and_start(app(), "b.mp4", b"\x00" * 100)
        second = job_in_url(second_at)
        assert second != first
        assert progress_texts(second_at) == ["Waiting for 1 analysis ahead of this one (one runs at a time)..."]
        assert progress_texts(app(first).run()) == ["Analysing frame 1 of 10..."]
    finally:
        gate.set()
    wait_state(second, lambda s: s.final)
    first_at.run()
    assert not first_at.button(key=keys.ANALYZE_RUN).disabled
    at = app(second).run()
    assert [e.value for e in at.error] == ["Nobody was found in this video. Make sure your whole body is in the "
                                           "frame and well lit."]
    assert seen == ["squat", "squat"]
    assert not list((workspace / "uploads").iterdir())  # both failed: their uploads are gone


@pytest.mark.parametrize("bad,said", [("../../etc/passwd", "not valid"), ("%2e%2e%2fhistory.sqlite3", "not valid"),
                                      ("0" * 32, "no analysis with this link"), ("<b>x</b>", "not valid")])
def test_a_job_id_in_the_url_that_is_not_ours_is_refused_plainly(workspace, bad, said):
    at = app(bad).run()
    assert not at.exception, [e.message for e in at.exception]
    assert len(at.error) == 1 and said in at.error[0].value.lower()
    assert at.title[0].value == "Analyze a workout video" and not at.metric
    assert keys.QUERY_JOB not in at.query_params  # the bad link is taken out of the address
    at.run()
    assert not at.error and not at.exception  # and the page is usable again


def test_a_full_disk_is_said_on_the_page(workspace, monkeypatch):
    from pose_core.core.io import NoSpaceError

    def full(video, exercise, out_dir=None, **kw):
        raise NoSpaceError(out_dir)

    monkeypatch.setattr(pipeline, "analyze_video", full)
    at = wait_for_job(upload_and_start(app(), "clip.mp4", b"\x00" * 100))
    assert not at.exception
    (err,) = at.error
    assert "no space left on device" in err.value and "analyses/" in err.value
    assert str(workspace) not in err.value  # no server path
    # The job writes its final status, then removes the upload it brought: the page can see the one first.
    end = time.monotonic() + 10
    while list((workspace / "uploads").iterdir()) and time.monotonic() < end:
        time.sleep(0.05)
    assert not list((workspace / "uploads").iterdir())


def test_cannot_tell_after_a_reload_still_offers_analyze_as(workspace, monkeypatch):
    """The one-click "Analyze as <candidate>" works from the job's link too (the upload box is empty then):
    the job's own upload is analysed again as the picked exercise."""
    from pose_core.recognition import Recognition

    calls = []

    def fake(video, exercise, **kw):
        calls.append((Path(video).name, exercise))
        if exercise == "auto":
            rec = Recognition(None, 0.45, (("situp", 0.45), ("pushup", 0.4)), "low confidence", 90, 90, 5)
            raise pipeline.CannotTellError("cannot tell", rec)
        raise pipeline.NoPersonError("stop here")

    monkeypatch.setattr(pipeline, "analyze_video", fake)
    first = wait_for_job(upload_and_start(app(exercise="auto"), "clip.mp4", b"\x00" * 100))
    job = job_in_url(first)
    tab = app(job, exercise="auto").run()  # a reload: a new session with only the URL
    assert "cannot tell which exercise" in tab.warning[0].value
    tab.button(key=keys.analyze_pick("pushup")).click().run()
    wait_for_job(tab)
    assert not tab.exception
    (upload,) = [p.name for p in (workspace / "uploads").iterdir() if not p.name.startswith(".")]
    assert calls == [(upload, "auto"), (upload, "pushup")]
    assert job_in_url(tab) != job and "Nobody was found" in tab.error[0].value


@needs_videos
def test_a_truncated_upload_is_analysed_with_a_note_on_the_page(workspace):
    clip = VIDEOS / "situp_3.mp4"  # its index is at the start, so a cut copy still opens
    data = clip.read_bytes()
    at = wait_for_job(upload_and_start(app(exercise="situp"), "cut.mp4", data[: len(data) * 60 // 100]))
    assert not at.exception and not at.error
    notes = [w.value for w in at.warning if "ends early" in w.value]
    assert len(notes) == 1 and "analysed what could be read" in notes[0], [w.value for w in at.warning]


def test_leaving_for_another_page_and_coming_back_shows_the_job_again(workspace, monkeypatch):
    gate = threading.Event()

    def slow(video, exercise, progress=None, **kw):
        progress(5, 10)
        gate.wait(60)
        raise pipeline.NoPersonError("nobody")

    monkeypatch.setattr(pipeline, "analyze_video", slow)
    try:
        at = upload_and_start(app(), "a.mp4", b"\x00" * 100)
        job = job_in_url(at)
        wait_state(job, lambda s: s.state == jobs.RUNNING and s.done == 5)
        at.switch_page("views/history.py").run()
        assert not at.exception and at.title[0].value == "History"
        at.switch_page("views/analyze.py").run()  # (a page switch drops the query string)
        assert not at.exception
        assert job_in_url(at) == job  # put back from this session's state
        assert progress_texts(at) == ["Analysing frame 5 of 10..."]
    finally:
        gate.set()
    wait_state(job, lambda s: s.final)
    at.run()
    assert "Nobody was found" in at.error[0].value


def test_the_result_shows_at_once_while_the_video_is_drawn_then_the_video(workspace, monkeypatch, tmp_path):
    """Issue 24: the result (figures, rep table) is on the page while the annotated video is still being drawn,
    with the original upload playing in its place and a note saying so; the video and its download come once
    it is drawn."""
    from helpers import FakeEstimator
    from media import write_video

    from pose_core.run import render_video

    gate = threading.Event()
    real_draw, real = render_video._draw, pipeline.analyze_video
    monkeypatch.setattr(render_video, "_draw", lambda f, s, p: (gate.wait(60), real_draw(f, s, p))[1])
    monkeypatch.setattr(pipeline, "analyze_video", lambda video, exercise, **kw: real(
        video, exercise, **dict(kw, estimator=FakeEstimator(reps=2, rep_s=1.5, lead_s=0.3), parallel=False)))
    data = write_video(tmp_path / "c.mp4", frames=150, fps=30).read_bytes()
    at = wait_for_job(upload_and_start(app(exercise="squat"), "clip.mp4", data))
    assert not at.exception
    assert any("being drawn" in e.value for e in at.info), [e.value for e in at.info]
    assert len(at.get("video")) == 1 and at.get("video")[0].proto.url  # the original upload meanwhile
    labels = [e.proto.label for e in at.get("download_button")]
    assert "Reps (JSON)" in labels and "Annotated video (mp4)" not in labels
    assert at.dataframe  # the rep table
    gate.set()
    job = job_in_url(at)
    wait_state(job, lambda s: s.stage in ("drawn", "not_drawn"))
    at.run()
    assert not any("being drawn" in e.value for e in at.info)
    assert "Annotated video (mp4)" in [e.proto.label for e in at.get("download_button")]
    assert status(job).stage == "drawn"


def test_a_running_job_shows_its_step_the_time_left_and_why_it_is_slow(workspace):
    """What the progress says while a job runs (issue 24): the step with its frames, the time left, and the
    plain busy note when the job says other programs slow it (and not when it does not)."""
    import os
    import secrets

    from dashboard.common import BUSY_NOTE

    jobs_dir = load_settings().jobs_dir
    for busy in (True, False):
        job = secrets.token_hex(16)
        (jobs_dir / job).mkdir(parents=True)
        jobs.write_status(jobs_dir, jobs.JobStatus(
            id=job, state=jobs.RUNNING, video="20260101-000000_clip.mp4", name="clip.mp4", exercise="squat",
            created=time.time(), started=time.time(), pid=os.getpid(), stage="analysing", done=100, total=300,
            eta_s=12.0, busy=busy))
        at = app(job).run()
        assert not at.exception, [e.message for e in at.exception]
        assert progress_texts(at) == ["Analysing frame 100 of 300..."]
        assert any("12 s left" in c.value for c in at.caption), [c.value for c in at.caption]
        assert any(BUSY_NOTE in i.value for i in at.info) is busy
        # The bar steps to each new value (a slide is redrawn frame by frame: CPU the analysis needs), and the
        # progress is not dimmed as stale while a look waits for the result on the server.
        css = [h.proto.body for h in at.get("html") if "stProgress" in h.proto.body]
        assert len(css) == 1 and "transition: none" in css[0] and '[data-stale="true"] {opacity: 1' in css[0], css
