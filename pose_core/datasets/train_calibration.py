"""Calibration of the recogniser on real clips it did not train on, and the cross-validated report.

- The temperature minimises the class-balanced negative log-likelihood of the clips' labels (each class
  weighs the same, or 127 push-up clips would decide it), never below 1: real footage is never judged easier
  than the model thinks.
- "Not sure" and "not one of these" limits on the atypicality: the 95% quantile of the clips the model named
  rightly (the movements it should keep naming), and NONE_FACTOR times their 99% quantile. MIN_ACTIVITY and MIN_MOVEMENT are design
  constants: a clip most of whose windows say OTHER, or in which nothing moves, is not an exercise.
- The report (`cv_report`): for each fold, the calibration is fitted on the other folds' out-of-fold
  evidence and applied to this fold's, so no clip is reported with a calibration that saw it.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from .real_clips import NONE_LABEL
from ..recognition.decision import Calibration, Evidence, temper
from ..recognition.model import SURE_CONFIDENCE, ExerciseRecognizer, Recognition

MIN_ACTIVITY = 0.5
MIN_MOVEMENT = 0.04  # body sizes (decision.MOVEMENT_FEATURES): half the slowest real exercise clip's 0.08
UNSURE_QUANTILE, NONE_QUANTILE = 0.95, 0.99
# "Not one of these" only far beyond the unusual: three times the atypicality of the most unusual 1% of rightly
# named real clips. Closer to it rightly named clips filmed unusually are refused (at twice: 7 of Penn Action's
# 589 test clips, head-on push-ups with the hips hidden); the "not sure" cap already keeps an unknown movement
# (dips: 2 of 2 in the cross-validation) from being named as sure.
NONE_FACTOR = 3.0
BANDS = ((0.5, SURE_CONFIDENCE), (SURE_CONFIDENCE, 0.9), (0.9, 1.0001))


def fit_temperature(p: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None, lowest: float = 0.5) -> float:
    """The temperature (grid, lowest .. 10, log-spaced) minimising the weighted negative log-likelihood of the
    tempered probabilities p (n, C) of the true classes y."""
    w = np.ones(len(y)) if weight is None else np.asarray(weight, dtype=float)
    grid = np.exp(np.linspace(math.log(lowest), math.log(10.0), 80))
    nll = [-np.sum(w * np.log(np.clip(temper(p, t)[np.arange(len(y)), y], 1e-12, 1))) for t in grid]
    return float(grid[int(np.argmin(nll))])


def fit_calibration(evs: list[Evidence], labels: list[str]) -> Calibration:
    """The calibration from out-of-fold evidence of real clips with their labels (NONE_LABEL clips teach
    nothing here: they are what the limits are checked on)."""
    keep = [(e, lab) for e, lab in zip(evs, labels) if lab in e.exercises]
    if not keep:
        return Calibration(min_activity=MIN_ACTIVITY, min_movement=MIN_MOVEMENT)
    count = Counter(lab for _, lab in keep)
    p = np.stack([e.probs for e, _ in keep])
    y = np.array([e.exercises.index(lab) for e, lab in keep])
    temperature = fit_temperature(p, y, np.array([1.0 / count[lab] for _, lab in keep]), lowest=1.0)
    right = [e.atypical for e, lab in keep if e.exercises[int(np.argmax(e.probs))] == lab
             and e.activity >= MIN_ACTIVITY and not math.isnan(e.atypical)]
    if len(right) < 10:  # too few to say what is unusual
        return Calibration(temperature, MIN_ACTIVITY, min_movement=MIN_MOVEMENT)
    unsure, none = np.quantile(right, [UNSURE_QUANTILE, NONE_QUANTILE])
    return Calibration(temperature, MIN_ACTIVITY, float(unsure), NONE_FACTOR * float(none), min_movement=MIN_MOVEMENT)


@dataclass(frozen=True)
class Judged:
    """One real clip (or idle stretch) as answered in the cross-validation."""

    name: str
    folder: str
    label: str  # an exercise, or NONE_LABEL
    fold: int
    rec: Recognition

    @property
    def right(self) -> bool:
        """Named right; for a movement outside the exercises: not named as sure."""
        if self.label == NONE_LABEL:
            return not self.rec.sure
        return self.rec.exercise == self.label

    @property
    def confident_miss(self) -> bool:
        return self.rec.sure and self.rec.exercise != self.label

    def row(self) -> list:
        r = self.rec
        return [self.name, self.folder, self.label, self.fold, r.exercise, round(r.confidence, 3),
                r.outcome, self.right]


def cv_report(names: list[tuple[str, str, str]], folds: np.ndarray, evs: list[Evidence | None],
              recognizer: ExerciseRecognizer, calibrate_on: int | None = None) -> list[Judged]:
    """Each item (name, folder, label), in order, answered with the calibration fitted on the other folds'
    items (only the first `calibrate_on` items are fitted on: the clips, not idle stretches)."""
    n_fit = len(names) if calibrate_on is None else calibrate_on
    out: list[Judged | None] = [None] * len(names)
    for k in sorted(set(folds.tolist())):
        others = [(evs[i], names[i][2]) for i in range(n_fit) if folds[i] != k and evs[i] is not None]
        rec = ExerciseRecognizer(recognizer.model, calibration=fit_calibration([e for e, _ in others],
                                                                               [lab for _, lab in others]))
        for i in np.flatnonzero(folds == k):
            e = evs[i]
            answer = rec.decide(e) if e is not None else Recognition(None, 0.0, (), "no usable window",
                                                                      outcome="cannot_tell")
            out[i] = Judged(names[i][0], names[i][1], names[i][2], k, answer)
    return out  # type: ignore[return-value]


def reliability(judged: list[Judged]) -> list[dict]:
    """Per confidence band of the named clips: clips, right; then "cannot tell" and "not one of these"."""
    rows = []
    for lo, hi in BANDS:
        b = [j for j in judged if j.rec.exercise is not None and lo <= j.rec.confidence < hi]
        rows.append({"band": f"{lo:.0%}-{min(hi, 1.0):.0%}", "clips": len(b), "right": sum(j.right for j in b),
                     "mean_confidence": round(float(np.mean([j.rec.confidence for j in b])), 3) if b else None})
    for outcome, name in (("cannot_tell", "cannot tell"), ("none_of_these", "not one of these")):
        b = [j for j in judged if j.rec.exercise is None and j.rec.outcome == outcome]
        rows.append({"band": name, "clips": len(b), "right": sum(j.right for j in b), "mean_confidence": None})
    return rows


def summary(judged: list[Judged]) -> dict:
    """Right / confident misses per folder and per label, and the reliability table."""
    def block(js: list[Judged]) -> dict:
        return {"clips": len(js), "right": sum(j.right for j in js),
                "confident_misses": [[j.name, j.rec.exercise, round(j.rec.confidence, 3)] for j in js
                                     if j.confident_miss]}

    return {"per_folder": {f: block([j for j in judged if j.folder == f]) for f in sorted({j.folder for j in judged})},
            "per_label": {lab: block([j for j in judged if j.label == lab]) for lab in sorted({j.label for j in judged})},
            "all": block(judged), "reliability": reliability(judged)}
