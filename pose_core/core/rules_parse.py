"""A rules document (parsed TOML) validated into a RuleSet: every key checked, every error naming the file,
the key and the offending value. `rules.load_rules` reads and merges the files; this module parses."""

from __future__ import annotations

import math
import re
from typing import Any

from .geometry import WORLD_KINDS, AngleDef
from .landmarks import KNOWN_JOINTS, SIDED_JOINTS
from .rule_types import (EXERCISES, PHASES, REP_STATS, VIEWS, Counting, Defaults, ExerciseRule, FrameCheck, Gate,
                         LearnedCheck, RepCheck, RuleSet, RulesError, SecondSignal)

_TOP_KEYS = {"defaults", "exercises"}
_DEFAULT_KEYS = {"min_visibility", "smoothing_min_cutoff", "smoothing_beta", "max_gap_s"}
_EXERCISE_KEYS = {"display_name", "primary_angle", "angles", "counting", "frame_checks", "rep_checks", "learned_check"}
_ANGLE_KEYS = {"kind", "joints", "side", "reference", "unit", "space", "label"}
_COUNTING_KEYS = {"rest", "min_amplitude", "min_rep_s", "max_rep_s", "detrend_s", "fallback", "phase_names",
                  "rest_requires", "second", "complete_at", "relative_swing", "return_fraction", "range_window_s",
                  "hold_s", "concentric", "extreme_name", "typical_rep_s", "max_reps_per_minute"}
_SECOND_KEYS = {"angle", "rest", "min_amplitude", "detrend_s"}
CONCENTRIC = ("to_peak", "from_peak")
# Keys of the first rules format: reps were found by absolute thresholds, now they are found relative to
# the person's own range. Named in the error so an old rules file is easy to fix.
_RETIRED_COUNTING_KEYS = {"rest_threshold", "peak_threshold"}
_GATE_KEYS = {"angle", "min", "max"}
_FRAME_CHECK_KEYS = {"angle", "phase", "min", "max", "message", "views"}
_REP_CHECK_KEYS = {"angle", "stat", "min", "max", "message", "views", "limits", "essential"}
_LEARNED_KEYS = {"model", "views"}
_MODEL_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
_JOINT_COUNT = {"joint": 3, "segment": 2, "height": 1, "rise": 2, "offset": 3, "width": 2}
# Joint and segment angles are in degrees, 0..180 (see geometry.py); heights are unbounded.
ANGLE_RANGE = (0.0, 180.0)
# Longest accepted texts: they are shown on every page and drawn on videos.
MAX_DISPLAY_NAME = 80
MAX_MESSAGE = 200
MAX_PHASE_NAME = 30  # (also angle labels and the extreme's name)
_ANGLE_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")


class _Ctx:
    def __init__(self, source: str):
        self.source = source

    def fail(self, key: str, msg: str) -> RulesError:
        return RulesError(f"{self.source}: {key}: {msg}")

    def table(self, value: Any, key: str, allowed: set[str]) -> dict:
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a table, got {value!r}")
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise self.fail(f"{key}.{unknown[0]}", f"unknown key (allowed: {', '.join(sorted(allowed))})")
        return value

    def number(self, value: Any, key: str, lo: float = -math.inf, hi: float = math.inf) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(key, f"expected a number, got {value!r}")
        if not lo <= value <= hi:
            raise self.fail(key, f"{value!r} is outside {lo}..{hi}")
        return float(value)

    def string(self, value: Any, key: str, choices: tuple[str, ...] | None = None, max_len: int = 0) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"expected a non-empty string, got {value!r:.80}")
        if choices is not None and value not in choices:
            raise self.fail(key, f"{value!r:.80} is not one of {', '.join(choices)}")
        if max_len and len(value) > max_len:
            raise self.fail(key, f"too long ({len(value):,} characters, at most {max_len})")
        return value

    def require(self, table: dict, name: str, key: str) -> Any:
        if name not in table:
            raise self.fail(f"{key}.{name}", "missing required key")
        return table[name]


