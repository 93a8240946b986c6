"""One finished analysis on the Analyze page: what was recognised, the figures that mean something for this
result (each with what it means), what the camera saw, the annotated video, the timeline and the rep table
(click a rep in either: the video plays it from just before), and the downloads.

`show_result(result_dir, cur)` renders it; the page decides which analysis is on display. Nothing is measured
or judged here: every number comes from the analysis folder (pose_core.store.outputs) and pose_core's rules.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import streamlit as st

from dashboard import charts, keys
from dashboard.common import Current, LOW_CONFIDENCE, candidates_text, fmt, plain, plain_error, rep_table
from pose_core.core.confine import is_within
from pose_core.core.judging import view_advice
from pose_core.core.types import RestSide
from pose_core.store.frame_export import DEFAULT_EVERY, FRAMES_ZIP, labelled_frames_zip
from pose_core.store.outputs import ANNOTATED_VIDEO, FRAMES_CSV, REPS_JSON, SUMMARY_JSON, LoadedAnalysis, load_analysis
from pose_core.store.tuning import correct_bands
from pose_core.store.uploads import upload_display_name

SEEK_LEAD_S = 1.0  # a clicked rep plays from this long before it starts
PORTRAIT_MAX_HEIGHT_PX = 460  # a portrait video is shown at most this tall (a phone's screen is ~800 px)


@st.cache_resource(max_entries=4, show_spinner=False)
def _load(path: str, stamp: float) -> LoadedAnalysis:
    """An analysis folder read once per version (stamp: summary.json's mtime), not on every rerun (a click
    on a rep reruns the page). Read-only afterwards: the pages never change it."""
    return load_analysis(path)


def load(result_dir: str | Path) -> LoadedAnalysis:
    """Raises ValueError when the folder is not a finished analysis."""
    try:
        stamp = (Path(result_dir) / SUMMARY_JSON).stat().st_mtime
    except OSError as e:
        raise ValueError(f"{Path(result_dir).name}: the analysis cannot be read ({e.strerror})") from None
    return _load(str(result_dir), stamp)


# ------------------------------------------------------------------------------ click a rep: seek

def seek_time(result_dir: str) -> tuple[int, int]:
    """(second the video starts at, clicks so far) for the analysis on display; (0, 0) until a rep is clicked.
    st.video takes whole seconds: a rep is played from 1-2 s before it starts."""
    seek = st.session_state.get(keys.ANALYZE_SEEK)
    return (int(seek[1]), int(seek[2])) if seek and seek[0] == str(result_dir) else (0, 0)


def _seek_to(result_dir: str, t: float) -> None:
    clicks = seek_time(result_dir)[1]
    st.session_state[keys.ANALYZE_SEEK] = (str(result_dir), max(0, int(t)), clicks + 1)


def rep_start_for_time(reps, t: float) -> float:
    """The start of the rep a click at time t belongs to (inside it, else the nearest), minus the lead; the
    click's own time minus the lead without reps."""
    if not reps:
        return t - SEEK_LEAD_S
    inside = [r for r in reps if r.start_s <= t <= r.end_s]
    rep = inside[0] if inside else min(reps, key=lambda r: min(abs(t - r.start_s), abs(t - r.end_s)))
    return rep.start_s - SEEK_LEAD_S


def _on_table_select(result_dir: str, reps) -> None:  # callback: runs before the rerun renders the video
    rows = st.session_state[keys.ANALYZE_REP_TABLE].selection.rows
    if rows and rows[0] < len(reps):
        _seek_to(result_dir, reps[rows[0]].start_s - SEEK_LEAD_S)


def _on_timeline_select(result_dir: str, reps) -> None:
    points = st.session_state[keys.ANALYZE_TIMELINE].selection.points
    if points and points[0].get("x") is not None:
        _seek_to(result_dir, rep_start_for_time(reps, float(points[0]["x"])))


# ----------------------------------------------------------------------------------- the parts

