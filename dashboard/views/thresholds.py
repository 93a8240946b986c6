"""Thresholds: see an angle's real distribution, move the thresholds and check ranges, and see at once what
they would change on an analysed video (re-judged from the stored angles, no pose model). Save to your
rules file, reset to the defaults, download or upload a rules file."""

from __future__ import annotations

import streamlit as st

import math
import re

from dashboard import charts, keys
from dashboard.common import (builtin_rules, current, fmt, keep_choice, plain, plain_error, plural, restore_choice,
                              when_text)
from dashboard.form_limits import render_form_limits
from pose_core.core.confine import shown_path
from pose_core.core.judging import check_label
from pose_core.store.settings import configured_penn_root
from pose_core.datasets.penn_labels import rules_fingerprint
from pose_core.datasets.reference_histograms import counts_frame, penn_histograms, reference_counts
from pose_core.core.rules import VIEWS, RulesError
from pose_core.core.types import Verdict
from pose_core.store.outputs import SUMMARY_JSON, distinct_analyses, list_analyses
from pose_core.store.uploads import upload_name
from pose_core.store.tuning import (angle_distribution, axis_range, backup_path, correct_bands,
                                    open_bounds, rejudge, reset_user_rule, rule_toml,
                                    save_user_rule, save_user_rules_text, slider_bounds, with_check_bounds)

STAT_WORDS = {"min": "lowest", "max": "highest", "range": "range of", "peak_median": "median at the peak of"}

cur = current()
rule = cur.rule
S = cur.settings
ex = rule.name
c = rule.counting
shown_rule = plain(rule.display_name)  # rule names, messages and phase names come from a rules file: plain text

st.title("Tune thresholds")
st.caption(f"How **{shown_rule.lower()}** reps are counted and judged. Pick an angle, look at how it is "
           "distributed in real footage, and move the sliders: the lines on the chart and the results on your "
           f"analysed video update at once. Active rules: {cur.rules_label}.")
if cur.auto:  # thresholds belong to one exercise: the last one picked stands in for Auto
    st.info(f"The sidebar is set to **Auto**: these are the thresholds of **{shown_rule}**, the last "
            "exercise you picked. Pick another exercise in the sidebar to tune it.", icon=":material/info:")

# A save / reset inside the fragment asks for a full run (below, in tuning()); this is one already.
st.session_state.pop(keys.THR_FULL_RERUN, None)
msg = st.session_state.pop(keys.THR_MESSAGE, None)
if msg:
    if msg[0] == "ok":
        st.success(msg[1], icon=":material/check_circle:")
    else:
        st.error(msg[1], icon=":material/error:")

angle_names = list(rule.angles)
restore_choice(keys.THR_ANGLE, angle_names, param="angle")  # the angle is part of the page's link
if st.session_state.get(keys.THR_ANGLE) not in angle_names:  # (another exercise's angle: its primary one)
    st.session_state[keys.THR_ANGLE] = rule.primary_angle
angle = st.selectbox("Angle", angle_names, key=keys.THR_ANGLE,
                     format_func=lambda n: rule.angle_label(n) + (" (counts the reps)" if n == rule.primary_angle else ""))
keep_choice(keys.THR_ANGLE, angle, param="angle")
# -------------------------------------------------------------------------------------- rules file
# The buttons act in callbacks: they run before the next script run, so the sidebar and the sliders of
# that run already show the new rules.


def _clear_sliders(exercises) -> None:
    """Forget the sliders' values and the unsaved draft of these exercises (after a save, reset or discard)."""
    drafts = st.session_state.get(keys.THR_DRAFT, {})
    for e_name in exercises:
        for k in [k for k in st.session_state if str(k).startswith(keys.thr_prefix(e_name))]:
            del st.session_state[k]
        drafts.pop(e_name, None)
    st.query_params.pop(keys.QUERY_DRAFT, None)


def _use_user_rules(message: str) -> None:
    st.session_state[keys.USE_USER_RULES] = True
    st.session_state[keys.THR_MESSAGE] = ("ok", message)


def _save(rule_to_save) -> None:
    try:
        save_user_rule(S.user_rules_path, rule_to_save)
    except (RulesError, OSError) as e:
        st.session_state[keys.THR_MESSAGE] = ("error", f"Not saved: {plain_error(e)}")
        return
    _use_user_rules(f"Saved to {plain(S.user_rules_path.name)}; every page now uses these thresholds.")
    _clear_sliders([rule_to_save.name])
    st.session_state[keys.THR_FULL_RERUN] = True


