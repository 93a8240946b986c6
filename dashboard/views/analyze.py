"""Analyze a video: upload (or pick an earlier upload) -> counted, judged reps, annotated video, timeline.
With Auto in the sidebar the exercise is recognised first (pose_core.run.pipeline, exercise="auto").
The analysis runs as a job (pose_core.run.jobs) that outlives the page: its id is in the URL (?job=...), the
page polls its progress, and a reload or a new tab with that URL shows the progress and then the result."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard import keys
from dashboard.common import (AUTO, BUSY_NOTE, END_WAIT_S, FRESH_TABLE_LEAD_S, JOB_POLL_S, JOB_PROGRESS_CSS,
                              JOB_PROGRESS_KEY, candidates_text, current, exercise_label, history_store, job_near_end,
                              job_runner, plain, plain_error, plural, progress_detail, progress_text, show_name,
                              when_text)
from dashboard.exercise_picker import exercise_picker_inline
from dashboard.result_view import show_result
from pose_core.recognition import Recognition
from pose_core.run.job_status import CANNOT_TELL, DONE, NO_PERSON, QUEUED, JobError
from pose_core.run.pipeline import RECOGNIZE_SECONDS
from pose_core.core.confine import PathError, is_within
from pose_core.media.video import VIDEO_EXTENSIONS
from pose_core.store.uploads import EmptyUploadError, UploadTooLargeError, list_uploads, store_upload

cur = current()
rule = cur.rule
S = cur.settings
shown_rule = plain(rule.display_name.lower())  # rule names come from a rules file: plain text only
auto = cur.auto

st.title("Analyze a workout video")
if auto:
    st.caption(f"Upload a video of one person doing one of the {len(cur.rules.exercises)} exercises. GymPose "
               f"recognises which one from the first {RECOGNIZE_SECONDS:.0f} s (**Auto** in the sidebar; pick an "
               "exercise there to skip this), then counts the reps, judges each one against that exercise's rules "
               f"and shows you where your form breaks down. Files up to {S.max_upload_mb:.0f} MB.")
else:
    st.caption(f"Upload a video of one person doing one exercise, here **{shown_rule}** (change it in the "
               "sidebar, or choose Auto to have it recognised). GymPose finds the body in every frame, counts the "
               "reps, judges each one against the rules and shows you where your form breaks down. "
               f"Files up to {S.max_upload_mb:.0f} MB.")

exercise_picker_inline(cur)  # (phones fold the sidebar away)
earlier = {u.path.name: u for u in list_uploads(S.uploads_dir)}  # (one entry per video, newest first)
source = st.radio("Video", [keys.SOURCE_NEW, keys.SOURCE_EARLIER], key=keys.ANALYZE_SOURCE, horizontal=True,
                  label_visibility="collapsed", disabled=not earlier)
video_path: Path | None = None
upload = None
if source == keys.SOURCE_EARLIER and earlier:
    # (option labels are plain text: the name as the user gave it, whatever characters it holds)
    chosen = st.selectbox("Earlier upload", list(earlier), key=keys.ANALYZE_EARLIER,
                          format_func=lambda n: f"{earlier[n].name} · uploaded {when_text(earlier[n].uploaded)}")
    video_path = S.uploads_dir / chosen if chosen else None
else:
    upload = st.file_uploader("Workout video", type=list(VIDEO_EXTENSIONS), key=keys.ANALYZE_UPLOAD,
                              max_upload_size=max(1, int(S.max_upload_mb)),
                              help="mp4, mov, webm, mkv or avi; phone videos (portrait, rotated) are fine.")

runner = job_runner(S)
# The job on display: the URL's (a reload, a link opened in another tab), else this session's last one (back
# from another page, whose URL has no job).
shown_job = st.query_params.get(keys.QUERY_JOB) or st.session_state.get(keys.ANALYZE_JOB)
try:
    busy = bool(shown_job) and not runner.status(shown_job).final  # (one click, one analysis)
except JobError:
    busy = False

has_video = upload is not None or video_path is not None
start = st.button("Analyze (recognise the exercise)" if auto else f"Analyze as {shown_rule}",
                  key=keys.ANALYZE_RUN, type="primary", icon=":material/play_arrow:", disabled=not has_video or busy,
                  help="This analysis is still running: wait for it (or open GymPose in another tab to start "
                       "another one)." if busy else None)
# "Analyze as <candidate>" after a cannot-tell answer: the sidebar now holds that exercise; start at once.
autostart = bool(st.session_state.pop(keys.ANALYZE_AUTOSTART, False))


def pick_exercise(name: str) -> None:  # callback: runs before the next run renders the sidebar
    st.session_state[keys.EXERCISE] = name
    st.session_state[keys.EXERCISE_LAST] = name
    st.session_state[keys.ANALYZE_AUTOSTART] = True


def cannot_tell(rec, repeats: dict[str, int] | None = None) -> None:
    """Auto could not decide: say so plainly, with the reason, the candidates and how often the movement
    repeats when counted as each, and let the user pick with one click."""
    nobody = rec.frames_with_pose == 0
    head = ("**This does not look like one of the exercises GymPose knows**" if getattr(rec, "none_of_these", False)
            else "**GymPose cannot tell which exercise this is**")
    text = f"{head}: {plain(rec.reason)}."
    if rec.top:
        text += f" Closest candidates: {candidates_text(cur.rules, rec.top)}."
    counted = [(n, k) for n, k in (repeats or {}).items() if n in cur.rules.exercises]
    if counted and not nobody:
        text += " Counted as each, the first seconds hold " + ", ".join(
            f"{k} {plain(exercise_label(cur.rules, n).lower())} rep{'s' if k != 1 else ''}" for n, k in counted) + "."
    text += (" Make sure your whole body is in the frame and well lit." if nobody else
             " Pick the exercise below, or in the sidebar, and analyse again.")
    st.warning(text, icon=":material/help:")
    picks = [n for n, _ in rec.top if n in cur.rules.exercises]
    if picks and not nobody:
        cols = st.columns(len(picks) + 2)
        for col, name in zip(cols, picks):
            col.button(f"Analyze as {plain(exercise_label(cur.rules, name).lower())}", key=keys.analyze_pick(name),
                       on_click=pick_exercise, args=(name,), icon=":material/play_arrow:", width="stretch")


def show_job_here(job_id: str | None) -> None:
    if job_id:
        st.session_state[keys.ANALYZE_JOB] = job_id
        st.query_params[keys.QUERY_JOB] = job_id
    else:
        st.session_state.pop(keys.ANALYZE_JOB, None)
        st.query_params.pop(keys.QUERY_JOB, None)


def submit(path: Path, name: str, owns_upload: bool) -> None:
    """Start the analysis as a job (pose_core.run.jobs): it goes on if the page is reloaded or left, and
    adds its history row itself. The job's id goes into the URL."""
    job_id = runner.submit(path, AUTO if auto else rule.name, cur.rules, name=name, owns_upload=owns_upload,
                           history=history_store(S))
    st.session_state.pop(keys.ANALYZE_RESULT_DIR, None)  # a failed new analysis must not show the previous result
    show_job_here(job_id)


