"""Real footage in the recogniser's training: folds grouped by source, window weights, and the out-of-fold
predictions that calibration and the reported figures are made from.

- Folds: every real clip's source group (`real_clips.source_groups`) goes whole into one of K folds (the
  largest groups first, each into the fold with the fewest clips so far). A clip is only ever predicted by
  a model that saw no clip of its source.
- Weights: Penn Action's windows weigh 1 each (per_class of them per class). A class's real windows weigh
  REAL_SHARE times that class's Penn windows in total, shared equally between its clips (so one long clip
  does not outweigh ten short ones) and within a clip between its windows, but never more than
  MAX_WINDOW_WEIGHT a window (a class with a single real clip must not be learnt from that clip alone).
  Real OTHER windows (idle stretches, dips) weigh MAX_WINDOW_WEIGHT each.
- Out-of-fold predictions: each clip's first PREDICT_SECONDS, windowed as the recogniser windows a file,
  through the model of the fold that left the clip's source out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .real_clips import OTHER, ClipWindows, Poses, RealClip
from ..recognition.features import pose_arrays, sequence_windows
from ..recognition.decision import Evidence, Typical, fit_typical
from ..recognition.model import ExerciseRecognizer, TreeEnsemble
from .train_trees import fit

FOLDS = 5
REAL_SHARE = 1.0
MAX_WINDOW_WEIGHT = 10.0
PREDICT_SECONDS = 20.0  # a file is recognised on its first 20 s (run.pipeline.RECOGNIZE_SECONDS)


def fold_assignment(clips: list[RealClip], k: int = FOLDS) -> np.ndarray:
    """The fold of each clip (0..k-1): whole source groups, largest first, each into the smallest fold."""
    sizes: dict[str, int] = {}
    for c in clips:
        sizes[c.source] = sizes.get(c.source, 0) + 1
    fold_of, load = {}, [0] * k
    for group in sorted(sizes, key=lambda g: (-sizes[g], g)):
        f = min(range(k), key=lambda i: (load[i], i))
        fold_of[group] = f
        load[f] += sizes[group]
    return np.array([fold_of[c.source] for c in clips], dtype=int)


def window_weights(windows: list[ClipWindows], per_class: int) -> list[np.ndarray]:
    """The weight of every window of every clip (see the module docstring)."""
    clips_of: dict[str, int] = {}
    for w in windows:
        for lab in set(w.labels) - {OTHER}:
            clips_of[lab] = clips_of.get(lab, 0) + 1
    out = []
    for w in windows:
        lab = np.array(w.labels, dtype=object)
        wt = np.full(len(lab), MAX_WINDOW_WEIGHT)
        for c in set(w.labels) - {OTHER}:
            m = lab == c
            wt[m] = min(MAX_WINDOW_WEIGHT, REAL_SHARE * per_class / clips_of[c] / int(m.sum()))
        out.append(wt)
    return out


def training_set(penn_x: np.ndarray, penn_y: np.ndarray, windows: list[ClipWindows], classes: tuple[str, ...],
                 per_class: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Penn windows (weight 1) and the given clips' real windows (weighted), as (x, y, weight)."""
    used = [w for w in windows if w.labels]
    if not used:
        return penn_x, penn_y, np.ones(len(penn_y))
    wts = window_weights(used, per_class)
    x = np.concatenate([penn_x] + [w.x for w in used])
    y = np.concatenate([penn_y] + [np.array([classes.index(lab) for lab in w.labels]) for w in used])
    return x, y, np.concatenate([np.ones(len(penn_y))] + wts)


def prediction_windows(clips: list[RealClip], poses_of: Callable[[Path], Poses],
                       seconds: float = PREDICT_SECONDS) -> list[np.ndarray]:
    """Each clip's window features as a file's recognition sees them (its first `seconds`); (0, F) when none."""
    out = []
    for c in clips:
        poses = [(t, p) for t, p in poses_of(c.path) if t <= seconds]
        feats = sequence_windows(*pose_arrays(p for _, p in poses))
        out.append(np.stack(feats) if feats else np.zeros((0, 0)))
    return out


@dataclass(frozen=True)
class FoldJob:
    x: np.ndarray
    y: np.ndarray
    weight: np.ndarray
    classes: tuple[str, ...]
    setting: tuple[int, int, float]
    seed: int


def _fit_job(job: FoldJob) -> TreeEnsemble:
    return fit(job.x, job.y, job.classes, *job.setting, job.seed, weight=job.weight)


def fit_all(jobs: list[FoldJob], workers: int = 1) -> list[TreeEnsemble]:
    """Fit the models of several training sets, `workers` at a time (each fit on one thread, so the trees
    do not depend on the number of workers)."""
    if workers <= 1 or len(jobs) <= 1:
        return [_fit_job(j) for j in jobs]
    from ..run.workers import map_in_order

    return map_in_order(_fit_job, [(j,) for j in jobs], min(workers, len(jobs)))


def fold_typicals(jobs: list[FoldJob], n_classes: int) -> list[Typical]:
    """The typical postures of each fold's training windows (for the atypicality of its held-out clips)."""
    return [fit_typical(j.x, j.y, n_classes) for j in jobs]


def out_of_fold_evidence(models: list[TreeEnsemble], typicals: list[Typical], folds: np.ndarray,
                         pred_windows: list[np.ndarray]) -> list[Evidence | None]:
    """Each clip's evidence by the model (and typical postures) of its fold (None: no usable window)."""
    out: list[Evidence | None] = []
    for f, x in zip(folds, pred_windows):
        rec = ExerciseRecognizer(models[f], typical=typicals[f])
        out.append(rec.evidence(x) if len(x) else None)
    return out
