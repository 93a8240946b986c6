"""Judging, kept apart from counting: the camera view, and each counted rep against the rule's checks.

The view (side / front / rear / oblique) is read from the landmarks: MediaPipe's relative depth of the
two shoulders (and hips) against their distance on the image gives the body's yaw to the camera
(~0 deg facing it or turned away, ~90 deg in profile). A check declares in the rules which views it can
be judged from (`views`); from any other view it is reported as "not judged from this view", never as a
fault (a push-up's body line cannot be seen from a head-on camera).
"""

from __future__ import annotations

import collections
import math

import numpy as np

from .counter import RepCycle
from .form_model import judge_learned
from .landmarks import PoseLandmark as L
from .rules import VIEWS, ExerciseRule, RepCheck
from .types import CheckResult, PoseFrame, RepEvent
# The words of checks and views live in wording (form_model uses them too); imported here for the callers
# that read them as judging's.
from .wording import (MESSAGE_FIELD, VIEW_PHRASES, check_label, number_text, rule_check_for,  # noqa: F401
                      view_phrase)

SIDE_ABOVE_DEG = 75.0  # body yaw at or above this: profile ("side")
FACING_BELOW_DEG = 30.0  # at or below: facing the camera ("front") or turned away ("rear")
UPRIGHT_BELOW_DEG = 45.0  # torso within this of vertical: left/right order tells front from rear


def _yaw_deg(pose: PoseFrame, left: int, right: int) -> float:
    w = pose.image_size[0]
    across = float(np.hypot(*(pose.pixels[left] - pose.pixels[right])))
    depth = abs(float(pose.landmarks[left, 2] - pose.landmarks[right, 2])) * w
    return math.degrees(math.atan2(depth, across))


def frame_view(pose: PoseFrame | None) -> str | None:
    """The camera's view of the body on one frame, or None without a pose."""
    if pose is None:
        return None
    yaw = (_yaw_deg(pose, L.LEFT_SHOULDER, L.RIGHT_SHOULDER) + _yaw_deg(pose, L.LEFT_HIP, L.RIGHT_HIP)) / 2
    if yaw >= SIDE_ABOVE_DEG:
        return "side"
    if yaw > FACING_BELOW_DEG:
        return "oblique"
    px = pose.pixels
    mid_s = (px[L.LEFT_SHOULDER] + px[L.RIGHT_SHOULDER]) / 2
    mid_h = (px[L.LEFT_HIP] + px[L.RIGHT_HIP]) / 2
    up = mid_s - mid_h
    if math.degrees(math.atan2(abs(up[0]), -up[1])) <= UPRIGHT_BELOW_DEG:
        # Upright and facing the camera, the person's left shoulder is on the image's right.
        return "front" if px[L.LEFT_SHOULDER][0] > px[L.RIGHT_SHOULDER][0] else "rear"
    return "front"  # lying or horizontal, seen along the body (a head-on push-up)


class ViewTracker:
    """The view most frames showed (a rolling window, so a camera cut moves it)."""

    def __init__(self, window: int = 300):
        self._votes: collections.deque[str] = collections.deque(maxlen=window)
        self._counts: collections.Counter[str] = collections.Counter()

    def add(self, pose: PoseFrame | None) -> str | None:
        v = frame_view(pose)
        if v is not None:
            if len(self._votes) == self._votes.maxlen:
                self._counts[self._votes[0]] -= 1
            self._votes.append(v)
            self._counts[v] += 1
        return self.view

    @property
    def view(self) -> str | None:
        best = max(VIEWS, key=lambda v: self._counts[v])
        return best if self._counts[best] > 0 else None

    @staticmethod
    def majority(trackers) -> str | None:
        """The view most frames showed over several trackers (the shots of a clip)."""
        total: collections.Counter[str] = collections.Counter()
        for tr in trackers:
            total.update(tr._counts)
        best = max(VIEWS, key=lambda v: total[v])
        return best if total[best] > 0 else None


