"""One finished analysis on the Analyze page: what was recognised, the figures that mean something for this
result (each with what it means), what the camera saw, the annotated video, the timeline and the rep table
(click a rep in either: the video plays it from just before), and the downloads.

`show_result(result_dir, cur)` renders it; the page decides which analysis is on display. Nothing is measured
or judged here: every number comes from the analysis folder (pose_core.store.outputs) and pose_core's rules.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import streamlit as st

from dashboard import charts, keys
from dashboard.count_review import count_review
from dashboard.common import (Current, LOW_CONFIDENCE, candidates_text, column_widths, exercise_label, history_store,
                              plain, plain_error, plural, rep_table, show_name)
from pose_core.core.confine import is_within
from pose_core.core.judging import view_advice
from pose_core.store.corrections import CORRECTED_COUNT
from pose_core.store.frame_export import DEFAULT_EVERY, FRAMES_ZIP, labelled_frames_zip
from pose_core.store.outputs import ANNOTATED_VIDEO, FRAMES_CSV, REPS_JSON, SUMMARY_JSON, LoadedAnalysis, load_analysis
from pose_core.store.report import build_report, figures, report_file_name
from pose_core.store.tuning import correct_bands
from pose_core.run.render_video import DRAWING, FAILED, NONE, video_state
from pose_core.store.uploads import upload_name

SEEK_LEAD_S = 1.0  # a clicked rep plays from this long before it starts
VIDEO_POLL_S = 1.0  # how often a result whose video is being drawn looks for it
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


def rep_for_time(reps, t: float):
    """The rep a click at time t belongs to: the one it falls in, else the nearest (None without reps)."""
    if not reps:
        return None
    inside = [r for r in reps if r.start_s <= t <= r.end_s]
    return inside[0] if inside else min(reps, key=lambda r: min(abs(t - r.start_s), abs(t - r.end_s)))


def rep_start_for_time(reps, t: float) -> float:
    """The start of the rep a click at time t belongs to, minus the lead; the click's own time minus the lead
    without reps."""
    rep = rep_for_time(reps, t)
    return (rep.start_s if rep is not None else t) - SEEK_LEAD_S


def _play_rep(result_dir: str, rep) -> None:
    st.session_state[keys.ANALYZE_TIMELINE_REP] = (str(result_dir), rep.index)
    _seek_to(result_dir, rep.start_s - SEEK_LEAD_S)


def _replay_last(result_dir: str, reps) -> None:
    """A second click on the selected row or marker unselects it (the selection comes back empty): the coach
    wants that rep again, so the rep played last plays again."""
    last = st.session_state.get(keys.ANALYZE_TIMELINE_REP)
    rep = next((r for r in reps if last and last[0] == str(result_dir) and r.index == last[1]), None)
    if rep is not None:
        _play_rep(result_dir, rep)


def _on_table_select(result_dir: str, reps) -> None:  # callback: runs before the rerun renders the video
    rows = st.session_state[keys.ANALYZE_REP_TABLE].selection.rows
    if rows and rows[0] < len(reps):
        _play_rep(result_dir, reps[rows[0]])
    else:
        _replay_last(result_dir, reps)


def _on_timeline_select(result_dir: str, reps) -> None:
    points = st.session_state[keys.ANALYZE_TIMELINE].selection.points
    if not points:
        _replay_last(result_dir, reps)
    elif points[0].get("x") is not None:  # a marker, or the curve inside (or near) a rep: that rep
        t = float(points[0]["x"])
        rep = rep_for_time(reps, t)
        _play_rep(result_dir, rep) if rep is not None else _seek_to(result_dir, t - SEEK_LEAD_S)


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
    else:
        st.success(f"{said}.{tail}", icon=":material/auto_awesome:")


def _metrics(s, reps, rule) -> None:
    """Only the figures that mean something for this result (pose_core.store.report.figures: the shared
    report shows the same), in a row that wraps (a phone shows two or three per line instead of one)."""
    with st.container(horizontal=True, gap="small"):  # (six figures in two rows on a 390 px phone)
        for f in figures(s, reps, rule):
            st.metric(f.label, f.value, help=f.meaning, width="content")


def _pick_and_analyse(name: str) -> None:  # callback: runs before the next run renders the sidebar
    st.session_state[keys.EXERCISE] = name
    st.session_state[keys.EXERCISE_LAST] = name
    st.session_state[keys.ANALYZE_AUTOSTART] = True  # the page analyses the same upload again, as `name`


def _no_reps(s, rule, cur: Current, advice: str) -> None:
    """No complete rep: one box that says why (the analysis' notes, what the view allows) and, when the
    movement looks like another exercise, a one-click "Analyze as <that exercise>". A recognised name over
    nothing counted is a warning (the name may be wrong), never a success."""
    other = s.looks_like if s.looks_like in cur.rules.exercises and s.looks_like != rule.name else ""
    name = plain(rule.display_name)
    if s.exercise_auto:
        others = [c for c in s.exercise_candidates if c[0] != s.exercise and c[1] >= 0.005]
        lines = [f"Recognised: **{name}** ({float(s.exercise_confidence or 0):.0%} sure), but no complete "
                 f"{name.lower()} repetition was found: it may be another exercise."
                 + (f" Other candidates: {candidates_text(cur.rules, others)}." if others else "")]
    else:
        lines = [f"**No complete {name.lower()} rep was found.**"]
    lines += [plain(n) for n in s.notes]
    lines.append(plain(advice))
    if not other:
        lines.append(plain(f"Check that the exercise is right ({rule.display_name}; change it at the top of the "
                           "page or in the sidebar) and that the whole movement stays in the frame."))
    (st.warning if s.exercise_auto else st.info)(" ".join(lines), icon=":material/lightbulb:")
    if other:
        shown = plain(exercise_label(cur.rules, other).lower())
        st.button(f"Analyze as {shown}", key=keys.analyze_looks_like(other), type="primary",
                  icon=":material/play_arrow:", on_click=_pick_and_analyse, args=(other,),
                  help="The same video, analysed again with that exercise's rules.")


@st.fragment(run_every=VIDEO_POLL_S)
def _video_coming(result_dir: str, original: bool) -> None:
    """Polls the folder while its video is drawn; the page reruns (to show it) once it is there."""
    if video_state(result_dir) != DRAWING:
        st.rerun()
    st.info("The annotated video is being drawn... the original video plays meanwhile." if original
            else "The annotated video is being drawn...", icon=":material/movie:")


def _upload_of(a: LoadedAnalysis, uploads_dir: Path) -> Path | None:
    """The original upload of this analysis, when it is still stored."""
    name = a.summary.video
    if name:
        p = uploads_dir / name
        if is_within(uploads_dir, p) and p.is_file():
            return p
    return None


def _video(a: LoadedAnalysis, result_dir: str, uploads_dir: Path) -> None:
    """The annotated video; while it is drawn (it comes after the result), or if it could not be, the original
    upload in its place (the reps' clicks seek it the same way)."""
    state = video_state(a.path)
    shown = a.video
    if state in (DRAWING, FAILED):
        shown = _upload_of(a, uploads_dir)
        if state == DRAWING:
            _video_coming(result_dir, shown is not None)
        else:
            st.warning("The annotated video could not be drawn; the result is complete."
                       + (" The original video is shown instead." if shown is not None else ""),
                       icon=":material/videocam_off:")
    if shown is None:
        if state == NONE:
            st.info("No annotated video was written for this analysis.")
        return
    s = a.summary
    start, clicks = seek_time(result_dir)
    # Each click must seek AND play, also when the same rep is clicked again:
    # - a container keyed by the click count gives a new <video> element, which seeks to start_time when it
    #   loads (an existing element only seeks when start_time changes, and never starts playing);
    # - Streamlit autoplays an element only the first time its id is seen, and the id is computed from the
    #   arguments: an end time past the video's end that changes with each click gives every click a new id
    #   (it is never reached, so it never stops the video). Muted: browsers only autoplay muted videos.
    end = int(s.duration_s) + 2 + clicks if clicks else None
    with st.container(key=f"analyze_video_{clicks}"):
        st.video(str(shown), start_time=start, end_time=end, autoplay=clicks > 0, muted=clicks > 0,
                 width=video_width(s.width, s.height))
    if clicks:
        st.caption(f"Playing from {start} s. Click another rep in the table or on the timeline to review it "
                   "(or the same one again to replay it).")
    elif a.reps:
        st.caption("Click a rep in the table or on the timeline to play it from just before it starts.")


def video_width(width: int, height: int) -> int | str:
    """st.video's width: the column's, or for a portrait video what keeps it PORTRAIT_MAX_HEIGHT_PX tall."""
    if width and height and height > width:
        return max(160, int(PORTRAIT_MAX_HEIGHT_PX * width / height))
    return "stretch"


def _downloads(a: LoadedAnalysis, uploads_dir: Path, rule, name: str) -> None:
    """Files are read when their button is clicked (callable data), and a click does not rerun the page
    (on_click="ignore"): several downloads in a row, or at once, each start right away."""
    with st.container(horizontal=True, gap="small"):
        report_button(a, rule, name, keys.ANALYZE_DL_REPORT)
        for fname, label, mime, key in ((ANNOTATED_VIDEO, "Annotated video (mp4)", "video/mp4", keys.ANALYZE_DL_VIDEO),
                                        (FRAMES_CSV, "Per-frame data (CSV)", "text/csv", keys.ANALYZE_DL_FRAMES),
                                        (REPS_JSON, "Reps (JSON)", "application/json", keys.ANALYZE_DL_REPS)):
            f = a.file(fname)
            if f is not None:
                st.download_button(label, data=f.read_bytes, file_name=f"{a.path.name}_{fname}", mime=mime, key=key,
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


def report_button(a: LoadedAnalysis, rule, name: str, key: str) -> None:
    """ "Report (HTML)": one file to send a coach, made when clicked (pose_core.store.report)."""
    st.download_button("Report (HTML)", data=lambda: build_report(a, rule, name).encode("utf-8"),
                       file_name=report_file_name(a), mime="text/html", key=key, type="primary",
                       icon=":material/share:", on_click="ignore",
                       help="One self-contained page to share: the figures, the timeline, the rep table and a frame "
                            "of every incorrect rep. Opens offline in any browser.")


def _source_video(a: LoadedAnalysis, uploads_dir: Path) -> Path | None:
    """The video the labelled frames are taken from: the original upload (without the overlay) when it is
    still stored, else the annotated video."""
    return _upload_of(a, uploads_dir) or a.video


def _timeline(a: LoadedAnalysis, rule, result_dir: str) -> None:
    s = a.summary
    extra = st.multiselect("Also show", [n for n in rule.angles if n != rule.primary_angle],
                           key=keys.ANALYZE_EXTRA_ANGLES, placeholder="other angles", format_func=rule.angle_label)
    missed = sorted({lab for r in a.reps for lab in charts.not_judged_labels(rule, r)})
    st.caption(plain(f"Camera view: {s.view or 'not known'}"
                     + (f" · not judged from it: {', '.join(missed)}" if missed else "")))
    fig = charts.angle_timeline(a.frames, list(a.reps), rule, correct_bands(rule, rule.primary_angle), extra)
    st.plotly_chart(fig, width="stretch", key=keys.ANALYZE_TIMELINE, selection_mode="points",
                    on_select=partial(_on_timeline_select, result_dir, a.reps),
                    config={"displaylogo": False, "modeBarButtonsToRemove": ["lasso2d", "select2d"]})


def _rep_table(a: LoadedAnalysis, rule, result_dir: str) -> None:
    st.markdown("#### Reps")
    table = rep_table(a.reps, rule)
    st.dataframe(table, hide_index=True, width="stretch", key=keys.ANALYZE_REP_TABLE,
                 on_select=partial(_on_table_select, result_dir, a.reps), selection_mode="single-row",
                 column_config=column_widths(table))
    st.caption("Select a rep (the box at the start of its row) to play it in the video.")
    bad = [r for r in a.reps if r.reasons]
    if bad:  # the reasons in full, also on a phone where the table's last columns are off-screen
        st.markdown("**What to fix**  \n" + "  \n".join(f"Rep {r.index}: {plain('; '.join(r.reasons))}" for r in bad))


# ------------------------------------------------------------------------------------------ page

def _record_correction(cur: Current, a: LoadedAnalysis, c) -> None:
    """The person's count goes to the analysis' history row (extra "corrected_count"; None: as counted)."""
    history_store(cur.settings).set_extra(a.path, CORRECTED_COUNT, None if c.empty else c.count(a.reps))


def show_result(result_dir: str | Path, cur: Current, name: str | None = None, table_lead_s: float = 0.0) -> None:
    """Render one finished analysis (a folder under the workspace's analyses). `name`: the video as the user
    named it (default: the name kept with its upload). table_lead_s: the summary and the rep table are sent
    this long before the rest (a result that just finished: the browser draws them first)."""
    result_dir = str(result_dir)
    try:
        a = load(result_dir)
    except ValueError as e:
        st.error(plain_error(e))
        return
    s = a.summary
    rule = cur.rules[s.exercise] if s.exercise in cur.rules.exercises else cur.rule
    uploads = cur.settings.uploads_dir
    name = name or (upload_name(uploads / s.video) if s.video else a.path.name)
    st.subheader(plain(rule.display_name))
    show_name(name)
    if s.exercise_auto and a.reps:
        _recognition(s, cur, plain(rule.display_name))
    _metrics(s, a.reps, rule)
    advice = view_advice(rule, s.view)
    said = []
    if a.reps and s.frames_correct_pct is not None:
        said.append(f"Per frame: {s.frames_correct_pct:.1f}% of the frames whose form could be judged met the "
                    "rule's frame checks.")
    if s.partial_reps:
        said.append(f"{plural(s.partial_reps, 'partial rep')} cut off at the start or end "
                    f"{'was' if s.partial_reps == 1 else 'were'} not counted.")
    if a.reps:
        said.append(advice)
        for note in s.notes:
            st.warning(plain(note), icon=":material/info:")
    else:
        _no_reps(s, rule, cur, advice)
    if said:
        st.caption(plain(" ".join(said)))

    left, right = st.columns([1, 1])
    table_box = st.container()  # below the video and the timeline, but filled first (see below)
    if a.reps:
        # The rep table goes to the browser before the video and the timeline: it is what the person waits for,
        # and the browser then draws it first (the timeline's chart and the video cost it seconds of CPU on a
        # slow device; they follow).
        with table_box:
            _rep_table(a, rule, result_dir)
    if table_lead_s > 0:
        time.sleep(table_lead_s)
    with left:
        _video(a, result_dir, uploads)
    with right:
        _timeline(a, rule, result_dir)
    count_review(a, result_dir, cur.settings, lambda c: _record_correction(cur, a, c))
    _downloads(a, uploads, rule, name)
