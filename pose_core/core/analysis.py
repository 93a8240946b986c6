"""Per-frame analysis shared by the video pipeline, the live page, re-judging and Penn Action labelling:
pose -> angles -> smoothing -> rep counter (finds the cycles) -> judging (checks each rep from the camera's
view) -> frame label. Holds only per-session state."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from dataclasses import replace

from .agreement import Decision, Series, Signal, decide
from .counter import RepCounter
from .cuts import CutDetector
from .geometry import BodyScale, measure
from .judging import ViewTracker, judge_rep
from .rules import Counting, Defaults, ExerciseRule
from .smoothing import AngleSmoother, FallbackSignal, MovingBaseline
from .types import FrameLabel, FrameLabelKind, Phase, PoseFrame, RepEvent


@dataclass(frozen=True)
class FrameResult:
    timestamp_s: float
    pose: PoseFrame | None
    angles: dict[str, float]  # smoothed values (NaN when not visible)
    raw_angles: dict[str, float]
    counting_value: float  # the value the counter saw (primary angle, detrended for heights)
    phase: Phase
    label: FrameLabel
    rep_count: int
    partial_reps: int
    new_rep: RepEvent | None = None
    feedback: tuple[str, ...] = field(default_factory=tuple)
    view: str | None = None  # the camera's view of the body so far (a View)

    @property
    def has_pose(self) -> bool:
        return self.pose is not None


def label_frame(rule: ExerciseRule, angles: dict[str, float], phase: str, view: str | None = None) -> FrameLabel:
    """correct / incorrect against the rule's frame checks for this phase (checks the view cannot judge are
    skipped); unknown without a primary angle."""
    if phase == Phase.UNKNOWN or not math.isfinite(angles.get(rule.primary_angle, math.nan)):
        return FrameLabel(FrameLabelKind.UNKNOWN, ("Body not visible enough to judge",))
    reasons = tuple(c.message for c in rule.frame_checks
                    if c.phase in ("any", phase) and (view is None or view in c.views)
                    and c.angle in angles and not c.passes(angles[c.angle]))
    return FrameLabel(FrameLabelKind.INCORRECT if reasons else FrameLabelKind.CORRECT, reasons)


class FrameAnalyzer:
    """Feed `process(pose_or_None, t)` once per frame in time order, then `finish()`."""

    def __init__(self, rule: ExerciseRule, defaults: Defaults | None = None, view: str | None = None):
        """view: the camera view when it is known already (re-judging a stored session); otherwise it is
        read from the poses as they come."""
        self.rule = rule
        self.defaults = defaults or Defaults()
        self.fixed_view = view
        self.reset()

    def reset(self) -> None:
        rule = self.rule
        c = rule.counting
        self.smoother = AngleSmoother(rule.angles, self.defaults.smoothing_min_cutoff, self.defaults.smoothing_beta,
                                      reset_after_s=self.defaults.max_gap_s)
        self.baseline = MovingBaseline(c.detrend_s) if c.detrend_s > 0 else None
        self.fallback = FallbackSignal() if c.fallback else None
        self.counter = RepCounter(c)
        # The second signal that must agree (agreement.py), counted by a counter of its own.
        self.second = RepCounter(second_counting(c)) if c.second else None
        self.second_baseline = MovingBaseline(c.second.detrend_s) if c.second and c.second.detrend_s > 0 else None
        self.series = Series()
        self.cut_detector = CutDetector()
        self.scale = BodyScale()
        self.views = ViewTracker()  # this shot's (a camera cut starts a new one)
        self.shots: list[tuple[float, ViewTracker]] = [(-math.inf, self.views)]
        self._level = {"primary": _Level(), "second": _Level()}
        self.reps: list[RepEvent] = []
        self.last_rep: RepEvent | None = None
        self.decisions: list[Decision] = []
        self.finished = False
        self.frames = self.frames_with_pose = self.frames_with_primary = 0

    @property
    def view(self) -> str | None:
        """The camera's view of the body in the current shot."""
        return self.fixed_view or self.views.view

    def view_at(self, t: float) -> str | None:
        """The view in the shot that was on at time t."""
        if self.fixed_view:
            return self.fixed_view
        tracker = next((v for start, v in reversed(self.shots) if start <= t), self.views)
        return tracker.view or self.overall_view

    @property
    def overall_view(self) -> str | None:
        """The view most frames showed over all shots."""
        if self.fixed_view:
            return self.fixed_view
        return ViewTracker.majority([v for _, v in self.shots])

    def measure(self, pose: PoseFrame | None, timestamp_s: float | None = None) -> dict[str, float]:
        if pose is None:
            return {n: math.nan for n in self.rule.angles}
        scale = self.scale(pose, pose.timestamp_s if timestamp_s is None else timestamp_s)
        return {n: measure(pose, d, self.defaults.min_visibility, scale=scale, origin_y=self.scale.origin_y or 0.0)
                for n, d in self.rule.angles.items()}

    def process(self, pose: PoseFrame | None, timestamp_s: float, picture_change: float | None = None) -> FrameResult:
        """picture_change: how much the picture changed since the previous frame (media.shots), for camera
        cuts; None when unknown (no cut is detected then)."""
        if self.cut_detector.update(timestamp_s, picture_change, pose):
            self.cut(timestamp_s)
        self.views.add(pose)
        raw = self.measure(pose, timestamp_s)
        return self.process_angles(raw, timestamp_s, pose)

    def cut(self, timestamp_s: float) -> None:
        """A camera cut (or a stretch of the video that could not be read) just before `timestamp_s`: the
        counters close the shot, and what is read from the picture's geometry starts afresh."""
        done = self.counter.cut(timestamp_s)
        if self.second is not None:
            done = self.second.cut(timestamp_s) or done
        if done is not None:
            self._redecide(timestamp_s)
        self.smoother.reset()
        self.scale.reset()
        for f in (self.baseline, self.fallback, self.second_baseline):
            if f is not None:
                f.reset()
        for level in self._level.values():
            level.cut(timestamp_s)
        self.views = ViewTracker()
        self.shots.append((timestamp_s, self.views))

    @property
    def cuts(self) -> list[float]:
        return list(self.counter.cuts)

    def process_angles(self, raw: dict[str, float], timestamp_s: float, pose: PoseFrame | None = None) -> FrameResult:
        """The same as `process` from already measured angles (re-judging stored sessions without the model;
        the view is then the one set with `views` or unknown)."""
        self.frames += 1
        self.frames_with_pose += pose is not None or any(math.isfinite(v) for v in raw.values())
        self.frames_with_primary += math.isfinite(raw.get(self.rule.primary_angle, math.nan))
        angles = self.smoother(timestamp_s, raw)
        # The counter takes the raw signal: its own median removes landmark jumps (smoothing first would smear
        # a jump over several frames), and its swing hysteresis makes jitter harmless.
        value = raw.get(self.rule.primary_angle, math.nan)
        if self.fallback is not None:
            value = self.fallback(timestamp_s, value, raw.get(self.rule.counting.fallback, math.nan))
        if self.baseline is not None:
            value = self.baseline.detrend(timestamp_s, value)
        value = self._level["primary"](timestamp_s, value)
        second = math.nan
        if self.second is not None:
            second = raw.get(self.rule.counting.second.angle, math.nan)
            if self.second_baseline is not None:
                second = self.second_baseline.detrend(timestamp_s, second)
            second = self._level["second"](timestamp_s, second)
        self.series.add(timestamp_s, value, second)
        done = self.counter.update(timestamp_s, value, angles)
        if self.second is not None:
            done = self.second.update(timestamp_s, second, angles) or done
        new_rep = self._redecide(timestamp_s) if done is not None else None
        phase = self.counter.phase
        view = self.view
        label = label_frame(self.rule, angles, phase, view)
        feedback = label.reasons if label.label != FrameLabelKind.UNKNOWN else ()
        return FrameResult(timestamp_s, pose, angles, raw, value, phase, label, len(self.reps),
                           self.counter.partial_reps, new_rep, feedback, view)

    def _redecide(self, now: float | None) -> RepEvent | None:
        """What counts so far, decided on both signals' cycles (agreement.decide; `now` None: the stream has
        ended). Returns the newest rep when the count went up."""
        c = self.rule.counting
        primary = Signal(_signal_name(self.rule, self.rule.primary_angle), c.rest, c.min_amplitude)
        second = Signal(_signal_name(self.rule, c.second.angle), c.second.rest, c.second.min_amplitude) \
            if c.second else None
        self.decisions = decide(self.counter.cycles, self.second.cycles if self.second else None, self.series,
                                primary, second, cuts=self.counter.cuts, now=now)
        before = len(self.reps)
        reps: list[RepEvent] = []
        for d in self.decisions:
            if d.counted:
                rep = judge_rep(self.rule, d.cycle, len(reps) + 1, self.view_at(d.cycle.peak_s))
                reps.append(replace(rep, doubt=d.doubt))
        self.reps = reps
        self.last_rep = reps[-1] if reps else None
        return reps[-1] if len(reps) > before else None

    def finish(self) -> RepEvent | None:
        """End of the stream: the open reps closed, and what counts decided on the whole stream. Returns the
        newest rep when this added one."""
        if self.finished:
            return None
        self.counter.finish()
        if self.second is not None:
            self.second.finish()
        self.finished = True
        return self._redecide(None)

    @property
    def partial_reps(self) -> int:
        return self.counter.partial_reps + sum(d.partial for d in self.decisions)

    def partials(self) -> list[dict]:
        """Each partial rep: when, and why it is not a full one."""
        out = [{"start_s": round(a, 2), "end_s": round(b, 2), "reason": why} for a, b, why in self.counter.partials]
        out += [{"start_s": round(d.cycle.start_s, 2), "end_s": round(d.cycle.end_s, 2), "reason": d.doubt}
                for d in self.decisions if d.partial]
        return sorted(out, key=lambda p: p["start_s"])

    @property
    def uncertain_reps(self) -> list[RepEvent]:
        return [r for r in self.reps if r.doubt]

    @property
    def possible_reps(self) -> list[Decision]:
        """Cycles one signal showed that were not counted (the user may still confirm them)."""
        return [d for d in self.decisions if not d.counted and not d.partial]

    def notes(self) -> list[str]:
        """Plain-language reasons behind a zero or a doubtful count (empty when there is nothing to say)."""
        return explain_count(self.rule, len(self.reps), self.partial_reps, self.frames, self.frames_with_pose,
                             self.frames_with_primary, self.counter.largest_swing)