def _reset(exercise: str, display: str) -> None:
    try:
        removed = reset_user_rule(S.user_rules_path, exercise)
    except (RulesError, OSError) as e:
        st.session_state[keys.THR_MESSAGE] = ("error", f"Not reset: {plain_error(e)}")
        return
    st.session_state[keys.THR_MESSAGE] = ("ok", f"{plain(display)}: back to the built-in thresholds." if removed else
                                          "Sliders reset (your rules file had no override for this exercise).")
    _clear_sliders([exercise])
    st.session_state[keys.THR_FULL_RERUN] = True


def _apply_upload(exercises) -> None:
    up = st.session_state.get(keys.THR_UPLOAD)
    if up is None:
        return
    if up.size > 1_000_000:
        st.session_state[keys.THR_MESSAGE] = ("error", "That file is too large to be a rules file (over 1 MB).")
        return
    try:  # (errors name the uploaded file, not the rules file it would replace)
        save_user_rules_text(S.user_rules_path, up.getvalue(), label=up.name)
    except RulesError as e:
        st.session_state[keys.THR_MESSAGE] = ("error", f"Refused, nothing was changed: {plain_error(e)}")
        return
    except OSError as e:
        st.session_state[keys.THR_MESSAGE] = ("error", f"Could not save the rules file: {plain_error(e)}")
        return
    _use_user_rules(f"Rules file {plain(up.name)} checked and in use.")
    _clear_sliders(exercises)


ax = axis_range(rule, angle)
step = 1.0


def slider_format(unit: str) -> str:
    """A slider's value with its unit: "100°", "8% body", "80% ankle width" (sprintf: %% is a percent sign)."""
    return "%.0f°" if unit == "deg" else "%.0f" + ("" if unit.startswith("%") else " ") + unit.replace("%", "%%")


fmt_unit = slider_format(rule.angles[angle].unit)

# ------------------------------------------------------------------ the data (before any widget is drawn)
# Loaded once per angle, outside the fragment below: moving a slider reruns only the fragment, which reuses
# these. Ready before the sliders are drawn, so the chart appears together with them (no layout jump).
analyses = distinct_analyses(list_analyses(S.analyses_dir, ex))  # (a video analysed twice counts once)
dist = angle_distribution(analyses, rule, angle)


@st.cache_data(show_spinner="Reading the Penn Action reference...", max_entries=64)
def _penn_counts(root: str, exercise: str, angle_name: str, rules_fp: str, _rules, cache_dir: str):
    """The configured dataset's histogram of one angle (same bins as the shipped reference)."""
    try:
        hist = penn_histograms(root, _rules, exercise, [angle_name], cache_dir=cache_dir)[angle_name]
    except (OSError, ValueError, KeyError, RuntimeError):  # an unreadable dataset: the shipped reference
        return None
    df = counts_frame(hist, _rules[exercise], angle_name)
    return df if len(df) else None


# The Penn Action reference: the histograms shipped with GymPose (pose_core/datasets/reference_histograms.json,
# labelled by the built-in rules), so it is there on the first run without the dataset. Only when your rules
# change what is measured (this exercise's angles or counting, or the defaults; thresholds and checks do not
# change the angles or phases) and a dataset folder is configured is it labelled afresh (slow the first time,
# then cached).
penn_root = configured_penn_root()
reference, reference_note = None, ""
builtin = builtin_rules()
changed = (ex not in builtin.exercises or builtin[ex].angles != rule.angles or builtin[ex].counting != rule.counting
           or builtin.defaults != cur.rules.defaults)
if changed and penn_root is not None and (penn_root / "labels").is_dir():
    reference = _penn_counts(str(penn_root), ex, angle, rules_fingerprint(cur.rules, (ex,)), cur.rules,
                             str(S.workspace / "cache" / "penn"))
    reference_note = "Penn Action (training split) from your dataset folder, labelled by your rules"
if reference is None:
    reference = reference_counts(rule, angle)
    reference_note = ("Penn Action (training split), shipped with GymPose as histogram counts; "
                      "W. Zhang, M. Zhu, K. Derpanis, ICCV 2013")


# ---------------------------------------------------------------------------------- the unsaved draft
# Slider values that differ from the active rules are a draft, kept per exercise in the session (Streamlit
# drops a widget's value when a run does not draw it: another page, another angle) and, for the exercise on
# display, in the page's address (`draft=`), so a reload or a bookmark keeps them too. Only Save makes them
# rules; a banner says while there are unsaved changes.
_DRAFT_ITEM = re.compile(r"^([fr])(\d{1,3})=(-?\d{1,4}(?:\.\d+)?)_(-?\d{1,4}(?:\.\d+)?)$")


