"""Repetition counting: a small state machine fed one value at a time. It never sees images.

A rep starts when the primary angle leaves the rest zone, must reach the peak zone, and is complete when
the angle is back in the rest zone. Hysteresis comes from the gap between the two thresholds.
- Frames without a value (person not visible) are skipped: the state is kept, nothing breaks.
- A clip that starts in the middle of a rep (the first rest is only reached later) reports that rep as
  partial; so does a rep still open at the end (`finish()`).
- Each complete rep is judged against the rule's rep checks and carries its reasons and tempo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .rules import Counting, RepCheck
from .types import RepEvent


@dataclass
class _OpenRep:
    start_s: float
    reached_peak: bool = False
    peak_s: float = 0.0
    primary_min: float = math.inf
    primary_max: float = -math.inf
    extremes: dict[str, list[float]] = field(default_factory=dict)
    peak_values: dict[str, list[float]] = field(default_factory=dict)

    def add_peak(self, angles: dict[str, float]) -> None:
        for name, v in angles.items():
            if v == v:
                self.peak_values.setdefault(name, []).append(v)

    def add(self, t: float, primary: float, angles: dict[str, float], rest_high: bool) -> None:
        if primary < self.primary_min:
            self.primary_min = primary
            if rest_high:
                self.peak_s = t
        if primary > self.primary_max:
            self.primary_max = primary
            if not rest_high:
                self.peak_s = t
        for name, v in angles.items():
            if v == v:  # not NaN
                lo_hi = self.extremes.setdefault(name, [math.inf, -math.inf])
                lo_hi[0] = min(lo_hi[0], v)
                lo_hi[1] = max(lo_hi[1], v)


class RepCounter:
    def __init__(self, counting: Counting, rep_checks: tuple[RepCheck, ...] = (), primary_name: str = "primary"):
        self.counting = counting
        self.rep_checks = rep_checks
        self.primary_name = primary_name
        self.reset()

    def reset(self) -> None:
        self.reps: list[RepEvent] = []
        self.partial_reps = 0
        self.state = "unknown"  # "unknown" | "rest" | "active" | "partial_start"
        self.phase = "unknown"
        self._open: _OpenRep | None = None
        self._last_rest: tuple[float, float, dict[str, float]] | None = None
        self._rest_acc: _OpenRep | None = None
        self._rest_fresh = True  # the next rest sample starts a new rest period
        self._last_t = 0.0

    @property
    def count(self) -> int:
        return len(self.reps)

    @property
    def rest_high(self) -> bool:
        return self.counting.rest == "high"

    def update(self, t: float, primary: float, angles: dict[str, float] | None = None) -> RepEvent | None:
        """Feed one sample. Returns the RepEvent when this sample completes a rep."""
        angles = angles or {}
        if primary is None or not math.isfinite(primary):
            return None  # not visible: keep the state
        zone = self.counting.phase_with_posture(primary, angles)
        self._last_t = t
        self.phase = zone
        event = None
        if self.state == "unknown":
            if zone == "rest":
                self.state = "rest"
            elif zone == "peak":
                self.state = "partial_start"  # the clip began inside a rep
        elif self.state == "partial_start":
            if zone == "rest":
                self.partial_reps += 1
                self.state = "rest"
        elif self.state == "rest":
            if zone != "rest":
                self.state = "active"
                start = self._last_rest[0] if self._last_rest is not None else t
                # The rep inherits the extremes of the rest period before it (lockout is judged there).
                acc = self._rest_acc
                self._open = _OpenRep(start_s=start, peak_s=start, primary_min=acc.primary_min,
                                      primary_max=acc.primary_max,
                                      extremes={k: list(v) for k, v in acc.extremes.items()})
        elif self.state == "active":
            assert self._open is not None
            if zone == "peak":
                self._open.reached_peak = True
                self._open.add_peak(angles)
            if zone == "rest":
                self._open.add(t, primary, angles, self.rest_high)
                if self._open.reached_peak and t - self._open.start_s >= self.counting.min_rep_s:
                    event = self._close(t)
                self._open = None
                self.state = "rest"
        if self.state == "active" and self._open is not None:
            self._open.add(t, primary, angles, self.rest_high)
        if zone == "rest":
            if event is not None or self._rest_acc is None or self._rest_fresh:
                self._rest_acc = _OpenRep(start_s=t)
                self._rest_fresh = False
            self._rest_acc.add(t, primary, angles, self.rest_high)
            self._last_rest = (t, primary, dict(angles))
        else:
            self._rest_fresh = True
        return event

    def _close(self, end_s: float) -> RepEvent:
        o = self._open
        assert o is not None
        extremes = {k: (v[0], v[1]) for k, v in o.extremes.items()}
        reasons = []
        for check in self.rep_checks:
            if check.angle not in extremes:
                continue
            lo, hi = extremes[check.angle]
            if check.stat == "peak_median":
                vals = o.peak_values.get(check.angle)
                if not vals:
                    continue
                value = float(sorted(vals)[len(vals) // 2])
            else:
                value = {"min": lo, "max": hi, "range": hi - lo}[check.stat]
            if not check.passes(value):
                reasons.append(check.message)
        ev = RepEvent(
            index=len(self.reps) + 1, start_s=o.start_s, end_s=end_s, peak_s=o.peak_s,
            primary_min=o.primary_min, primary_max=o.primary_max,
            verdict="incorrect" if reasons else "correct", reasons=tuple(reasons), angle_extremes=extremes,
        )
        self.reps.append(ev)
        return ev

    def finish(self) -> None:
        """End of stream: a rep that reached its peak but never came back is partial."""
        if self.state == "active" and self._open is not None and self._open.reached_peak:
            if self.counting.complete_at == "peak" and self._last_t - self._open.start_s >= self.counting.min_rep_s:
                self._close(self._last_t)  # the effort was done; only the return was cut off
            else:
                self.partial_reps += 1
        self._open = None
        self.state = "finished"