class _Level:
    """Makes a counted signal continuous across a camera cut. The person does not move in the instant of a cut,
    but another angle or zoom shows the same posture with another value (a press's lockout reads 130 deg from
    one side, 160 from the head end): the jump is taken off everything after the cut, so it is neither a rep
    nor the end of one. The pose model's tracker needs a few frames to let go of the old shot, so the values
    of the first SETTLE_S after a cut are not used. When nothing was seen close enough to the cut on either
    side (CONTINUITY_S), the person may really have moved: the new shot's values are taken as they are."""

    SETTLE_S = 0.2
    CONTINUITY_S = 0.25

    def __init__(self):
        self.offset = 0.0
        self.last: tuple[float, float] | None = None  # (t, value as returned)
        self.cut_at: float | None = None
        self.before: tuple[float, float] | None = None  # the last value before the cut

    def cut(self, t: float) -> None:
        self.cut_at, self.before = t, self.last

    def __call__(self, t: float, v: float) -> float:
        if not math.isfinite(v):
            return v
        if self.cut_at is not None:
            b = self.before
            seen_before = b is not None and self.cut_at - b[0] <= self.CONTINUITY_S
            if t - self.cut_at < self.SETTLE_S and seen_before:
                return math.nan  # the tracker is still letting go of the old shot
            # (Nothing seen just before the cut, e.g. a fade-in: there was no old shot's person to let go of.)
            close = seen_before and t - self.cut_at <= self.SETTLE_S + self.CONTINUITY_S
            self.offset = b[1] - v if close else 0.0
            self.cut_at = None
        v = v + self.offset
        self.last = (t, v)
        return v


