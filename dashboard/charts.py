"""Plotly figures. Drawing only: every value comes from pose_core results (no measuring or judging here)."""

from __future__ import annotations

from datetime import datetime
from html import escape

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from pose_core.core.form_model import LEARNED_ANGLE
from pose_core.core.judging import check_label, rule_check_for
from pose_core.core.rules import ExerciseRule
from pose_core.store.tuning import Band
from pose_core.core.types import CheckStatus, FrameLabelKind, Phase, RepEvent, RestSide, Verdict

GREEN = "#1f9d55"
RED = "#d64545"
GREY = "#8a8f98"
BLUE = "#2563eb"
AMBER = "#d97706"
VERDICT_COLOURS = {Verdict.CORRECT: GREEN, Verdict.INCORRECT: RED}
# Plotly renders a subset of HTML (<a href>, <b>, ...) in names and hover texts: user-controlled text (rule
# messages and phase names, session names) goes through html.escape.
PHASE_COLOURS = {"rest": BLUE, "transition": GREY, "peak": AMBER}
SECONDARY_COLOURS = ["#7c3aed", "#0891b2", "#be185d", "#65a30d", "#a16207"]


def _layout(fig: go.Figure, height: int, **kw) -> go.Figure:
    legend = kw.pop("legend", dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0))
    margin = kw.pop("margin", dict(l=10, r=10, t=40, b=10))
    fig.update_layout(height=height, margin=margin, template="plotly_white", legend=legend, **kw)
    return fig


def _unit(rule: ExerciseRule, angle: str) -> str:
    u = rule.angles[angle].unit
    return "°" if u == "deg" else f" {u}"


def angle_timeline(frames: pd.DataFrame, reps: list[RepEvent], rule: ExerciseRule, bands: list[Band],
                   extra_angles: list[str] = (), note: str = "") -> go.Figure:
    """The primary angle over time: correct ranges shaded, each rep as a band coloured
    by its verdict with a marker at its deepest point; hover shows the frame's label and feedback, and a
    rep's checks that were not judged from the camera's view. `note` (plain text, escaped here) is shown
    above the plot, e.g. the camera view and what it could not judge. The legend sits below the plot, out of
    the toolbar's way."""
    primary = rule.primary_angle
    unit = _unit(rule, primary)
    fig = go.Figure()
    t = frames["time_s"]
    for b in bands:
        where = "at the bottom" if b.phase == Phase.PEAK else ("at rest" if b.phase == Phase.REST else "")
        fig.add_hrect(y0=b.lo, y1=b.hi, fillcolor=GREEN, opacity=0.10, line_width=0, layer="below")
        fig.add_annotation(x=0, xref="paper", y=b.hi, yref="y", xanchor="left", yanchor="top", showarrow=False,
                           text=f"correct {where}: {b.lo:.0f}–{b.hi:.0f}{unit}".replace("  ", " "),
                           font=dict(size=11, color=GREEN), bgcolor="rgba(255,255,255,0.7)")
    for r in reps:
        colour = VERDICT_COLOURS.get(r.verdict, GREY)
        fig.add_vrect(x0=r.start_s, x1=r.end_s, fillcolor=colour, opacity=0.08, line_width=0, layer="below")
    c = rule.counting

    label = frames.get("label", pd.Series(["unknown"] * len(frames)))
    reason = frames.get("reason", pd.Series([""] * len(frames))).fillna("").map(lambda r: escape(str(r)))
    phase = frames.get("phase", pd.Series([""] * len(frames))).fillna("")
    phase_names = phase.map(lambda p: escape(c.display_phase(p)) if p else "")
    hover = [f"{lab}" + (f"<br>{rs}" if rs else "") for lab, rs in zip(label, reason)]
    y = pd.to_numeric(frames[primary], errors="coerce") if primary in frames.columns else pd.Series([float("nan")] * len(frames))
    fig.add_trace(go.Scatter(x=t, y=y, mode="lines", name=f"{primary} (primary)", line=dict(color="#111827", width=2),
                             customdata=list(zip(phase_names, hover)),
                             hovertemplate=f"%{{x:.2f}} s  {primary} %{{y:.0f}}{unit}<br>%{{customdata[0]}}: "
                                           "%{customdata[1]}<extra></extra>"))
    bad = label == FrameLabelKind.INCORRECT
    if bad.any():
        fig.add_trace(go.Scatter(x=t[bad], y=y[bad], mode="markers", name="frame incorrect",
                                 marker=dict(color=RED, size=4), customdata=reason[bad],
                                 hovertemplate="%{x:.2f} s: %{customdata}<extra></extra>"))
    for i, name in enumerate(extra_angles):
        if name in frames.columns and name != primary:
            fig.add_trace(go.Scatter(x=t, y=pd.to_numeric(frames[name], errors="coerce"), mode="lines", name=name,
                                     line=dict(width=1.2, color=SECONDARY_COLOURS[i % len(SECONDARY_COLOURS)]),
                                     hovertemplate=f"%{{x:.2f}} s  {name} %{{y:.0f}}<extra></extra>"))
    if reps:
        rest_high = c.rest == RestSide.HIGH
        xs = [r.peak_s for r in reps]
        ys = [r.primary_min if rest_high else r.primary_max for r in reps]
        texts = [f"Rep {r.index}: {r.verdict}" + ("<br>" + "<br>".join(map(escape, r.reasons)) if r.reasons else "")
                 + (f"<br>not judged from the {escape(str(r.view))} view: " + escape(", ".join(not_judged_labels(rule, r)))
                    if r.not_judged else "") for r in reps]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers+text", name="reps",
                                 marker=dict(size=13, symbol="diamond", line=dict(width=1, color="white"),
                                             color=[VERDICT_COLOURS.get(r.verdict, GREY) for r in reps]),
                                 text=[str(r.index) for r in reps], textposition="bottom center" if rest_high else "top center",
                                 hovertext=texts, hovertemplate="%{hovertext}<extra></extra>",
                                 # a clicked rep (the page plays it) stands out; the others stay readable
                                 selected=dict(marker=dict(size=17)), unselected=dict(marker=dict(opacity=0.75))))
    fig.update_xaxes(title_text="time (s)")
    fig.update_yaxes(title_text=f"{primary} ({unit.strip() or 'deg'})")
    title = dict(text=escape(note), x=0, xanchor="left", font=dict(size=12, color="#4b5563")) if note else None
    return _layout(fig, 440, hovermode="closest", title=title,
                   legend=dict(orientation="h", yanchor="top", y=-0.2, xanchor="left", x=0),
                   margin=dict(l=10, r=10, t=40 if note else 20, b=10))