def start_analysis() -> None:
    """Store the upload (or check the earlier one) and submit it (the page then shows the new job)."""
    show_job_here(None)  # a failed new start must not show the previous job or result
    st.session_state.pop(keys.ANALYZE_RESULT_DIR, None)
    try:
        if upload is not None:
            path = store_upload(upload, upload.name, S.uploads_dir, S.max_upload_bytes, size=upload.size)
            submit(path, upload.name, owns_upload=True)
            return
        if video_path is None or not is_within(S.uploads_dir, video_path) or not video_path.is_file():
            st.error("That upload is no longer available. Upload the video again.")
            return
        if video_path.stat().st_size == 0:
            raise EmptyUploadError("0 bytes")
        submit(video_path, earlier[video_path.name].name if video_path.name in earlier else video_path.name,
               owns_upload=False)
    except EmptyUploadError:
        st.error("The file is empty (0 bytes): there is no video in it. Check the file on your device and upload "
                 "it again.", icon=":material/error:")
    except UploadTooLargeError as e:
        st.error(f"This video is too large. {plain_error(e)}", icon=":material/error:")
    except PathError as e:
        st.error(f"This file cannot be used: {plain_error(e)}", icon=":material/error:")


def analyze_again_as_picked(job_id: str | None) -> bool:
    """After "Analyze as <exercise>" (a cannot-tell answer's candidates, or a result without reps whose movement
    looks like another exercise): the job's own upload is analysed again (the upload widget is empty after a
    reload). False when there is no such job."""
    try:
        prev = runner.status(job_id) if job_id else None
    except JobError:
        return False
    if prev is None or prev.state not in (CANNOT_TELL, DONE):
        return False
    path = S.uploads_dir / prev.video
    if not path.is_file():
        st.error("That upload is no longer available. Upload the video again.")
        show_job_here(None)
        return True
    # (a finished analysis refers to its upload: the new job must never remove it)
    submit(path, prev.name, owns_upload=prev.owns_upload and prev.state == CANNOT_TELL)
    return True


