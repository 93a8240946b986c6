"""Reading the history: identical re-analyses folded into one result, and two sessions compared (what the
History page lists, charts and compares; the records come from store.history_record)."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.tempo import velocity_loss_pct
from ..core.types import RestSide
from .history_record import SessionRecord


# ------------------------------------------------------------------------------ reading the history
# Re-analysing the same upload stores another session (the history is a record of what was run), but a
# repeat with the same result tells the lifter nothing new: what the History page lists and charts is one
# row per distinct result, the newest kept, with the ids of the identical repeats. A repeat whose result
# differs (other rules, a new GymPose) stays its own row. Live sessions are never repeats of each other.

def result_key(rec: SessionRecord) -> tuple | None:
    """What makes two video analyses the same result: the same video file name and exercise, and the same
    counts and measurements. None for live sessions."""
    if rec.source != "video":
        return None
    pct = None if rec.frames_correct_pct is None else round(float(rec.frames_correct_pct), 1)
    depth = None if rec.avg_extreme is None else round(float(rec.avg_extreme), 1)
    return (rec.exercise, rec.name, rec.rep_count, rec.reps_correct, rec.partial_reps, pct, depth)


@dataclass(frozen=True)
class Distinct:
    """One distinct result: the newest session with it and the ids of its identical repeats (newest first)."""
    record: SessionRecord
    repeats: tuple[int, ...] = ()

    @property
    def times(self) -> int:
        return 1 + len(self.repeats)


def distinct_results(records: list[SessionRecord]) -> list[Distinct]:
    """Records (newest first, as list_sessions gives them) with identical video re-analyses folded into the
    newest one; order kept."""
    first: dict[tuple, int] = {}
    out: list[list] = []
    for r in records:
        k = result_key(r)
        if k is not None and k in first:
            out[first[k]][1].append(r.id)
            continue
        if k is not None:
            first[k] = len(out)
        out.append([r, []])
    return [Distinct(r, tuple(rep)) for r, rep in out]


@dataclass(frozen=True)
class Comparison:
    """One measure of two sessions, the earlier first: `change` = later - earlier (None when either is
    missing); `better` says whether the change is an improvement (None: no direction, or no change)."""
    measure: str
    earlier: float | None
    later: float | None
    unit: str
    change: float | None
    better: bool | None


def compare_sessions(a: SessionRecord, b: SessionRecord, rest: RestSide | str = RestSide.HIGH,
                     extreme_name: str = "depth", concentric: str = "") -> list[Comparison]:
    """Reps, % correct reps, % correct frames, depth (named `extreme_name`; left out when "") and rep time of
    two sessions, ordered earlier -> later, and with `concentric` (the rule's) the velocity loss of each set
    (from the records' reps: load them with HistoryStore.get). Depth improves downwards for exercises resting
    high (a squat's knees bend further) and upwards for those resting low; rep time and velocity loss have no
    better direction (tempo is a choice; how far to push a set is the coach's)."""
    earlier, later = sorted((a, b), key=lambda r: (r.created_at, r.id or 0))
    deeper_is_lower = str(rest) == RestSide.HIGH

    def row(measure, unit, get, higher_is_better):
        x, y = get(earlier), get(later)
        change = None if x is None or y is None else round(float(y) - float(x), 1)
        better = None if change in (None, 0) or higher_is_better is None else (change > 0) == higher_is_better
        return Comparison(measure, x, y, unit, change, better)

    rows = [
        row("reps", "", lambda r: r.rep_count, True),
        row("correct reps", "%", lambda r: r.reps_correct_pct, True),
        row("correct frames", "%", lambda r: r.frames_correct_pct, True),
        row(extreme_name, "°", lambda r: r.avg_extreme, not deeper_is_lower) if extreme_name else None,
        row("rep time", "s", lambda r: r.avg_rep_s, None),
        row("velocity loss", "%", lambda r: velocity_loss_pct(r.reps, concentric), None) if concentric else None,
    ]
    return [r for r in rows if r is not None]