def second_counting(c: Counting) -> Counting:
    """The counting parameters of the second signal: the primary's, with its own rest side and amplitude."""
    return replace(c, rest=c.second.rest, min_amplitude=c.second.min_amplitude, fallback="", detrend_s=0.0,
                   second=None)


def _signal_name(rule: ExerciseRule, angle: str) -> str:
    """How a signal is called in a message: "knee angle", "hip height"."""
    words = angle.replace("_", " ")
    return words if rule.angles[angle].kind in ("height", "rise", "offset", "width") else f"{words} angle"


# A count is doubtful when the body was seen in fewer frames than this.
LOW_COVERAGE = 0.6


def explain_count(rule: ExerciseRule, reps: int, partial: int, frames: int, with_pose: int, with_primary: int,
                  largest_swing: float) -> list[str]:
    """Why a session has no reps, or why its count may be off: said with the numbers behind it."""
    notes = []
    unit = "deg" if rule.primary.unit == "deg" else rule.primary.unit
    angle = rule.primary_angle.replace("_", " ")
    if frames and with_pose == 0:
        return ["Nobody was found in the video."]
    if frames and with_pose < LOW_COVERAGE * frames:
        notes.append(f"The person was found in only {100 * with_pose / frames:.0f}% of the frames: the count may "
                     "miss reps where nobody was seen.")
    if with_pose and with_primary < LOW_COVERAGE * with_pose:
        joints = ", ".join(j.replace("_", " ") for j in rule.primary.joints)
        notes.append(f"The {angle} was measurable in only {100 * with_primary / with_pose:.0f}% of the frames with a "
                     f"person: keep the {joints} in view.")
    if reps == 0 and with_primary:
        need = rule.counting.min_amplitude
        if largest_swing < need:
            notes.append(f"No movement big enough to be a rep: the {angle} moved {largest_swing:.0f} {unit} at most, "
                         f"a {rule.display_name.lower()} rep needs at least {need:.0f} {unit}.")
        elif partial:
            notes.append(f"Only partial reps: {partial} cut off by the start or end of the video.")
    return notes
