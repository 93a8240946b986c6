"""Threshold tuning without re-running the pose model.

An analysis keeps every frame's measured angles in `frames.csv` (`raw_<angle>` columns, `time_s`). Changing
an exercise's thresholds or check ranges and feeding those stored angles (read through `outputs`) through
the same `Session` again gives exactly what the pipeline would have reported with the new rule (the smoother, counter and
labels are the same code), in milliseconds.

Also here: the angle distributions the Thresholds page draws, and saving the user's rules file
(validated first, written atomically, the previous file kept as `<name>.bak`).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from ..core.session import Session
from ..core.io import atomic_write_bytes, atomic_write_text
from ..core.rules import Defaults, ExerciseRule, RuleSet, RulesError, load_rules, rule_to_dict
from ..core.types import Phase, RepEvent
from .outputs import AnalysisInfo, read_frames_csv, stored_view


# ----------------------------------------------------------------------------------- re-judging

@dataclass(frozen=True)
class TuneResult:
    frames: int
    frames_judged: int  # frames labelled correct or incorrect (not "unknown")
    frames_correct: int
    reps: tuple[RepEvent, ...]
    partial_reps: int
    frames_correct_pct: float | None = None  # % of the judged frames labelled correct
    reps_correct: int = 0
    labels: tuple[str, ...] = field(repr=False, default=())  # per frame
    phases: tuple[str, ...] = field(repr=False, default=())

    @property
    def rep_count(self) -> int:
        return len(self.reps)


def rejudge(frames: pd.DataFrame | str | Path, rule: ExerciseRule, defaults: Defaults | None = None,
            view: str | None = None) -> TuneResult:
    """Count and judge a stored session again with `rule` (check ranges may differ from the analysis),
    from the raw per-frame angles. Angles the file lacks are treated as not visible. `view`: the camera
    view the checks are judged from (default: the one stored beside a frames.csv path)."""
    if view is None and not isinstance(frames, pd.DataFrame):
        view = stored_view(frames)
    df = read_frames_csv(frames, rule.angles) if not isinstance(frames, pd.DataFrame) else frames
    times = df["time_s"].to_numpy(dtype=float)
    cols = {}
    for name in rule.angles:
        col = f"raw_{name}"
        cols[name] = df[col].to_numpy(dtype=float) if col in df.columns else np.full(len(df), np.nan)
    session = Session(rule, defaults, view=view)
    labels, phases = [], []
    for i, t in enumerate(times):
        r = session.step_angles({n: float(v[i]) for n, v in cols.items()}, float(t))
        labels.append(r.label.label)
        phases.append(r.phase)
    session.finish()
    return TuneResult(frames=len(times), frames_judged=session.frames_judged, frames_correct=session.frames_correct,
                      reps=tuple(session.reps), partial_reps=session.partial_reps,
                      frames_correct_pct=session.frames_correct_pct, reps_correct=session.reps_correct,
                      labels=tuple(labels), phases=tuple(phases))


# ------------------------------------------------------------------------------ changing a rule

def with_check_bounds(rule: ExerciseRule, frame_check_bounds: dict[int, tuple[float, float]] | None = None,
                      rep_check_bounds: dict[int, tuple[float, float]] | None = None) -> ExerciseRule:
    """A copy of `rule` with new check ranges (check index -> (min, max); use -inf / inf for an open side).
    Counting does not depend on them: reps are found relative to the person's own range; the checks judge
    each rep. Raises RulesError if the result is not a valid rule."""
    fcs = list(rule.frame_checks)
    for i, (lo, hi) in (frame_check_bounds or {}).items():
        fcs[i] = replace(fcs[i], min=float(lo), max=float(hi))
    rcs = list(rule.rep_checks)
    for i, (lo, hi) in (rep_check_bounds or {}).items():
        rcs[i] = replace(rcs[i], min=float(lo), max=float(hi))
    new = replace(rule, frame_checks=tuple(fcs), rep_checks=tuple(rcs))
    validate_rule(new)
    return new


def validate_rule(rule: ExerciseRule) -> None:
    """Raise RulesError (with the reason) unless the rule would load back from a rules file."""
    try:
        rule_toml({rule.name: rule})
    except RulesError:
        raise
    except (ValueError, TypeError) as e:
        raise RulesError(f"{rule.name}: {e}") from None


def rule_toml(rules: dict[str, ExerciseRule], base: dict | None = None) -> str:
    """A user rules file (TOML text) overriding the given exercises on top of `base` (a parsed rules
    document), validated by loading it back."""
    import tomli_w

    doc = dict(base or {})
    exercises = dict(doc.get("exercises", {}) or {})
    for name, rule in rules.items():
        exercises[name] = rule_to_dict(rule)
    doc["exercises"] = exercises
    text = _HEADER + tomli_w.dumps(doc)
    load_rules(user_path="tuned rules", user_text=text)
    return text


_HEADER = ("# GymPose user rules: overrides of pose_core/core/exercises.toml (see that file for every key and unit).\n"
           "# Written by the Thresholds page; edit with care, it is validated when loaded.\n\n")


def _read_doc(path: Path) -> dict:
    """The user's current rules document, or {} if there is none or it is unreadable/invalid TOML."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}


def _write_with_backup(path: Path, text: str) -> Path:
    if path.exists():
        atomic_write_bytes(backup_path(path), path.read_bytes())
    atomic_write_text(path, text)
    return path