def _draft() -> dict:
    """This exercise's draft: slider key -> (lo, hi)."""
    return st.session_state.setdefault(keys.THR_DRAFT, {}).setdefault(ex, {})


def _slider_keys() -> dict[str, tuple[str, int]]:
    return {**{keys.thr_frame_check(ex, i): ("f", i) for i in range(len(rule.frame_checks))},
            **{keys.thr_rep_check(ex, i): ("r", i) for i in range(len(rule.rep_checks))}}


def _check_of(kind: str, i: int):
    return (rule.frame_checks if kind == "f" else rule.rep_checks)[i]


def draft_param(draft: dict) -> str:
    """The draft as the address's `draft=` value: "squat:f0=0_50,r2=0_5"."""
    items = [f"{k}{i}={draft[key][0]:g}_{draft[key][1]:g}" for key, (k, i) in _slider_keys().items() if key in draft]
    return f"{ex}:" + ",".join(items) if items else ""


def _restore_draft_from_url() -> None:
    """A reload (or a shared link) brings the address's draft back, if it is this exercise's and makes sense."""
    text = st.query_params.get(keys.QUERY_DRAFT, "")
    if _draft() or not text.startswith(f"{ex}:"):
        return
    by_code = {f"{k}{i}": key for key, (k, i) in _slider_keys().items()}
    for item in text[len(ex) + 1:].split(","):
        m = _DRAFT_ITEM.match(item)
        key = by_code.get(f"{m.group(1)}{int(m.group(2))}") if m else None
        if key is None:
            continue
        lo_ax, hi_ax = axis_range(rule, _check_of(*_slider_keys()[key]).angle)
        lo, hi = max(lo_ax, float(m.group(3))), min(hi_ax, float(m.group(4)))
        if lo <= hi:
            _draft()[key] = (lo, hi)


def _keep_draft(key: str, value, default) -> None:
    if tuple(value) != tuple(default):
        _draft()[key] = tuple(value)
    else:
        _draft().pop(key, None)


def _tuned_rule():
    """The rule with every drafted range (all angles, not only the one shown); RulesError when invalid."""
    bounds = {"f": {}, "r": {}}
    for key, (k, i) in _slider_keys().items():
        if key in _draft():
            bounds[k][i] = open_bounds(_draft()[key], axis_range(rule, _check_of(k, i).angle))
    return with_check_bounds(rule, bounds["f"], bounds["r"])


def _discard() -> None:
    _clear_sliders([ex])
    st.session_state[keys.THR_MESSAGE] = ("ok", "Unsaved changes discarded: the sliders show the active rules again.")


def _unsaved_banner(box) -> None:
    n = len(_draft())
    text = draft_param(_draft())
    if text:
        if st.query_params.get(keys.QUERY_DRAFT) != text:
            st.query_params[keys.QUERY_DRAFT] = text
    elif keys.QUERY_DRAFT in st.query_params:
        del st.query_params[keys.QUERY_DRAFT]
    if not n:
        box.empty()
        return
    with box.container():
        st.warning(f"**Unsaved changes** to {plural(n, 'range')} of the {shown_rule.lower()} rules. They are kept "
                   "while you visit other pages and in this page's address (a reload keeps them), but no page uses "
                   "them until you save them.", icon=":material/edit_note:")
        st.button("Discard changes", key=keys.THR_DISCARD, icon=":material/undo:", on_click=_discard)


def _frame_slider(i: int, fc) -> tuple[float, float]:
    where = {"any": "every frame", "rest": f"{c.display_phase('rest')} phase", "peak": f"{c.display_phase('peak')} phase",
             "transition": "in between"}[fc.phase]
    key = keys.thr_frame_check(ex, i)
    default = slider_bounds(fc.min, fc.max, ax)
    # (the value applies when the widget is new: back from another page or angle, after a reload)
    v = st.slider(f"{plain(check_label(fc))} ({plain(rule.angle_label(angle).lower())}, {plain(where)})", ax[0], ax[1],
                  _draft().get(key, default), step=step, format=fmt_unit, key=key, help=plain(fc.message))
    _keep_draft(key, v, default)
    return v