def _recognition(s, cur: Current, res_name: str) -> None:
    conf = float(s.exercise_confidence or 0.0)
    others = [c for c in s.exercise_candidates if c[0] != s.exercise and c[1] >= 0.005]
    said = f"Recognised: **{res_name}** ({conf:.0%} sure)"
    tail = (f" Other candidates: {candidates_text(cur.rules, others)}." if others else "")
    if conf < LOW_CONFIDENCE:
        st.warning(f"{said}. **Low confidence**: GymPose is not sure this is {res_name.lower()}, "
                   f"the reps below are counted as if it were.{tail} If it is wrong, pick the exercise above "
                   "and analyse again.", icon=":material/help:")
    elif not s.reps:  # never a success box over a result with nothing in it
        st.warning(f"{said}, but no complete {res_name.lower()} repetition was found: it may be another "
                   f"exercise.{tail} If it is, pick the exercise above and analyse again.", icon=":material/help:")
    else:
        st.success(f"{said}.{tail}", icon=":material/auto_awesome:")


def _metrics(s, rule) -> None:
    """Only the figures that mean something for this result, in a row that wraps (a phone shows two or three
    per line instead of one per line)."""
    n = s.reps
    view = s.view or "not known"
    with st.container(horizontal=True, gap="medium"):
        st.metric("Reps", n, width="content",
                  help="Complete repetitions, rest to rest. A rep cut off by the start or end of the video is "
                       "partial and not counted.")
        if n:  # with no rep, per-rep figures mean nothing: they are not shown at all
            st.metric("Correct reps", f"{s.reps_correct} of {n}", width="content",
                      help="Reps that passed every form check that could be judged from this camera view "
                           "(checks the view cannot show are listed in the rep table, never counted as faults).")
            high = rule.counting.rest == RestSide.HIGH
            st.metric(f"{'Avg depth' if high else 'Avg peak'} ({rule.primary_angle})", fmt(s.avg_extreme, "°"),
                      width="content",
                      help=(f"The mean over the reps of the {'lowest' if high else 'highest'} {rule.primary_angle} "
                            "angle reached (180° = straight limb). The rep table shows each rep against its target."))
            st.metric("Avg rep time", fmt(s.avg_rep_s, " s", 1), width="content",
                      help="A full cycle, rest to rest: from starting one rep to starting the next (pauses "
                           "included). The rep table splits each rep into down and up.")
        st.metric("Camera view", view, width="content",
                  help="Read from the body's landmarks (side, front, rear or oblique). Each form check works "
                       "from some views only; from another view it is reported as not judged, not as a fault.")


def _video(a: LoadedAnalysis, result_dir: str) -> None:
    if a.video is None:
        st.info("No annotated video was written for this analysis.")
        return
    s = a.summary
    start, clicks = seek_time(result_dir)
    width: int | str = "stretch"
    if s.width and s.height and s.height > s.width:  # portrait: never taller than PORTRAIT_MAX_HEIGHT_PX
        width = max(160, int(PORTRAIT_MAX_HEIGHT_PX * s.width / s.height))
    # Each click must seek AND play, also when the same rep is clicked again:
    # - a container keyed by the click count gives a new <video> element, which seeks to start_time when it
    #   loads (an existing element only seeks when start_time changes, and never starts playing);
    # - Streamlit autoplays an element only the first time its id is seen, and the id is computed from the
    #   arguments: an end time past the video's end that changes with each click gives every click a new id
    #   (it is never reached, so it never stops the video). Muted: browsers only autoplay muted videos.
    end = int(s.duration_s) + 2 + clicks if clicks else None
    with st.container(key=f"analyze_video_{clicks}"):
        st.video(str(a.video), start_time=start, end_time=end, autoplay=clicks > 0, muted=clicks > 0, width=width)
    if clicks:
        st.caption(f"Playing from {start} s. Click another rep in the table or on the timeline to review it.")
    elif a.reps:
        st.caption("Click a rep in the table or on the timeline to play it from just before it starts.")