def not_judged_labels(rule: ExerciseRule, rep: RepEvent) -> list[str]:
    """The short names of a rep's checks that its camera view could not judge ("Knees caved in"), leaving out a
    name that another of its checks judged (a squat's depth: on the image from the side, in 3D from the front)."""
    def label(c) -> str:
        check = rule_check_for(rule, c)
        return check_label(check) if check is not None else f"{c.angle} {c.stat}".replace("_", " ")

    judged = {label(c) for c in rep.checks if c.status != CheckStatus.NOT_JUDGED}
    out = []
    for c in rep.not_judged:
        if c.angle == LEARNED_ANGLE:  # the learned check says nothing on its own when it cannot judge
            continue
        name = label(c)
        if name not in judged and name not in out:
            out.append(name)
    return out


def angle_histogram(dist: pd.DataFrame, rule: ExerciseRule, angle: str, bands: list[Band],
                    x_range: tuple[float, float], reference: pd.DataFrame | None = None,
                    reference_name: str = "Penn Action") -> go.Figure:
    """Distribution of an angle, one colour per phase and one row per data source (the reference as
    histogram counts: rows lo, hi, phase, count; your videos as values: their sizes differ by orders of
    magnitude), with the correct ranges on top. The figure's size does not depend on the data (no jump).
    A page that redraws the ranges often builds the figure once and calls set_bands() (sub-ms) on it."""
    return set_bands(angle_histogram_base(dist, rule, angle, x_range, reference, reference_name), bands, x_range)