def _rep_slider(i: int, rc) -> tuple[float, float]:
    seen = "" if set(rc.views) == set(VIEWS) else f", judged from {', '.join(rc.views)} views"
    key = keys.thr_rep_check(ex, i)
    default = slider_bounds(rc.min, rc.max, ax)
    v = st.slider(f"{plain(check_label(rc))} ({STAT_WORDS.get(rc.stat, rc.stat)} "
                  f"{plain(rule.angle_label(angle).lower())} in a rep{seen})", ax[0], ax[1], _draft().get(key, default),
                  step=step, format=fmt_unit, key=key, help=plain(rc.message))
    _keep_draft(key, v, default)
    return v


def rep_limits(shown, unit: str) -> list[tuple[float, str]]:
    """The per-rep limits on this angle, for the chart: (value, "≤ 100°")."""
    out = []
    for rc in shown.rep_checks:
        if rc.angle == angle:
            for v, sign in ((rc.min, "≥"), (rc.max, "≤")):
                if math.isfinite(v):
                    out.append((v, f"{sign} {v:.0f}{unit}"))
    return out


# --------------------------------------------------------------------------------------- the tuning

def _sliders() -> None:
    unit = rule.angles[angle].unit
    if angle == rule.primary_angle:
        st.caption(f"Reps are found in the movement itself, relative to the person's own range of motion (at "
                   f"least {c.min_amplitude:.0f} {unit} of {plain(rule.angle_label(angle).lower())} per rep). The "
                   "ranges below decide whether each rep and frame was correct.")
    frame_checks = [(i, fc) for i, fc in enumerate(rule.frame_checks) if fc.angle == angle]
    if frame_checks:
        st.markdown("**Correct range per frame** (outside it the frame is labelled incorrect)")
    for i, fc in frame_checks:
        _frame_slider(i, fc)
    rep_checks = [(i, rc) for i, rc in enumerate(rule.rep_checks) if rc.angle == angle]
    if rep_checks:
        st.markdown("**Correct range per rep** (dashed on the chart)")
    for i, rc in rep_checks:
        _rep_slider(i, rc)
    if not (frame_checks or rep_checks):
        st.info(f"The rule has no threshold on {plain(rule.angle_label(angle).lower())}: it is shown for "
                "reference only.")


def _chart(shown) -> None:
    unit = rule.angles[angle].unit
    unit_text = "°" if unit == "deg" else ("" if unit.startswith("%") else " ") + unit
    label = plain(rule.angle_label(angle).lower())
    if dist.empty and reference is None:
        st.info(f"No data for {label} yet: analyse a {shown_rule.lower()} video on the Analyze page and its "
                "angles will appear here.", icon=":material/info:")
    elif dist.empty:
        st.caption(f"Your own {label} angles appear under this reference once you analyse a "
                   f"{shown_rule.lower()} video on the Analyze page.")
    # The figure is built once per exercise, angle and data (this session); a slider move only redraws
    # the ranges on it (charts.set_bands), so the fragment's rerun stays well under 0.3 s.
    sig = (ex, angle, cur.rules_label, len(dist), None if reference is None else int(reference["count"].sum()),
           tuple(c.display_phase(p) for p in ("rest", "transition", "peak")))
    cached = st.session_state.get(keys.THR_FIGURE)
    if cached is None or cached[0] != sig:
        cached = (sig, charts.angle_histogram_base(dist, shown, angle, ax, reference=reference))
        st.session_state[keys.THR_FIGURE] = cached
    st.plotly_chart(charts.set_bands(cached[1], correct_bands(shown, angle), ax, rep_limits(shown, unit_text)),
                    width="stretch", config={"displaylogo": False}, key=keys.THR_CHART)
    parts = []
    if reference is not None:
        parts.append(f"Top: {reference_note}.")
    if not dist.empty:
        n_src = dist["source"].nunique()
        parts.append(f"{'Below: ' if reference is not None else ''}{plural(len(dist), 'frame')} from "
                     f"{plural(n_src, 'video')} of yours (a video analysed again counts once).")
    if parts:
        st.caption(" ".join(parts) + " Coloured by the phase the frames were in. Shaded: the correct range "
                   "per frame; dashed: the limits per rep.")


def video_label(a) -> str:
    """An analysed video as a person recognises it: its name as uploaded, its reps, when it was analysed."""
    name = upload_name(S.uploads_dir / a.summary.video) if a.summary.video else a.path.name
    try:
        when = f" · analysed {when_text((a.path / SUMMARY_JSON).stat().st_mtime)}"
    except OSError:
        when = ""
    return f"{name} · {plural(a.summary.reps, 'rep')}{when}"


