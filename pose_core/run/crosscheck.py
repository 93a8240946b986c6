"""Recognition and counting check each other.

The recogniser looks at posture and motion; the counter knows what one repetition of each exercise is. A
recognised exercise under which the movement shows no complete repetition, while a close candidate's rule
finds a regular set of them, is most likely the wrong name (a back squat called clean and jerk, front-view
jumping jacks called pull-ups): `cross_check` counts the first seconds under the top candidates' rules and
says which one repeats. Cheap: the counting costs well under a millisecond a frame per candidate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from ..core.analysis import FrameAnalyzer
from ..core.rules import RuleSet
from ..core.types import PoseFrame

MIN_CANDIDATE_P = 0.10  # candidates less likely than this are not counted
MIN_REPEATS = 2  # "a regular set": at least this many complete repetitions in the recognised stretch


@dataclass(frozen=True)
class CrossCheck:
    """counts: complete reps per counted candidate (most likely first). `switch_to`: the candidate whose
    rule finds a set where the recognised one finds none (None when the recognition stands)."""

    recognised: str | None
    counts: dict[str, int] = field(default_factory=dict)
    switch_to: str | None = None

    @property
    def note(self) -> str:
        if self.switch_to is None or self.recognised is None:
            return ""
        return (f"The movement looked most like {self.recognised.replace('_', ' ')}, but it shows no complete "
                f"{self.recognised.replace('_', ' ')} repetition, while it repeats as {self.switch_to.replace('_', ' ')} "
                f"({self.counts[self.switch_to]} reps in the first seconds): analysed as "
                f"{self.switch_to.replace('_', ' ')}.")


def count_as(poses: Sequence[PoseFrame | None], exercise: str, rules: RuleSet) -> int:
    """Complete repetitions in `poses` (frames without a pose are skipped) counted with `exercise`'s rule."""
    an = FrameAnalyzer(rules[exercise], rules.defaults)
    for p in poses:
        if p is not None:
            an.process(p, p.timestamp_s)
    an.finish()
    return len(an.reps)


def cross_check(recognised: str | None, top: Sequence[tuple[str, float]], poses: Sequence[PoseFrame | None],
                rules: RuleSet) -> CrossCheck:
    """Count the recognised stretch under the recognised exercise and the other candidates at least
    MIN_CANDIDATE_P likely (when it cannot tell: under each such candidate, to say which of them repeats).
    When the recognised one finds no complete repetition and exactly one other candidate finds MIN_REPEATS
    or more, that one is the answer."""
    names = [n for n, p in top if p >= MIN_CANDIDATE_P and n in rules.exercises]
    if recognised is not None and recognised in rules.exercises and recognised not in names:
        names.insert(0, recognised)
    counts = {n: count_as(poses, n, rules) for n in names}
    if recognised is None or recognised not in counts or counts[recognised] > 0:
        return CrossCheck(recognised, counts)
    repeating = [n for n in names if n != recognised and counts[n] >= MIN_REPEATS]
    return CrossCheck(recognised, counts, repeating[0] if len(repeating) == 1 else None)