def angle_histogram_base(dist: pd.DataFrame, rule: ExerciseRule, angle: str, x_range: tuple[float, float],
                         reference: pd.DataFrame | None = None, reference_name: str = "Penn Action") -> go.Figure:
    """angle_histogram without the ranges (the slow part: ~150 ms, mostly plotly's template)."""
    c = rule.counting
    unit = _unit(rule, angle)
    has_ref = reference is not None and len(reference) > 0
    sources = ([reference_name] if has_ref else []) + (["your videos"] if len(dist) or not has_ref else [])
    titles = [f"{reference_name}: {int(reference['count'].sum())} frames" if src == reference_name
              else f"{src}: {len(dist)} frames" for src in sources]
    fig = make_subplots(rows=len(sources), cols=1, shared_xaxes=True, vertical_spacing=0.12, subplot_titles=titles)
    bin_size = max(1.0, (x_range[1] - x_range[0]) / 90)
    shown = set()
    for row, src in enumerate(sources, start=1):
        for ph in ("rest", "transition", "peak"):
            name = escape(c.display_phase(ph))
            common = dict(name=name, legendgroup=ph, showlegend=ph not in shown, opacity=0.7,
                          marker_color=PHASE_COLOURS[ph])
            if src == reference_name:
                sub = reference[reference["phase"] == ph]
                if sub.empty:
                    continue
                fig.add_trace(go.Bar(x=(sub["lo"] + sub["hi"]) / 2, y=sub["count"], width=(sub["hi"] - sub["lo"]),
                                     hovertemplate=f"{name}<br>%{{x:.0f}}{unit}: %{{y}} frames<extra>{src}</extra>",
                                     **common), row=row, col=1)
            else:
                sub = dist[dist["phase"] == ph]
                if sub.empty:
                    continue
                fig.add_trace(go.Histogram(x=sub["value"], xbins=dict(size=bin_size),
                                           hovertemplate=f"{name}<br>%{{x}}{unit}: %{{y}} frames<extra>{src}</extra>",
                                           **common), row=row, col=1)
            shown.add(ph)
        fig.update_yaxes(title_text="frames", row=row, col=1)
    for ann in fig.layout.annotations[: len(sources)]:  # subplot titles: left-aligned, out of the labels' way
        ann.update(x=0, xanchor="left", font=dict(size=12, color="#4b5563"))
    fig.update_layout(barmode="overlay", bargap=0)
    fig.update_xaxes(range=list(x_range))
    fig.update_xaxes(title_text=f"{angle} ({unit.strip() or 'deg'})", row=len(sources), col=1)
    return _layout(fig, HISTOGRAM_HEIGHT, legend=dict(orientation="h", yanchor="top", y=-0.18, x=0),
                   margin=dict(l=10, r=10, t=70, b=10))


def set_bands(fig: go.Figure, bands: list[Band], x_range: tuple[float, float]) -> go.Figure:
    """The correct ranges as plain layout shapes over the whole height (the x axes are shared), replacing
    any drawn before: a fraction of a millisecond, where add_vrect/add_vline(row="all") took ~100 ms."""
    shapes = []
    for b in bands:
        shapes.append(dict(type="rect", xref="x", yref="paper", x0=b.lo, x1=b.hi, y0=0, y1=1, fillcolor=GREEN,
                           opacity=0.12, line_width=0, layer="below"))
        for edge, inside in ((b.lo, b.lo > x_range[0]), (b.hi, b.hi < x_range[1])):
            if inside:
                shapes.append(dict(type="line", xref="x", yref="paper", x0=edge, x1=edge, y0=0, y1=1,
                                   line=dict(color=GREEN, width=2)))
    fig.layout.shapes = shapes
    return fig


HISTOGRAM_HEIGHT = 600  # fixed: the Thresholds page reserves this much, with or without a reference row


def progress_chart(rows: list[dict], depth_label: str) -> go.Figure:
    """Reps, % correct reps and depth per session over time."""
    df = pd.DataFrame(rows)
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("Reps per session", "Correct reps (%)", depth_label))
    # One evenly spaced slot per session (sessions are irregular in time; a date axis squeezes them).
    when = [datetime.fromisoformat(c).astimezone() for c in df["created_at"]]  # local time, as the table
    x = [f"{w:%b %d %H:%M} #{i}" for w, i in zip(when, df["id"])]
    hover = [f"#{i} {escape(str(n))}" for i, n in zip(df["id"], df["name"])]
    fig.add_trace(go.Bar(x=x, y=df["reps"], name="reps", marker_color=BLUE, hovertext=hover,
                         hovertemplate="%{hovertext}<br>%{y} reps<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Scatter(x=x, y=df["reps_correct_pct"], mode="lines+markers", name="correct %",
                             line=dict(color=GREEN), hovertext=hover,
                             hovertemplate="%{hovertext}<br>%{y:.0f}% correct<extra></extra>"), row=2, col=1)
    fig.add_trace(go.Scatter(x=x, y=df["avg_depth"], mode="lines+markers", name="depth", line=dict(color=AMBER),
                             hovertext=hover, hovertemplate="%{hovertext}<br>%{y:.0f}°<extra></extra>"), row=3, col=1)
    fig.update_yaxes(range=[0, 105], row=2, col=1)
    fig.update_xaxes(type="category")
    fig.update_traces(width=0.5, selector=dict(type="bar"))
    fig.update_layout(showlegend=False)
    return _layout(fig, 560)
