"""Per-frame analysis shared by the video pipeline, the live page, re-judging and Penn Action labelling:
pose -> angles -> smoothing -> rep counter (finds the cycles) -> judging (checks each rep from the camera's
view) -> frame label. Holds only per-session state."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .counter import RepCounter
from .geometry import measure
from .judging import ViewTracker, judge_rep
from .rules import Defaults, ExerciseRule
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
        self.smoother = AngleSmoother(rule.angles, self.defaults.smoothing_min_cutoff, self.defaults.smoothing_beta,
                                      reset_after_s=self.defaults.max_gap_s)
        self.baseline = MovingBaseline(rule.counting.detrend_s) if rule.counting.detrend_s > 0 else None
        self.fallback = FallbackSignal() if rule.counting.fallback else None
        self.counter = RepCounter(rule.counting)
        self.views = ViewTracker()
        self.reps: list[RepEvent] = []
        self.last_rep: RepEvent | None = None
        self.frames = self.frames_with_pose = self.frames_with_primary = 0

    @property
    def view(self) -> str | None:
        return self.fixed_view or self.views.view

    def measure(self, pose: PoseFrame | None) -> dict[str, float]:
        if pose is None:
            return {n: math.nan for n in self.rule.angles}
        return {n: measure(pose, d, self.defaults.min_visibility) for n, d in self.rule.angles.items()}

    def process(self, pose: PoseFrame | None, timestamp_s: float) -> FrameResult:
        self.views.add(pose)
        raw = self.measure(pose)
        return self.process_angles(raw, timestamp_s, pose)

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
        new_rep = self._judge(self.counter.update(timestamp_s, value, angles))
        phase = self.counter.phase
        view = self.view
        label = label_frame(self.rule, angles, phase, view)
        feedback = label.reasons if label.label != FrameLabelKind.UNKNOWN else ()
        return FrameResult(timestamp_s, pose, angles, raw, value, phase, label, len(self.reps),
                           self.counter.partial_reps, new_rep, feedback, view)

    def _judge(self, cycle) -> RepEvent | None:
        if cycle is None:
            return None
        rep = judge_rep(self.rule, cycle, len(self.reps) + 1, self.view)
        self.reps.append(rep)
        self.last_rep = rep
        return rep

    def finish(self) -> RepEvent | None:
        return self._judge(self.counter.finish())

    @property
    def partial_reps(self) -> int:
        return self.counter.partial_reps

    def notes(self) -> list[str]:
        """Plain-language reasons behind a zero or a doubtful count (empty when there is nothing to say)."""
        return explain_count(self.rule, len(self.reps), self.partial_reps, self.frames, self.frames_with_pose,
                             self.frames_with_primary, self.counter.largest_swing)


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
