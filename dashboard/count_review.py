"""Check the count, on the Analyze page: the reps GymPose is unsure of (with why), the cycles it did not count,
and the person's one-click corrections (keep or remove an uncertain rep, count a possible one, add a rep it
missed at a time on the video), then "Export as a labelled clip" (the clip and its videos.csv row in the
workspace's labelled_clips folder, which `gympose evaluate` reads).

The corrections live beside the analysis (pose_core.store.corrections) and the corrected count goes to the
analysis' history row; the analysis itself never changes. Buttons act in callbacks (before the rerun renders).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard import keys
from dashboard.common import plain, plain_error, plural
from pose_core.core.confine import is_within, shown_path
from pose_core.store.corrections import (CorrectionError, Corrections, add_rep, confirm_rep, export_labelled_clip,
                                         labelled_row, load_corrections, remove_rep, save_corrections, undo_added)
from pose_core.store.history import HistoryError
from pose_core.store.outputs import LoadedAnalysis
from pose_core.store.uploads import upload_name


def _said(folder: str, text: str) -> None:
    st.session_state[keys.ANALYZE_REVIEW_SAID] = (folder, text)


def _apply(folder: str, change, history_update) -> None:
    """Callback: load, change, save the corrections (atomically) and update the history row."""
    try:
        c = change(load_corrections(folder))
        save_corrections(folder, c)
    except (CorrectionError, OSError) as e:
        _said(folder, f"Not saved: {plain_error(e)}")
        return
    try:
        history_update(c)
    except HistoryError as e:
        _said(folder, f"Your correction is saved with the analysis, but the history could not be updated: "
                      f"{plain_error(e)}")


def _play(folder: str, t: float) -> None:
    from dashboard.result_view import SEEK_LEAD_S, _seek_to

    _seek_to(folder, max(0.0, t - SEEK_LEAD_S))


def _export(folder: str, video: Path, row: dict, dest: Path, workspace: Path) -> None:
    try:
        clip = export_labelled_clip(video, row, dest)
    except (CorrectionError, OSError) as e:
        _said(folder, f"Not exported: {plain_error(e)}")
        return
    _said(folder, f"Saved as {shown_path(clip, workspace)}, with its row in "
                  f"{shown_path(dest / 'videos.csv', workspace)}: gympose evaluate "
                  f"{shown_path(dest, workspace)} checks GymPose on your labelled clips.")


def count_review(a: LoadedAnalysis, folder: str, settings, history_update) -> None:
    """The "Check the count" block. history_update(corrections): records the corrected count (the page gives
    it the analysis' history row)."""
    s = a.summary
    try:
        c = load_corrections(a.path)
    except CorrectionError as e:
        st.error(f"Your corrections to this count cannot be read: {plain_error(e)}")
        c = Corrections()
    unsure = [r for r in a.reps if r.doubt]
    possible = list(s.possible_reps)
    title = f"Check the count: {plural(len(a.reps), 'rep')} counted"
    if unsure:
        title += f", {len(unsure)} unsure"
    if not c.empty:
        title += f" · your count {c.count(a.reps)}"
    with st.expander(title, expanded=bool(unsure or possible or not c.empty), icon=":material/fact_check:"):
        said = st.session_state.get(keys.ANALYZE_REVIEW_SAID)
        if said and said[0] == folder:
            st.info(plain(said[1]), icon=":material/info:")
        _unsure_reps(a, folder, c, unsure, history_update)
        _possible_reps(a, folder, possible, history_update)
        _added_reps(a, folder, c, history_update)
        if not c.empty:
            st.caption(plain(f"Your count: {c.count(a.reps)} (GymPose counted {len(a.reps)}). It is the count "
                             "saved in History; the analysis itself is kept as it was."))
        _export_button(a, folder, c, settings)


def _unsure_reps(a, folder, c, unsure, history_update) -> None:
    if not unsure:
        st.caption("Every counted rep was seen by both of the movement's signals." if a.reps else "")
        return
    st.markdown("**Reps GymPose is unsure of** (keep or remove each; Play shows it)")
    for r in unsure:
        state = c.status(r)
        with st.container(horizontal=True, gap="small", vertical_alignment="center"):
            st.text(f"Rep {r.index} ({r.start_s:.1f}-{r.end_s:.1f} s): {r.doubt}"
                    + {"removed": "  [removed by you]", "confirmed": "  [kept by you]"}.get(state, ""))
            st.button("Play", key=keys.review_rep("play", r.index), on_click=_play, args=(folder, r.start_s),
                      icon=":material/play_arrow:")
            st.button("Keep", key=keys.review_rep("keep", r.index), disabled=state == "confirmed",
                      icon=":material/check:", on_click=_apply,
                      args=(folder, lambda cc, i=r.index: confirm_rep(cc, a.reps, i), history_update))
            st.button("Remove", key=keys.review_rep("remove", r.index), disabled=state == "removed",
                      icon=":material/close:", on_click=_apply,
                      args=(folder, lambda cc, i=r.index: remove_rep(cc, a.reps, i), history_update))


def _possible_reps(a, folder, possible, history_update) -> None:
    if not possible:
        return
    st.markdown("**Not counted** (one signal showed a cycle here; count it if it was a rep)")
    for k, p in enumerate(possible):
        mid = round((p["start_s"] + p["end_s"]) / 2, 2)
        with st.container(horizontal=True, gap="small", vertical_alignment="center"):
            st.text(f"{p['start_s']:.1f}-{p['end_s']:.1f} s: {p['reason']}")
            st.button("Play", key=keys.review_rep("play_possible", k), on_click=_play, args=(folder, p["start_s"]),
                      icon=":material/play_arrow:")
            st.button("Count it", key=keys.review_rep("count", k), icon=":material/add:", on_click=_apply,
                      args=(folder, lambda cc, t=mid: add_rep(cc, t, a.summary.duration_s), history_update))


def _added_reps(a, folder, c, history_update) -> None:
    from dashboard.result_view import seek_time

    st.markdown("**Missed a rep?** Give its time (the video's position when you clicked the timeline is "
                "filled in) and add it.")
    start, _ = seek_time(folder)
    with st.container(horizontal=True, gap="small", vertical_alignment="bottom"):
        st.number_input("Time of the missed rep (s)", min_value=0.0, max_value=float(a.summary.duration_s),
                            value=float(min(start, a.summary.duration_s)), step=0.5, key=keys.ANALYZE_ADD_REP_AT,
                            width=220)
        st.button("Add a rep here", key=keys.review_rep("add", 0), icon=":material/add_circle:", on_click=_apply,
                  args=(folder, lambda cc: add_rep(cc, float(st.session_state[keys.ANALYZE_ADD_REP_AT]),
                                                   a.summary.duration_s), history_update))
    for k, x in enumerate(c.added):
        with st.container(horizontal=True, gap="small", vertical_alignment="center"):
            st.text(f"Added by you at {x:.1f} s")
            st.button("Undo", key=keys.review_rep("undo", k), icon=":material/undo:", on_click=_apply,
                      args=(folder, lambda cc, x=x: undo_added(cc, x), history_update))


def _export_button(a: LoadedAnalysis, folder: str, c: Corrections, settings) -> None:
    s = a.summary
    video = settings.uploads_dir / s.video if s.video else None
    if video is None or not is_within(settings.uploads_dir, video) or not video.is_file():
        st.caption("Export as a labelled clip: the uploaded video is no longer stored.")
        return
    name = upload_name(video) or video.name
    row = labelled_row(s, list(a.reps), c, name)
    st.button("Export as a labelled clip", key=keys.ANALYZE_EXPORT_CLIP, icon=":material/label:",
              on_click=_export, args=(folder, video, row, settings.labelled_dir, settings.workspace),
              help="Copies the video and its count (yours, with what you corrected) into your own test set "
                   "(labelled_clips/ in the workspace, with a videos.csv): `gympose evaluate` checks GymPose "
                   "against it, so the clips that fooled it become tests.")