def _bounds(ctx: _Ctx, t: dict, key: str, allow_open: bool = False) -> tuple[float, float]:
    """min / max of a table (allow_open: infinite values are an open side, as inherited defaults are)."""
    def num(name: str) -> float:
        v = t[name]
        if allow_open and isinstance(v, float) and math.isinf(v):
            return v
        return ctx.number(v, f"{key}.{name}")

    lo = num("min") if "min" in t else -math.inf
    hi = num("max") if "max" in t else math.inf
    if "min" not in t and "max" not in t:
        raise ctx.fail(key, "needs at least one of min, max")
    if lo >= hi:
        raise ctx.fail(key, f"min ({lo}) must be less than max ({hi})")
    return lo, hi


def _angle_items(ctx: _Ctx, table: dict, key: str, name: str, allowed: set[str], angles: dict):
    """Validate a list of tables that name an angle and bound it: yields (raw, angle, min, max, key)."""
    raw_list = table.get(name, [])
    if not isinstance(raw_list, list):
        raise ctx.fail(f"{key}.{name}", f"expected a list, got {raw_list!r}")
    for i, raw in enumerate(raw_list):
        k = f"{key}.{name}[{i}]"
        raw = ctx.table(raw, k, allowed)
        angle = ctx.string(ctx.require(raw, "angle", k), f"{k}.angle")
        if angle not in angles:
            raise ctx.fail(f"{k}.angle", f"{angle!r} is not one of the angles ({', '.join(angles)})")
        lo, hi = _bounds(ctx, raw, k)
        if angles[angle].kind in ("joint", "segment"):  # degrees; heights, rises, offsets, widths are not
            _angle_bounds(ctx, lo, hi, k)
        yield raw, angle, lo, hi, k


def _angle_bounds(ctx: _Ctx, lo: float, hi: float, key: str) -> None:
    """Bounds on a joint or segment angle must lie in 0..180 degrees: anything else can never be met."""
    a, b = ANGLE_RANGE
    for name, v in (("min", lo), ("max", hi)):
        if math.isfinite(v) and not a <= v <= b:
            raise ctx.fail(f"{key}.{name}", f"{v:g} is not a possible angle (angles are {a:.0f}..{b:.0f} deg)")


def _views(ctx: _Ctx, raw: dict, key: str) -> tuple[str, ...]:
    views = raw.get("views", list(VIEWS))
    if not isinstance(views, list) or not views:
        raise ctx.fail(f"{key}.views", f"expected a non-empty list of views ({', '.join(VIEWS)}), got {views!r}")
    return tuple(ctx.string(v, f"{key}.views", VIEWS) for v in views)


def _view_limits(ctx: _Ctx, raw: dict, key: str, views: tuple[str, ...], degrees: bool,
                 default: tuple[float, float]) -> tuple[tuple[str, float, float], ...]:
    """`limits = { front = { min = 140 } }`: per-view limits; a view's table replaces the bounds it names,
    the others stay the check's own."""
    table = raw.get("limits", {})
    if not isinstance(table, dict):
        raise ctx.fail(f"{key}.limits", f"expected a table of views, got {table!r:.80}")
    out = []
    for view, t in table.items():
        k = f"{key}.limits.{view[:30]}"
        if view not in views:
            raise ctx.fail(k, f"{view[:30]!r} is not one of the views this check is judged from ({', '.join(views)})")
        t = ctx.table(t, k, {"min", "max"})
        if not t:
            raise ctx.fail(k, "needs at least one of min, max")
        lo, hi = _bounds(ctx, {"min": default[0], "max": default[1], **t}, k, allow_open=True)
        if degrees:
            _angle_bounds(ctx, lo, hi, k)
        out.append((view, lo, hi))
    return tuple(out)


