"""From the windows' class probabilities to an answer: which exercise, how sure, or "not one of the 8".

The tree ensemble answers per window over the 8 exercises and OTHER (other sports, idle stretches before and
after a set, a posture held still, dips). A clip is judged from all its windows (`Evidence`):
- `activity`: the mean share of the exercises in the windows (1 - P(OTHER)). A clip whose windows mostly say
  OTHER is not one of the 8.
- `probs`: the windows' exercise probabilities summed and normalised, so that idle windows before and after
  a set do not dilute the answer of the windows that show it.
- `atypical`: how unlike the named exercise's training windows the clip's postures are. A class wins every
  window it is closest to, even a movement it has never seen (dips were named pull-up at 98-100%): a clip
  whose arms, legs or trunk sit far outside everything the class was trained on is not that exercise. Per
  body part, the mean squared robust z-score (capped) of its posture features against the class's nearest
  prototype; the worst part counts; the median over the windows that look like an exercise.

`Calibration` (model.json "calibration", fitted on real clips the model did not train on) turns the evidence
into the answer: the probabilities tempered; "not one of the 8" below MIN activity or above the atypicality
seen on 99% of rightly named real clips; "not sure" (confidence capped below the sure band) above the 95%.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .features import FEATURE_NAMES

OTHER = "other"
Z_CAP = 25.0  # one wild feature (a detector glitch) adds at most this to a body part's mean squared z-score
ACTIVE = 0.5  # a window "looks like an exercise" when its exercise share is at least this
# Posture features (mean and 10th / 90th percentile over a window) per body part, by per-frame feature name.
BODY_PARTS: dict[str, tuple[str, ...]] = {
    "arms": ("body_elbow", "body_wrist", "dir_upper_arm", "dir_forearm", "angle_elbow", "angle_shoulder",
             "elbow_", "wrist_", "spread_elbow", "spread_wrist"),
    "legs": ("body_knee", "body_ankle", "dir_thigh", "dir_shank", "angle_knee", "angle_hip", "knee_", "ankle_",
             "hip_", "spread_knee", "spread_ankle", "spread_hip"),
    "trunk": ("body_head", "dir_torso", "head_", "shoulder_", "spread_shoulder"),
}
POSTURE_STATS = ("mean", "p10", "p90")
# How much a window moves: the largest standard deviation of a joint's position (or of the body's centre), in
# body sizes. The slowest real exercise clip moves 0.08 (median over its windows: a slow push-up), a pose
# tracker on someone holding still 0.01-0.03.
MOVEMENT_FEATURES = tuple(FEATURE_NAMES.index(f"{j}_{c}:std") for j in ("head", "shoulder", "elbow", "wrist", "hip",
                                                                       "knee", "ankle") for c in "xy") + (
    FEATURE_NAMES.index("global_x:std"), FEATURE_NAMES.index("global_y:std"))


def posture_features() -> tuple[np.ndarray, np.ndarray]:
    """(feature indices, body part index of each) of the features atypicality is measured on."""
    idx, part = [], []
    for p, prefixes in enumerate(BODY_PARTS.values()):
        for i, n in enumerate(FEATURE_NAMES):
            base, _, stat = n.partition(":")
            if stat in POSTURE_STATS and base.startswith(prefixes):
                idx.append(i)
                part.append(p)
    return np.array(idx, dtype=int), np.array(part, dtype=int)


@dataclass(frozen=True, eq=False)
class Typical:
    """What the training windows of each class look like: a few prototypes per class (k-means centres of its
    windows' posture features: a class is filmed from several sides, with the hips hidden or not) and the
    class's robust spread per feature (the 10-90% range / 2.56, one standard deviation for a normal
    distribution). A window is as typical as its nearest prototype."""

    features: np.ndarray  # (K,) indices into FEATURE_NAMES
    part: np.ndarray  # (K,) body part of each feature
    centre: np.ndarray  # (C, P, K) prototypes per class of the model
    scale: np.ndarray  # (C, K)

    ARRAYS = ("features", "part", "centre", "scale")

    def window_scores(self, x: np.ndarray, cls: int) -> np.ndarray:
        """(n,) per window, against its nearest prototype of class `cls`: the worst body part's mean capped
        squared z-score (features a window lacks are left out; NaN when it has none)."""
        z = (x[:, None, self.features] - self.centre[cls][None]) / self.scale[cls]  # (n, P, K)
        z2 = np.minimum(z * z, Z_CAP)
        seen = ~np.isnan(z2)
        parts = []
        for p in range(int(self.part.max()) + 1):
            m = self.part == p
            n = seen[..., m].sum(axis=-1)
            s = np.where(seen[..., m], z2[..., m], 0.0).sum(axis=-1)
            parts.append(np.where(n > 0, s / np.maximum(n, 1), np.nan))
        worst = np.fmax.reduce(np.stack(parts), axis=0)  # (n, P): NaN only when no part is seen
        return np.fmin.reduce(worst, axis=1)


PROTOTYPES = 6  # per class


def fit_typical(x: np.ndarray, y: np.ndarray, n_classes: int, prototypes: int = PROTOTYPES,
                min_scale: float = 0.05, seed: int = 0) -> Typical:
    """Typical from training windows x (n, NUM_FEATURES) with class indices y: every training window of a
    class is a way the class looks, whatever its weight in the fit. Deterministic (k-means from `seed`)."""
    features, part = posture_features()
    k = features.size
    centre = np.zeros((n_classes, prototypes, k))
    scale = np.ones((n_classes, k))
    rng = np.random.default_rng(seed)
    for c in range(n_classes):
        xc = x[y == c][:, features]
        if not len(xc):
            continue
        ok = ~np.isnan(xc).all(axis=0)
        lo, med, hi = np.full((3, k), np.nan)
        lo[ok], med[ok], hi[ok] = np.nanpercentile(xc[:, ok], [10, 50, 90], axis=0)
        med = np.where(np.isnan(med), 0.0, med)
        scale[c] = np.maximum(np.where(np.isnan(hi - lo), 1.0, (hi - lo) / 2.56), min_scale)
        filled = np.where(np.isnan(xc), med, xc)  # a missing feature sits at the class's median
        centre[c] = _kmeans((filled - med) / scale[c], prototypes, rng) * scale[c] + med
    return Typical(features, part, centre, scale)


def _kmeans(z: np.ndarray, k: int, rng: np.random.Generator, iterations: int = 25) -> np.ndarray:
    """k centres of the rows of z (k-means++ start, Lloyd iterations); fewer rows than k: rows repeated."""
    if len(z) <= k:
        return z[np.arange(k) % len(z)]
    centres = [z[int(rng.integers(len(z)))]]
    for _ in range(k - 1):
        d = np.min([np.sum((z - c) ** 2, axis=1) for c in centres], axis=0)
        centres.append(z[int(rng.choice(len(z), p=d / d.sum()))] if d.sum() > 0 else z[int(rng.integers(len(z)))])
    centres = np.array(centres)
    for _ in range(iterations):
        label = np.argmin(((z[:, None, :] - centres[None]) ** 2).sum(axis=-1), axis=1)
        new = np.array([z[label == j].mean(axis=0) if np.any(label == j) else centres[j] for j in range(k)])
        if np.allclose(new, centres):
            break
        centres = new
    return centres


@dataclass(frozen=True)
class Evidence:
    """What a clip's windows say (see the module docstring); `probs` over `exercises`, not calibrated."""

    exercises: tuple[str, ...]
    probs: np.ndarray
    activity: float
    atypical: float  # of the top exercise; NaN when not measured
    windows: int
    movement: float = math.nan  # the median window's movement (MOVEMENT_FEATURES); NaN when not measured