def _fill(template: str, value: float, check: RepCheck, view: str | None = None) -> str:
    """The check's message with {value}, {min}, {max} (the limits from this view) filled in (plain
    substitution, no format spec)."""
    lo, hi = check.bounds_for(view)
    texts = {"value": number_text(value), "min": number_text(lo), "max": number_text(hi)}
    if texts["value"] in (texts["min"], texts["max"]) and value not in (lo, hi):
        texts["value"] = f"{value:.1f}"  # "150 deg (at least 150)" would not say why it failed
    return MESSAGE_FIELD.sub(lambda m: texts[m.group(1)], template)


def measure_check(check: RepCheck, cycle: RepCycle) -> float:
    """The statistic a rep check judges, from the cycle (NaN when the angle was never seen)."""
    if check.stat == "peak_median":
        vals = cycle.peak_values.get(check.angle)
        return float(np.median(vals)) if vals else math.nan
    if check.angle not in cycle.extremes:
        return math.nan
    lo, hi = cycle.extremes[check.angle]
    return {"min": lo, "max": hi, "range": hi - lo}[check.stat]


def judge_check(check: RepCheck, cycle: RepCycle, view: str | None) -> CheckResult:
    value = measure_check(check, cycle)
    lo, hi = check.bounds_for(view)
    if view is not None and view not in check.views:
        status = "not_judged"
    elif not math.isfinite(value):
        status = "not_judged"
    else:
        status = "pass" if lo <= value <= hi else "fail"
    return CheckResult(angle=check.angle, stat=check.stat, value=value, min=lo, max=hi, status=status,
                       message=_fill(check.message, value, check, view) if status == "fail" else "",
                       essential=check.essential)


def judge_rep(rule: ExerciseRule, cycle: RepCycle, index: int, view: str | None) -> RepEvent:
    """A counted cycle judged against the rule's rep checks from this camera view, then by its learned check
    (if it has one): a rep is incorrect when a check fails or the learned check finds its form faulty."""
    checks = tuple(judge_check(c, cycle, view) for c in rule.rep_checks)
    reasons = tuple(c.message for c in checks if c.status == "fail")
    if rule.learned_check is not None:
        learned = judge_learned(rule, checks, view)
        checks += (learned,)
        if learned.status != "not_judged":
            # The learned check decides; a fault is named by the checks past their limits, or by the learned
            # check itself when none is (several measurements close to their limits together).
            reasons = (reasons or (learned.message,)) if learned.status == "fail" else ()
    unseen = any(c.essential and c.status == "not_judged" for c in checks)
    verdict = "incorrect" if reasons else "not judged" if unseen else "correct"
    return RepEvent(index=index, start_s=cycle.start_s, end_s=cycle.end_s, peak_s=cycle.peak_s,
                    primary_min=cycle.primary_min, primary_max=cycle.primary_max,
                    verdict=verdict, reasons=reasons,
                    angle_extremes=dict(cycle.extremes), checks=checks, view=view or "")


def depth_check(rule: ExerciseRule, rep: RepEvent) -> CheckResult | None:
    """The rep's depth check: the primary angle's extreme away from rest (a squat's lowest knee, a jumping
    jack's highest arm) against its target, if the rule has one."""
    stat = "min" if rule.counting.rest == "high" else "max"
    return next((c for c in rep.checks if c.angle == rule.primary_angle and c.stat == stat), None)


CANNOT_JUDGE = "cannot judge"


