"""Jitter removal.

`OneEuroFilter` (Casiez et al., CHI 2012) is causal: it smooths strongly when a signal is still and
little when it moves fast, so rep detection is not delayed noticeably. Used live and offline.
"""

from __future__ import annotations

import math

import numpy as np


def _alpha(cutoff_hz: float, dt: float) -> float:
    tau = 1.0 / (2 * math.pi * cutoff_hz)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Scalar one-euro filter over timestamped samples. NaN input yields NaN and leaves the state alone;
    a gap longer than `reset_after_s` restarts the filter (no smoothing across scene cuts)."""

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.05, d_cutoff: float = 1.0, reset_after_s: float = 0.5):
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError("min_cutoff and d_cutoff must be > 0 and beta >= 0")
        self.min_cutoff, self.beta, self.d_cutoff, self.reset_after_s = min_cutoff, beta, d_cutoff, reset_after_s
        self.reset()

    def reset(self) -> None:
        self._x: float | None = None
        self._dx = 0.0
        self._t: float | None = None

    def __call__(self, t: float, x: float) -> float:
        if x is None or not math.isfinite(x):
            return math.nan
        if self._x is None or self._t is None or t - self._t > self.reset_after_s or t <= self._t:
            if self._t is not None and t <= self._t and self._x is not None and t > self._t - 1e-9:
                return self._x  # duplicate timestamp: keep the last estimate
            self._x, self._dx, self._t = x, 0.0, t
            return x
        dt = t - self._t
        dx = (x - self._x) / dt
        self._dx = self._dx + _alpha(self.d_cutoff, dt) * (dx - self._dx)
        cutoff = self.min_cutoff + self.beta * abs(self._dx)
        self._x = self._x + _alpha(cutoff, dt) * (x - self._x)
        self._t = t
        return self._x


class AngleSmoother:
    """One one-euro filter per named signal."""

    def __init__(self, names, min_cutoff: float = 1.0, beta: float = 0.05, reset_after_s: float = 0.5):
        self._filters = {n: OneEuroFilter(min_cutoff, beta, reset_after_s=reset_after_s) for n in names}

    def __call__(self, t: float, values: dict[str, float]) -> dict[str, float]:
        return {n: (self._filters[n](t, v) if n in self._filters else v) for n, v in values.items()}

    def reset(self) -> None:
        for f in self._filters.values():
            f.reset()


class MovingBaseline:
    """Causal exponential moving average; `detrend(t, x)` returns x minus the slow baseline."""

    def __init__(self, time_constant_s: float):
        self.tc = time_constant_s
        self.reset()

    def reset(self) -> None:
        """Forget the baseline (a camera cut: the next shot's picture starts afresh)."""
        self._b: float | None = None
        self._t: float | None = None

    def detrend(self, t: float, x: float) -> float:
        if not math.isfinite(x):
            return math.nan
        if self._b is None or self._t is None or t <= self._t or t - self._t > 2 * self.tc:
            self._b, self._t = x, t
            return 0.0
        a = 1.0 - math.exp(-(t - self._t) / self.tc)
        self._b += a * (x - self._b)
        self._t = t
        return x - self._b


class FallbackSignal:
    """Stands in for a hidden primary signal with a correlated one (hip height for the squat's knee, wrist
    height for a press). Causal: while both are seen, a linear map fallback -> primary is fitted with
    exponential forgetting (time constant `memory_s`); while only the fallback is seen, its mapped value is
    returned, provided the two were strongly correlated (|r| >= min_r) recently."""

    def __init__(self, memory_s: float = 10.0, min_r: float = 0.8, min_pairs: int = 15):
        self.memory_s, self.min_r, self.min_pairs = memory_s, min_r, min_pairs
        self.reset()

    def reset(self) -> None:
        self._s = np.zeros(6)  # weights: n, x, y, xx, yy, xy
        self._pairs = 0
        self._t: float | None = None

    def __call__(self, t: float, primary: float, fallback: float) -> float:
        """The primary value, or the fallback mapped onto it when the primary is hidden (NaN if neither)."""
        if self._t is not None and t > self._t:
            self._s *= math.exp(-(t - self._t) / self.memory_s)
        self._t = t
        if math.isfinite(primary):
            if math.isfinite(fallback):
                x, y = fallback, primary
                self._s += (1.0, x, y, x * x, y * y, x * y)
                self._pairs += 1
            return primary
        if not math.isfinite(fallback) or self._pairs < self.min_pairs:
            return math.nan
        n, sx, sy, sxx, syy, sxy = self._s
        vx, vy, cxy = sxx - sx * sx / n, syy - sy * sy / n, sxy - sx * sy / n
        if vx <= 1e-9 or vy <= 1e-9 or abs(cxy) / math.sqrt(vx * vy) < self.min_r:
            return math.nan
        slope = cxy / vx
        return sy / n + slope * (fallback - sx / n)