def _parse_learned(ctx: _Ctx, raw: Any, key: str) -> LearnedCheck:
    t = ctx.table(raw, key, _LEARNED_KEYS)
    model = ctx.string(ctx.require(t, "model", key), f"{key}.model")
    if not _MODEL_NAME.fullmatch(model):
        raise ctx.fail(f"{key}.model", f"{model!r:.80} is not a model name (lower-case letters, digits and _)")
    return LearnedCheck(model=model, views=_views(ctx, t, key))


def _parse_angle(ctx: _Ctx, name: str, raw: Any, key: str) -> AngleDef:
    t = ctx.table(raw, key, _ANGLE_KEYS)
    kind = ctx.string(ctx.require(t, "kind", key), f"{key}.kind", tuple(_JOINT_COUNT))
    joints = ctx.require(t, "joints", key)
    if not isinstance(joints, list) or len(joints) != _JOINT_COUNT[kind]:
        raise ctx.fail(f"{key}.joints", f"a {kind} angle needs {_JOINT_COUNT[kind]} joints, got {joints!r}")
    for j in joints:
        if j not in KNOWN_JOINTS:
            raise ctx.fail(f"{key}.joints", f"unknown joint {j!r} (known: {', '.join(KNOWN_JOINTS[:14])}, left_*/right_*)")
    if kind == "width" and any(j not in SIDED_JOINTS for j in joints):
        raise ctx.fail(f"{key}.joints", f"a width compares the left and right joint: name them without a side "
                       f"(e.g. knee, ankle), got {joints!r}")
    side = ctx.string(t.get("side", "auto"), f"{key}.side", ("auto", "left", "right", "both"))
    reference = ctx.string(t.get("reference", "vertical"), f"{key}.reference", ("vertical", "horizontal"))
    unit = ctx.string(t.get("unit", "deg"), f"{key}.unit")
    space = ctx.string(t.get("space", "image"), f"{key}.space", ("image", "world"))
    if space == "world" and kind not in WORLD_KINDS:
        raise ctx.fail(f"{key}.space", f"only {', '.join(WORLD_KINDS)} angles can be measured in 3D (world), not a {kind}")
    return AngleDef(name=name, kind=kind, joints=tuple(joints), side=side, reference=reference, unit=unit,
                    space=space)


def _parse_range(ctx: _Ctx, raw: Any, key: str, lo: float, hi: float) -> tuple[float, float]:
    """[low, high] with lo <= low <= high <= hi."""
    if not isinstance(raw, (list, tuple)) or len(raw) != 2:
        raise ctx.fail(key, f"expected [low, high], got {raw!r:.80}")
    a, b = ctx.number(raw[0], f"{key}[0]", lo, hi), ctx.number(raw[1], f"{key}[1]", lo, hi)
    if a > b:
        raise ctx.fail(key, f"low {a:g} is above high {b:g}")
    return a, b


def _parse_second(ctx: _Ctx, raw: Any, key: str, angles: dict, primary: str) -> SecondSignal:
    t = ctx.table(raw, key, _SECOND_KEYS)
    angle = ctx.string(ctx.require(t, "angle", key), f"{key}.angle", tuple(a for a in angles if a != primary))
    return SecondSignal(angle=angle, rest=ctx.string(ctx.require(t, "rest", key), f"{key}.rest", ("high", "low")),
                        min_amplitude=ctx.number(ctx.require(t, "min_amplitude", key), f"{key}.min_amplitude", 0.1, 1000),
                        detrend_s=ctx.number(t.get("detrend_s", 0.0), f"{key}.detrend_s", 0, 60))