def clip_form_verdict(rule: ExerciseRule, reps) -> tuple[str, str]:
    """A whole clip's form from its counted reps: ("incorrect", its first fault) when a rep was judged
    incorrect; ("correct", "") when every rep was judged correct and at least half of them had their essential
    checks judged; else ("cannot judge", why): no rep counted, or the checks that matter not judged."""
    reps = list(reps)
    if not reps:
        return CANNOT_JUDGE, "no complete rep counted"
    bad = next((r for r in reps if r.verdict == "incorrect"), None)
    if bad is not None:
        return "incorrect", f"rep {bad.index}: {bad.reasons[0] if bad.reasons else 'incorrect'}"
    judged = [r for r in reps if r.form_judged]
    if judged and 2 * len(judged) >= len(reps):
        return "correct", ""
    why = []
    for r in reps:
        for c in r.checks:
            check = rule_check_for(rule, c)
            if not (c.essential and c.status == "not_judged") or check is None:
                continue
            where = f"from the {r.view} view" if r.view and r.view not in check.views else "joints not seen"
            text = f"{check_label(check)} ({where})"
            if text not in why:
                why.append(text)
    return CANNOT_JUDGE, "not judged: " + "; ".join(why)


def limit_text(lo: float, hi: float, unit: str = "") -> str:
    """A range in words: "<= 5.5% body", ">= 150 deg", "80-120 deg"."""
    u = unit.strip()
    u = u if u.startswith("%") else f" {u}" if u else ""
    if math.isfinite(lo) and math.isfinite(hi):
        return f"{number_text(lo)}-{number_text(hi)}{u}"
    return f"<= {number_text(hi)}{u}" if math.isfinite(hi) else f">= {number_text(lo)}{u}"


def limits_by_view(rule: ExerciseRule) -> list[dict]:
    """Each rep check's limit from each camera view ("not judged" where the view cannot show it), for tables:
    {check, angle, stat, essential, side, front, rear, oblique}."""
    rows = []
    for c in rule.rep_checks:
        unit = rule.angles[c.angle].unit
        row = {"check": check_label(c), "angle": c.angle, "stat": c.stat, "essential": c.essential}
        for v in VIEWS:
            row[v] = limit_text(*c.bounds_for(v), unit) if v in c.views else "not judged"
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------- views, in words

def _or(words) -> str:
    words = list(words)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def missed_checks(rule: ExerciseRule, view: str) -> list[RepCheck]:
    """The rule's rep checks that cannot be judged from `view`, leaving out those another check with the same
    name judges from it (a squat's depth: on the image from the side, in 3D from the front)."""
    judged = {check_label(c) for c in rule.rep_checks if view in c.views}
    return [c for c in rule.rep_checks if view not in c.views and check_label(c) not in judged]


def best_views(rule: ExerciseRule) -> tuple[str, ...]:
    """The views from which the most of the rule's rep checks can be judged (all views when it has none)."""
    if not rule.rep_checks:
        return tuple(VIEWS)
    score = {v: len({check_label(c) for c in rule.rep_checks if v in c.views}) for v in VIEWS}
    top = max(score.values())
    return tuple(v for v in VIEWS if score[v] == top)


def view_advice(rule: ExerciseRule, view: str | None) -> str:
    """What the camera's view means for this exercise's checks, in one or two sentences, from the rule's
    data (each check's `views`) and the view actually seen: which checks could not be judged from it and
    where to film from instead. Exercise knowledge stays in the rules file; nothing here names an exercise."""
    name = rule.display_name.lower()
    best = best_views(rule)
    if not rule.rep_checks:
        return f"The {name} has no form checks: any camera view works for counting."
    if view is None:
        return (f"The camera view could not be read. {rule.display_name} form checks are judged best when filmed "
                f"{_or([view_phrase(v) for v in best])}.")
    missed = missed_checks(rule, view)
    if not missed:
        return f"Filmed {view_phrase(view)}: every {name} check can be judged from this view."
    needs = _or([view_phrase(v) for v in sorted({v for c in missed for v in c.views}, key=VIEWS.index)])
    labels = ", ".join(f'"{check_label(c)}"' for c in missed)
    advice = (f"Filmed {view_phrase(view)}, {'this check' if len(missed) == 1 else 'these checks'} cannot be judged: "
              f"{labels} ({'it needs' if len(missed) == 1 else 'they need'} filming {needs}).")
    if view not in best:
        advice += f" Film {_or([view_phrase(v) for v in best])} to have most {name} checks judged."
    return advice