def evidence(window_p: np.ndarray, classes: tuple[str, ...], x: np.ndarray | None = None,
             typical: Typical | None = None) -> Evidence:
    """A clip's evidence from its windows' probabilities (n, C) over `classes` (OTHER may be one of them) and,
    for the atypicality, their features x (n, NUM_FEATURES)."""
    ex = [i for i, c in enumerate(classes) if c != OTHER]
    pe = window_p[:, ex]
    share = pe.sum(axis=1)
    total = pe.sum(axis=0)
    probs = total / total.sum() if total.sum() > 0 else np.full(len(ex), 1.0 / len(ex))
    atypical = movement = math.nan
    if x is not None and len(x):
        m = x[:, MOVEMENT_FEATURES]
        per_window = np.where(np.isnan(m).all(axis=1), np.nan, np.nanmax(np.where(np.isnan(m), -np.inf, m), axis=1))
        if not np.isnan(per_window).all():
            movement = float(np.nanmedian(per_window))
    if typical is not None and x is not None and len(x):
        scores = typical.window_scores(x, ex[int(np.argmax(probs))])
        active = share >= ACTIVE
        vals = scores[active] if active.any() else scores
        vals = vals[~np.isnan(vals)]
        atypical = float(np.median(vals)) if vals.size else math.nan
    return Evidence(tuple(classes[i] for i in ex), probs, float(share.mean()), atypical, int(window_p.shape[0]),
                    movement)


