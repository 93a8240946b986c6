"""Recognition and counting check each other.

The recogniser looks at posture and motion; the counter knows what one repetition of each exercise is and
the rules say how its reps are timed (`typical_rep_s`, `max_reps_per_minute` in exercises.toml). `cross_check`
counts the recognised stretch under the recognised exercise and its close candidates and looks for a
contradiction, also when the name is confident:
- no complete repetition of the recognised exercise: when exactly one other candidate repeats
  (MIN_REPEATS), that one is the answer (a back squat called clean and jerk, front-view jumping jacks called
  pull-ups); otherwise the name stands, not sure;
- the recognised exercise's reps are timed unlike it: a clean and jerk that "repeats" 3 times in 20 s, a
  sit-up whose reps take 8 s each;
- another candidate counts at least twice as many reps, timed as that exercise is timed (a bench press
  filmed from an orbiting camera named sit-up, with 3 reps for 6).
A contradicted name is kept but shown as not sure (CONTRADICTED_CONFIDENCE) with the alternative named.
Cheap: counting costs well under a millisecond a frame per candidate.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

from ..core.analysis import FrameAnalyzer
from ..core.rules import Counting, RuleSet
from ..core.types import PoseFrame, RepEvent
from .errors import CannotTellError

MIN_CANDIDATE_P = 0.10  # candidates less likely than this are not counted
MIN_REPEATS = 2  # "a regular set": at least this many complete repetitions in the recognised stretch
CONTRADICTED_CONFIDENCE = 0.6  # a name counting contradicts is shown at most this sure (below the sure band)


def _said(name: str) -> str:
    return name.replace("_", " ")


@dataclass(frozen=True)
class CrossCheck:
    """counts: complete reps per counted candidate (most likely first). `switch_to`: the candidate whose
    rule finds a set where the recognised one finds none. `contradiction`: why the reps contradict the
    recognised name ("" when they do not), `alternative`: a candidate whose reps fit (or None)."""

    recognised: str | None
    counts: dict[str, int] = field(default_factory=dict)
    switch_to: str | None = None
    contradiction: str = ""
    alternative: str | None = None

    @property
    def note(self) -> str:
        if self.recognised is None:
            return ""
        name = _said(self.recognised)
        if self.switch_to is not None:
            return (f"The movement looked most like {name}, but it shows no complete {name} repetition, while it "
                    f"repeats as {_said(self.switch_to)} ({self.counts[self.switch_to]} reps in the first seconds): "
                    f"analysed as {_said(self.switch_to)}.")
        if self.contradiction:
            alt = (f" It may be {_said(self.alternative)} ({self.counts[self.alternative]} "
                   f"rep{'s' if self.counts[self.alternative] != 1 else ''} counted as that)." if self.alternative else "")
            return f"Not sure this is {name}: {self.contradiction}.{alt}"
        return ""


def reps_as(poses: Sequence[PoseFrame | None], exercise: str, rules: RuleSet) -> list[RepEvent]:
    """Complete repetitions in `poses` (frames without a pose are skipped) counted with `exercise`'s rule."""
    an = FrameAnalyzer(rules[exercise], rules.defaults)
    for p in poses:
        if p is not None:
            an.process(p, p.timestamp_s)
    an.finish()
    return list(an.reps)


def count_as(poses: Sequence[PoseFrame | None], exercise: str, rules: RuleSet) -> int:
    return len(reps_as(poses, exercise, rules))


def timing_misfit(reps: list[RepEvent], counting: Counting, name: str) -> str:
    """Why these reps are not timed as the exercise's are ("" when they are, or there are none)."""
    if not reps:
        return ""
    if len(reps) >= 2:
        span = reps[-1].start_s - reps[0].start_s
        per_minute = (len(reps) - 1) / span * 60 if span > 0 else float("inf")
        if per_minute > counting.max_reps_per_minute:
            return (f"it repeats {len(reps)} times in {reps[-1].end_s - reps[0].start_s:.0f} s, faster than a "
                    f"{_said(name)} set goes (at most {counting.max_reps_per_minute:g} a minute)")
    typical = statistics.median(r.duration_s for r in reps)
    lo, hi = counting.typical_rep_s
    if not lo <= typical <= hi:
        return (f"its reps take {typical:.1f} s, where a {_said(name)} rep takes {lo:g}-{hi:g} s")
    return ""


