"""A report to share: one analysis as one self-contained HTML file that opens offline in any browser.

It holds the summary figures, the rep table, the timeline chart (inline SVG) and one labelled frame per
incorrect rep with its reasons (JPEG as a data: URI). Nothing in it is fetched: no script, font, style sheet
or image from anywhere (a Content-Security-Policy says so to the browser as well), and every piece of user
text (the file name, rule names and messages) is HTML-escaped.

The figures and the rep table are defined here once (`figures`, `rep_rows`): the Analyze page shows the same
ones, so the page and the report never disagree.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from datetime import datetime
from html import escape
from pathlib import Path

from ..core.form_model import LEARNED_ANGLE
from ..core.judging import check_label, depth_check, rule_check_for
from ..core.rules import ExerciseRule
from ..core.session import Summary
from ..core.tempo import avg_rep_time_s, concentric_s, velocity_loss_pct
from ..core.types import CheckStatus, RepEvent, RestSide, Verdict
from ..core.wording import plural
from .outputs import LoadedAnalysis
from .report_chart import timeline_svg

FRAME_MAX_SIDE = 480  # a frame in the report: enough to see the fault, small enough to mail (~30 KB each)
REPORT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


# ------------------------------------------------------------------------------ what is shown

@dataclass(frozen=True)
class Figure:
    label: str
    value: str
    meaning: str


def unit_of(rule: ExerciseRule, angle: str) -> str:
    """ "°" for degrees, " % torso" etc. for the other units."""
    u = rule.angles[angle].unit
    return "°" if u == "deg" else f" {u}"


def _num(v, unit: str = "", nd: int = 0) -> str:
    return "–" if v is None or not math.isfinite(float(v)) else f"{float(v):.{nd}f}{unit}"


def figures(summary: Summary, reps, rule: ExerciseRule) -> list[Figure]:
    """The figures that mean something for this result, each with what it means (none of the per-rep ones
    without reps). Computed from the reps, so an older analysis reads the same as a new one."""
    reps = list(reps)
    n = len(reps)
    c = rule.counting
    out = [Figure("Reps", str(n), "Complete repetitions, rest to rest. A rep cut off by the start or end of the "
                                  "video is partial and not counted.")]
    if n:
        correct = sum(r.verdict == Verdict.CORRECT for r in reps)
        unseen = sum(r.verdict == Verdict.NOT_JUDGED for r in reps)
        judged = n - unseen
        out.append(Figure("Correct reps", f"{correct} of {judged}" if judged else "not judged",
                          "Reps that passed every form check that could be judged from this camera view (checks "
                          "the view cannot show are listed in the rep table, never counted as faults)."
                          + (f" {unseen} of the {n} reps have no form verdict: the checks their form stands on "
                             "cannot be seen from this view." if unseen else "")))
        if c.extreme_name:
            lowest = c.rest == RestSide.HIGH
            out.append(Figure(f"Avg {c.extreme_name}", _num(summary.avg_extreme, unit_of(rule, rule.primary_angle)),
                              f"The mean over the reps of the {'lowest' if lowest else 'highest'} "
                              f"{rule.angle_label(rule.primary_angle).lower()} angle reached (180° = straight limb). "
                              "The rep table shows each rep against its target."))
        out.append(Figure("Avg rep time", _num(avg_rep_time_s(reps), " s", 1),
                          "One rep's movement, from leaving rest to being back at rest (pauses between reps not "
                          "included). The rep table splits it into its two halves."))
        loss = velocity_loss_pct(reps, c.concentric)
        if loss is not None:
            out.append(Figure("Velocity loss", _num(loss, "%", 1),  # (as History shows it)
                              "How much slower the slowest lift of the set was than the fastest: 1 - (fastest "
                              "lifting time / slowest lifting time). A fatigue sign: velocity-based training often "
                              "ends a set at 20-30%."))
    out.append(Figure("Camera view", summary.view or "not known",
                      "Read from the body's landmarks (side, front, rear or oblique). Each form check works from "
                      "some views only; from another view it is reported as not judged, not as a fault."))
    return out


def not_judged_labels(rule: ExerciseRule, rep: RepEvent) -> list[str]:
    """The short names of a rep's checks that its camera view could not judge ("Knees caved in"), leaving out a
    name that another of its checks judged (a squat's depth: on the image from the side, in 3D from the front)
    and the learned check (it says nothing on its own when it cannot judge)."""
    def label(c) -> str:
        check = rule_check_for(rule, c)
        return check_label(check) if check is not None else rule.angle_label(c.angle)

    judged = {label(c) for c in rep.checks if c.status != CheckStatus.NOT_JUDGED}
    out = []
    for c in rep.not_judged:
        if c.angle == LEARNED_ANGLE:
            continue
        name = label(c)
        if name not in judged and name not in out:
            out.append(name)
    return out


def _extreme_text(rule: ExerciseRule, r: RepEvent) -> str:
    unit = unit_of(rule, rule.primary_angle)
    depth = depth_check(rule, r)
    if depth is not None and depth.status != CheckStatus.NOT_JUDGED:
        target = depth.target.replace("<= ", "≤ ").replace(">= ", "≥ ")
        return f"{depth.value:.0f}{unit} (target {target}{unit})"
    extreme = r.primary_min if rule.counting.rest == RestSide.HIGH else r.primary_max
    return f"{extreme:.0f}{unit}" + (" (not judged from this view)" if depth is not None else "")


def rep_rows(reps, rule: ExerciseRule) -> list[dict]:
    """One row per rep, as a coach reads it (the Analyze page's rep table and the report's): verdict, whether
    the count of it is sure (only when some rep is not: why), the extreme against its target, rep time and its halves (lowering / lifting where the exercise lifts a
    load), range of motion, reasons with their measurements, checks the camera's view could not judge."""
    c = rule.counting
    primary = rule.primary_angle
    unit = unit_of(rule, primary)
    rows = []
    for r in reps:
        row = {"rep": r.index, "verdict": str(r.verdict)}  # (verdict first: a phone shows it without scrolling)
        if any(x.doubt for x in reps):
            row["count"] = f"unsure: {r.doubt}" if r.doubt else "sure"
        if c.extreme_name:
            row[c.extreme_name] = _extreme_text(rule, r)
        row["rep time (s)"] = round(r.duration_s, 2)
        lift = concentric_s(r, c.concentric)
        if lift is not None:
            row["lowering (s)"] = round(r.duration_s - lift, 2)
            row["lifting (s)"] = round(lift, 2)
        else:
            row[f"to {c.display_phase('peak')} / back (s)"] = f"{r.down_s:.1f} / {r.up_s:.1f}"
        row[f"range of motion ({unit.strip()})"] = (f"{r.range_of_motion:.0f} ({r.primary_min:.0f}–"
                                                    f"{r.primary_max:.0f})")
        row["reasons"] = "; ".join(r.reasons)
        missed = not_judged_labels(rule, r)
        row["not judged (camera view)"] = (f"{r.view or 'unknown'} view: " + "; ".join(missed)) if missed else ""
        row["start (s)"] = round(r.start_s, 2)
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------ frames

def rep_frame_jpeg(video: str | Path, t: float, max_side: int = FRAME_MAX_SIDE) -> bytes | None:
    """The frame of `video` at time t as a JPEG (None when it cannot be read)."""
    import cv2

    from ..media.video import VideoError, read_frames

    try:
        for _t, img in read_frames(video, max_side=max_side, start_s=max(0.0, t), end_s=t + 1.0):
            ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
            return buf.tobytes() if ok else None
    except (VideoError, OSError, ValueError):
        return None
    return None


# ------------------------------------------------------------------------------ the document

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#111827;margin:0 auto;max-width:1000px;
padding:16px;line-height:1.45}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.15em;margin:1.4em 0 .4em}
.name{overflow-wrap:anywhere;color:#374151}.muted{color:#6b7280;font-size:.9em}
.figs{display:flex;flex-wrap:wrap;gap:10px}.fig{border:1px solid #e5e7eb;border-radius:8px;padding:8px 12px;min-width:110px}
.fig b{display:block;font-size:1.4em}.fig span{font-size:.85em;color:#4b5563}
table{border-collapse:collapse;width:100%;font-size:.9em}th,td{border-bottom:1px solid #e5e7eb;padding:4px 6px;
text-align:left;vertical-align:top}th{background:#f9fafb}.wrap{overflow-x:auto}
.incorrect{color:#b91c1c;font-weight:600}.correct{color:#15803d;font-weight:600}
.frames{display:flex;flex-wrap:wrap;gap:14px}figure{margin:0;max-width:480px}figure img{max-width:100%;border-radius:6px}
figcaption{font-size:.9em}svg{width:100%;height:auto}.note{background:#fffbeb;border-left:4px solid #d97706;padding:6px 10px}
"""


def _table(rows: list[dict]) -> str:
    if not rows:
        return "<p>No complete rep was found.</p>"
    head = "".join(f"<th>{escape(str(k))}</th>" for k in rows[0])
    body = []
    for row in rows:
        cells = []
        for k, v in row.items():
            cls = f' class="{escape(str(v))}"' if k == "verdict" else ""
            cells.append(f"<td{cls}>{escape(str(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<div class="wrap"><table id="reps"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _frames_section(reps, video: Path | None) -> str:
    bad = [r for r in reps if r.verdict == Verdict.INCORRECT]
    if not bad:
        return ""
    parts = []
    for r in bad:
        jpeg = rep_frame_jpeg(video, r.peak_s) if video is not None else None
        img = (f'<img alt="Rep {r.index}" src="data:image/jpeg;base64,{base64.b64encode(jpeg).decode()}">'
               if jpeg else '<p class="muted">(the video is no longer available for a frame)</p>')
        why = "<br>".join(escape(x) for x in r.reasons) or "incorrect"
        parts.append(f'<figure class="rep-frame">{img}<figcaption><b>Rep {r.index}</b> at {r.peak_s:.1f} s: '
                     f'{why}</figcaption></figure>')
    return f'<h2>Incorrect reps</h2><div class="frames">{"".join(parts)}</div>'


def build_report(analysis: LoadedAnalysis, rule: ExerciseRule, name: str, video: str | Path | None = None,
                 made: datetime | None = None) -> str:
    """The report as one HTML document. `name`: the video as the user named it (plain text, escaped here);
    `video`: where the frames of incorrect reps are taken from (the annotated video by default)."""
    s, reps = analysis.summary, list(analysis.reps)
    video = Path(video) if video is not None else analysis.video
    made = made or datetime.now().astimezone()
    figs = "".join(f'<div class="fig" title="{escape(f.meaning)}"><b>{escape(f.value)}</b><span>{escape(f.label)}'
                   "</span></div>" for f in figures(s, reps, rule))
    said = []
    if s.partial_reps:
        said.append(f"{plural(s.partial_reps, 'partial rep')} cut off at the start or end "
                    f"{'was' if s.partial_reps == 1 else 'were'} not counted.")
    if reps and s.frames_correct_pct is not None:
        said.append(f"Per frame: {s.frames_correct_pct:.1f}% of the frames whose form could be judged met the rule's "
                    "frame checks.")
    notes = "".join(f'<p class="note">{escape(n)}</p>' for n in s.notes)
    chart = timeline_svg(analysis.frames, reps, rule)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{REPORT_CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>GymPose report: {escape(rule.display_name)} – {escape(name)}</title>
<style>{_STYLE}</style></head><body>
<h1>{escape(rule.display_name)}</h1>
<p class="name" id="video-name">{escape(name)}</p>
<p class="muted">{s.duration_s:.1f} s of video · {escape(s.view or "camera view not known")} view ·
report made {made:%d %b %Y %H:%M} by GymPose</p>
<div class="figs" id="figures">{figs}</div>
<p>{escape(" ".join(said))}</p>{notes}
<h2>Timeline</h2>{chart}
<h2>Reps</h2>{_table(rep_rows(reps, rule))}
{_frames_section(reps, video)}
<h2>How to read it</h2>
<p class="muted">Rep time: one rep's movement, from leaving rest to being back at rest. Lifting: the half of
the rep that lifts the load; lowering: the other half. Velocity loss: 1 - (fastest lifting time / slowest
lifting time) over the set. Angles: 180° is a straight limb. Checks the camera's view could not judge are
listed as not judged, never counted as faults.</p>
</body></html>
"""


def report_file_name(analysis: LoadedAnalysis) -> str:
    return f"{analysis.path.name}_report.html"
