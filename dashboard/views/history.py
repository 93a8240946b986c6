"""History: every analysed video and saved live session, progress per exercise, details, deletion."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import charts, keys
from dashboard.common import current, fmt, history_store, plain, plain_error
from pose_core.store.history import HistoryError, SessionRecord
from pose_core.core.confine import is_within, shown_path

cur = current()
S = cur.settings
store = history_store(S)

st.title("History")
st.caption("Every analysed video and every saved live session. Follow your progress per exercise and open any "
           "session to see its reps.")

msg = st.session_state.pop(keys.HIST_MESSAGE, None)
if msg:
    if msg[0] == "ok":
        st.success(msg[1], icon=":material/check_circle:")
    else:
        st.error(msg[1], icon=":material/error:")

try:
    store.import_pending()
    sessions = store.list_sessions()
except HistoryError as e:
    st.error(plain_error(e), icon=":material/error:")
    pending = store.pending()
    if pending:
        st.info(f"{len(pending)} session(s) are kept safely in {plain(shown_path(store.pending_dir, S.workspace))} "
                "(in your workspace) and will be added when the "
                "database works again.")
    st.stop()

if not sessions:
    st.info("No sessions yet. Analyse a video on the Analyze page, or save a live session, and it will appear "
            "here.", icon=":material/info:")
    st.stop()


def when(r: SessionRecord) -> str:
    try:
        return datetime.fromisoformat(r.created_at).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return r.created_at


def name_of(ex: str) -> str:
    return cur.rules[ex].display_name if ex in cur.rules.exercises else ex


table = pd.DataFrame([{
    "#": r.id, "date": when(r), "exercise": name_of(r.exercise), "source": r.source, "name": r.name,
    "reps": r.rep_count, "correct reps": r.reps_correct, "frames correct %": r.frames_correct_pct,
    "depth (°)": r.avg_extreme, "duration (s)": round(r.duration_s, 1)} for r in sessions])
st.dataframe(table, hide_index=True, width="stretch",
             column_config={"frames correct %": st.column_config.NumberColumn(format="%.1f"),
                            "depth (°)": st.column_config.NumberColumn(format="%.0f")})

# ---------------------------------------------------------------------------------------- progress
st.markdown("#### Progress")
exercises = sorted({r.exercise for r in sessions}, key=name_of)
default_ex = cur.exercise if cur.exercise in exercises else exercises[0]
ex = st.selectbox("Exercise", exercises, index=exercises.index(default_ex), format_func=name_of,
                  key=keys.HIST_PROGRESS_EXERCISE)
rows = store.progress(ex)
rule = cur.rules[ex] if ex in cur.rules.exercises else None
depth_label = (f"Average {'depth' if rule is None or rule.counting.rest == 'high' else 'peak'} "
               f"({rule.primary_angle if rule else 'primary angle'}, °)")
if len(rows) < 2:
    st.caption("One session so far: progress charts appear from the second session on.")
st.plotly_chart(charts.progress_chart(rows, depth_label), width="stretch", config={"displaylogo": False})

# ----------------------------------------------------------------------------------------- details
st.markdown("#### Session details")
ids = [r.id for r in sessions]
labels = {r.id: f"#{r.id} · {when(r)} · {name_of(r.exercise)} · {r.name}" for r in sessions}
sel = st.selectbox("Session", ids, format_func=labels.get, key=keys.HIST_SELECTED)
try:
    rec = store.get(sel) if sel is not None else None
except HistoryError as e:
    st.error(plain_error(e))
    rec = None
if rec is not None:
    m = st.columns(5)
    m[0].metric("Reps", rec.rep_count)
    m[1].metric("Correct reps", f"{rec.reps_correct} / {rec.rep_count}")
    m[2].metric("Frames correct", fmt(rec.frames_correct_pct, "%", 1))
    m[3].metric("Depth", fmt(rec.avg_extreme, "°"))
    m[4].metric("Avg rep time", fmt(rec.avg_rep_s, " s", 1))
    if rec.reps:
        st.dataframe(pd.DataFrame([{
            "rep": r.index, "start (s)": round(r.start_s, 2), "end (s)": round(r.end_s, 2),
            "min (°)": round(r.primary_min), "max (°)": round(r.primary_max), "duration (s)": round(r.duration_s, 2),
            "verdict": r.verdict, "reasons": "; ".join(r.reasons)} for r in rec.reps]), hide_index=True, width="stretch")
    adir = Path(rec.analysis_dir) if rec.analysis_dir else None
    if adir is not None and is_within(S.analyses_dir, adir) and (adir / "annotated.mp4").is_file():
        with st.expander("Annotated video", icon=":material/movie:"):
            st.video(str(adir / "annotated.mp4"))

    # Deleting asks for confirmation first (callbacks: the next run already shows the result).
    def ask(session_id: int) -> None:
        st.session_state[keys.HIST_PENDING_DELETE] = session_id

    def cancel() -> None:
        st.session_state.pop(keys.HIST_PENDING_DELETE, None)

    def confirm(session_id: int) -> None:
        st.session_state.pop(keys.HIST_PENDING_DELETE, None)
        also_files = bool(st.session_state.get(keys.HIST_DELETE_FILES, False))
        try:
            store.delete(session_id, files_root=S.analyses_dir if also_files else None)
        except HistoryError as e:
            st.session_state[keys.HIST_MESSAGE] = ("error", f"Not deleted: {plain_error(e)}")
            return
        st.session_state[keys.HIST_MESSAGE] = ("ok", f"Session #{session_id} deleted.")
        st.session_state.pop(keys.HIST_SELECTED, None)

    if st.session_state.get(keys.HIST_PENDING_DELETE) != rec.id:
        st.button("Delete this session", key=keys.HIST_DELETE, icon=":material/delete:", on_click=ask, args=(rec.id,))
    else:
        st.warning(f"Delete session #{rec.id} ({plain(rec.name)}, {rec.rep_count} reps) for good?", icon=":material/warning:")
        st.checkbox("Also delete its annotated video and analysis files", key=keys.HIST_DELETE_FILES,
                    disabled=adir is None)
        c1, c2, _ = st.columns([1, 1, 4])
        c1.button("Yes, delete", key=keys.HIST_CONFIRM, type="primary", icon=":material/delete_forever:",
                  on_click=confirm, args=(rec.id,))
        c2.button("Cancel", key=keys.HIST_CANCEL, on_click=cancel)