def cross_check(recognised: str | None, top: Sequence[tuple[str, float]], poses: Sequence[PoseFrame | None],
                rules: RuleSet) -> CrossCheck:
    """Count the recognised stretch under the recognised exercise and the other candidates at least
    MIN_CANDIDATE_P likely (when it cannot tell: under each such candidate, to say which of them repeats),
    and look for a contradiction (see the module docstring)."""
    names = [n for n, p in top if p >= MIN_CANDIDATE_P and n in rules.exercises]
    if recognised is not None and recognised in rules.exercises and recognised not in names:
        names.insert(0, recognised)
    reps = {n: reps_as(poses, n, rules) for n in names}
    counts = {n: len(r) for n, r in reps.items()}
    if recognised is None or recognised not in counts:
        return CrossCheck(recognised, counts)
    fitting = [n for n in names if n != recognised and counts[n] >= 1
               and not timing_misfit(reps[n], rules[n].counting, n)]
    if counts[recognised] == 0:
        repeating = [n for n in names if n != recognised and counts[n] >= MIN_REPEATS]
        if len(repeating) == 1:
            return CrossCheck(recognised, counts, repeating[0])
        return CrossCheck(recognised, counts, None, f"no complete {_said(recognised)} repetition was counted",
                          fitting[0] if fitting else None)
    why = timing_misfit(reps[recognised], rules[recognised].counting, recognised)
    more = [n for n in fitting if counts[n] >= max(MIN_REPEATS * 2, 2 * counts[recognised])]
    if not why and more:
        why = (f"it repeats {counts[more[0]]} times as {_said(more[0])}, but only {counts[recognised]} "
               f"time{'s' if counts[recognised] != 1 else ''} as {_said(recognised)}")
    if why:
        alternative = more[0] if more else (fitting[0] if fitting else None)
        return CrossCheck(recognised, counts, None, why, alternative)
    return CrossCheck(recognised, counts)


def checked(rec, poses: Sequence[PoseFrame | None], rules: RuleSet):
    """(the Recognition as counting leaves it, the CrossCheck): switched to the candidate that repeats, or the
    same name at most CONTRADICTED_CONFIDENCE sure when the reps contradict it, or unchanged."""
    xc = cross_check(rec.exercise, rec.top, poses, rules)
    if rec.exercise is None:
        return rec, xc
    if xc.switch_to is not None:
        return replace(rec, exercise=xc.switch_to, confidence=dict(rec.top)[xc.switch_to]), xc
    if xc.contradiction:
        lowered = min(rec.confidence, CONTRADICTED_CONFIDENCE)
        return replace(rec, confidence=lowered, top=((rec.exercise, lowered),) + tuple(rec.top[1:])), xc
    return rec, xc


def decide_exercise(video: str | Path, rec, poses: list, rules: RuleSet) -> tuple[str, dict, list[str]]:
    """The exercise to analyse as, the summary's recognition fields and notes. Recognition and counting check
    each other (`crosscheck.checked`): a recognised exercise that shows no complete repetition gives way to
    the one close candidate that repeats; reps that contradict the name (timed unlike it, or another
    candidate repeating twice as often) leave the name but not sure, with the alternative in a note.
    Raises CannotTellError when nothing is named ("cannot tell" or "not one of the exercises")."""
    final, xc = checked(rec, poses, rules)
    if final.exercise is None:
        what = "not one of the exercises: " if rec.none_of_these else "cannot tell which exercise this is: "
        raise CannotTellError(f"{video}: {what}{rec.why_not}", rec, xc.counts)
    extra = {"exercise_auto": True, "exercise_confidence": round(final.confidence, 3),
             "exercise_candidates": [[n, round(p, 3)] for n, p in rec.top]}
    return final.exercise, extra, [xc.note] if xc.note else []
