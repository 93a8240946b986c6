"""A rule as a TOML-ready table: the inverse of parsing (rules_parse.py), used to save tuned thresholds and to
fingerprint the rules a cache was made with."""

from __future__ import annotations

import math
from dataclasses import asdict

from .rule_types import ExerciseRule, RepCheck


def _finite(lo: float, hi: float) -> dict:
    return {k: v for k, v in (("min", lo), ("max", hi)) if math.isfinite(v)}


def rule_to_dict(rule: ExerciseRule) -> dict:
    """A rule as a TOML-ready table (inverse of parsing); used to save tuned thresholds."""
    def bounds(c) -> dict:
        return _finite(c.min, c.max)

    return {
        "display_name": rule.display_name,
        "primary_angle": rule.primary_angle,
        "angles": {n: {"kind": a.kind, "joints": list(a.joints), "side": a.side, "reference": a.reference, "unit": a.unit,
                       "space": a.space, **({"label": rule.angle_labels[n]} if n in rule.angle_labels else {})}
                   for n, a in rule.angles.items()},
        "counting": {**{k: v for k, v in asdict(rule.counting).items()
                        if k not in ("phase_names", "rest_requires") and v != "" and v is not None},
                     "phase_names": dict(rule.counting.phase_names),
                     "rest_requires": [{"angle": g.angle, **bounds(g)} for g in rule.counting.rest_requires]},
        "frame_checks": [{"angle": c.angle, "phase": c.phase, **bounds(c), "message": c.message, "views": list(c.views)}
                         for c in rule.frame_checks],
        "rep_checks": [_rep_check_dict(c, bounds) for c in rule.rep_checks],
        **({"learned_check": {"model": rule.learned_check.model, "views": list(rule.learned_check.views)}}
           if rule.learned_check else {}),
    }


def _rep_check_dict(c: RepCheck, bounds) -> dict:
    d = {"angle": c.angle, "stat": c.stat, **bounds(c), "message": c.message, "views": list(c.views)}
    if c.view_limits:
        d["limits"] = {v: _finite(lo, hi) for v, lo, hi in c.view_limits}
    if c.essential:
        d["essential"] = True
    return d
