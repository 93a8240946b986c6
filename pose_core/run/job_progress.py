"""What a job's progress says beyond the frame count: the time left, from the rate measured in this stage, and
whether other programs are slowing it down (so the page can say so plainly instead of creeping in silence).

Busy means: the machine's load (1-minute average) is above its cores and this stage runs well below the best
rate it reached earlier in the stage, or the load is above twice the cores (the analysis alone accounts for
about one runnable task a core: twice as many means others want as much CPU as it does)."""

from __future__ import annotations

import collections
import os
import time

WINDOW_S = 4.0  # the rate is measured over the last this many seconds
# No estimate before the rate has been measured over this long. The first second of a chunked analysis runs at
# about half its rate (the second worker first estimates its lead-in, whose poses are not counted): measured
# over 1 s, squat_4's first estimate said 18.8 s left for 10.6; over 2 s, 12.3 for 9.6, then within 15%.
MIN_MEASURE_S = 2.0
SLOWER = 0.75  # a rate below this fraction of the stage's best so far is "slowed down"


class ProgressClock:
    """update(done, total) -> (eta_s or None, busy). `stage(name)` starts a new stage (its own rate)."""

    def __init__(self, clock=time.monotonic, loadavg=os.getloadavg, cores: int | None = None):
        self.clock, self.loadavg = clock, loadavg
        self.cores = cores or os.cpu_count() or 1
        self.stage()

    def stage(self, name: str = "") -> None:
        self.name = name
        self.samples: collections.deque = collections.deque()
        self.best = 0.0
        self.started = self.clock()

    def rate(self) -> float:
        """Frames a second over the last WINDOW_S (0.0 when not measured yet)."""
        if len(self.samples) < 2:
            return 0.0
        (t0, d0), (t1, d1) = self.samples[0], self.samples[-1]
        return (d1 - d0) / (t1 - t0) if t1 - t0 >= MIN_MEASURE_S and d1 > d0 else 0.0

    def update(self, done: int, total: int) -> tuple[float | None, bool]:
        now = self.clock()
        self.samples.append((now, done))
        while len(self.samples) > 2 and now - self.samples[1][0] >= WINDOW_S:
            self.samples.popleft()
        rate = self.rate()
        eta = round((total - done) / rate, 1) if rate > 0 and total > done else (0.0 if total and done >= total else None)
        busy = self.busy(rate)
        if now - self.started >= WINDOW_S:  # (a full window: the start-up's slow first frames are behind)
            self.best = max(self.best, rate)
        return eta, busy

    def busy(self, rate: float) -> bool:
        try:
            load = self.loadavg()[0]
        except OSError:
            return False
        if load <= self.cores:
            return False
        return load > 2 * self.cores or (self.best > 0 and 0 < rate < SLOWER * self.best)
