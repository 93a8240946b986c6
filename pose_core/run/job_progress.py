"""What a job's progress says beyond the frame count: the time left, from the rate measured in this stage, and
whether other programs are slowing it down (so the page can say so plainly instead of creeping in silence).

Busy means either:
- the processor's pressure (Linux PSI, /proc/pressure/cpu "some avg10": the share of the last 10 s in which a
  runnable task waited for a core) is at least PRESSURE_BUSY. An analysis alone keeps each core busy with one
  pose worker, so its own tasks seldom wait (~20% here, the page and the server's short bursts); beside two
  CPU-bound programs on two cores something always waits (~100%). It answers within seconds, where the
  1-minute load average (below) had not yet risen by the end of a 10 s clip analysed beside two such programs;
- or the machine's load (1-minute average) is above its cores and this stage runs well below the best rate it
  reached earlier in the stage, or the load is above twice the cores (the analysis alone accounts for about
  one runnable task a core: twice as many means others want as much CPU as it does)."""

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
PRESSURE_BUSY = 60.0  # % of the time a runnable task waited for a core (PSI "some avg10"): busy from here
PRESSURE_FILE = "/proc/pressure/cpu"


def cpu_pressure(path: str = PRESSURE_FILE) -> float | None:
    """PSI's "some avg10" for the CPU, in % (None where the kernel does not provide it)."""
    try:
        with open(path) as f:
            first = f.readline().split()
        return float(dict(kv.split("=", 1) for kv in first[1:])["avg10"]) if first and first[0] == "some" else None
    except (OSError, ValueError, KeyError):
        return None


class ProgressClock:
    """update(done, total) -> (eta_s or None, busy). `stage(name)` starts a new stage (its own rate)."""

    def __init__(self, clock=time.monotonic, loadavg=os.getloadavg, cores: int | None = None, pressure=cpu_pressure):
        self.clock, self.loadavg, self.pressure = clock, loadavg, pressure
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
        psi = self.pressure()
        if psi is not None and psi >= PRESSURE_BUSY:
            return True
        try:
            load = self.loadavg()[0]
        except OSError:
            return False
        if load <= self.cores:
            return False
        return load > 2 * self.cores or (self.best > 0 and 0 < rate < SLOWER * self.best)
