"""Rep timing, one definition for every page, file and report.

- **Rep time**: the movement, from leaving rest to being back at rest (`RepEvent.duration_s`, which is
  down + up); pauses at rest between reps are not part of it.
- **Lifting (concentric) time**: the half of the rep that lifts the load, which the rules name per exercise
  (`counting.concentric`: "to_peak", a pull-up pulling up; "from_peak", a squat standing up).
- **Velocity loss** of a set, as velocity-based training uses it: 1 - v_slowest / v_fastest in %, with each
  rep's lifting velocity taken as 1 / its lifting time (the same range of motion every rep), so
  loss = 1 - t_fastest / t_slowest. 0% means no slowdown; 20-30% is where coaches often end a strength set.
  Times come from the frames, so a 30 fps video resolves a 0.5 s lift to about 7%.
"""

from __future__ import annotations

import math
from typing import Iterable

from .types import RepEvent

# A lifting time this short is a counting artefact, not a lift (one or two frames): it is not compared.
MIN_CONCENTRIC_S = 0.05


def rep_time_s(rep: RepEvent) -> float:
    return rep.duration_s


def avg_rep_time_s(reps: Iterable[RepEvent]) -> float | None:
    """The mean rep time (the movement) of the reps, None without any."""
    times = [rep_time_s(r) for r in reps]
    return round(sum(times) / len(times), 2) if times else None


def concentric_s(rep: RepEvent, concentric: str) -> float | None:
    """The rep's lifting time in seconds; None when the exercise has no concentric phase ("")."""
    if concentric == "to_peak":
        return rep.down_s
    if concentric == "from_peak":
        return rep.up_s
    return None


def velocity_loss_pct(reps: Iterable[RepEvent], concentric: str) -> float | None:
    """The set's velocity loss in % (see the module's docstring); None with fewer than two comparable reps
    or without a concentric phase."""
    times = [t for t in (concentric_s(r, concentric) for r in reps)
             if t is not None and math.isfinite(t) and t >= MIN_CONCENTRIC_S]
    if len(times) < 2:
        return None
    return round(100.0 * (1.0 - min(times) / max(times)), 1)
