"""History: every analysed video and saved live session, progress per exercise, details, deletion."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import charts, keys
from dashboard.common import (column_widths, current, fmt, history_store, keep_choice, plain, plain_error, plural,
                              rep_table, restore_choice, show_name)
from dashboard.result_view import load, report_button, video_width
from pose_core.store.corrections import CORRECTED_COUNT
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


def extreme_name(ex: str) -> str:
    """What the exercise calls its primary angle's extreme ("depth"); "" when it means nothing (jump rope)."""
    return cur.rules[ex].counting.extreme_name if ex in cur.rules.exercises else "depth"


def extreme_text(r: SessionRecord) -> str:
    name = extreme_name(r.exercise)
    return f"{fmt(r.avg_extreme, '°')} ({name})" if name and r.avg_extreme is not None else "–"


def my_count(r: SessionRecord) -> int | None:
    """The person's own count when they corrected GymPose's on the Analyze page (None: not corrected)."""
    mine = r.extra.get(CORRECTED_COUNT)
    return mine if isinstance(mine, int) and not isinstance(mine, bool) and mine != r.rep_count else None


# Identical re-analyses of one upload are one row (pose_core.store.history.distinct_results: same file,
# exercise and result), marked with how often it was analysed; different results stay separate rows.
distinct = distinct_results(sessions)
by_id = {d.record.id: d for d in distinct}
table = pd.DataFrame([{  # (the name early: what a person recognises a session by)
    "#": r.id, "date": when(r), "name": r.name, "exercise": name_of(r.exercise), "reps": r.rep_count,
    "correct reps": f"{r.reps_correct} / {r.rep_count}" if r.rep_count else "–",
    "avg key angle": extreme_text(r), "rep time (s)": fmt(r.avg_rep_s, "", 1),
    "frames correct": fmt(r.frames_correct_pct, "%", 1), "source": r.source + (f" ×{d.times}" if d.times > 1 else ""),
    "length (s)": round(r.duration_s, 1)} for d in distinct for r in [d.record]])
if any(my_count(d.record) is not None for d in distinct):  # the column only when someone corrected a count
    table.insert(table.columns.get_loc("reps") + 1, "your count",
                 [str(my_count(d.record) or "") if my_count(d.record) is not None else "" for d in distinct])
st.markdown("#### Sessions")  # (a heading above each table: its toolbar, shown on hover, covers nothing)
st.dataframe(table, hide_index=True, width="stretch", column_config=column_widths(table))
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
depth_label = (f"Avg {extreme_name(ex)} ({rule.angle_label(rule.primary_angle).lower() if rule else 'primary angle'}, °)"
               if extreme_name(ex) else None)
if len(rows) < 2:  # one bar across the whole chart says nothing: say what there is instead
    st.info(f"One {plain(name_of(ex).lower())} session so far ({plural(rows[0]['reps'] if rows else 0, 'rep')}): "
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


def analysis_of(r: SessionRecord):
    """The session's analysis folder read back (None for live sessions and deleted folders)."""
    adir = Path(r.analysis_dir) if r.analysis_dir else None
    if adir is None or not is_within(S.analyses_dir, adir) or not adir.is_dir():
        return None
    try:
        return load(adir)
    except ValueError:
        return None


def with_reps(r: SessionRecord | None, analysis=None) -> SessionRecord | None:
    """The record with its reps as the Analyze page reads them (its reps.json, when the folder is still
    there), else as stored in the history: the same numbers on both pages."""
    if r is None:
        return None
    analysis = analysis if analysis is not None else analysis_of(r)
    if analysis is not None:
        return replace(r, reps=tuple(analysis.reps))
    try:
        return store.get(r.id) or r
    except HistoryError:
        return r


def comparison(rec: SessionRecord, other: SessionRecord | None, rule) -> None:
    """The selected session beside the one it is compared with (earlier first), measure by measure."""
    c = rule.counting if rule is not None else None
    pair = compare_sessions(rec, other or rec, rest_of(rec), extreme_name=extreme_name(rec.exercise),
                            concentric=c.concentric if c is not None else "")
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

    st.markdown("**Compared**" if other is not None else "**This session**")  # (room for the table's toolbar)
    if other is None:
        st.dataframe(pd.DataFrame({"": [c.measure for c in pair], head(rec): [show(c.later, c.unit) for c in pair]}),
                     hide_index=True, width="stretch")
        return
    st.dataframe(pd.DataFrame({"": [c.measure for c in pair],
                               head(first): [show(c.earlier, c.unit) for c in pair],
                               head(second): [show(c.later, c.unit) for c in pair],
                               "change": [change_text(c) for c in pair]}),
                 hide_index=True, width="stretch")
    depth = extreme_name(rec.exercise)
    st.caption(f"Earlier session first; *change* is #{second.id} minus #{first.id}. "
               + (f"{plain(depth.capitalize())}: the average of each rep's "
                  f"{'lowest' if rest_of(rec) == 'high' else 'highest'} "
                  f"{plain(rule.angle_label(rule.primary_angle).lower() if rule else 'primary')} angle. " if depth else "")
               + "Rep time: one rep's movement, rest to rest. "
               + ("Velocity loss: how much slower the slowest lift of the set was than the fastest. "
                  if c is not None and c.concentric else "")
               + "Rep time and velocity loss have no better or worse: tempo and how far to push a set are your "
                 "choice.")


if rec is not None:
    st.markdown("**Video**" if rec.source == "video" else "**Live session**")
    show_name(rec.name)  # the name as the user gave it, as on the Analyze page: plain text
    analysis = analysis_of(rec)
    rec = with_reps(rec, analysis)
    rule = cur.rules[rec.exercise] if rec.exercise in cur.rules.exercises else None
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
    other = with_reps(next((r for r in same if r.id == other_id), None))
    comparison(rec, other, rule)
    rep_of = by_id.get(rec.id)
    if rep_of is not None and rep_of.repeats:
        st.caption(f"Analysed {rep_of.times} times with this same result (also sessions "
                   f"{', '.join(f'#{i}' for i in rep_of.repeats)}).")
    if my_count(rec) is not None:
        st.caption(plain(f"You corrected this count to {my_count(rec)} (GymPose counted "
                         f"{rec.rep_count}); the figures above are GymPose's."))
    if rec.reps and rule is not None:
        st.markdown("**Reps**")
        reps_df = rep_table(rec.reps, rule)
        st.dataframe(reps_df, hide_index=True, width="stretch", column_config=column_widths(reps_df))
    if analysis is not None:
        if analysis.video is not None:
            with st.expander("Annotated video", icon=":material/movie:"):
                st.video(str(analysis.video), width=video_width(analysis.summary.width, analysis.summary.height))
        if rule is not None:
            report_button(analysis, rule, rec.name, keys.HIST_DL_REPORT)

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
        st.warning(f"Delete session #{rec.id} ({plain(rec.name)}, {plural(rec.rep_count, 'rep')}) for good?",
                   icon=":material/warning:")
        st.checkbox("Also delete its annotated video and analysis files", key=keys.HIST_DELETE_FILES,
                    disabled=not rec.analysis_dir)
        c1, c2, _ = st.columns([1, 1, 4])
        c1.button("Yes, delete", key=keys.HIST_CONFIRM, type="primary", icon=":material/delete_forever:",
                  on_click=confirm, args=(rec.id,))
        c2.button("Cancel", key=keys.HIST_CANCEL, on_click=cancel)
