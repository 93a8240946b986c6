"""Repetition counting: a small state machine fed one value at a time. It never sees images, and it
does not judge: it finds the cycles of the movement; `judging.py` decides whether each was correct.

A rep is one cycle rest -> effort -> rest found in the signal itself, measured against this person's own
range in this video (a rolling window of the last `range_window_s` seconds), not against absolute angles:
- The signal is turned into *effort* (larger = further from rest) using the rule's `rest` side.
- A low point (rest) is confirmed once the effort has risen from it by the *swing*: at least the rule's
  `min_amplitude` (an absolute plausibility floor, so fidgeting is never a rep) and at least
  `relative_swing` of the person's own range in the window (so jitter on a big movement is not a rep).
- The rep counts when the effort is back within `1 - return_fraction` of its swing from that low point and
  has settled there for SETTLE_S (or the next rep already starts from a dip in the lower half: bouncy
  movements such as skipping), in a rest posture (`rest_requires` gates: a squat ends standing, not in a
  plank), after at least `min_rep_s` and at most `max_rep_s` since leaving rest. It ends where the return
  ended (full lockout), so checks judge the whole movement.
- Edges as a person counts them: a clip that starts near rest starts at rest (its low point is confirmed by
  the first rise like any other); a clip whose first movement is a return to rest began inside a rep, which
  is reported as partial; so is a rep still open at the end. With `complete_at = "peak"` (a clean and jerk
  ends with the bar held overhead) a rep held at its peak for `hold_s` at the end of the clip counts.
- Frames without a value (person not visible) are skipped: the state is kept, nothing breaks. A causal
  median of the last few values removes single-frame landmark jumps before anything else sees them.
- A camera cut (`cut(t)`): the median never mixes the two shots, and the state carries over (the person is
  where they were; the analyzer has already made the signal continuous across the cut, see analysis.py).

The same counter runs live (causally, frame by frame) and on files, so both give the same count.
"""

from __future__ import annotations

import bisect
import collections
import math
from dataclasses import dataclass, field, replace

from .rules import Counting

# Phase of a frame relative to the person's own range (0 = rest end, 1 = effort end of the window).
REST_BELOW = 0.3
PEAK_ABOVE = 0.7
MEDIAN_S = 0.1  # causal median window: removes landmark jumps of up to ~2 frames at 30 fps
REST_KEPT_S = 2.0  # how much of the rest is kept while waiting for the next rep (bounded memory)
START_S = 0.3  # a rise from the first sample, this close to the stream's start, may be partway into a rep
START_AT_REST = 0.4  # ... it was rest if it lies within this fraction of the rep's swing from where it ended
SETTLE_S = 0.3  # a rep ends once its return has stayed at its lowest this long (or the next rep starts)
SETTLE_TOLERANCE = 0.03  # ... within this fraction of the swing


@dataclass(frozen=True)
class RepCycle:
    """One counted cycle, before judging: timing and the values the checks need."""

    start_s: float  # left the rest position
    end_s: float  # back at rest
    peak_s: float  # the extreme of the effort
    primary_min: float
    primary_max: float
    extremes: dict[str, tuple[float, float]]  # every angle's (min, max) over the movement (leaving rest -> back)
    peak_values: dict[str, list[float]] = field(default_factory=dict)  # values near the peak (effort >= 70%)
    rise: float = math.nan  # how far the signal went from the rest before to the peak (its units, >= 0)
    fall: float = math.nan  # how far it came back from the peak to where the rep ended
    edge: str = ""  # "start" / "end": the rep touches the stream's start or end (may have begun/ended outside)

    @property
    def amplitude(self) -> float:
        """The rep's range of motion: how far it went out from the rest it started at (a cycle started from
        half-way down, or by a clip that began mid-rep, has a small one; its way back is at least half its way
        out, or the counter would not have closed it)."""
        return self.rise


@dataclass
class _Sample:
    t: float
    e: float  # effort
    value: float  # the signal in its own units
    angles: dict[str, float]


