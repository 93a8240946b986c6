"""Plotly figures. Drawing only: every value comes from pose_core results (no measuring or judging here)."""

from __future__ import annotations

from datetime import datetime
from html import escape

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from pose_core.core.rules import ExerciseRule
from pose_core.core.wording import plural
from pose_core.store.report import not_judged_labels  # (one definition: the report's)
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
CURVE_POINTS = 600  # hover and click targets along the timeline's curve


def _layout(fig: go.Figure, height: int, **kw) -> go.Figure:
    legend = kw.pop("legend", dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0))
    margin = kw.pop("margin", dict(l=10, r=10, t=40, b=10))
    fig.update_layout(height=height, margin=margin, template="plotly_white", legend=legend, **kw)
    return fig


def _unit(rule: ExerciseRule, angle: str) -> str:
    u = rule.angles[angle].unit
    return "°" if u == "deg" else f" {u}"


def angle_timeline(frames: pd.DataFrame, reps: list[RepEvent], rule: ExerciseRule, bands: list[Band],
                   extra_angles: list[str] = ()) -> go.Figure:
    """The primary angle over time: correct ranges shaded, each rep as a band coloured by its verdict with a
    marker at its deepest point; hover shows the frame's label and feedback, and a rep's checks that were not
    judged from the camera's view. No title and no x-axis title inside the figure (the seconds are on the
    ticks): nothing runs under the toolbar or into the legend below the plot.

    Clicks: the rep markers are drawn last (on top) and large; the curve carries invisible markers, so a click
    on the curve inside a rep is a selection too (the page maps it to that rep): a click on a marker lands on
    the curve drawn through it as often as on the marker itself."""
    primary = rule.primary_angle
    unit = _unit(rule, primary)
    label = escape(rule.angle_label(primary))
    fig = go.Figure()
    t = frames["time_s"]
    _shade(fig, bands, reps, unit)
    c = rule.counting

    kind = frames.get("label", pd.Series(["unknown"] * len(frames)))
    reason = frames.get("reason", pd.Series([""] * len(frames))).fillna("").map(lambda r: escape(str(r)))
    phase = frames.get("phase", pd.Series([""] * len(frames))).fillna("")
    phase_names = phase.map(lambda p: escape(c.display_phase(p)) if p else "")
    hover = [f"{lab}" + (f"<br>{rs}" if rs else "") for lab, rs in zip(kind, reason)]
    y = pd.to_numeric(frames[primary], errors="coerce") if primary in frames.columns else pd.Series([float("nan")] * len(frames))
    fig.add_trace(go.Scatter(x=t, y=y, mode="lines", name=f"{label} (counts the reps)",
                             line=dict(color="#111827", width=2), hoverinfo="skip"))
    # The curve's hover and clicks: invisible markers on at most CURVE_POINTS of its frames (a long video
    # would otherwise draw one SVG element per frame), selectable, so a click on the curve is a selection.
    step = max(1, len(frames) // CURVE_POINTS)
    invisible = dict(marker=dict(opacity=0))
    fig.add_trace(go.Scatter(x=t[::step], y=y[::step], mode="markers", name="curve", showlegend=False,
                             marker=dict(size=8, opacity=0, color="rgba(0,0,0,0)"), selected=invisible,
                             unselected=invisible, customdata=list(zip(phase_names, hover))[::step],
                             hovertemplate=f"%{{x:.2f}} s  {label} %{{y:.0f}}{unit}<br>%{{customdata[0]}}: "
                                           "%{customdata[1]}<extra></extra>"))
    bad = kind == FrameLabelKind.INCORRECT
    if bad.any():
        fig.add_trace(go.Scatter(x=t[bad], y=y[bad], mode="markers", name="frame incorrect",
                                 marker=dict(color=RED, size=4), customdata=reason[bad],
                                 hovertemplate="%{x:.2f} s: %{customdata}<extra></extra>"))
    for i, name in enumerate(extra_angles):
        if name in frames.columns and name != primary:
            shown = escape(rule.angle_label(name))
            fig.add_trace(go.Scatter(x=t, y=pd.to_numeric(frames[name], errors="coerce"), mode="lines", name=shown,
                                     line=dict(width=1.2, color=SECONDARY_COLOURS[i % len(SECONDARY_COLOURS)]),
                                     hovertemplate=f"%{{x:.2f}} s  {shown} %{{y:.0f}}<extra></extra>"))
    if reps:
        fig.add_trace(_rep_markers(reps, rule))
    fig.update_xaxes(ticksuffix=" s")
    fig.update_yaxes(title_text=f"{label} ({unit.strip() or 'deg'})")
    return _layout(fig, 440, hovermode="closest", hoverdistance=30,
                   legend=dict(orientation="h", yanchor="top", y=-0.12, xanchor="left", x=0),
                   margin=dict(l=10, r=10, t=30, b=10))


def _shade(fig: go.Figure, bands: list[Band], reps: list[RepEvent], unit: str) -> None:
    """The correct ranges (horizontal, labelled) and each rep's span (vertical, its verdict's colour)."""
    for b in bands:
        where = "at the bottom" if b.phase == Phase.PEAK else ("at rest" if b.phase == Phase.REST else "")
        fig.add_hrect(y0=b.lo, y1=b.hi, fillcolor=GREEN, opacity=0.10, line_width=0, layer="below")
        fig.add_annotation(x=0, xref="paper", y=b.hi, yref="y", xanchor="left", yanchor="top", showarrow=False,
                           text=f"correct {where}: {b.lo:.0f}–{b.hi:.0f}{unit}".replace("  ", " "),
                           font=dict(size=11, color=GREEN), bgcolor="rgba(255,255,255,0.7)")
    for r in reps:
        colour = VERDICT_COLOURS.get(r.verdict, GREY)
        fig.add_vrect(x0=r.start_s, x1=r.end_s, fillcolor=colour, opacity=0.08, line_width=0, layer="below")


def _rep_markers(reps: list[RepEvent], rule: ExerciseRule) -> go.Scatter:
    rest_high = rule.counting.rest == RestSide.HIGH
    texts = [f"Rep {r.index}: {r.verdict}" + ("<br>" + "<br>".join(map(escape, r.reasons)) if r.reasons else "")
             + (f"<br>not judged from the {escape(str(r.view))} view: " + escape(", ".join(not_judged_labels(rule, r)))
                if r.not_judged else "") + "<br><i>click: play this rep</i>" for r in reps]
    return go.Scatter(x=[r.peak_s for r in reps], y=[r.primary_min if rest_high else r.primary_max for r in reps],
                      mode="markers+text", name="reps (click one to play it)",
                      marker=dict(size=17, symbol="diamond", line=dict(width=1.5, color="white"),
                                  color=[VERDICT_COLOURS.get(r.verdict, GREY) for r in reps]),
                      text=[str(r.index) for r in reps], textposition="bottom center" if rest_high else "top center",
                      hovertext=texts, hovertemplate="%{hovertext}<extra></extra>",
                      # a clicked rep (the page plays it) stands out; the others stay readable
                      selected=dict(marker=dict(size=21)), unselected=dict(marker=dict(opacity=0.8)))


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
    fig.update_xaxes(title_text=f"{escape(rule.angle_label(angle))} ({unit.strip() or 'deg'})", row=len(sources), col=1)
    return _layout(fig, HISTOGRAM_HEIGHT, legend=dict(orientation="h", yanchor="top", y=-0.18, x=0),
                   margin=dict(l=10, r=10, t=70, b=10))


def set_bands(fig: go.Figure, bands: list[Band], x_range: tuple[float, float],
              limits: list[tuple[float, str]] = ()) -> go.Figure:
    """The correct ranges as plain layout shapes over the whole height (the x axes are shared), and the
    per-rep limits (value, short text) as dashed lines labelled at the top, replacing any drawn before: a
    fraction of a millisecond, where add_vrect/add_vline(row="all") took ~100 ms."""
    shapes = []
    for value, text in limits:
        if x_range[0] < value < x_range[1]:
            # a lower limit's label to the left of its line, an upper one's to the right: two close limits
            # (a push-up's hip sag, -8..8) never write over each other
            side = "right" if text.startswith("≥") else "left"
            shapes.append(dict(type="line", xref="x", yref="paper", x0=value, x1=value, y0=0, y1=1,
                               line=dict(color=AMBER, width=2, dash="dash"),
                               label=dict(text=escape(f"rep {text}"), textposition="end", textangle=0,
                                          xanchor=side, yanchor="top", padding=4, font=dict(size=11, color=AMBER))))
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


def progress_chart(rows: list[dict], depth_label: str | None) -> go.Figure:
    """Reps, % correct reps and depth (`depth_label`: the rule's name for it; None: not drawn) per session."""
    df = pd.DataFrame(rows)
    n_rows = 3 if depth_label else 2
    fig = make_subplots(rows=n_rows, cols=1, shared_xaxes=True, vertical_spacing=0.08 if depth_label else 0.12,
                        subplot_titles=("Reps per session", "Correct reps (%)") + ((escape(depth_label),) if depth_label else ()))
    # One evenly spaced slot per session (sessions are irregular in time; a date axis squeezes them).
    when = [datetime.fromisoformat(c).astimezone() for c in df["created_at"]]  # local time, as the table
    x = [f"{w:%b %d %H:%M} #{i}" for w, i in zip(when, df["id"])]
    hover = [f"#{i} {escape(str(n))}" for i, n in zip(df["id"], df["name"])]
    counted = [plural(int(n), "rep") for n in df["reps"]]
    fig.add_trace(go.Bar(x=x, y=df["reps"], name="reps", marker_color=BLUE, hovertext=hover, customdata=counted,
                         hovertemplate="%{hovertext}<br>%{customdata}<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Scatter(x=x, y=df["reps_correct_pct"], mode="lines+markers", name="correct %",
                             line=dict(color=GREEN), hovertext=hover,
                             hovertemplate="%{hovertext}<br>%{y:.0f}% correct<extra></extra>"), row=2, col=1)
    if depth_label:
        fig.add_trace(go.Scatter(x=x, y=df["avg_depth"], mode="lines+markers", name="depth", line=dict(color=AMBER),
                                 hovertext=hover, hovertemplate="%{hovertext}<br>%{y:.0f}°<extra></extra>"),
                      row=3, col=1)
    fig.update_yaxes(range=[0, 105], row=2, col=1)
    # Reps are whole numbers: ticks 0, 1, 2... (or every 2, 5, 10... for big sets), never 0.5.
    top = max([int(v) for v in df["reps"] if v == v] + [1])
    fig.update_yaxes(tick0=0, dtick=next((d for d in (1, 2, 5, 10, 20, 50, 100, 1000) if top / d <= 6), 1000),
                     rangemode="tozero", row=1, col=1)
    fig.update_xaxes(type="category")
    fig.update_traces(width=0.5, selector=dict(type="bar"))
    fig.update_layout(showlegend=False)
    return _layout(fig, 560 if depth_label else 400)