def _parse_counting(ctx: _Ctx, c: Any, ck: str, angles: dict, primary: str) -> Counting:
    retired = sorted(set(c) & _RETIRED_COUNTING_KEYS) if isinstance(c, dict) else []
    if retired:
        raise ctx.fail(f"{ck}.{retired[0]}", "no longer used: reps are found relative to your own range of "
                       "motion; set depth and lockout targets in rep_checks instead, and remove this key")
    c = ctx.table(c, ck, _COUNTING_KEYS)
    rest = ctx.string(ctx.require(c, "rest", ck), f"{ck}.rest", ("high", "low"))
    names = c.get("phase_names", {})
    names = ctx.table(names, f"{ck}.phase_names", set(PHASES))
    for p, v in names.items():
        ctx.string(v, f"{ck}.phase_names.{p}", max_len=MAX_PHASE_NAME)
    gates = [Gate(angle, min=lo, max=hi) for _, angle, lo, hi, _k in
             _angle_items(ctx, c, ck, "rest_requires", _GATE_KEYS, angles)]
    min_rep_s = ctx.number(c.get("min_rep_s", 0.3), f"{ck}.min_rep_s", 0, 60)
    return Counting(
        rest=rest, min_amplitude=ctx.number(ctx.require(c, "min_amplitude", ck), f"{ck}.min_amplitude", 0.1, 1000),
        min_rep_s=min_rep_s,
        max_rep_s=ctx.number(c.get("max_rep_s", 20.0), f"{ck}.max_rep_s", max(min_rep_s, 0.1), 600),
        relative_swing=ctx.number(c.get("relative_swing", 0.35), f"{ck}.relative_swing", 0.05, 0.95),
        return_fraction=ctx.number(c.get("return_fraction", 0.7), f"{ck}.return_fraction", 0.3, 1.0),
        range_window_s=ctx.number(c.get("range_window_s", 20.0), f"{ck}.range_window_s", 2, 600),
        hold_s=ctx.number(c.get("hold_s", 0.5), f"{ck}.hold_s", 0, 60),
        detrend_s=ctx.number(c.get("detrend_s", 0.0), f"{ck}.detrend_s", 0, 60),
        fallback=ctx.string(c["fallback"], f"{ck}.fallback", tuple(a for a in angles if a != primary))
        if "fallback" in c else "",
        phase_names=dict(names), rest_requires=tuple(gates),
        complete_at=ctx.string(c.get("complete_at", "rest"), f"{ck}.complete_at", ("rest", "peak")),
        second=_parse_second(ctx, c["second"], f"{ck}.second", angles, primary) if "second" in c else None,
        concentric=ctx.string(c["concentric"], f"{ck}.concentric", CONCENTRIC) if "concentric" in c else "",
        extreme_name=ctx.string(c["extreme_name"], f"{ck}.extreme_name", max_len=MAX_PHASE_NAME)
        if "extreme_name" in c else "",
        typical_rep_s=_parse_range(ctx, c.get("typical_rep_s", [0.2, 20.0]), f"{ck}.typical_rep_s", 0.05, 600),
        max_reps_per_minute=ctx.number(c.get("max_reps_per_minute", 240.0), f"{ck}.max_reps_per_minute", 1, 1000),
    )


