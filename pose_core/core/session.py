"""One session's loop and tally: the single object that video files, the live camera, re-judging stored
angles and Penn Action labelling all drive.

`Session.step(pose, t)` (or `step_angles(raw, t)` for already measured angles) runs the `FrameAnalyzer` on
one frame and keeps the tally every runner needs: frames, frames with a pose, labels per kind, the last
frame result, the reps. `summary()` is the running summary (a `Summary`; `to_dict()` is summary.json),
`overlay(result)` what the coaching overlay draws. The rep sums (correct reps, % frames correct, averages)
live here once; the history and the pages use them too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Iterable, Mapping

from .analysis import FrameAnalyzer, FrameResult
from .rules import Defaults, ExerciseRule
from .tempo import avg_rep_time_s, velocity_loss_pct
from .types import FrameLabelKind, PoseFrame, RepEvent, RestSide, Verdict


# ---------------------------------------------------------------------------------------- rep sums

def reps_correct(reps: Iterable[RepEvent]) -> int:
    return sum(r.verdict == Verdict.CORRECT for r in reps)


def frames_correct_pct(labels: Mapping[str, int]) -> float | None:
    """% of the judged frames (correct or incorrect, not unknown) labelled correct; None when none was judged."""
    correct = labels.get(FrameLabelKind.CORRECT, 0)
    judged = correct + labels.get(FrameLabelKind.INCORRECT, 0)
    return round(100.0 * correct / judged, 1) if judged else None


def mean_or_none(values: Iterable[float], digits: int = 2) -> float | None:
    xs = list(values)
    return round(sum(xs) / len(xs), digits) if xs else None


def mean_extreme(reps: Iterable[RepEvent], rest: str = "high") -> float | None:
    """Mean of each rep's primary-angle extreme away from rest ("depth"), finite values only."""
    vals = [r.primary_min if rest == RestSide.HIGH else r.primary_max for r in reps]
    return mean_or_none([v for v in vals if math.isfinite(v)], 1)


# ------------------------------------------------------------------------------------------ summary

@dataclass(frozen=True)
class Summary:
    """A session's summary. `to_dict()` gives summary.json's keys (the analysis-folder format); the
    video / recognition fields are set for analysed files (`exercise_auto` only when recognised)."""

    exercise: str
    reps: int = 0
    reps_correct: int = 0
    reps_incorrect: int = 0
    partial_reps: int = 0
    frames: int = 0
    frames_with_pose: int = 0
    frames_correct_pct: float | None = None
    duration_s: float = 0.0
    processing_fps: float = 0.0
    primary_angle: str = ""
    avg_rep_s: float | None = None  # the mean rep time: the movement, down + up (core/tempo.py)
    avg_down_s: float | None = None
    avg_up_s: float | None = None
    avg_range_of_motion: float | None = None
    avg_extreme: float | None = None  # mean of each rep's primary extreme away from rest ("depth" / "peak")
    view: str | None = None
    notes: list[str] = field(default_factory=list)
    largest_swing: float | None = None
    # Uncertain reps (counted, but only one signal saw them, or they touch a camera cut): [{rep, start_s, end_s,
    # reason}]; possible reps (one signal showed a cycle, not counted): [{start_s, end_s, reason}]; partial reps
    # with why; camera cuts found (s).
    uncertain_reps: list = field(default_factory=list)
    possible_reps: list = field(default_factory=list)
    partials: list = field(default_factory=list)
    cuts: list = field(default_factory=list)
    video: str = ""
    width: int = 0
    height: int = 0
    rules: str = ""
    exercise_auto: bool = False
    exercise_confidence: float | None = None
    exercise_candidates: list = field(default_factory=list)  # [[exercise, probability], ...]
    velocity_loss_pct: float | None = None  # the set's slowdown, slowest lift against the fastest (core/tempo.py)
    looks_like: str = ""  # no rep found: the exercise the movement looks like, if another one

    _AUTO = ("exercise_auto", "exercise_confidence", "exercise_candidates")

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        if not self.exercise_auto:
            for k in self._AUTO:
                d.pop(k)
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> "Summary":
        """Read summary.json (unknown keys ignored, missing ones defaulted)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


# --------------------------------------------------------------------------------------- overlay

@dataclass(frozen=True)
class Overlay:
    """What the coaching overlay shows on one frame (drawing.draw_session_overlay draws it)."""

    pose: PoseFrame | None
    exercise: str
    primary_name: str
    primary_joints: tuple[str, ...]
    primary_value: float
    rep_count: int
    phase: str  # the phase's display name
    label: str
    feedback: tuple[str, ...]
    last_rep_verdict: str | None
    last_rep_reason: str = ""  # the last rep's first fault, with its measurement
    view: str = ""  # the camera view read from the landmarks (side / front / rear / oblique), once known
    not_judged: tuple[str, ...] = ()  # what the rule's checks measure that this view cannot judge ("knee width")


def check_title(check) -> str:
    """A rep check's short name, as its message starts ("Not deep enough: knees reached ..." -> "not deep
    enough"), else its angle and statistic ("knee_width peak_median")."""
    head = check.message.split(":", 1)[0].strip()
    if ":" in check.message and 0 < len(head) <= 32 and "{" not in head:
        return head[0].lower() + head[1:]
    return f"{check.angle} {check.stat}"