class _Median:
    """Causal median over the last `window_s` seconds, and at least the last 3 samples: removes a landmark
    jump of a frame or two. Returns the chosen sample's value with its own angles (so a posture gate is
    read on the frame the value came from)."""

    def __init__(self, window_s: float):
        self.window_s = window_s
        self.buf: collections.deque[tuple[float, float, dict[str, float]]] = collections.deque()

    def __call__(self, t: float, x: float, angles: dict[str, float]) -> tuple[float, dict[str, float]]:
        self.buf.append((t, x, angles))
        while self.buf[0][0] < t - (self.window_s if len(self.buf) > 3 else 3 * self.window_s):
            self.buf.popleft()  # (at least 3 samples, so a low frame rate still gets a median; never stale ones)
        if len(self.buf) < 3:
            return x, angles
        items = list(self.buf)[len(self.buf) % 2 == 0:]  # an odd count (the newest), so the median is a sample
        _, value, chosen = sorted(items, key=lambda item: item[1])[len(items) // 2]
        return value, chosen


class _Range:
    """Robust range (5th..95th percentile) of the effort over a rolling time window."""

    def __init__(self, window_s: float):
        self.window_s = window_s
        self.times: collections.deque[float] = collections.deque()
        self.values: collections.deque[float] = collections.deque()
        self._sorted: list[float] = []

    def add(self, t: float, e: float) -> None:
        self.times.append(t)
        self.values.append(e)
        bisect.insort(self._sorted, e)
        while self.times and self.times[0] < t - self.window_s:
            self.times.popleft()
            old = self.values.popleft()
            del self._sorted[bisect.bisect_left(self._sorted, old)]

    def bounds(self) -> tuple[float, float]:
        s = self._sorted
        if not s:
            return math.nan, math.nan
        return s[int(0.05 * (len(s) - 1))], s[int(round(0.95 * (len(s) - 1)))]


class RepCounter:
    """Feed `update(t, value, angles)` once per frame in time order; `cut(t)` at a camera cut; `finish()` at the
    end of the stream."""

    def __init__(self, counting: Counting):
        self.counting = counting
        self.reset()

    def reset(self) -> None:
        self.cycles: list[RepCycle] = []
        self.partials: list[tuple[float, float, str]] = []  # (start, end, why) of each partial rep
        self.largest_swing = 0.0  # the biggest rise from a low point seen (explains a zero)
        self.phase = "unknown"
        self.cuts: list[float] = []
        self._median = _Median(MEDIAN_S)
        self._range = _Range(self.counting.range_window_s)
        self._mode = "seek"  # "seek" (start of stream) | "rising" (from a low point) | "falling" (back from a rep)
        self._low: _Sample | None = None  # seek/falling: lowest effort so far; rising: the confirmed low point
        self._high: _Sample | None = None  # seek: highest so far; rising: the peak so far
        self._samples: list[_Sample] = []  # rising: the samples since the low point
        self._rest_before: list[_Sample] = []  # falling: samples since the last rep (the rest before the next)
        self._last: _Sample | None = None
        self._raw_last: tuple[float, float, dict[str, float]] | None = None
        self._first_t: float | None = None
        self._from_start = False
        self._first_seen: _Sample | None = None
        self._dip: _Sample | None = None

    @property
    def count(self) -> int:
        return len(self.cycles)

    @property
    def partial_reps(self) -> int:
        return len(self.partials)

    # ------------------------------------------------------------------------------------- helpers
    def _effort(self, value: float) -> float:
        return -value if self.counting.rest == "high" else value

    def swing_needed(self) -> float:
        lo, hi = self._range.bounds()
        rng = hi - lo if math.isfinite(lo) else 0.0
        return max(self.counting.min_amplitude, self.counting.relative_swing * rng)

    def _at_rest_posture(self, angles: dict[str, float]) -> bool:
        return all(g.passes(angles.get(g.angle, math.nan)) for g in self.counting.rest_requires)

    def _position(self, e: float) -> float | None:
        """Where effort e lies in the person's range in the window (0 rest .. 1 peak); None without a range."""
        lo, hi = self._range.bounds()
        if not (hi - lo >= self.counting.min_amplitude):
            return None
        return (e - lo) / (hi - lo)

    def _phase(self, e: float, angles: dict[str, float]) -> str:
        p = self._position(e)
        zone = "rest" if p is None or p <= REST_BELOW else "peak" if p >= PEAK_ABOVE else "transition"
        if zone == "rest" and not self._at_rest_posture(angles):
            return "transition"
        return zone

    def _partial(self, start: float, end: float, why: str) -> None:
        self.partials.append((start, end, why))

    # -------------------------------------------------------------------------------------- update
    def update(self, t: float, value: float | None, angles: dict[str, float] | None = None) -> RepCycle | None:
        """Feed one sample. Returns the RepCycle when this sample completes a rep."""
        angles = angles or {}
        if self._first_t is None:
            self._first_t = t  # the stream's start, seen or not: a person first found mid-movement began at rest
        if value is None or not math.isfinite(value):
            self.phase = "unknown"
            return None  # not visible: keep the state
        self._raw_last = (t, value, angles)
        return self._feed(t, *self._median(t, value, angles))

    def _feed(self, t: float, value: float, angles: dict[str, float]) -> RepCycle | None:
        e = self._effort(value)
        self._range.add(t, e)
        s = _Sample(t, e, value, angles)
        self._last = s
        self.phase = self._phase(e, angles)
        need = self.swing_needed()
        if self._mode == "seek":
            self._seek(s, need)
        elif self._mode == "falling":
            self._fall(s, need)
        else:
            return self._rise(s, need)
        return None

    def _keep_rest(self, s: _Sample) -> None:
        self._rest_before.append(s)
        if self._rest_before[0].t < s.t - REST_KEPT_S:
            self._rest_before = [x for x in self._rest_before if x.t >= s.t - REST_KEPT_S]

    def _seek(self, s: _Sample, need: float) -> None:
        if self._low is None:
            self._first_seen = s
        if self._low is None or s.e <= self._low.e:
            self._low = s
        if self._high is None or s.e > self._high.e:
            self._high = s
        self.largest_swing = max(self.largest_swing, self._high.e - self._low.e)
        self._keep_rest(s)
        if s.e - self._low.e >= need:  # rose from a low point: that was rest (or the clip began partway)
            self._start_rise(self._low, s)
        elif self._high.e - s.e >= need:  # the first movement is a return: the clip began inside a rep
            self._partial(self._first_t if self._first_t is not None else s.t, s.t, "already under way at the start")
            self._to_falling(s)

    def _fall(self, s: _Sample, need: float) -> None:
        self._keep_rest(s)
        self.largest_swing = max(self.largest_swing, s.e - self._low.e)
        if s.e < self._low.e:
            self._low = s
        elif s.e - self._low.e >= need:
            self._start_rise(self._low, s)

    def _to_falling(self, s: _Sample) -> None:
        self._mode, self._low, self._rest_before = "falling", s, [s]

    def _start_rise(self, low: _Sample, s: _Sample, samples: list[_Sample] | None = None) -> None:
        if samples is None:
            i = next((k for k, x in enumerate(self._rest_before) if x is low), None)
            samples = self._rest_before[i:] if i is not None else [low]
            self._rest_before = [x for x in self._rest_before if x.t < low.t]
        if samples[-1] is not s:
            samples.append(s)
        self._samples = samples
        # A rise from the very first sample of the stream may have begun partway into a rep: judged once the
        # rep's end shows where rest is.
        self._from_start = low is self._first_seen and low.t - self._first_t <= START_S
        self._mode, self._low, self._dip = "rising", low, None
        self._high = max(samples, key=lambda x: x.e)
        self.largest_swing = max(self.largest_swing, self._high.e - low.e)

    def _rise(self, s: _Sample, need: float) -> RepCycle | None:
        low = self._low
        self._samples.append(s)
        if s.e > self._high.e:
            # A fast bounce (skipping) can climb from its dip past the last peak within one frame: the dip
            # still ended that rep, before this sample becomes the new peak.
            if self._bounced(self._dip, s, self._high.e - low.e, need) and \
                    s.t - self._departure(self._high.e - low.e) <= self.counting.max_rep_s:
                return self._complete(self._departure(self._high.e - low.e), self._dip, next_rise=s)
            self._high, self._dip = s, None
        elif self._dip is None or s.e < self._dip.e - SETTLE_TOLERANCE * (self._high.e - low.e):
            self._dip = s  # the lowest point since the peak (ignoring jitter while it settles)
        swing = self._high.e - low.e
        self.largest_swing = max(self.largest_swing, swing)
        if swing < need:
            if s.e < low.e:  # still at rest, lower than before: the low point moves
                for x in self._samples[:-1]:
                    self._keep_rest(x)
                self._start_rise(s, s, [s])
            return None
        c, dip = self.counting, self._dip
        if s.t - low.t > c.max_rep_s and s.t - self._departure(swing) > c.max_rep_s:
            self._to_falling(s)  # away from rest far too long: not one rep
            return None
        if self._bounced(dip, s, swing, need):
            # The next rep began before a full return (bouncy movements such as skipping): the dip ended it.
            return self._complete(self._departure(swing), dip, next_rise=s)
        if dip is None or self._high.e - dip.e < need or not self._at_rest_posture(dip.angles):
            return None
        if self._back_at_rest(dip, swing) and s.t - dip.t >= SETTLE_S:
            # Back at rest and settled there: the rep ends where the return ended (full lockout).
            return self._complete(self._departure(swing), dip)
        return None

    def _bounced(self, dip: _Sample | None, s: _Sample, swing: float, need: float) -> bool:
        """The rep's return reached `dip` in the lower half of its swing, at a rest posture, and `s` already
        rises from it by a full swing: the next rep began before a full return."""
        return dip is not None and swing >= need and self._high.e - dip.e >= need and \
            self._at_rest_posture(dip.angles) and dip.e <= self._low.e + 0.5 * swing and s.e - dip.e >= need

    def _back_at_rest(self, x: _Sample, swing: float) -> bool:
        if self._from_start:  # where rest is shows only once the return has settled: judged in _complete
            return True
        return x.e <= self._low.e + (1.0 - self.counting.return_fraction) * swing

    def _complete(self, departed: float, end: _Sample, next_rise: _Sample | None = None) -> RepCycle | None:
        """Close the open rep at `end`: a cycle if it is plausible, else nothing (a partial for a rep the clip
        began inside). `next_rise`: the next rep is already rising from `end`."""
        started_partway = self._from_start and \
            (self._low.e - end.e) / max(self._high.e - end.e, 1e-9) > START_AT_REST
        cycle = None
        upto = self._samples.index(end)
        if started_partway:
            self._partial(departed, end.t, "already under way at the start")
        elif end.t - departed >= self.counting.min_rep_s:  # faster is a jump in the landmarks: forget it
            cycle = self._cycle(departed, end.t, upto=end)
            if self._from_start and departed - self._first_t < START_S:
                cycle = replace(cycle, edge="start")  # already moving as the clip began: may have begun before
        if cycle is not None:
            self.cycles.append(cycle)
        if next_rise is not None:
            self._rest_before = [x for x in self._samples[max(0, upto - 1):upto]]
            self._start_rise(end, next_rise, self._samples[upto:])
            self._from_start = False
        else:
            after = self._samples[upto + 1:]
            self._to_falling(end)
            for x in after:
                self._keep_rest(x)
        return cycle

    def _departure(self, swing: float) -> float:
        """When the effort last left the rest band before the peak."""
        band = self._low.e + (1.0 - self.counting.return_fraction) * swing
        t = self._samples[0].t
        for x in self._samples:
            if x is self._high:
                break
            if x.e <= band:
                t = x.t
        return t

    def _cycle(self, start: float, end: float, upto: _Sample) -> RepCycle:
        low, high = self._low, self._high
        i = self._samples.index(upto)
        # The movement: from leaving rest to the end of the return. Faults are judged on it, not on the
        # setup before the first rep.
        samples = [x for x in self._samples[:i + 1] if x.t >= start]
        return _make_cycle(samples, start, end, high, low.e, high.e - low.e, rise=high.e - low.e,
                           fall=high.e - upto.e)

    # ------------------------------------------------------------------------------------ camera cuts
    def cut(self, t: float) -> RepCycle | None:
        """A camera cut just before the sample at `t`: the median's delay is flushed and its window emptied, so
        no value mixes the two shots; the movement state carries over. Returns a rep this completes, if any."""
        done = self._flush_median() if self._mode != "finished" else None
        self._median = _Median(MEDIAN_S)
        self.cuts.append(t)
        return done

    # ------------------------------------------------------------------------------------- the end
    def _flush_median(self) -> RepCycle | None:
        """The median's delay: the shot's last value, repeated (edge padding)."""
        done = None
        if self._raw_last is not None:
            t, value, angles = self._raw_last
            for k in range(len(self._median.buf) // 2):
                done = self._feed(t + (k + 1) * 1e-3, *self._median(t, value, angles)) or done
            self._raw_last = None
        return done

    def finish(self) -> RepCycle | None:
        """End of stream: a rep still open is partial, unless `complete_at = "peak"` and it was held there.
        Returns the cycle this completes, if any."""
        if self._mode == "finished":
            return None
        done = self._flush_median()
        if self._mode == "rising" and self._last is not None:
            done = self._finish_open() or done
        self._mode = "finished"
        return done

    def _finish_open(self) -> RepCycle | None:
        c, last = self.counting, self._last
        swing = self._high.e - self._low.e
        if swing < self.swing_needed():
            return None
        departed = self._departure(swing)
        dip = self._dip
        if dip is not None and self._high.e - dip.e >= self.swing_needed() and self._back_at_rest(dip, swing) \
                and self._at_rest_posture(dip.angles):
            return self._complete(departed, dip)  # back at rest as the clip ended
        # Held at its peak when the clip ended: near the peak for the last hold_s (a rep on its way back down
        # as the clip ends was not held; it is partial).
        top = self._low.e + c.return_fraction * swing
        near = self._low.e + (c.return_fraction - 0.15) * swing
        reached = next((i for i, x in enumerate(self._samples) if x.e >= top), None)
        held = reached is not None and last.t - self._samples[reached].t >= c.hold_s and \
            all(x.e >= near for x in self._samples[reached:])
        if c.complete_at == "peak" and held and last.t - departed >= c.min_rep_s:
            cycle = replace(self._cycle(departed, last.t, upto=last), edge="end")
            self.cycles.append(cycle)
            return cycle
        self._partial(departed, last.t, "cut off at the end")
        return None


def _make_cycle(samples: list[_Sample], start: float, end: float, peak: _Sample, low_e: float, swing: float,
                rise: float, fall: float) -> RepCycle:
    """A RepCycle from its samples: every angle's extremes, the values near the peak, the primary's range."""
    extremes: dict[str, list[float]] = {}
    peak_values: dict[str, list[float]] = {}
    for x in samples:
        pos = (x.e - low_e) / swing if swing > 0 else 0.0
        for name, v in x.angles.items():
            if v != v:
                continue
            lo_hi = extremes.setdefault(name, [math.inf, -math.inf])
            lo_hi[0], lo_hi[1] = min(lo_hi[0], v), max(lo_hi[1], v)
            if pos >= PEAK_ABOVE:
                peak_values.setdefault(name, []).append(v)
    values = [x.value for x in samples]
    return RepCycle(start_s=start, end_s=end, peak_s=peak.t, primary_min=min(values), primary_max=max(values),
                    extremes={k: (v[0], v[1]) for k, v in extremes.items()}, peak_values=peak_values,
                    rise=rise, fall=fall)