def temper(p: np.ndarray, temperature: float) -> np.ndarray:
    """p ** (1 / temperature), renormalised (softmax of log p / temperature)."""
    if temperature == 1.0:
        return p
    z = np.log(np.clip(p, 1e-12, 1.0)) / temperature
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


NAMED, CANNOT_TELL, NONE_OF_THESE = "exercise", "cannot_tell", "none_of_these"


@dataclass(frozen=True)
class Calibration:
    """How evidence becomes an answer (model.json "calibration"; fitted by train_calibration).

    temperature: the exercise probabilities become p ** (1 / temperature), renormalised.
    min_activity: below it the clip is not one of the 8 (mostly OTHER windows); min_movement: below it nothing
    moves (MOVEMENT_FEATURES), which is no exercise either.
    none_atypical: above it not one of the 8; unsure_atypical: above it the confidence is capped at
    unsure_confidence (named, but not sure). NaN atypicality (no posture seen) is never over a limit."""

    temperature: float = 1.0
    min_activity: float = 0.0
    unsure_atypical: float = math.inf
    none_atypical: float = math.inf
    unsure_confidence: float = 0.6
    min_movement: float = 0.0

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError(f"calibration temperature must be positive, not {self.temperature!r}")
        if not (0 <= self.min_activity <= 1 and 0 < self.unsure_confidence < 1 and 0 <= self.min_movement < 1):
            raise ValueError("calibration: min_activity must lie in 0..1, unsure_confidence in (0, 1) and "
                             "min_movement in 0..1")
        if not self.unsure_atypical <= self.none_atypical:
            raise ValueError("calibration: unsure_atypical must not exceed none_atypical")

    @classmethod
    def from_dict(cls, d: dict) -> "Calibration":
        def num(key: str, default: float) -> float:
            v = d.get(key, default)
            if v is None:  # JSON has no infinity: a missing limit is written as null
                return math.inf
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                raise ValueError(f"calibration {key}: not a number: {v!r}")
            return float(v)

        return cls(num("temperature", 1.0), num("min_activity", 0.0), num("unsure_atypical", math.inf),
                   num("none_atypical", math.inf), num("unsure_confidence", 0.6), num("min_movement", 0.0))

    def to_dict(self) -> dict:
        fin = lambda v: None if math.isinf(v) else round(v, 4)  # noqa: E731
        return {"temperature": round(self.temperature, 4), "min_activity": round(self.min_activity, 4),
                "unsure_atypical": fin(self.unsure_atypical), "none_atypical": fin(self.none_atypical),
                "unsure_confidence": self.unsure_confidence, "min_movement": self.min_movement}

    def outcome(self, ev: Evidence) -> str:
        """NONE_OF_THESE when the evidence says the movement is none of the exercises, else NAMED (the
        confidence threshold for "cannot tell" is the recogniser's)."""
        if ev.movement < self.min_movement or ev.activity < self.min_activity or ev.atypical > self.none_atypical:
            return NONE_OF_THESE
        return NAMED

    def confidence(self, ev: Evidence, conf: float) -> float:
        """The named exercise's confidence, capped when its postures are unusual for it."""
        return min(conf, self.unsure_confidence) if ev.atypical > self.unsure_atypical else conf
