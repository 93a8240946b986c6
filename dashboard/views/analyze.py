"""Analyze a video: upload (or pick an earlier upload) -> counted, judged reps, annotated video, timeline.
With Auto in the sidebar the exercise is recognised first (pose_core.run.pipeline, exercise="auto")."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import charts, keys
from dashboard.common import (AUTO, LOW_CONFIDENCE, candidates_text, current, estimator_factory, exercise_label, fmt,
                              history_store, plain, plain_error, pose_pool, rep_table)
from pose_core.store.history import HistoryError, record_from_analysis
from pose_core.run.pipeline import RECOGNIZE_SECONDS, AnalysisError, CannotTellError, NoPersonError, analyze_video
from pose_core.core.confine import PathError, is_within
from pose_core.core.types import RestSide
from pose_core.media.video import VIDEO_EXTENSIONS
from pose_core.store.uploads import UploadTooLargeError, list_files, new_analysis_dir, store_upload, upload_display_name
from pose_core.store.outputs import ANNOTATED_VIDEO, FRAMES_CSV, REPS_JSON, load_analysis
from pose_core.store.tuning import correct_bands
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
                               progress=progress_on(bar), estimator_factory=estimator_factory(), pool=pose_pool())
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
    try:
        a = load_analysis(result_dir)
    except ValueError as e:
        st.error(plain_error(e))
        st.stop()
    s = a.summary
    res_rule = cur.rules[s.exercise] if s.exercise in cur.rules.exercises else rule
    res_name = plain(res_rule.display_name)
    st.subheader(f"{res_name}: {plain(upload_display_name(s.video))}")
    if s.exercise_auto:
        conf = float(s.exercise_confidence or 0.0)
        others = [c for c in s.exercise_candidates if c[0] != s.exercise and c[1] >= 0.005]
        said = f"Recognised: **{res_name}** ({conf:.0%} sure)"
        tail = (f" Other candidates: {candidates_text(cur.rules, others)}." if others else "")
        if conf < LOW_CONFIDENCE:
            st.warning(f"{said}. **Low confidence**: GymPose is not sure this is {res_name.lower()}, "
                       f"the reps below are counted as if it were.{tail} If it is wrong, pick the exercise in the "
                       "sidebar and analyse again.", icon=":material/help:")
        else:
            st.success(f"{said}.{tail}", icon=":material/auto_awesome:")
    c = st.columns(5)
    n_reps = s.reps
    c[0].metric("Reps", n_reps, help="Complete repetitions (a cut-off rep at the start or end is not counted).")
    c[1].metric("Correct reps", f"{s.reps_correct} / {n_reps}")
    if n_reps:  # with no rep, per-rep and per-frame form figures mean nothing
        c[2].metric("Frames with correct form", fmt(s.frames_correct_pct, "%", 1))
        extreme = "Avg depth" if res_rule.counting.rest == RestSide.HIGH else "Avg peak"
        c[3].metric(f"{extreme} ({res_rule.primary_angle})", fmt(s.avg_extreme, "°"))
        c[4].metric("Avg rep time", fmt(s.avg_rep_s, " s", 1),
                    help="A full cycle, rest to rest: from starting one rep to starting the next (pauses "
                         "included). The rep table splits each rep into down and up.")
    view = s.view
    seen = f"Camera view: **{view}**." if view else "Camera view: not known."
    if s.partial_reps:
        seen += f" {s.partial_reps} partial rep(s) cut off at the start or end were not counted."
    st.caption(seen)
    for note in s.notes:
        st.warning(plain(note), icon=":material/info:")

    left, right = st.columns([1, 1])
    with left:
        if a.video is not None:
            st.video(str(a.video))
        else:
            st.info("No annotated video was written for this analysis.")
    with right:
        extra = st.multiselect("Also show", [n for n in res_rule.angles if n != res_rule.primary_angle],
                               key=keys.ANALYZE_EXTRA_ANGLES, placeholder="secondary angles")
        st.plotly_chart(charts.angle_timeline(a.frames, list(a.reps), res_rule,
                                              correct_bands(res_rule, res_rule.primary_angle), extra),
                        width="stretch", config={"displaylogo": False})

    st.markdown("#### Reps")
    if a.reps:
        st.dataframe(rep_table(a.reps, res_rule), hide_index=True, width="stretch",
                     column_config={"reasons": st.column_config.TextColumn(width="large"),
                                    "not judged": st.column_config.TextColumn(width="medium")})
    else:
        st.info("No complete rep was found. " + plain(" ".join(s.notes)) +
                " Check the exercise in the sidebar and that the whole movement is in the frame.")

    d = st.columns(3)
    for col, name, label, mime, key in ((d[0], ANNOTATED_VIDEO, "Annotated video (mp4)", "video/mp4", keys.ANALYZE_DL_VIDEO),
                                        (d[1], FRAMES_CSV, "Per-frame data (CSV)", "text/csv", keys.ANALYZE_DL_FRAMES),
                                        (d[2], REPS_JSON, "Reps (JSON)", "application/json", keys.ANALYZE_DL_REPS)):
        f = a.file(name)
        if f is not None:
            col.download_button(label, data=f.read_bytes, file_name=f"{a.path.name}_{name}", mime=mime, key=key,
                                icon=":material/download:", width="stretch")