def _parse_exercise(ctx: _Ctx, name: str, raw: Any) -> ExerciseRule:
    key = f"exercises.{name}"
    t = ctx.table(raw, key, _EXERCISE_KEYS)
    display = ctx.string(t.get("display_name", name.replace("_", " ").capitalize()), f"{key}.display_name",
                         max_len=MAX_DISPLAY_NAME)
    angles_raw = ctx.table(ctx.require(t, "angles", key), f"{key}.angles", set(t.get("angles", {}) or {}))
    if not angles_raw:
        raise ctx.fail(f"{key}.angles", "at least one angle is required")
    for n in angles_raw:
        if not _ANGLE_NAME.fullmatch(n):
            raise ctx.fail(f"{key}.angles", f"{n!r:.80} is not an angle name (lower-case letters, digits and _, "
                           "at most 40 characters, starting with a letter)")
    angles = {n: _parse_angle(ctx, n, a, f"{key}.angles.{n}") for n, a in angles_raw.items()}
    labels = {n: ctx.string(a["label"], f"{key}.angles.{n}.label", max_len=MAX_PHASE_NAME)
              for n, a in angles_raw.items() if "label" in a}
    primary = ctx.string(ctx.require(t, "primary_angle", key), f"{key}.primary_angle")
    if primary not in angles:
        raise ctx.fail(f"{key}.primary_angle", f"{primary!r} is not one of the angles ({', '.join(angles)})")

    counting = _parse_counting(ctx, ctx.require(t, "counting", key), f"{key}.counting", angles, primary)

    frame_checks = [
        FrameCheck(angle=angle, phase=ctx.string(raw.get("phase", "any"), f"{k}.phase", PHASES + ("any",)),
                   message=ctx.string(ctx.require(raw, "message", k), f"{k}.message", max_len=MAX_MESSAGE), min=lo, max=hi,
                   views=_views(ctx, raw, k))
        for raw, angle, lo, hi, k in _angle_items(ctx, t, key, "frame_checks", _FRAME_CHECK_KEYS, angles)]
    rep_checks = [_parse_rep_check(ctx, raw, angle, lo, hi, k, angles)
                  for raw, angle, lo, hi, k in _angle_items(ctx, t, key, "rep_checks", _REP_CHECK_KEYS, angles)]
    learned = _parse_learned(ctx, t["learned_check"], f"{key}.learned_check") if "learned_check" in t else None
    return ExerciseRule(name=name, display_name=display, primary_angle=primary, angles=angles, counting=counting,
                        frame_checks=tuple(frame_checks), rep_checks=tuple(rep_checks), learned_check=learned,
                        angle_labels=labels)


def _parse_rep_check(ctx: _Ctx, raw: dict, angle: str, lo: float, hi: float, k: str, angles: dict) -> RepCheck:
    views = _views(ctx, raw, k)
    essential = raw.get("essential", False)
    if not isinstance(essential, bool):
        raise ctx.fail(f"{k}.essential", f"expected true or false, got {essential!r:.80}")
    return RepCheck(angle=angle, stat=ctx.string(ctx.require(raw, "stat", k), f"{k}.stat", REP_STATS),
                    message=ctx.string(ctx.require(raw, "message", k), f"{k}.message", max_len=MAX_MESSAGE),
                    min=lo, max=hi, views=views, essential=essential,
                    view_limits=_view_limits(ctx, raw, k, views, angles[angle].kind in ("joint", "segment"), (lo, hi)))


def parse_rules(data: dict, source: str = "<rules>", label: str | None = None) -> RuleSet:
    """Validate a rules document (already parsed TOML) into a RuleSet; messages name it `label` (or source)."""
    ctx = _Ctx(label or source)
    top = ctx.table(data, "(top level)", _TOP_KEYS)
    d = ctx.table(top.get("defaults", {}), "defaults", _DEFAULT_KEYS)
    defaults = Defaults(
        min_visibility=ctx.number(d.get("min_visibility", 0.5), "defaults.min_visibility", 0, 1),
        smoothing_min_cutoff=ctx.number(d.get("smoothing_min_cutoff", 1.0), "defaults.smoothing_min_cutoff", 1e-3, 100),
        smoothing_beta=ctx.number(d.get("smoothing_beta", 0.05), "defaults.smoothing_beta", 0, 100),
        max_gap_s=ctx.number(d.get("max_gap_s", 0.5), "defaults.max_gap_s", 0, 10),
    )
    ex_raw = top.get("exercises", {})
    if not isinstance(ex_raw, dict) or not ex_raw:
        raise ctx.fail("exercises", "expected a table with at least one exercise")
    exercises = {}
    for name, raw in ex_raw.items():
        if name not in EXERCISES:
            raise ctx.fail(f"exercises.{name[:60]}", f"unknown exercise (known: {', '.join(EXERCISES)})")
        exercises[name] = _parse_exercise(ctx, name, raw)
    return RuleSet(defaults=defaults, exercises=exercises, source=source)