@st.fragment(run_every=JOB_POLL_S)
def job_progress(job_id: str) -> None:
    """The running job's progress, polled; the whole page reruns once it is finished (to show the result).
    Near its end the result is waited for here (at most END_WAIT_S), not a whole poll later."""
    try:
        s = runner.status(job_id)
        if not s.final and job_near_end(s):
            s = runner.wait(job_id, timeout_s=END_WAIT_S, poll_s=0.05)
    except JobError:
        st.rerun()
    if s.final:
        st.session_state[keys.ANALYZE_FRESH] = True  # (watched to its end: the result is drawn table first)
        st.rerun()
    if s.state == QUEUED:
        ahead = runner.ahead(job_id)
        st.progress(0.0, text=f"Waiting for {plural(ahead, 'analysis', 'analyses')} ahead of this one "
                              "(one runs at a time)..." if ahead else "Waiting to start...")
    else:
        st.progress(s.fraction, text=progress_text(s))
        detail = progress_detail(s)
        if detail:
            st.caption(detail)
        if s.busy:
            st.info(BUSY_NOTE, icon=":material/speed:")


def show_job(job_id: str) -> None:
    """A job's progress while it runs; once finished, its result (via ANALYZE_RESULT_DIR) or its message."""
    try:
        s = runner.status(job_id)
    except JobError as e:
        st.error(plain(e), icon=":material/link_off:")
        show_job_here(None)
        st.session_state.pop(keys.ANALYZE_RESULT_DIR, None)
        return
    if not s.final:
        st.session_state.pop(keys.ANALYZE_RESULT_DIR, None)
        st.html(JOB_PROGRESS_CSS)
        with st.container(key=JOB_PROGRESS_KEY):
            job_progress(job_id)
        # (outside the look: what does not change is not sent again with each look)
        show_name(s.name)  # (as typed, plain text: the same name the result and History show)
        st.caption("The analysis goes on if you reload or leave this page; this page's address (with its job id) "
                   "shows it again, and the result is saved to your history.")
        return
    if s.state == DONE:
        st.session_state[keys.ANALYZE_RESULT_DIR] = str(S.analyses_dir / s.result_dir)
        st.session_state[keys.ANALYZE_RESULT_NAME] = s.name
        if s.history_warning:
            st.warning(f"The analysis is done but could not be added to your history: {plain_error(s.history_warning)}",
                       icon=":material/warning:")
        return
    st.session_state.pop(keys.ANALYZE_RESULT_DIR, None)
    if s.state == CANNOT_TELL and s.recognition:
        rec = {k: v for k, v in s.recognition.items() if k != "repeats"}
        cannot_tell(Recognition(**{k: (tuple(tuple(c) for c in v) if k == "top" else v) for k, v in rec.items()}),
                    s.recognition.get("repeats"))
    elif s.state == NO_PERSON:
        st.error("Nobody was found in this video. Make sure your whole body is in the frame and well lit.",
                 icon=":material/person_off:")
    elif s.kind == "video":
        st.error("This file is not a video GymPose can read (it may be corrupt or in another format). "
                 "Try an mp4 or mov file straight from your phone or camera.", icon=":material/error:")
    elif s.kind == "no_space":
        st.error(f"The analysis failed: {plain_error(s.message)}. Free some disk space and analyse the video "
                 "again.", icon=":material/hard_drive:")
    elif s.kind in ("missing_upload", "interrupted"):
        st.error(plain(s.message), icon=":material/error:")
    else:
        st.error(f"The analysis failed: {plain_error(s.message)}", icon=":material/error:")


if start or autostart:
    if start or not analyze_again_as_picked(shown_job):
        if has_video:
            start_analysis()
    shown_job = st.session_state.get(keys.ANALYZE_JOB)
if shown_job:
    show_job(shown_job)

fresh = st.session_state.pop(keys.ANALYZE_FRESH, False)  # (this run only, whatever the job's end was)
result_dir = st.session_state.get(keys.ANALYZE_RESULT_DIR)
if result_dir and is_within(S.analyses_dir, result_dir) and Path(result_dir).is_dir():
    show_result(result_dir, cur, st.session_state.get(keys.ANALYZE_RESULT_NAME),
                table_lead_s=FRESH_TABLE_LEAD_S if fresh else 0.0)
