"""The report's timeline as inline SVG (no script, no external file): the primary angle over time, each rep
shaded and marked by its verdict, the correct ranges of the rule's frame checks shaded green. Drawing only:
the values come from the analysis folder."""

from __future__ import annotations

import math
from html import escape

import numpy as np
import pandas as pd

from ..core.rules import ExerciseRule
from ..core.types import RestSide, Verdict

W, H = 960, 320
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 42
GREEN, RED, GREY, INK = "#1f9d55", "#d64545", "#8a8f98", "#111827"
MAX_POINTS = 1500  # the curve is thinned to this many points (a long video stays a small file)


def _ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    span = max(hi - lo, 1e-9)
    raw = span / n
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 5, 10) if raw <= m * step)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 6) for i in range(int((hi - first) / step) + 1)]


class _Scale:
    def __init__(self, x0: float, x1: float, y0: float, y1: float):
        self.x0, self.x1, self.y0, self.y1 = x0, max(x1, x0 + 1e-6), y0, max(y1, y0 + 1e-6)

    def x(self, v: float) -> float:
        return LEFT + (v - self.x0) / (self.x1 - self.x0) * (W - LEFT - RIGHT)

    def y(self, v: float) -> float:
        return H - BOTTOM - (v - self.y0) / (self.y1 - self.y0) * (H - TOP - BOTTOM)


def _curve(t: np.ndarray, y: np.ndarray, sc: _Scale) -> str:
    """The curve as polylines (a gap where the angle was not seen breaks it)."""
    step = max(1, len(t) // MAX_POINTS)
    t, y = t[::step], y[::step]
    lines, pts = [], []
    for a, b in zip(t, y):
        if math.isfinite(a) and math.isfinite(b):
            pts.append(f"{sc.x(a):.1f},{sc.y(b):.1f}")
        elif pts:
            lines.append(pts)
            pts = []
    if pts:
        lines.append(pts)
    return "".join(f'<polyline fill="none" stroke="{INK}" stroke-width="1.6" points="{" ".join(p)}"/>'
                   for p in lines if len(p) > 1)


def _axes(sc: _Scale, x_title: str, y_title: str) -> list[str]:
    out = [f'<line x1="{LEFT}" y1="{H - BOTTOM}" x2="{W - RIGHT}" y2="{H - BOTTOM}" stroke="#9ca3af"/>']
    for v in _ticks(sc.x0, sc.x1, 10):
        out.append(f'<text x="{sc.x(v):.1f}" y="{H - BOTTOM + 16}" text-anchor="middle">{v:g}</text>')
    for v in _ticks(sc.y0, sc.y1, 5):
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{sc.y(v):.1f}" y2="{sc.y(v):.1f}" stroke="#eef0f3"/>')
        out.append(f'<text x="{LEFT - 6}" y="{sc.y(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
    out.append(f'<text x="{(LEFT + W - RIGHT) / 2}" y="{H - 6}" text-anchor="middle">{escape(x_title)}</text>')
    out.append(f'<text transform="translate(14 {(TOP + H - BOTTOM) / 2}) rotate(-90)" text-anchor="middle">'
               f'{escape(y_title)}</text>')
    return out


def timeline_svg(frames: pd.DataFrame, reps, rule: ExerciseRule) -> str:
    """The timeline chart as an <svg> element (plain text escaped)."""
    primary = rule.primary_angle
    t = pd.to_numeric(frames.get("time_s", pd.Series(dtype=float)), errors="coerce").to_numpy(dtype=float)
    y = (pd.to_numeric(frames[primary], errors="coerce").to_numpy(dtype=float) if primary in frames.columns
         else np.full(len(t), np.nan))
    seen = y[np.isfinite(y)]
    if len(t) == 0 or len(seen) == 0:
        return '<p class="muted">No angle to draw: the primary joints were not seen.</p>'
    lo, hi = float(seen.min()), float(seen.max())
    pad = max(5.0, 0.08 * (hi - lo))
    sc = _Scale(0.0, float(np.nanmax(t)), lo - pad, hi + pad)
    unit = rule.angles[primary].unit
    parts = []
    for c in rule.frame_checks:  # the correct ranges of the primary angle, as on the page
        if c.angle == primary:
            a, b = max(c.min, sc.y0), min(c.max, sc.y1)
            if a < b:
                parts.append(f'<rect x="{LEFT}" width="{W - LEFT - RIGHT}" y="{sc.y(b):.1f}" '
                             f'height="{sc.y(a) - sc.y(b):.1f}" fill="{GREEN}" opacity="0.10"/>')
    for r in reps:
        colour = {Verdict.CORRECT: GREEN, Verdict.INCORRECT: RED}.get(r.verdict, GREY)
        parts.append(f'<rect class="rep-band" x="{sc.x(r.start_s):.1f}" width="{max(1.0, sc.x(r.end_s) - sc.x(r.start_s)):.1f}" '
                     f'y="{TOP}" height="{H - TOP - BOTTOM}" fill="{colour}" opacity="0.10"/>')
    parts += _axes(sc, "time (s)", f"{rule.angle_label(primary)} ({'°' if unit == 'deg' else unit})")
    parts.append(_curve(t, y, sc))
    rest_high = rule.counting.rest == RestSide.HIGH
    for r in reps:
        colour = {Verdict.CORRECT: GREEN, Verdict.INCORRECT: RED}.get(r.verdict, GREY)
        v = r.primary_min if rest_high else r.primary_max
        if not math.isfinite(v):
            continue
        x, yy = sc.x(r.peak_s), sc.y(v)
        dy = 18 if rest_high else -10
        parts.append(f'<g class="rep-marker"><title>Rep {r.index}: {escape(str(r.verdict))}'
                     f'{escape("; " + "; ".join(r.reasons)) if r.reasons else ""}</title>'
                     f'<path d="M{x:.1f} {yy - 7:.1f}L{x + 7:.1f} {yy:.1f}L{x:.1f} {yy + 7:.1f}L{x - 7:.1f} {yy:.1f}Z" '
                     f'fill="{colour}" stroke="white"/><text x="{x:.1f}" y="{yy + dy:.1f}" text-anchor="middle" '
                     f'font-weight="600">{r.index}</text></g>')
    legend = (f'<span style="color:{GREEN}">◆ correct rep</span> · <span style="color:{RED}">◆ incorrect rep</span> '
              f'· shaded green: the correct range')
    return (f'<svg id="timeline" viewBox="0 0 {W} {H}" font-size="12" '
            f'fill="{INK}" role="img" aria-label="{escape(rule.angle_label(primary))} over time">'
            + "".join(parts) + f'</svg><p class="muted">{legend}</p>')
