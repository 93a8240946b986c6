"""History: every analysed video and saved live session, progress per exercise, details, deletion."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import charts, keys
from dashboard.common import current, fmt, history_store, keep_choice, plain, plain_error, restore_choice
from pose_core.store.history import HistoryError, SessionRecord
from pose_core.store.history_compare import compare_sessions, distinct_results
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


def when(r: SessionRecord) -> str:
    try:
        return datetime.fromisoformat(r.created_at).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return r.created_at


def name_of(ex: str) -> str:
    return cur.rules[ex].display_name if ex in cur.rules.exercises else ex


def show_not_yet_saved(waiting: list[SessionRecord]) -> None:
    """Sessions kept in the spool folder (the database was busy, damaged or read-only): listed, marked."""
    if not waiting:
        return
    st.dataframe(pd.DataFrame([{"date": when(r), "exercise": name_of(r.exercise), "reps": r.rep_count,
                                "name": r.name, "saved": "not yet saved"} for r in waiting]),
                 hide_index=True, width="stretch")
    st.caption(f"Not yet saved: {len(waiting)} session(s) kept safely in "
               f"{plain(shown_path(store.pending_dir, S.workspace))} (in your workspace), added to the history "
               "as soon as its database can be written.")


try:  # (sessions kept while the database was busy or damaged are imported now if it can take them)
    sessions = store.list_sessions()
except HistoryError as e:
    st.error(plain_error(e), icon=":material/error:")
    show_not_yet_saved(store.pending_records())
    st.stop()
waiting = [r for r in sessions if r.pending]
sessions = [r for r in sessions if not r.pending]
if store.read_only():
    st.caption("The history is read-only: it is shown as it is, but new sessions cannot be saved into it.")

if not sessions and not waiting:
    st.info("No sessions yet. Analyse a video on the Analyze page, or save a live session, and it will appear "
            "here.", icon=":material/info:")
    st.stop()
show_not_yet_saved(waiting)
if not sessions:
    st.stop()


def rest_of(r: SessionRecord) -> str:
    return r.extra.get("rest") or (cur.rules[r.exercise].counting.rest if r.exercise in cur.rules.exercises else "high")


# Identical re-analyses of one upload are one row (pose_core.store.history.distinct_results: same file,
# exercise and result), marked with how often it was analysed; different results stay separate rows.
distinct = distinct_results(sessions)
by_id = {d.record.id: d for d in distinct}
table = pd.DataFrame([{
    "#": r.id, "date": when(r), "exercise": name_of(r.exercise), "reps": r.rep_count,
    "correct reps": f"{r.reps_correct} / {r.rep_count}" if r.rep_count else "–",
    "frames correct": fmt(r.frames_correct_pct, "%", 1), "depth": fmt(r.avg_extreme, "°"),
    "name": r.name, "source": r.source + (f" ×{d.times}" if d.times > 1 else ""),
    "duration (s)": round(r.duration_s, 1)} for d in distinct for r in [d.record]])
st.dataframe(table, hide_index=True, width="stretch")
if any(d.times > 1 for d in distinct):
    st.caption("×N: the same video analysed N times with the same result, shown once (the newest).")

# ---------------------------------------------------------------------------------------- progress
st.markdown("#### Progress")
exercises = sorted({r.exercise for r in sessions}, key=name_of)
default_ex = cur.exercise if cur.exercise in exercises else exercises[0]
ex = st.selectbox("Exercise", exercises, index=exercises.index(default_ex), format_func=name_of,
                  key=keys.HIST_PROGRESS_EXERCISE)
rows = [row for row in store.progress(ex) if row["id"] in by_id]
rule = cur.rules[ex] if ex in cur.rules.exercises else None
depth_label = (f"Average {'depth' if rule is None or rule.counting.rest == 'high' else 'peak'} "
               f"({rule.primary_angle if rule else 'primary angle'}, °)")
if len(rows) < 2:  # one bar across the whole chart says nothing: say what there is instead
    st.info(f"One {plain(name_of(ex).lower())} session so far ({rows[0]['reps'] if rows else 0} reps): "
            "the progress charts start with your second session.", icon=":material/show_chart:")
else:
    st.plotly_chart(charts.progress_chart(rows, depth_label), width="stretch", config={"displaylogo": False})

# ------------------------------------------------------------------------------ details and comparison
st.markdown("#### Session details")
ids = [d.record.id for d in distinct]
labels = {d.record.id: f"#{d.record.id} · {when(d.record)} · {name_of(d.record.exercise)} · {d.record.name}"
          for d in distinct}
restore_choice(keys.HIST_SELECTED, ids, param="session", parse=int)
sel = st.selectbox("Session", ids, format_func=labels.get, key=keys.HIST_SELECTED)
keep_choice(keys.HIST_SELECTED, sel, param="session")
try:
    rec = store.get(sel) if sel is not None else None
except HistoryError as e:
    st.error(plain_error(e))
    rec = None
if rec is not None:
    # "Am I getting better": the same exercise's other sessions to compare with (default: the one before).
    same = [d.record for d in distinct if d.record.exercise == rec.exercise and d.record.id != rec.id]
    others = [r.id for r in same]
    earlier = [r.id for r in same if (r.created_at, r.id) < (rec.created_at, rec.id)]
    restore_choice(keys.HIST_COMPARE, others, param="compare", parse=int)
    if st.session_state.get(keys.HIST_COMPARE) not in others + [None] or keys.HIST_COMPARE not in st.session_state:
        st.session_state[keys.HIST_COMPARE] = earlier[0] if earlier else None
    other_id = st.selectbox("Compare with", others, format_func=labels.get, key=keys.HIST_COMPARE,
                            placeholder="No other session of this exercise" if not others
                            else "Pick a session to compare with", disabled=not others)
    keep_choice(keys.HIST_COMPARE, other_id, param="compare")
    other = next((r for r in same if r.id == other_id), None)
    pair = compare_sessions(rec, other, rest_of(rec)) if other is not None else compare_sessions(rec, rec, rest_of(rec))
    first, second = sorted((rec, other or rec), key=lambda r: (r.created_at, r.id or 0))

    def show(v, unit):
        return fmt(v, unit if unit in ("%", "°") else (f" {unit}" if unit else ""), 1 if unit in ("%", "s") else 0)

    def change_text(c) -> str:
        if c.change is None:
            return "–"
        if c.change == 0:
            return "no change"
        word = "" if c.better is None else (" better" if c.better else " worse")
        nd = 1 if c.unit in ("%", "s") else 0
        return f"{c.change:+.{nd}f}{c.unit if c.unit in ('%', '°') else (' ' + c.unit if c.unit else '')}{word}"

    def head(r: SessionRecord) -> str:  # short: the table fits a phone's width (390 px) without scrolling
        return f"#{r.id} · {when(r)[5:10]}"

    if other is None:
        st.dataframe(pd.DataFrame({"": [c.measure for c in pair], head(rec): [show(c.later, c.unit) for c in pair]}),
                     hide_index=True, width="stretch")
    else:
        st.dataframe(pd.DataFrame({"": [c.measure for c in pair],
                                   head(first): [show(c.earlier, c.unit) for c in pair],
                                   head(second): [show(c.later, c.unit) for c in pair],
                                   "change": [change_text(c) for c in pair]}),
                     hide_index=True, width="stretch")
        st.caption(f"Earlier session first; *change* is #{second.id} minus #{first.id}. Depth: the average of each "
                   f"rep's {'lowest' if rest_of(rec) == 'high' else 'highest'} {plain(rec.primary_angle or 'primary')} "
                   "angle. Rep time has no better or worse: tempo is your choice.")
    rep_of = by_id.get(rec.id)
    if rep_of is not None and rep_of.repeats:
        st.caption(f"Analysed {rep_of.times} times with this same result (also sessions "
                   f"{', '.join(f'#{i}' for i in rep_of.repeats)}).")
    if rec.reps:
        st.dataframe(pd.DataFrame([{
            "rep": r.index, "start (s)": round(r.start_s, 2), "end (s)": round(r.end_s, 2),
            "min (°)": fmt(r.primary_min), "max (°)": fmt(r.primary_max), "duration (s)": round(r.duration_s, 2),
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