def not_judged_from(rule, view: str | None) -> tuple[str, ...]:
    """The rule's rep checks that cannot be judged from `view`, by their short names (check_title), once
    each in the rule's order; () while the view is unknown."""
    if not view:
        return ()
    judged = {check_title(c) for c in rule.rep_checks if view in c.views}  # (a name judged by another check)
    out: list[str] = []
    for check in rule.rep_checks:
        name = check_title(check)
        if view not in check.views and name not in out and name not in judged:
            out.append(name)
    return tuple(out)


# ------------------------------------------------------------------------------------------ session

class Session:
    """One exercise's loop and tally. Feed `step(pose_or_None, t)` once per frame in time order, then
    `finish()`; read `summary()` at any time."""

    def __init__(self, rule: ExerciseRule, defaults: Defaults | None = None, view: str | None = None):
        self.rule = rule
        self.analyzer = FrameAnalyzer(rule, defaults, view=view)
        self.labels: dict[str, int] = {}
        self.last: FrameResult | None = None
        self.last_t = 0.0

    def step(self, pose: PoseFrame | None, timestamp_s: float, picture_change: float | None = None) -> FrameResult:
        """picture_change: media.shots.signature_distance from the previous frame (camera cuts); None: unknown."""
        return self._tally(self.analyzer.process(pose, timestamp_s, picture_change))

    def cut(self, timestamp_s: float) -> None:
        """A boundary the picture cannot show (e.g. a stretch of the file that could not be read): counted as a
        camera cut."""
        self.analyzer.cut(timestamp_s)

    def step_angles(self, raw: dict[str, float], timestamp_s: float) -> FrameResult:
        """`step` from already measured angles (re-judging stored sessions without the model)."""
        return self._tally(self.analyzer.process_angles(raw, timestamp_s))

    def _tally(self, r: FrameResult) -> FrameResult:
        self.labels[r.label.label] = self.labels.get(r.label.label, 0) + 1
        self.last = r
        self.last_t = r.timestamp_s
        return r

    def finish(self) -> RepEvent | None:
        return self.analyzer.finish()

    # --------------------------------------------------------------------------------- the tally
    @property
    def reps(self) -> list[RepEvent]:
        return self.analyzer.reps

    @property
    def partial_reps(self) -> int:
        return self.analyzer.partial_reps

    @property
    def frames(self) -> int:
        return self.analyzer.frames

    @property
    def frames_with_pose(self) -> int:
        return self.analyzer.frames_with_pose

    @property
    def frames_judged(self) -> int:
        return self.labels.get(FrameLabelKind.CORRECT, 0) + self.labels.get(FrameLabelKind.INCORRECT, 0)

    @property
    def frames_correct(self) -> int:
        return self.labels.get(FrameLabelKind.CORRECT, 0)

    @property
    def frames_correct_pct(self) -> float | None:
        return frames_correct_pct(self.labels)

    @property
    def reps_correct(self) -> int:
        return reps_correct(self.reps)

    @property
    def view(self) -> str | None:
        return self.analyzer.view

    def notes(self) -> list[str]:
        return self.analyzer.notes()

    def summary(self, frame_s: float = 0.0, processing_fps: float = 0.0, **info) -> Summary:
        """The running summary; duration = last frame time + frame_s (one frame's duration). `info`: the
        video / recognition fields of `Summary` (video, width, height, rules, notes, exercise_auto...)."""
        reps, rule = self.reps, self.rule
        correct = reps_correct(reps)
        info.setdefault("notes", self.notes())
        return Summary(
            exercise=rule.name, reps=len(reps), reps_correct=correct, reps_incorrect=sum(r.verdict == Verdict.INCORRECT for r in reps),
            partial_reps=self.partial_reps, frames=self.frames, frames_with_pose=self.frames_with_pose,
            frames_correct_pct=self.frames_correct_pct, duration_s=round(self.last_t + frame_s, 3),
            processing_fps=round(processing_fps, 1), primary_angle=rule.primary_angle,
            avg_rep_s=avg_rep_time_s(reps), velocity_loss_pct=velocity_loss_pct(reps, rule.counting.concentric),
            avg_down_s=mean_or_none(r.down_s for r in reps), avg_up_s=mean_or_none(r.up_s for r in reps),
            avg_range_of_motion=mean_or_none(r.range_of_motion for r in reps),
            avg_extreme=mean_extreme(reps, rule.counting.rest), view=self.analyzer.overall_view,
            largest_swing=round(self.analyzer.counter.largest_swing, 1),
            uncertain_reps=[{"rep": r.index, "start_s": round(r.start_s, 2), "end_s": round(r.end_s, 2),
                             "reason": r.doubt} for r in reps if r.doubt],
            possible_reps=[{"start_s": round(d.cycle.start_s, 2), "end_s": round(d.cycle.end_s, 2), "reason": d.doubt}
                           for d in self.analyzer.possible_reps],
            partials=self.analyzer.partials(),
            cuts=[round(t, 2) for t in self.analyzer.cuts], **info)

    def overlay(self, r: FrameResult, exercise: str | None = None) -> Overlay:
        """The overlay's inputs for frame result `r` (exercise: the name shown, default the rule's)."""
        rule, last = self.rule, self.analyzer.last_rep
        return Overlay(pose=r.pose, exercise=exercise or rule.display_name, primary_name=rule.primary_angle,
                       primary_joints=rule.primary.joints,
                       primary_value=r.angles.get(rule.primary_angle, math.nan), rep_count=r.rep_count,
                       phase=rule.counting.display_phase(r.phase), label=r.label.label, feedback=r.feedback,
                       last_rep_verdict=last.verdict if last else None,
                       last_rep_reason=last.reasons[0] if last and last.reasons else "",
                       view=str(self.view or ""), not_judged=not_judged_from(rule, self.view))
