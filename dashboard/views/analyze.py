"""Analyze a video: upload (or pick an earlier upload) -> counted, judged reps, annotated video, timeline."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import charts, keys
from dashboard.common import current, estimator_factory, fmt, history_store
from pose_core.history import HistoryError, record_from_analysis
from pose_core.pipeline import AnalysisError, NoPersonError, analyze_video
from pose_core.settings import (VIDEO_EXTENSIONS, PathError, UploadTooLargeError, is_within, list_files,
                                new_analysis_dir, store_upload, upload_display_name)
from pose_core.tuning import correct_bands, load_analysis
from pose_core.video import VideoError

cur = current()
rule = cur.rule
S = cur.settings

st.title("Analyze a workout video")
st.caption(f"Upload a video of one person doing **{rule.display_name.lower()}s** (change the exercise in the "
           "sidebar). GymPose finds the body in every frame, counts the reps, judges each one against the "
           f"rules and shows you where your form breaks down. Files up to {S.max_upload_mb:.0f} MB.")

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

start = st.button(f"Analyze as {rule.display_name.lower()}", key=keys.ANALYZE_RUN, type="primary",
               icon=":material/play_arrow:", disabled=upload is None and video_path is None)


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
        out_dir = new_analysis_dir(S.analyses_dir, shown_name, rule.name)
        bar = st.progress(0.0, text="Starting the analysis...")

        def progress(done: int, total: int) -> None:
            if done % 5 == 0 or done == total:
                frac = min(1.0, done / total) if total else 0.0
                bar.progress(frac, text=f"Analysing frame {done} of {total or '?'}...")

        result = analyze_video(path, rule.name, out_dir=out_dir, rules=cur.rules, progress=progress,
                               estimator=estimator_factory()())
        bar.empty()
    except UploadTooLargeError as e:
        st.error(f"This video is too large. {e}", icon=":material/error:")
        return
    except PathError as e:
        st.error(f"This file cannot be used: {e}", icon=":material/error:")
        return
    except VideoError:
        st.error("This file is not a video GymPose can read (it may be corrupt or in another format). "
                 "Try an mp4 or mov file straight from your phone or camera.", icon=":material/error:")
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
        st.error(f"The analysis failed: {e}", icon=":material/error:")
        if fresh:
            path.unlink(missing_ok=True)
        return
    st.session_state[keys.ANALYZE_RESULT_DIR] = str(out_dir)
    try:
        history_store(S).add(record_from_analysis(result.summary, result.reps, out_dir, rest=rule.counting.rest,
                                                  name=shown_name))
    except HistoryError as e:
        st.warning(f"The analysis is done but could not be added to your history: {e}", icon=":material/warning:")


if start:
    run_analysis()

result_dir = st.session_state.get(keys.ANALYZE_RESULT_DIR)
if result_dir and is_within(S.analyses_dir, result_dir) and Path(result_dir).is_dir():
    try:
        a = load_analysis(result_dir)
    except ValueError as e:
        st.error(str(e))
        st.stop()
    s = a.summary
    res_rule = cur.rules[s["exercise"]] if s.get("exercise") in cur.rules.exercises else rule
    st.subheader(f"{res_rule.display_name}: {upload_display_name(s.get('video', ''))}")
    c = st.columns(5)
    c[0].metric("Reps", s.get("reps", 0), help="Complete repetitions (a cut-off rep at the start or end is not counted).")
    c[1].metric("Correct reps", f"{s.get('reps_correct', 0)} / {s.get('reps', 0)}")
    c[2].metric("Frames with correct form", fmt(s.get("frames_correct_pct"), "%", 1))
    extreme = "Avg depth" if res_rule.counting.rest == "high" else "Avg peak"
    c[3].metric(f"{extreme} ({res_rule.primary_angle})", fmt(s.get("avg_extreme"), "°"))
    c[4].metric("Avg rep time", fmt(s.get("avg_rep_s"), " s", 1))
    if s.get("partial_reps"):
        st.caption(f"{s['partial_reps']} partial rep(s) at the start or end were not counted.")

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
        table = pd.DataFrame([{
            "rep": r.index,
            "start (s)": round(r.start_s, 2),
            "end (s)": round(r.end_s, 2),
            f"{res_rule.primary_angle} min (°)": round(r.primary_min),
            f"{res_rule.primary_angle} max (°)": round(r.primary_max),
            "down (s)": round(r.down_s, 2),
            "up (s)": round(r.up_s, 2),
            "verdict": r.verdict,
            "reasons": "; ".join(r.reasons),
        } for r in a.reps])
        st.dataframe(table, hide_index=True, width="stretch",
                     column_config={"reasons": st.column_config.TextColumn(width="large")})
    else:
        st.info("No complete rep was found. Check the exercise in the sidebar, and that the whole movement "
                "is visible from the side.")

    d = st.columns(3)
    for col, name, label, mime, key in ((d[0], "annotated.mp4", "Annotated video (mp4)", "video/mp4", keys.ANALYZE_DL_VIDEO),
                                        (d[1], "frames.csv", "Per-frame data (CSV)", "text/csv", keys.ANALYZE_DL_FRAMES),
                                        (d[2], "reps.json", "Reps (JSON)", "application/json", keys.ANALYZE_DL_REPS)):
        f = a.file(name)
        if f is not None:
            col.download_button(label, data=f.read_bytes, file_name=f"{a.path.name}_{name}", mime=mime, key=key,
                                icon=":material/download:", width="stretch")
