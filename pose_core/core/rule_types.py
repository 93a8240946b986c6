"""What an exercise rule is: the vocabulary (exercises, phases, views, statistics) and the frozen dataclasses a
rules file is validated into (`rules.load_rules`; parsing in `rules_parse`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

from .geometry import AngleDef

DEFAULT_RULES_PATH = Path(__file__).parent / "exercises.toml"
EXERCISES = ("bench_press", "clean_and_jerk", "jump_rope", "jumping_jacks", "pullup", "pushup", "situp", "squat")
PHASES = ("rest", "transition", "peak")
VIEWS = ("side", "front", "rear", "oblique")  # the camera's view of the body (see judging.py)
# Statistics a rep check can judge: over the whole rep (including the rest before it), or the median over
# the rep's frames in the peak zone ("peak_median": e.g. elbow flare at the bottom of a bench press).
REP_STATS = ("min", "max", "range", "peak_median")


class RulesError(ValueError):
    """A rules file is invalid. The message names the file, key and value."""


@dataclass(frozen=True)
class Bounds:
    """One angle's allowed range, min..max (an open side is infinite). A value that could not be measured
    (NaN) passes: what cannot be seen does not fail. min / max are keyword-only."""

    angle: str
    min: float = field(default=-math.inf, kw_only=True)
    max: float = field(default=math.inf, kw_only=True)

    def passes(self, value: float) -> bool:
        return not (value == value) or self.min <= value <= self.max


@dataclass(frozen=True)
class Gate(Bounds):
    """A posture condition for being at rest, e.g. standing upright (torso_lean <= 45)."""


@dataclass(frozen=True)
class SecondSignal:
    """The second signal that must agree before a rep counts (see agreement.py): an angle of the rule that a
    hidden joint or another camera view does not break (the body's own up-down movement)."""

    angle: str
    rest: str  # "high" | "low", as the primary's
    min_amplitude: float  # in the angle's units (body sizes in % for heights)
    detrend_s: float = 0.0


@dataclass(frozen=True)
class Counting:
    """How reps are found in the primary signal (see counter.py). Only plausibility limits are absolute;
    everything else is relative to the person's own range in the video."""

    rest: str  # "high" | "low": which end of the primary signal is the rest position
    min_amplitude: float  # the smallest swing (primary units) that can be a rep: less is fidgeting
    min_rep_s: float = 0.3  # a cycle faster than this is a landmark jump, not a rep
    max_rep_s: float = 20.0  # longer than this away from rest is not one rep
    detrend_s: float = 0.0  # > 0: subtract a moving baseline (for heights)
    fallback: str = ""  # an angle that stands in for the primary while its joints are hidden
    phase_names: dict[str, str] = field(default_factory=dict)
    rest_requires: tuple[Gate, ...] = ()
    # "rest": a rep must come back (squat: stand up). "peak": a rep held at its peak at the end of the clip
    # counts (clean and jerk: the lift is done with the bar held overhead).
    complete_at: str = "rest"
    relative_swing: float = 0.35  # a swing must also be this fraction of the person's range in the window
    return_fraction: float = 0.7  # back at rest = returned this fraction of the swing
    range_window_s: float = 20.0  # the window the person's own range is measured over
    hold_s: float = 0.5  # complete_at = "peak": how long the peak must be held at the end of the clip
    second: SecondSignal | None = None  # the signal that must agree before a rep counts (None: the primary alone)
    # Which half of a rep lifts the load (the concentric phase): "to_peak" (a pull-up pulls up to the top),
    # "from_peak" (a squat stands up from the bottom), "" where it means nothing (jumping jacks).
    concentric: str = ""
    # What the primary angle's extreme away from rest is called ("depth"); "" when it means nothing to a
    # person (a jump rope's hip height): then no average of it is shown.
    extreme_name: str = ""
    # Plausible timing of this exercise's reps, not used for counting: recognition and counting check each
    # other with them (run/crosscheck.py). Typical rep duration (leaving rest -> back) and the fastest set.
    typical_rep_s: tuple[float, float] = (0.2, 20.0)
    max_reps_per_minute: float = 240.0

    def display_phase(self, phase: str) -> str:
        return self.phase_names.get(phase, phase)


@dataclass(frozen=True)
class FrameCheck(Bounds):
    """A range an angle must keep in one phase of every frame."""

    phase: str  # "rest" | "transition" | "peak" (a Phase) or "any"
    message: str
    views: tuple[str, ...] = VIEWS  # the camera views this check can be judged from


@dataclass(frozen=True)
class RepCheck(Bounds):
    """A range a statistic of an angle over one rep must fall in."""

    stat: str  # one of REP_STATS
    message: str  # may name {value}, {min}, {max}: filled with the measurement and the limits
    views: tuple[str, ...] = VIEWS  # the camera views this check can be judged from
    # Limits of their own for some views, (view, min, max), replacing min / max from that view: a measurement
    # that the camera foreshortens, or that is noisier from an angle, may need another limit there.
    view_limits: tuple[tuple[str, float, float], ...] = ()
    # A rep whose essential checks could not be judged (the camera's view, hidden joints) has no verdict on
    # its form: it is not called correct (see RepEvent.form_judged).
    essential: bool = False

    def bounds_for(self, view: str | None) -> tuple[float, float]:
        """(min, max) that apply from this camera view."""
        return next(((lo, hi) for v, lo, hi in self.view_limits if v == view), (self.min, self.max))


@dataclass(frozen=True)
class LearnedCheck:
    """A check learned from labelled clips (core/form_model.py): a per-rep model over the rep checks'
    measurements (how far each is from its limit) that also catches reps where several are close to their
    limits together. `model` names its files in core/form_models/ (<model>.npz + <model>.json)."""

    model: str
    views: tuple[str, ...] = VIEWS


@dataclass(frozen=True)
class ExerciseRule:
    name: str
    display_name: str
    primary_angle: str
    angles: dict[str, AngleDef]
    counting: Counting
    frame_checks: tuple[FrameCheck, ...] = ()
    rep_checks: tuple[RepCheck, ...] = ()
    learned_check: LearnedCheck | None = None
    angle_labels: dict[str, str] = field(default_factory=dict)  # angle name -> what a person calls it

    @property
    def primary(self) -> AngleDef:
        return self.angles[self.primary_angle]

    def angle_label(self, angle: str) -> str:
        """An angle as pages and reports name it ("Hip sag"), never its internal name ("hip_sag")."""
        return self.angle_labels.get(angle) or angle.replace("_", " ").capitalize()


@dataclass(frozen=True)
class Defaults:
    min_visibility: float = 0.5
    smoothing_min_cutoff: float = 1.0
    smoothing_beta: float = 0.05
    max_gap_s: float = 0.5


@dataclass(frozen=True)
class RuleSet:
    defaults: Defaults
    exercises: dict[str, ExerciseRule]
    source: str = str(DEFAULT_RULES_PATH)

    def __getitem__(self, name: str) -> ExerciseRule:
        try:
            return self.exercises[name]
        except KeyError:
            raise KeyError(f"unknown exercise {name!r}; known: {', '.join(sorted(self.exercises))}") from None

    def with_rule(self, rule: ExerciseRule) -> "RuleSet":
        ex = dict(self.exercises)
        ex[rule.name] = rule
        return replace(self, exercises=ex)
