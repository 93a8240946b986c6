"""Analyze a video: upload (or pick an earlier upload) -> counted, judged reps, annotated video, timeline.
With Auto in the sidebar the exercise is recognised first (pose_core.run.pipeline, exercise="auto")."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard import keys
from dashboard.common import (AUTO, candidates_text, current, estimator_factory, exercise_label, history_store, plain,
                              plain_error)
from dashboard.exercise_picker import exercise_picker_inline
from dashboard.result_view import show_result
from pose_core.store.history import HistoryError, record_from_analysis
from pose_core.run.pipeline import RECOGNIZE_SECONDS, AnalysisError, CannotTellError, NoPersonError, analyze_video
from pose_core.core.confine import PathError, is_within
from pose_core.media.video import VIDEO_EXTENSIONS
from pose_core.store.uploads import UploadTooLargeError, list_files, new_analysis_dir, store_upload, upload_display_name
from pose_core.media.video import VideoError

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
    st.caption(f"Upload a video of one person doing **{shown_rule}s** (change the exercise in the "
               "sidebar, or choose Auto to have it recognised). GymPose finds the body in every frame, counts the "
               "reps, judges each one against the rules and shows you where your form breaks down. "
               f"Files up to {S.max_upload_mb:.0f} MB.")

exercise_picker_inline(cur)  # (phones fold the sidebar away)
earlier = list_files(S.uploads_dir)
source = st.radio("Video", [keys.SOURCE_NEW, keys.SOURCE_EARLIER], key=keys.ANALYZE_SOURCE, horizontal=True,
                  label_visibility="collapsed", disabled=not earlier)
video_path: Path | None = None
upload = None
if source == keys.SOURCE_EARLIER and earlier:
    names = [p.name for p in earlier]
    chosen = st.selectbox("Earlier upload", names, key=keys.ANALYZE_EARLIER,
                          format_func=lambda n: f"{upload_display_name(n)}  (uploaded {n[:8]} {n[9:11]}:{n[11:13]})"
                          if n[:8].isdigit() else n)
    video_path = S.uploads_dir / chosen if chosen else None
else:
    upload = st.file_uploader("Workout video", type=list(VIDEO_EXTENSIONS), key=keys.ANALYZE_UPLOAD,
                              max_upload_size=max(1, int(S.max_upload_mb)),
                              help="mp4, mov, webm, mkv or avi; phone videos (portrait, rotated) are fine.")

has_video = upload is not None or video_path is not None
start = st.button("Analyze (recognise the exercise)" if auto else f"Analyze as {shown_rule}",
                  key=keys.ANALYZE_RUN, type="primary", icon=":material/play_arrow:", disabled=not has_video)
# "Analyze as <candidate>" after a cannot-tell answer: the sidebar now holds that exercise; start at once.
start = bool(st.session_state.pop(keys.ANALYZE_AUTOSTART, False) and has_video) or start


def pick_exercise(name: str) -> None:  # callback: runs before the next run renders the sidebar
    st.session_state[keys.EXERCISE] = name
    st.session_state[keys.EXERCISE_LAST] = name
    st.session_state[keys.ANALYZE_AUTOSTART] = True


def cannot_tell(rec) -> None:
    """Auto could not decide: say so plainly, with the reason and the candidates, and let the user pick."""
    nobody = rec.frames_with_pose == 0
    text = f"**GymPose cannot tell which exercise this is**: {plain(rec.reason)}."
    if rec.top:
        text += f" Closest candidates: {candidates_text(cur.rules, rec.top)}."
    text += (" Make sure your whole body is in the frame and well lit." if nobody else
             " Pick the exercise below, or in the sidebar, and analyse again.")
    st.warning(text, icon=":material/help:")
    picks = [n for n, _ in rec.top if n in cur.rules.exercises]
    if picks and not nobody:
        cols = st.columns(len(picks) + 2)
        for col, name in zip(cols, picks):
            col.button(f"Analyze as {plain(exercise_label(cur.rules, name).lower())}", key=keys.analyze_pick(name),
                       on_click=pick_exercise, args=(name,), icon=":material/play_arrow:", width="stretch")


def progress_on(bar):
    """The pipeline's progress callback drawing on `bar`. With Auto the pipeline reports twice: first the
    frames it recognises on, then the whole analysis (the count starts again from 1)."""
    stage = {"recognising": auto, "last": 0}

    def progress(done: int, total: int) -> None:
        if done < stage["last"]:
            stage["recognising"] = False
        stage["last"] = done
        if done % 5 == 0 or done == total:
            frac = min(1.0, done / total) if total else 0.0
            what = "Recognising the exercise: frame" if stage["recognising"] else "Analysing frame"
            bar.progress(frac, text=f"{what} {done} of {total or '?'}...")

    return progress


def run_analysis() -> None:
    fresh = False
    shown_name = ""
    try:
        if upload is not None:
            path = store_upload(upload, upload.name, S.uploads_dir, S.max_upload_bytes, size=upload.size)
            fresh = True
        else:
            path = video_path
            if path is None or not is_within(S.uploads_dir, path) or not path.is_file():
                st.error("That upload is no longer available. Upload the video again.")
                return
        shown_name = upload.name if upload is not None else upload_display_name(path.name)
        out_dir = new_analysis_dir(S.analyses_dir, shown_name, AUTO if auto else rule.name)
        bar = st.progress(0.0, text="Starting the analysis...")
        result = analyze_video(path, AUTO if auto else rule.name, out_dir=out_dir, rules=cur.rules,
                               progress=progress_on(bar), estimator=estimator_factory()())
        bar.empty()
    except UploadTooLargeError as e:
        st.error(f"This video is too large. {plain_error(e)}", icon=":material/error:")
        return
    except PathError as e:
        st.error(f"This file cannot be used: {plain_error(e)}", icon=":material/error:")
        return
    except VideoError:
        st.error("This file is not a video GymPose can read (it may be corrupt or in another format). "
                 "Try an mp4 or mov file straight from your phone or camera.", icon=":material/error:")
        if fresh:
            path.unlink(missing_ok=True)
        return
    except CannotTellError as e:  # (an AnalysisError: caught first)
        bar.empty()
        cannot_tell(e.recognition)
        if fresh:
            path.unlink(missing_ok=True)
        return
    except NoPersonError:
        st.error("Nobody was found in this video. Make sure your whole body is in the frame and well lit.",
                 icon=":material/person_off:")
        if fresh:
            path.unlink(missing_ok=True)
        return
    except AnalysisError as e:
        st.error(f"The analysis failed: {plain_error(e)}", icon=":material/error:")
        if fresh:
            path.unlink(missing_ok=True)
        return
    st.session_state[keys.ANALYZE_RESULT_DIR] = str(out_dir)
    save_to_history(result, out_dir, shown_name)


def save_to_history(result, out_dir: Path, shown_name: str) -> None:
    s = result.summary
    auto = {"exercise_auto": True, "exercise_confidence": s.exercise_confidence} if s.exercise_auto else {}
    record = record_from_analysis(s, result.reps, out_dir, rest=cur.rules[s.exercise].counting.rest,
                                  name=shown_name, extra=auto)
    try:
        history_store(S).add(record)
    except HistoryError as e:
        st.warning(f"The analysis is done but could not be added to your history: {plain_error(e)}", icon=":material/warning:")


if start:
    st.session_state.pop(keys.ANALYZE_RESULT_DIR, None)  # a failed new analysis must not show the previous result
    run_analysis()

result_dir = st.session_state.get(keys.ANALYZE_RESULT_DIR)
if result_dir and is_within(S.analyses_dir, result_dir) and Path(result_dir).is_dir():
    show_result(result_dir, cur)