def _downloads(a: LoadedAnalysis, uploads_dir: Path) -> None:
    """Files are read when their button is clicked (callable data), and a click does not rerun the page
    (on_click="ignore"): several downloads in a row, or at once, each start right away."""
    with st.container(horizontal=True, gap="small"):
        for name, label, mime, key in ((ANNOTATED_VIDEO, "Annotated video (mp4)", "video/mp4", keys.ANALYZE_DL_VIDEO),
                                       (FRAMES_CSV, "Per-frame data (CSV)", "text/csv", keys.ANALYZE_DL_FRAMES),
                                       (REPS_JSON, "Reps (JSON)", "application/json", keys.ANALYZE_DL_REPS)):
            f = a.file(name)
            if f is not None:
                st.download_button(label, data=f.read_bytes, file_name=f"{a.path.name}_{name}", mime=mime, key=key,
                                   icon=":material/download:", on_click="ignore")
        source = _source_video(a, uploads_dir)
        if source is not None:
            st.download_button(
                "Labelled frames (zip)", data=lambda: labelled_frames_zip(a.path, source).read_bytes(),
                file_name=f"{a.path.name}_{FRAMES_ZIP}", mime="application/zip", key=keys.ANALYZE_DL_LABELLED_FRAMES,
                icon=":material/photo_library:", on_click="ignore",
                help=f"Every {DEFAULT_EVERY}th frame as a JPEG in frames/correct, frames/incorrect or frames/unknown "
                     "(the frame's verdict), with frames/manifest.csv (frame, time, label, reason): a start for a "
                     "dataset of your own. Made when you click (a few seconds for a long video).")


def _source_video(a: LoadedAnalysis, uploads_dir: Path) -> Path | None:
    """The video the labelled frames are taken from: the original upload (without the overlay) when it is
    still stored, else the annotated video."""
    name = a.summary.video
    if name:
        p = uploads_dir / name
        if is_within(uploads_dir, p) and p.is_file():
            return p
    return a.video


# ------------------------------------------------------------------------------------------ page

def show_result(result_dir: str | Path, cur: Current) -> None:
    """Render one finished analysis (a folder under the workspace's analyses)."""
    result_dir = str(result_dir)
    try:
        a = load(result_dir)
    except ValueError as e:
        st.error(plain_error(e))
        return
    s = a.summary
    rule = cur.rules[s.exercise] if s.exercise in cur.rules.exercises else cur.rule
    res_name = plain(rule.display_name)
    st.subheader(f"{res_name}: {plain(upload_display_name(s.video))}")
    if s.exercise_auto:
        _recognition(s, cur, res_name)
    _metrics(s, rule)
    advice = view_advice(rule, s.view)
    said = []
    if s.reps and s.frames_correct_pct is not None:
        said.append(f"Per frame: {s.frames_correct_pct:.1f}% of the frames whose form could be judged met the "
                    "rule's frame checks.")
    if s.partial_reps:
        said.append(f"{s.partial_reps} partial rep(s) cut off at the start or end were not counted.")
    if s.reps:
        said.append(advice)
    if said:
        st.caption(plain(" ".join(said)))
    for note in s.notes:
        st.warning(plain(note), icon=":material/info:")
    if not a.reps:
        st.info(plain(f"No complete rep was found. {advice} Check that the exercise is right "
                      f"({rule.display_name}; change it at the top of the page or in the sidebar) and that the whole "
                      "movement stays in the frame."), icon=":material/lightbulb:")

    left, right = st.columns([1, 1])
    with left:
        _video(a, result_dir)
    with right:
        extra = st.multiselect("Also show", [n for n in rule.angles if n != rule.primary_angle],
                               key=keys.ANALYZE_EXTRA_ANGLES, placeholder="secondary angles")
        missed = sorted({lab for r in a.reps for lab in charts.not_judged_labels(rule, r)})
        note = f"Camera view: {s.view or 'not known'}" + (f" · not judged from it: {', '.join(missed)}" if missed else "")
        fig = charts.angle_timeline(a.frames, list(a.reps), rule, correct_bands(rule, rule.primary_angle), extra,
                                    note=note)
        st.plotly_chart(fig, width="stretch", key=keys.ANALYZE_TIMELINE, on_select=partial(_on_timeline_select, result_dir, a.reps),
                        selection_mode="points",
                        config={"displaylogo": False, "modeBarButtonsToRemove": ["lasso2d", "select2d"]})

    if a.reps:
        st.markdown("#### Reps")
        st.dataframe(rep_table(a.reps, rule), hide_index=True, width="stretch", key=keys.ANALYZE_REP_TABLE,
                     on_select=partial(_on_table_select, result_dir, a.reps), selection_mode="single-row",
                     column_config={"rep": st.column_config.NumberColumn(width=40),
                                    "reasons": st.column_config.TextColumn(width="medium"),
                                    "not judged (camera view)": st.column_config.TextColumn(width="medium")})
        st.caption("Select a rep (the box at the start of its row) to play it in the video.")
    _downloads(a, cur.settings.uploads_dir)
