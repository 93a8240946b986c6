"""Per-frame analysis shared by the video pipeline and the live page:
pose -> angles -> smoothing -> phase -> label -> rep counter. Holds only per-session state."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .counter import RepCounter
from .geometry import measure
from .rules import Defaults, ExerciseRule
from .smoothing import AngleSmoother, MovingBaseline
from .types import FrameLabel, PoseFrame, RepEvent


@dataclass(frozen=True)
class FrameResult:
    timestamp_s: float
    pose: PoseFrame | None
    angles: dict[str, float]  # smoothed values (NaN when not visible)
    raw_angles: dict[str, float]
    counting_value: float  # the value the counter saw (primary angle, detrended for heights)
    phase: str  # "rest" | "transition" | "peak" | "unknown"
    label: FrameLabel
    rep_count: int
    partial_reps: int
    new_rep: RepEvent | None = None
    feedback: tuple[str, ...] = field(default_factory=tuple)

    @property
    def has_pose(self) -> bool:
        return self.pose is not None


def label_frame(rule: ExerciseRule, angles: dict[str, float], phase: str) -> FrameLabel:
    """correct / incorrect against the rule's frame checks for this phase; unknown without a primary angle."""
    if phase == "unknown" or not math.isfinite(angles.get(rule.primary_angle, math.nan)):
        return FrameLabel("unknown", ("Body not visible enough to judge",))
    reasons = tuple(c.message for c in rule.frame_checks
                    if c.phase in ("any", phase) and c.angle in angles and not c.passes(angles[c.angle]))
    return FrameLabel("incorrect" if reasons else "correct", reasons)


class FrameAnalyzer:
    """Feed `process(pose_or_None, t)` once per frame in time order."""

    def __init__(self, rule: ExerciseRule, defaults: Defaults | None = None):
        self.rule = rule
        self.defaults = defaults or Defaults()
        self.smoother = AngleSmoother(rule.angles, self.defaults.smoothing_min_cutoff, self.defaults.smoothing_beta,
                                      reset_after_s=self.defaults.max_gap_s)
        self.baseline = MovingBaseline(rule.counting.detrend_s) if rule.counting.detrend_s > 0 else None
        self.counter = RepCounter(rule.counting, rule.rep_checks, primary_name=rule.primary_angle)
        self.last_rep: RepEvent | None = None

    def reset(self) -> None:
        self.smoother.reset()
        if self.baseline is not None:
            self.baseline = MovingBaseline(self.rule.counting.detrend_s)
        self.counter.reset()
        self.last_rep = None

    def measure(self, pose: PoseFrame | None) -> dict[str, float]:
        if pose is None:
            return {n: math.nan for n in self.rule.angles}
        return {n: measure(pose, d, self.defaults.min_visibility) for n, d in self.rule.angles.items()}

    def process(self, pose: PoseFrame | None, timestamp_s: float) -> FrameResult:
        raw = self.measure(pose)
        return self.process_angles(raw, timestamp_s, pose)

    def process_angles(self, raw: dict[str, float], timestamp_s: float, pose: PoseFrame | None = None) -> FrameResult:
        """The same as `process` from already measured angles (re-judging stored sessions without the model)."""
        angles = self.smoother(timestamp_s, raw)
        value = angles.get(self.rule.primary_angle, math.nan)
        if self.baseline is not None:
            value = self.baseline.detrend(timestamp_s, value)
        new_rep = self.counter.update(timestamp_s, value, angles)
        if new_rep is not None:
            self.last_rep = new_rep
        phase = self.rule.counting.phase_with_posture(value, angles)
        label = label_frame(self.rule, angles, phase)
        feedback = label.reasons if label.label != "unknown" else ()
        return FrameResult(timestamp_s, pose, angles, raw, value, phase, label, self.counter.count,
                           self.counter.partial_reps, new_rep, feedback)

    def finish(self) -> None:
        self.counter.finish()

    @property
    def reps(self) -> list[RepEvent]:
        return self.counter.reps