def _consequence(tuned) -> None:
    st.markdown("#### What these values change")
    if not analyses:
        st.caption("Analyse a video of this exercise to see the effect of your changes on it.")
        return
    labels = {str(a.path): video_label(a) for a in analyses}
    chosen = st.selectbox("Analysed video", list(labels), format_func=labels.get, key=keys.THR_VIDEO)
    info = next(a for a in analyses if str(a.path) == chosen)
    try:
        before = rejudge(info.frames_csv, rule, cur.rules.defaults)
        after = rejudge(info.frames_csv, tuned, cur.rules.defaults) if tuned else None
    except (OSError, ValueError) as e:
        st.error(f"That analysis cannot be read: {plain_error(e)}")
        return
    now = after or before
    m = st.columns(4)
    delta_pct = (None if after is None or now.frames_correct_pct is None or before.frames_correct_pct is None
                 else round(now.frames_correct_pct - before.frames_correct_pct, 1))
    m[0].metric("Frames correct", fmt(now.frames_correct_pct, "%", 1),
                delta=f"{delta_pct:+.1f} pts" if delta_pct else None)
    m[1].metric("Reps counted", now.rep_count, delta=(now.rep_count - before.rep_count) or None)
    m[2].metric("Reps judged correct", f"{now.reps_correct} / {now.rep_count}",
                delta=(now.reps_correct - before.reps_correct) or None)
    m[3].metric("Partial reps", now.partial_reps)
    st.caption("Compared with the active rules. Re-judged from the stored per-frame angles, the pose model "
               "is not run again.")
    bad = [f"Rep {r.index}: {plain('; '.join(r.reasons))}" for r in now.reps if r.verdict == Verdict.INCORRECT]
    if bad:
        st.markdown("\n".join(f"- {b}" for b in bad))


def _rules_file(tuned) -> None:
    st.markdown("#### Your rules file")
    st.caption(f"Saved in your workspace as {plain(shown_path(S.user_rules_path, S.workspace))}; the previous "
               f"version is kept as {plain(backup_path(S.user_rules_path).name)}.")
    b = st.columns(3)
    b[0].button(f"Save {shown_rule.lower()} thresholds", key=keys.THR_SAVE, type="primary", icon=":material/save:",
                disabled=tuned is None, width="stretch", on_click=_save, args=(tuned,))
    b[1].button("Reset to defaults", key=keys.THR_RESET, icon=":material/restart_alt:", width="stretch",
                help=f"Remove your {shown_rule.lower()} override from the rules file.",
                on_click=_reset, args=(ex, rule.display_name))
    download_text = (S.user_rules_path.read_text(encoding="utf-8") if S.user_rules_path.is_file()
                     else rule_toml({ex: tuned}) if tuned else None)
    if download_text is not None:
        b[2].download_button("Download rules file", download_text, file_name="gympose_rules.toml",
                             mime="application/toml", key=keys.THR_DOWNLOAD, icon=":material/download:", width="stretch")


@st.fragment
def tuning() -> None:
    """Sliders, chart, their consequence and the save buttons. A slider move reruns only this (the chart
    updates within a few hundred ms and the slider keeps the keyboard focus)."""
    if st.session_state.pop(keys.THR_FULL_RERUN, False):  # only set here in a fragment-only run
        st.rerun()  # (scope "app": the sidebar and the message at the top follow a save / reset)
    _restore_draft_from_url()
    banner = st.empty()  # (filled once the sliders are read: it shows this run's draft)
    col_s, col_chart = st.columns([2, 3])
    with col_s:
        _sliders()
    _unsaved_banner(banner)
    tuned = None
    try:
        tuned = _tuned_rule()
    except RulesError as e:
        col_s.error(f"These values are not a valid rule: {plain(str(e).split(': ', 1)[-1])}", icon=":material/error:")
    with col_chart:
        _chart(tuned or rule)
    _consequence(tuned)
    _rules_file(tuned)

tuning()
render_form_limits(rule)

with st.expander("Upload a rules file", icon=":material/upload_file:"):
    up = st.file_uploader("Rules file (TOML)", type=["toml"], key=keys.THR_UPLOAD,
                          help="It replaces your rules file, after it is checked. An invalid file changes nothing.")
    st.button("Use this rules file", key=keys.THR_APPLY_UPLOAD, disabled=up is None, on_click=_apply_upload,
              args=(list(cur.rules.exercises),))
