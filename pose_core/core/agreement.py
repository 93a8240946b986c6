"""Two signals agree before a rep counts.

The primary angle (a squat's knee) says most about a rep, but one hidden or mis-tracked joint (plates in
front of the knees, a kettlebell over the thighs, a rack upright) turns its jitter into "reps", and a long
pause lets it wander. Each exercise also follows a second signal that such things do not break: the body's
own up-down movement (the hips' height for a squat, the shoulders' for a push-up or a pull-up, the hands' for a
press), measured in body sizes so the camera's view does not matter (`counting.second` in exercises.toml).
Both are counted by the same `RepCounter`, and `decide` puts the two lists of cycles side by side:

- a cycle both show is a rep (sure);
- a cycle only one shows is *uncertain*: counted when the other signal could not see it (hidden) or moved
  along without completing a cycle of its own, not counted when the other stayed still through it (the knee
  "moved" but the hips did not) or when it is a second primary cycle inside one movement of the body;
- a second signal that never moves like a rep in this video (a press filmed from the head end: the hands move
  towards the camera, not up) cannot confirm anything, and the primary counts alone, as before.

Then the set's own range decides what was a full rep: a counted cycle whose way out or way back is less than
HALF_RANGE of the set's typical rep is partial (a clip starting at the bottom, a pull-up lowered half-way and
pulled again). And every rep that crosses or touches a camera cut is marked uncertain, with the cut's time.
Decisions are taken on the whole stream when it ends (files and live alike, so both give the same count).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .counter import RepCycle

MATCH_OVERLAP = 0.5  # two cycles are one rep when they overlap by this much of the shorter one ...
MATCH_PEAK = 0.3  # ... or their peaks are this close (fraction of the longer one's duration)
MIN_COVERAGE = 0.5  # a signal seen in fewer of a cycle's frames "could not see" it
STILL = 0.4  # the other signal moved less than this fraction of its typical rep: it stayed still
HALF_RANGE = 0.55  # a counted cycle with less than about half the set's typical range is partial
EDGE_RANGE = 0.75  # ... and a cycle at the clip's start or end (it may have begun or ended outside the clip)
MIN_SET_FOR_RANGE = 3  # the typical range needs at least this many reps
NEAR_CUT_S = 0.3  # a rep this close to a camera cut is checked (uncertain)
PENDING_S = 1.0  # while the stream goes on, a cycle this recent may still be matched: counted for now
HIDDEN_GAP_S = 1.0  # a signal not seen this long inside one of its cycles may have merged several reps
LAG = 0.25  # the other signal may leave rest or get back to it this much of a cycle's duration apart


@dataclass(frozen=True)
class Decision:
    """One cycle and what was decided about it."""

    cycle: RepCycle
    counted: bool
    doubt: str = ""  # counted: why it is uncertain ("" when sure); not counted: why not
    partial: bool = False  # not counted because it was not a full rep
    source: str = "primary"  # the signal whose cycle this is ("primary" / "second"): its units


@dataclass
class Series:
    """The two counted signals frame by frame (NaN where not seen)."""

    t: list[float] = field(default_factory=list)
    primary: list[float] = field(default_factory=list)
    second: list[float] = field(default_factory=list)

    def add(self, t: float, p: float, s: float) -> None:
        self.t.append(t)
        self.primary.append(p)
        self.second.append(s)

    def arrays(self):
        return np.asarray(self.t), np.asarray(self.primary, float), np.asarray(self.second, float)


@dataclass(frozen=True)
class Signal:
    """One counted signal: how it is called in messages ("knee angle"), which end is rest, the smallest rep."""

    name: str
    rest: str  # "high" | "low"
    min_amplitude: float

    def effort(self, values: np.ndarray) -> np.ndarray:
        return -values if self.rest == "high" else values


def _overlap(a: RepCycle, b: RepCycle) -> float:
    inter = min(a.end_s, b.end_s) - max(a.start_s, b.start_s)
    shorter = max(min(a.end_s - a.start_s, b.end_s - b.start_s), 1e-6)
    return max(0.0, inter) / shorter


def _matches(a: RepCycle, b: RepCycle) -> bool:
    longer = max(a.end_s - a.start_s, b.end_s - b.start_s)
    return _overlap(a, b) >= MATCH_OVERLAP or abs(a.peak_s - b.peak_s) <= MATCH_PEAK * longer


def match(primary: list[RepCycle], second: list[RepCycle]) -> dict[int, int]:
    """One-to-one pairs primary index -> second index, the best overlapping first."""
    pairs = sorted(((round(_overlap(p, s), 2), -abs(p.peak_s - s.peak_s), i, j) for i, p in enumerate(primary)
                    for j, s in enumerate(second) if _matches(p, s)), reverse=True)
    out: dict[int, int] = {}
    used: set[int] = set()
    for _, _, i, j in pairs:
        if i not in out and j not in used:
            out[i] = j
            used.add(j)
    return out


def _span(t: np.ndarray, v: np.ndarray, c: RepCycle) -> np.ndarray:
    return v[(t >= c.start_s) & (t <= c.end_s)]


def _coverage(values: np.ndarray) -> float:
    return float(np.isfinite(values).mean()) if values.size else 0.0


def _out_and_back(effort: np.ndarray, held: bool = False, before: np.ndarray | None = None) -> float:
    """How far a signal went out from where it was at the span's start AND came back by its end: the smaller
    of the two (a rep's shape; a signal that only started to move, or only came back, scores low). held: the
    rep ended held at its peak as the clip ended (complete_at = "peak"): only the way out. before: the signal
    just before the span: two signals do not leave rest at the same instant (the shoulders rise a little
    before the torso tilts), so where this one rested may lie just before the other's cycle began."""
    e = effort[np.isfinite(effort)]
    if e.size < 3:
        return 0.0
    k = min(3, e.size)
    start, end = float(np.median(e[:k])), float(np.median(e[-k:]))
    start = min([start] + _finite(before))
    top = float(e.max())
    return max(0.0, top - start if held else min(top - start, top - end))


def _finite(values: np.ndarray | None) -> list[float]:
    return [] if values is None else [float(x) for x in values if math.isfinite(x)]


def _moved(t: np.ndarray, v: np.ndarray, c: RepCycle, sig: "Signal", not_before: float = -math.inf) -> float:
    """`_out_and_back` of signal v (effort of `sig`) over cycle c, where it rested before looked for up to LAG
    of the cycle's duration before its start, but not before `not_before` (the end of the cycle before it:
    the rest between two reps, never the middle of the last one)."""
    e = sig.effort(v)
    before = e[(t >= max(c.start_s - LAG * (c.end_s - c.start_s), not_before)) & (t < c.start_s)]
    return _out_and_back(_span(t, e, c), held=c.edge == "end", before=before)


def _typical(cycles: list[RepCycle], floor: float) -> float:
    amps = [c.rise for c in cycles if math.isfinite(c.rise)]
    return max(float(np.median(amps)), floor) if amps else floor


def informative(values: np.ndarray, min_amplitude: float) -> bool:
    """A signal can confirm or deny reps when it was seen and moved at least as much as one rep needs."""
    v = values[np.isfinite(values)]
    if v.size < 0.3 * max(values.size, 1) or v.size < 10:
        return False
    lo, hi = np.percentile(v, [5, 95])
    return hi - lo >= min_amplitude


def decide(primary: list[RepCycle], second: list[RepCycle] | None, series: Series, p: Signal,
           s: Signal | None = None, cuts: list[float] = (), now: float | None = None) -> list[Decision]:
    """What counts, from both signals' cycles (see the module's docstring). now: the stream's current time
    while it goes on (live, or a file being read): a cycle that ended less than PENDING_S ago may still be
    matched by the other signal's, which often completes a little later, so it is counted for now; None: the
    stream has ended and everything is decided."""
    t, pv, sv = series.arrays()
    if second is None or s is None or not informative(sv, s.min_amplitude):
        out = [Decision(c, True) for c in primary]
    else:
        out = _agree(primary, second, t, pv, sv, p, s, now)
    out = _half_range(out)
    out = _near_cuts(out, cuts)
    # A cycle at the clip's start or end that is not counted was cut off by the clip: a partial rep.
    out = [Decision(d.cycle, False, d.doubt, True, d.source) if not d.counted and d.cycle.edge else d for d in out]
    return sorted(out, key=lambda d: d.cycle.start_s)


def _longest_gap(t: np.ndarray, v: np.ndarray, c: RepCycle) -> tuple[float, float]:
    """The longest stretch inside the cycle where the signal was not seen: (start, end)."""
    inside = (t >= c.start_s) & (t <= c.end_s)
    tt, seen = t[inside], np.isfinite(v[inside])
    best, start = (0.0, 0.0), None
    for ti, ok in zip(tt, seen):
        if not ok and start is None:
            start = ti
        elif ok and start is not None:
            if ti - start > best[1] - best[0]:
                best = (start, ti)
            start = None
    if start is not None and tt.size and tt[-1] - start > best[1] - best[0]:
        best = (start, float(tt[-1]))
    return best


def _split_hidden(primary, second, t, pv, p: Signal, s: Signal) -> tuple[list, list[Decision]]:
    """A primary cycle that spans a long stretch where it was hidden, inside which the second signal shows two
    or more reps, is those reps (counted from the second signal), not one long one."""
    keep, replaced = [], []
    for c in primary:
        gap = _longest_gap(t, pv, c)
        inside = [x for x in second if _overlap(x, c) >= MATCH_OVERLAP and x.start_s >= c.start_s - 0.5
                  and x.end_s <= c.end_s + 0.5]
        if gap[1] - gap[0] >= HIDDEN_GAP_S and len(inside) >= 2:
            why = f"the {p.name} was hidden {gap[0]:.1f}-{gap[1]:.1f} s: counted from the {s.name}"
            replaced += [Decision(x, True, why, source="second") for x in inside]
        else:
            keep.append(c)
    return keep, replaced


def _agree(primary, second, t, pv, sv, p: Signal, s: Signal, now: float | None) -> list[Decision]:
    primary, out = _split_hidden(primary, second, t, pv, p, s)
    taken = {id(d.cycle) for d in out}
    second_left = [c for c in second if id(c) not in taken]
    return out + _pair_up(primary, second_left, t, pv, sv, p, s, now)


def _pair_up(primary, second, t, pv, sv, p: Signal, s: Signal, now: float | None) -> list[Decision]:
    pairs = match(primary, second)
    used = set(pairs.values())
    typ_s = _typical([second[j] for j in used] or second, s.min_amplitude)
    typ_p = _typical([primary[i] for i in pairs] or primary, p.min_amplitude)
    out: list[Decision] = []
    recent = (lambda c: False) if now is None else (lambda c: now - c.end_s < PENDING_S)
    for i, c in enumerate(primary):
        if i in pairs or recent(c):
            out.append(Decision(c, True))
            continue
        span = _span(t, sv, c)
        if _coverage(span) < MIN_COVERAGE:
            out.append(Decision(c, True, f"the {s.name} could not be seen during this rep"))
        elif _moved(t, sv, c, s, primary[i - 1].end_s if i else -math.inf) < STILL * typ_s:
            out.append(Decision(c, False, f"only the {p.name} showed a rep here: the {s.name} did not go out and "
                                          "come back"))
        else:
            out.append(Decision(c, True, f"the {s.name} moved less than in a full rep"))
    for j, c in enumerate(second):
        if j in used or recent(c) or any(_overlap(d.cycle, c) >= MATCH_OVERLAP for d in out if d.counted):
            continue
        span = _span(t, pv, c)
        if _coverage(span) < MIN_COVERAGE:
            out.append(Decision(c, True, f"the {p.name} could not be seen: counted from the {s.name}",
                                source="second"))
        elif _moved(t, pv, c, p, second[j - 1].end_s if j else -math.inf) < STILL * typ_p:
            out.append(Decision(c, False, f"only the {s.name} showed a rep here: the {p.name} did not go out and "
                                          "come back", source="second"))
        else:
            out.append(Decision(c, True, f"the {p.name} moved less than in a full rep", source="second"))
    return out


def _half_range(decisions: list[Decision]) -> list[Decision]:
    """Counted cycles with less than HALF_RANGE of the set's typical range become partial (each signal's
    cycles against its own typical range: their units differ). A cycle at the clip's start or end may have
    begun or ended outside it: its way out must reach EDGE_RANGE of the typical way out."""
    typical, typical_rise = {}, {}
    for source in ("primary", "second"):
        mine = [d.cycle for d in decisions if d.counted and d.source == source]
        amps = [c.amplitude for c in mine if math.isfinite(c.amplitude)]
        if len(amps) >= MIN_SET_FOR_RANGE:
            typical[source] = float(np.median(amps))
            typical_rise[source] = float(np.median([c.rise for c in mine if not c.edge and math.isfinite(c.rise)]
                                                   or [c.rise for c in mine]))
    out = []
    for d in decisions:
        c, typ = d.cycle, typical.get(d.source)
        short = None
        if d.counted and typ and math.isfinite(c.amplitude) and c.amplitude < HALF_RANGE * typ:
            short = c.amplitude / typ
        elif d.counted and typ and c.edge and math.isfinite(c.rise) and c.rise < EDGE_RANGE * typical_rise[d.source]:
            short = c.rise / typical_rise[d.source]
        if short is not None:
            where = {"start": " at the clip's start", "end": " at the clip's end"}.get(c.edge, "")
            out.append(Decision(c, False, f"partial range{where}: {100 * short:.0f}% of this set's typical rep",
                                partial=True, source=d.source))
        else:
            out.append(d)
    return out


def _near_cuts(decisions: list[Decision], cuts) -> list[Decision]:
    out = []
    for d in decisions:
        c = d.cycle
        near = [x for x in cuts if c.start_s - NEAR_CUT_S <= x <= c.end_s + NEAR_CUT_S]
        if d.counted and near and not d.doubt:
            d = Decision(c, True, f"camera cut at {min(near):.1f} s", source=d.source)
        out.append(d)
    return out