def backup_path(path: str | Path) -> Path:
    p = Path(path)
    return p.with_name(p.name + ".bak")


def save_user_rule(path: str | Path, rule: ExerciseRule) -> Path:
    """Store one exercise's (tuned) rule in the user's rules file, keeping the file's other exercises.
    Validated before anything is written; atomic; the previous file is kept as .bak."""
    path = Path(path)
    text = rule_toml({rule.name: rule}, _read_doc(path))
    return _write_with_backup(path, text)


def reset_user_rule(path: str | Path, exercise: str) -> bool:
    """Remove one exercise's override (back to the packaged defaults). Returns False if there was none."""
    path = Path(path)
    doc = _read_doc(path)
    if exercise not in doc.get("exercises", {}):
        return False
    doc = dict(doc)
    doc["exercises"] = {k: v for k, v in doc["exercises"].items() if k != exercise}
    import tomli_w

    text = _HEADER + tomli_w.dumps(doc)
    load_rules(user_text=text)
    _write_with_backup(path, text)
    return True


def save_user_rules_text(path: str | Path, text: str | bytes, label: str | None = None) -> RuleSet:
    """Replace the user's rules file with an uploaded one, only if it is valid (RulesError names the
    reason otherwise and nothing changes). Returns the resulting rule set. label: how messages name the
    uploaded file (default: the rules file's name)."""
    path = Path(path)
    label = label or path.name
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")  # a byte order mark (Windows editors) is not part of the TOML
        except UnicodeDecodeError:
            raise RulesError(f"{label}: not a text (UTF-8) file") from None
    text = text.removeprefix("\ufeff")
    rules = load_rules(user_path=path.name, user_text=text, label=label)
    _write_with_backup(path, text)
    return rules


# --------------------------------------------------------------------------------- distributions

def axis_range(rule: ExerciseRule, angle: str) -> tuple[float, float]:
    """Slider / axis range for an angle in its unit."""
    d = rule.angles[angle]
    if d.kind == "height":
        return (-60.0, 60.0) if rule.counting.detrend_s > 0 and angle == rule.primary_angle else (-300.0, 300.0)
    if d.kind == "segment" and d.reference == "horizontal":
        return (0.0, 90.0)
    return {"offset": (-30.0, 30.0), "width": (0.0, 250.0), "rise": (-100.0, 100.0)}.get(d.kind, (0.0, 180.0))


def value_column(rule: ExerciseRule, angle: str) -> str:
    """The frames.csv column the rule's thresholds apply to (detrended counting value for heights)."""
    if angle == rule.primary_angle and rule.counting.detrend_s > 0:
        return "counting_value"
    return angle


def angle_distribution(analyses: Iterable[AnalysisInfo | str | Path], rule: ExerciseRule, angle: str) -> pd.DataFrame:
    """Per-frame values of one angle from analysed sessions, with their phase: columns value, phase
    (rest/transition/peak as labelled at analysis time), phase_name (the rule's display name), source."""
    col = value_column(rule, angle)
    parts = []
    for a in analyses:
        csv_path = a.frames_csv if isinstance(a, AnalysisInfo) else Path(a)
        name = (a.summary.video or a.path.name) if isinstance(a, AnalysisInfo) else Path(a).parent.name
        try:
            df = read_frames_csv(csv_path, rule.angles)
        except (OSError, ValueError, pd.errors.ParserError):
            continue
        if col not in df.columns:
            continue
        part = pd.DataFrame({"value": pd.to_numeric(df[col], errors="coerce"), "phase": df.get("phase", "unknown")})
        part["source"] = name
        parts.append(part.dropna(subset=["value"]))
    if not parts:
        return pd.DataFrame({"value": pd.Series(dtype=float), "phase": pd.Series(dtype=str),
                             "phase_name": pd.Series(dtype=str), "source": pd.Series(dtype=str)})
    out = pd.concat(parts, ignore_index=True)
    out = out[out["phase"].isin((Phase.REST, Phase.TRANSITION, Phase.PEAK))].reset_index(drop=True)
    out["phase_name"] = out["phase"].map(rule.counting.display_phase)
    return out


@dataclass(frozen=True)
class Band:
    lo: float
    hi: float
    phase: str
    message: str


def correct_bands(rule: ExerciseRule, angle: str) -> list[Band]:
    """The ranges the rule's frame checks accept for one angle (open sides clipped to the axis)."""
    lo_ax, hi_ax = axis_range(rule, angle)
    out = []
    for c in rule.frame_checks:
        if c.angle != angle:
            continue
        lo = c.min if math.isfinite(c.min) else lo_ax
        hi = c.max if math.isfinite(c.max) else hi_ax
        out.append(Band(lo, hi, c.phase, c.message))
    return out


def open_bounds(value: tuple[float, float], axis: tuple[float, float]) -> tuple[float, float]:
    """A range slider's value as check bounds: an end pushed to the axis limit means 'no limit'."""
    lo, hi = float(value[0]), float(value[1])
    return (-math.inf if lo <= axis[0] else lo, math.inf if hi >= axis[1] else hi)


def slider_bounds(lo: float, hi: float, axis: tuple[float, float]) -> tuple[float, float]:
    """Check bounds as a range slider's value (open sides at the axis limits)."""
    return (max(axis[0], lo) if math.isfinite(lo) else axis[0], min(axis[1], hi) if math.isfinite(hi) else axis[1])
