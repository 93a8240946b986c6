"""Train the exercise recogniser on Penn Action (8 gym classes) and write a small, pickle-free model.

    python -m pose_core.datasets.train_recognizer --penn ../shared/data/penn_action --out pose_core/datasets/recognizer --seed 0

- Training data: the official TRAIN split (train == 1) only. Each clip goes through the same code path as
  a MediaPipe detection (Penn joints -> PoseFrame -> 13 joints -> features), after augmentation that
  imitates what a detector on real video does differently from hand annotations (`augment`).
- Model: gradient-boosted trees (sklearn's HistGradientBoostingClassifier), exported to plain arrays
  (`recognition.TreeEnsemble`); the exported model is checked against sklearn's probabilities.
- Model selection: a validation set of whole clips (20 % of each class's TRAIN clips, grouped by clip)
  picks the tree size and boosting length; the chosen setting is then refitted on all TRAIN clips.
- Reporting: the official TEST split (train == -1) is evaluated once with the final model, for
  metrics.json only; nothing is chosen on it.
- Same seed, same data -> the same weights and metrics (numpy Generator + sklearn random_state).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .penn import GYM_CLASSES, clip_pose_frames, scan_dataset
from .recognition.features import (ARM_FEATURES, FEATURE_NAMES, HEAD, LAN, LEL, LHIP, LKN, LSH, LWR, MIN_VISIBILITY,
                                   RAN, REL, RHIP, RKN, RSH, RWR, WINDOW_S, body_scale, impute_torso, mid_point,
                                   pose_arrays, resample, window_features)
from .recognition.model import ExerciseRecognizer, TreeEnsemble

JOINT_INDEX = {"shoulder": (LSH, RSH), "elbow": (LEL, REL), "wrist": (LWR, RWR), "hip": (LHIP, RHIP),
               "knee": (LKN, RKN), "ankle": (LAN, RAN)}
PAIRS = ((LSH, RSH), (LEL, REL), (LWR, RWR), (LHIP, RHIP), (LKN, RKN), (LAN, RAN))
PARTNER = {a: b for a, b in PAIRS} | {b: a for a, b in PAIRS}
LIMBS = ((LEL, LWR), (REL, RWR), (LKN, LAN), (RKN, RAN), (LAN, RAN), (LWR, RWR))


@dataclass(frozen=True)
class LabelledClip:
    """One Penn clip as joint arrays (what the recogniser sees), with its label and view."""

    id: str
    action: str
    view: str
    t: np.ndarray
    xy: np.ndarray  # (N, 13, 2) pixels
    vis: np.ndarray  # (N, 13)
    size: tuple[int, int]


def load_sequences(penn_root: str | Path, split: str, limit_per_class: int | None = None) -> list[LabelledClip]:
    """Penn clips of the gym classes as joint arrays, through PoseFrame (the same path as MediaPipe)."""
    scan = scan_dataset(penn_root, GYM_CLASSES, split=split)
    if scan.errors:
        for p, msg in scan.errors:
            print(f"warning: skipped {p}: {msg}", file=sys.stderr)
    out, per = [], {}
    for c in scan.clips:
        if limit_per_class is not None and per.get(c.action, 0) >= limit_per_class:
            continue
        per[c.action] = per.get(c.action, 0) + 1
        t, xy, vis = pose_arrays(clip_pose_frames(c))
        out.append(LabelledClip(c.id, c.action, c.view, t, xy, vis, c.image_size))
    return out


# ------------------------------------------------------------------------------------ augmentation

# Arm postures for exercises whose arms do not make the movement, as (upper arm, forearm) directions in
# the body's frame (up along the torso, forward out of the chest, outward to the arm's side). Penn Action's
# squats are almost all barbell back squats (median elbow angle 30 deg); real squats are often done with
# the arms forward, crossed, on the hips or swinging, and sit-ups with the hands behind the head, crossed
# or reaching. Without this the model learns "squat = hands at the shoulders".
ARM_POSTURES: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "barbell_back": ((-0.3, -0.3, 0.9), (0.9, -0.2, 0.3)),
    "forward": ((0.0, 1.0, 0.1), (0.0, 1.0, 0.0)),
    "hanging": ((-1.0, 0.1, 0.1), (-1.0, 0.2, 0.0)),
    "hands_on_hips": ((-0.7, -0.2, 0.7), (-0.4, 0.3, -0.85)),
    "crossed_on_chest": ((-0.9, 0.4, 0.1), (0.6, 0.4, -0.7)),
    "behind_head": ((0.5, 0.0, 0.85), (0.4, -0.2, -0.9)),
    "front_rack": ((-0.5, 0.85, 0.1), (0.9, 0.3, -0.3)),
    "overhead": ((1.0, 0.1, 0.2), (1.0, 0.0, 0.0)),
}
ARM_FREE_EXERCISES = {"squat": 0.5, "situp": 0.3}  # exercise -> share of windows with synthetic arms
VIEW_FORESHORTENING = {"front": 0.25, "back": 0.25}  # |forward| seen in the image; side views see it fully


def _rotate_dir(rng: np.random.Generator, d, sd_deg: float) -> np.ndarray:
    v = np.asarray(d, dtype=float) + rng.normal(0, math.radians(sd_deg), 3)
    return v / np.linalg.norm(v)


def synthesise_arms(rng: np.random.Generator, xy: np.ndarray, vis: np.ndarray, view: str, scale: float,
                    posture: str | None = None, frames: np.ndarray | None = None) -> None:
    """Replace both arms (in place) by a random posture (or the named one), projected with the clip's
    coarse view, held with a slow sway, or (random posture only) swinging between two postures with the
    depth of the movement. frames: only these frames are replaced (default all)."""
    p, _, _ = impute_torso(np.where(vis[..., None] > 0, xy, np.nan) * [1, -1])  # y up for the maths
    mid_sh = mid_point(p[:, LSH], p[:, RSH])
    mid_hip = mid_point(p[:, LHIP], p[:, RHIP])
    up = mid_sh - mid_hip
    nrm = np.linalg.norm(up, axis=1, keepdims=True)
    good = (nrm[:, 0] > 1e-6) & ~np.isnan(nrm[:, 0])
    if good.mean() < 0.5:
        return
    up[~good] = np.nanmean(up[good], axis=0)
    up /= np.linalg.norm(up, axis=1, keepdims=True)
    perp = np.stack([up[:, 1], -up[:, 0]], axis=1)  # image direction perpendicular to the torso
    knee = np.nanmean(np.where(vis[:, [LKN, RKN], None] > 0, xy[:, [LKN, RKN]], np.nan) * [1, -1], axis=1)
    facing = np.nansum((knee - mid_hip) * perp)
    facing = 1.0 if not facing < 0 else -1.0  # the knees bend towards the front
    k_fwd = VIEW_FORESHORTENING.get(view, 1.0)
    k_lat = math.sqrt(max(0.0, 1 - k_fwd ** 2))
    names = list(ARM_POSTURES)
    a = ARM_POSTURES[posture or names[rng.integers(len(names))]]
    b = ARM_POSTURES[names[rng.integers(len(names))]] if posture is None and rng.random() < 0.5 else a
    n = xy.shape[0]
    if b is a:
        w = np.zeros(n)
    else:  # swing with the movement's depth (hip height in the torso frame)
        h = np.sum(mid_hip * up, axis=1)
        h = np.where(np.isnan(h), np.nanmean(h), h)
        w = (h.max() - h) / max(float(np.ptp(h)), 1e-6)
    sway = np.cumsum(rng.normal(0, 0.03, (n, 1)), axis=0)
    lengths = scale * np.array([0.53, 0.48]) * rng.uniform(0.9, 1.1, 2)
    for side, (sh, el, wr) in ((1.0, (LSH, LEL, LWR)), (-1.0, (RSH, REL, RWR))):
        start = p[:, sh] if not np.isnan(p[:, sh]).all() else mid_sh
        start = np.where(np.isnan(start), mid_sh, start)
        pts = [start]
        for seg in range(2):
            da, db = _rotate_dir(rng, a[seg], 12), _rotate_dir(rng, b[seg], 12)
            d3 = (1 - w)[:, None] * da + w[:, None] * db
            d3[:, 1] += sway[:, 0]
            img = (d3[:, :1] * up + facing * k_fwd * d3[:, 1:2] * perp
                   + side * facing * k_lat * d3[:, 2:3] * perp)
            pts.append(pts[-1] + lengths[seg] * img)
        sel = slice(None) if frames is None else frames
        xy[sel, el] = (pts[1] * [1, -1])[sel]
        xy[sel, wr] = (pts[2] * [1, -1])[sel]
        vis[sel, el] = 1.0
        vis[sel, wr] = 1.0


def tracker_noise(rng: np.random.Generator, t: np.ndarray, shape: tuple, sd: float) -> np.ndarray:
    """Joint noise like a video pose tracker's: correlated over ~0.05-0.25 s (measured on MediaPipe
    tracks of still ankles: 0.02-0.04 torso lengths, autocorrelation ~0.8 at 1/15 s), so that the
    median filter and the 15 Hz resampling do not simply remove it."""
    white = rng.normal(0, 1, shape)
    n = shape[0]
    if n < 3:
        return white * sd
    dt = float(np.median(np.diff(t))) if n > 1 else 1 / 30
    width = rng.uniform(0.05, 0.25) / max(dt, 1e-3)  # kernel sigma in frames
    k = np.arange(-int(3 * width) - 1, int(3 * width) + 2)
    kernel = np.exp(-0.5 * (k / width) ** 2)
    kernel /= np.sqrt(np.sum(kernel ** 2))  # keeps unit variance
    padded = np.concatenate([white[::-1][-len(k):], white, white[::-1][:len(k)]]) if n > len(k) else white
    if padded is white:
        return white * sd
    out = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="same"), 0, padded)[len(k):len(k) + n]
    return out * sd


def augment(rng: np.random.Generator, s: LabelledClip, window_s: float = WINDOW_S) -> tuple[np.ndarray, ...]:
    """One randomly perturbed window of a clip: (t, xy, vis), imitating a pose tracker on real video.

    Time: speed x0.7..1.4, a random crop (half the time exactly the prediction window, else 0.6 s up to
    it), dropped frames and short bursts without a pose.
    Body: other arm postures for exercises whose arms do not matter (ARM_FREE_EXERCISES); arms falling back
    to hanging while the detector loses them; hidden joints revealed where a detector would put them;
    limb proportions; joint placement (narrower hips, nose vs head centre); correlated tracker noise
    (heavier on some joints); a wandering occluded limb; one-frame glitches; missing joints, limbs and
    whole joint groups.
    Camera: mirror, roll (+-~6 deg), aspect (0.85..1.15), distance."""
    t, xy, vis = s.t.copy(), s.xy.copy(), s.vis.copy()
    w, h = s.size
    # time
    t = t / math.exp(rng.uniform(math.log(0.7), math.log(1.4)))
    length = window_s if rng.random() < 0.5 else rng.uniform(0.6, window_s)
    if t[-1] - t[0] > length:
        t0 = rng.uniform(t[0], t[-1] - length)
        keep = (t >= t0) & (t <= t0 + length)
        t, xy, vis = t[keep], xy[keep], vis[keep]
    n = t.size
    keep = rng.random(n) >= rng.uniform(0.0, 0.25)
    if rng.random() < 0.3 and n > 10:
        b0 = rng.integers(0, n)
        keep[b0:b0 + rng.integers(1, max(2, int(0.2 * n)))] = False
    if keep.sum() < 10:
        keep[:] = True
    t, xy, vis = t[keep], xy[keep], vis[keep]
    n = t.size

    vis = (vis >= MIN_VISIBILITY).astype(np.float64)
    scale = body_scale(np.where(vis[..., None] > 0, xy, np.nan))
    if not scale > 0:
        scale = 0.3 * h
    if rng.random() < ARM_FREE_EXERCISES.get(s.action, 0.0):
        synthesise_arms(rng, xy, vis, s.view, scale)
    elif rng.random() < 0.12:
        # A detector that loses the arms (behind a barbell, plates, the body) falls back to its prior,
        # arms hanging at the sides, for a stretch of frames or whenever the body is up.
        if rng.random() < 0.5:
            height = -np.nanmean(np.where(vis[:, [LHIP, RHIP], None] > 0, xy[:, [LHIP, RHIP]], np.nan), axis=1)[:, 1]
            height = np.where(np.isnan(height), np.nanmedian(height) if np.isfinite(height).any() else 0, height)
            frames = height >= np.median(height)
        else:
            frames = np.zeros(n, dtype=bool)
            a0 = int(rng.integers(0, n))
            frames[a0:a0 + int(rng.uniform(0.3, 0.7) * n)] = True
        synthesise_arms(rng, xy, vis, s.view, scale, posture="hanging", frames=frames)
    # Annotators mark hidden joints invisible; a detector always places them. Hidden far-side joints go
    # near their visible partner (a per-window offset plus per-frame jitter); hidden pairs of shoulders
    # or hips go where the torso rule puts them, spread apart as the view shows them.
    p_ghost = rng.choice([0.0, 0.5, 1.0])
    if p_ghost > 0:
        offset = rng.normal(0, 0.08 * scale, 2)
        jitter = rng.uniform(0.01, 0.06) * scale
        for j, k in PARTNER.items():
            ghost = (vis[:, j] == 0) & (vis[:, k] > 0) & (rng.random(n) < p_ghost)
            xy[ghost, j] = xy[ghost, k] + offset + rng.normal(0, jitter, (int(ghost.sum()), 2))
            vis[ghost, j] = 1.0
    if rng.random() < 0.5:
        filled, fill_sh, fill_hip = impute_torso(np.where(vis[..., None] > 0, xy, np.nan))
        half = 0.5 * scale * (rng.uniform(0.35, 0.6) if s.view in ("front", "back") else rng.uniform(0.0, 0.3))
        for (a, b), fill in (((LSH, RSH), fill_sh), ((LHIP, RHIP), fill_hip)):
            if not fill.any():
                continue
            up = mid_point(filled[:, LSH], filled[:, RSH]) - mid_point(filled[:, LHIP], filled[:, RHIP])
            perp = np.stack([up[:, 1], -up[:, 0]], axis=1) / np.maximum(np.linalg.norm(up, axis=1, keepdims=True), 1e-9)
            perp = np.where(np.isnan(perp), [1.0, 0.0], perp)
            xy[fill, a] = filled[fill, a] + half * perp[fill]
            xy[fill, b] = filled[fill, b] - half * perp[fill]
            vis[fill, a] = vis[fill, b] = 1.0
    # Limb proportions: people differ, and a detector's knees, ankles and wrists sit elsewhere on the
    # limb than an annotator's (MediaPipe shanks measure 0.75-0.9 torso lengths on our clips, Penn's 0.68).
    # Each distal joint moves along its segment; what hangs below it moves along.
    for (a, b, below), lo, hi in ((("hip", "knee", ("ankle",)), 0.85, 1.1), (("knee", "ankle", ()), 0.9, 1.3),
                                  (("shoulder", "elbow", ("wrist",)), 0.9, 1.1), (("elbow", "wrist", ()), 0.8, 1.15)):
        f = rng.uniform(lo, hi)
        for side in (0, 1):
            ja, jb = JOINT_INDEX[a][side], JOINT_INDEX[b][side]
            ok = (vis[:, ja] > 0) & (vis[:, jb] > 0)
            delta = (f - 1) * (xy[ok, jb] - xy[ok, ja])
            xy[ok, jb] += delta
            for c in below:
                xy[ok, JOINT_INDEX[c][side]] += delta
    # per-clip joint offsets: narrower hips, head vs nose, general placement differences
    both = (vis[:, LHIP] > 0) & (vis[:, RHIP] > 0)
    mid_hip = (xy[both, LHIP] + xy[both, RHIP]) / 2
    f = rng.uniform(0.65, 1.1)
    xy[both, LHIP] = mid_hip + f * (xy[both, LHIP] - mid_hip)
    xy[both, RHIP] = mid_hip + f * (xy[both, RHIP] - mid_hip)
    xy += rng.normal(0, 0.04 * scale, (1, 13, 2))
    # head centre (annotators) vs nose (detector): in profile the nose sits ~0.25 torso lengths forward
    phi = rng.uniform(0, 2 * math.pi)
    xy[:, HEAD] += rng.uniform(0, 0.3) * scale * np.array([[math.cos(phi), math.sin(phi)]])
    # tracker noise; some joints (a far-side ankle, a wrist on a bar) much noisier than others
    per_joint = rng.uniform(0.5, 2.0, (1, 13, 1))
    xy = xy + tracker_noise(rng, t, xy.shape, rng.uniform(0.0, 0.05) * scale) * per_joint
    # a detector guessing an occluded arm or leg: one limb wanders slowly
    if rng.random() < 0.1:
        limb = list(LIMBS[rng.integers(4)])
        walk = np.cumsum(rng.normal(0, 0.08 * scale, (n, 1, 2)), axis=0)
        xy[:, limb] += walk
    # detector glitches: a limb joint jumps for a frame
    if rng.random() < 0.3:
        glitch = rng.random((n, 13)) < rng.uniform(0.0, 0.05)
        glitch[:, [HEAD, LSH, RSH, LHIP, RHIP]] = False
        xy[glitch] += rng.normal(0, 0.3 * scale, (int(glitch.sum()), 2))
    # missing joints: random frames, whole limbs for the window
    drop = rng.random((n, 13)) < rng.uniform(0.0, 0.1)
    vis[drop] = 0.0
    if rng.random() < 0.25:
        limb = LIMBS[rng.integers(len(LIMBS))]
        vis[:, list(limb)] = 0.0
    # a whole joint group unseen for the window (barbell over the shoulders, hips behind a bench...)
    r = rng.random()
    if r < 0.08:
        vis[:, [LSH, RSH]] = 0.0
    elif r < 0.12:
        vis[:, [LHIP, RHIP]] = 0.0
    elif r < 0.16:
        vis[:, HEAD] = 0.0
    # camera: mirror, roll, aspect
    if rng.random() < 0.5:
        xy[..., 0] = w - xy[..., 0]
    ang = math.radians(float(np.clip(rng.normal(0, 6), -15, 15)))
    c, s_ = math.cos(ang), math.sin(ang)
    ctr = np.array([w / 2, h / 2])
    d = xy - ctr
    xy = ctr + np.stack([c * d[..., 0] - s_ * d[..., 1], s_ * d[..., 0] + c * d[..., 1]], axis=-1)
    xy[..., 0] *= rng.uniform(0.85, 1.15)
    xy *= rng.uniform(0.5, 2.0)  # distance to the camera (features must not care)
    return t, xy, vis


def clean_window(rng: np.random.Generator, s: LabelledClip, window_s: float = WINDOW_S) -> tuple[np.ndarray, ...]:
    """A random crop without any perturbation."""
    t, xy, vis = s.t, s.xy, s.vis
    if t[-1] - t[0] > window_s:
        t0 = rng.uniform(t[0], t[-1] - window_s)
        keep = (t >= t0) & (t <= t0 + window_s)
        t, xy, vis = t[keep], xy[keep], vis[keep]
    return t, xy, vis


# Features grouped by the per-frame quantity they summarise (e.g. all statistics of the knee angle).
FEATURE_GROUPS = [np.array(ix) for ix in
                  {g: [i for i, n in enumerate(FEATURE_NAMES) if n.split(":")[0] == g]
                   for g in dict.fromkeys(n.split(":")[0] for n in FEATURE_NAMES)}.values()]


def make_windows(rng: np.random.Generator, seqs: list[LabelledClip], classes: tuple[str, ...], per_class: int,
                 p_clean: float = 0.2, p_feature_drop: float = 0.1, p_arms_missing: float = 0.3
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Class-balanced feature windows: per_class windows per exercise, spread over its clips."""
    by = {c: [s for s in seqs if s.action == c] for c in classes}
    xs, ys = [], []
    for ci, c in enumerate(classes):
        clips = by[c]
        if not clips:
            continue
        k = 0
        while k < per_class:
            s = clips[k % len(clips)]
            k += 1
            clean = rng.random() < p_clean
            with warnings.catch_warnings():  # nan-means over joints a window never shows
                warnings.simplefilter("ignore", RuntimeWarning)
                t, xy, vis = clean_window(rng, s) if clean else augment(rng, s)
            _, g = resample(t, xy, vis)
            v = window_features(g) if g.shape[0] >= 2 else None
            if v is None:
                continue
            if not clean:  # feature-group dropout: no single cue may carry the decision alone
                for idx in FEATURE_GROUPS:
                    if rng.random() < p_feature_drop:
                        v[idx] = np.nan
            if rng.random() < p_arms_missing:  # the model must also answer from the body without arms
                v[ARM_FEATURES] = np.nan
            xs.append(v)
            ys.append(ci)
    return np.stack(xs), np.asarray(ys)


# ------------------------------------------------------------------------------------------ fitting

def export_trees(clf, classes: tuple[str, ...]) -> TreeEnsemble:
    """A fitted sklearn HistGradientBoostingClassifier as plain arrays (numerical splits only)."""
    parts = {k: [] for k in ("feature", "threshold", "missing_left", "left", "right", "is_leaf", "value")}
    starts, tclass, depth, off = [], [], 0, 0
    for iteration in clf._predictors:
        if len(iteration) != len(classes):
            raise RuntimeError("expected one tree per class and iteration")
        for k, pred in enumerate(iteration):
            nd = pred.nodes
            if np.any(nd["is_categorical"]):
                raise RuntimeError("categorical splits are not supported")
            starts.append(off)
            tclass.append(k)
            off += len(nd)
            depth = max(depth, int(pred.get_max_depth()))
            parts["feature"].append(nd["feature_idx"].astype(np.int16))
            parts["threshold"].append(nd["num_threshold"].astype(np.float64))
            parts["missing_left"].append(nd["missing_go_to_left"].astype(np.uint8))
            parts["left"].append(nd["left"].astype(np.int16))
            parts["right"].append(nd["right"].astype(np.int16))
            parts["is_leaf"].append(nd["is_leaf"].astype(np.uint8))
            parts["value"].append(nd["value"].astype(np.float64))
    arr = {k: np.concatenate(v) for k, v in parts.items()}
    return TreeEnsemble(classes=classes, baseline=np.asarray(clf._baseline_prediction, dtype=np.float64).reshape(-1),
                        tree_start=np.asarray(starts, dtype=np.int32), tree_class=np.asarray(tclass, dtype=np.int16),
                        depth=depth, **arr)


def fit(x: np.ndarray, y: np.ndarray, classes: tuple[str, ...], leaves: int, iterations: int, learning_rate: float,
        seed: int) -> TreeEnsemble:
    """Gradient-boosted trees on the raw features (NaN = missing, handled by the trees), exported to arrays
    and checked against sklearn's own probabilities."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    clf = HistGradientBoostingClassifier(max_iter=iterations, max_leaf_nodes=leaves, learning_rate=learning_rate,
                                         min_samples_leaf=20, l2_regularization=1.0, early_stopping=False,
                                         random_state=seed)
    x = np.where(np.isnan(x).all(axis=0), 0.0, x)  # an all-missing column breaks sklearn's binning
    clf.fit(x, y)
    if list(clf.classes_) != list(range(len(classes))):
        raise RuntimeError("every class needs training windows")
    model = export_trees(clf, classes)
    probe = x[:: max(1, len(x) // 500)]
    if not np.allclose(model.proba(probe), clf.predict_proba(probe), atol=1e-9):
        raise RuntimeError("exported trees disagree with the fitted model")
    small = model.rounded()  # what gets saved; everything downstream (metrics) uses exactly this
    if np.mean(small.proba(probe).argmax(1) == clf.predict(probe)) < 0.99:
        raise RuntimeError("float32 rounding changed the model's answers")
    return small


def evaluate(rec: ExerciseRecognizer, seqs: list[LabelledClip], rng: np.random.Generator | None = None) -> dict:
    """Whole-clip accuracy (argmax of the window-averaged probabilities) and the confusion matrix; with rng,
    on an augmented copy of each clip (the prediction window's worth of frames is not imposed)."""
    classes = list(rec.classes)
    cm = np.zeros((len(classes), len(classes)), dtype=int)
    low = 0
    per_clip = []
    for s in seqs:
        if rng is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                t, xy, vis = augment(rng, s, window_s=max(WINDOW_S, float(s.t[-1] - s.t[0]) + 1))
        else:
            t, xy, vis = s.t, s.xy, s.vis
        p, _ = rec.proba_arrays(t, xy, vis)
        if p is None:
            pred, conf = -1, 0.0
        else:
            pred, conf = int(np.argmax(p)), float(np.max(p))
        true = classes.index(s.action)
        if pred >= 0:
            cm[true, pred] += 1
        low += conf < rec.confidence_threshold
        per_clip.append((s.id, s.action, classes[pred] if pred >= 0 else None, round(conf, 4)))
    n = len(seqs)
    acc = float(np.trace(cm)) / n if n else math.nan
    return {"clips": n, "accuracy": acc, "confusion": cm.tolist(), "below_threshold": int(low),
            "per_clip": per_clip}


# ------------------------------------------------------------------------------------------- driver

# Candidate settings (leaves per tree, boosting iterations, learning rate), simplest first; the
# validation split picks one (ties go to the earlier, smaller one).
GRID: tuple[tuple[int, int, float], ...] = ((8, 100, 0.15), (15, 100, 0.1), (8, 200, 0.1))


def split_validation(rng: np.random.Generator, seqs: list[LabelledClip], frac: float = 0.2):
    """Whole clips (never windows of one clip on both sides), frac of each class."""
    val_ids = set()
    for c in GYM_CLASSES:
        ids = sorted(s.id for s in seqs if s.action == c)
        k = max(1, int(round(frac * len(ids)))) if len(ids) > 1 else 0
        val_ids.update(rng.permutation(ids)[:k].tolist())
    return [s for s in seqs if s.id not in val_ids], [s for s in seqs if s.id in val_ids]


def train(penn_root: str | Path, seed: int = 0, per_class: int = 2000, grid=GRID, limit_per_class: int | None = None,
          evaluate_test: bool = True, log=print) -> tuple[TreeEnsemble, dict]:
    """Select a setting on the validation split, refit on all TRAIN clips, report on TEST.
    Returns the model and the metrics dict written to metrics.json."""
    t_start = time.perf_counter()
    classes = tuple(GYM_CLASSES)
    seqs = load_sequences(penn_root, "train", limit_per_class)
    log(f"train split: {len(seqs)} clips")
    rng = np.random.default_rng(seed)
    fit_seqs, val_seqs = split_validation(rng, seqs)
    selection = []
    best = None
    if len(grid) > 1:
        xs, ys = make_windows(np.random.default_rng([seed, 1]), fit_seqs, classes, per_class)
        log(f"selection: {len(fit_seqs)} clips -> {len(ys)} windows; validation {len(val_seqs)} clips")
        for setting in grid:
            rec = ExerciseRecognizer(fit(xs, ys, classes, *setting, seed))
            clean = evaluate(rec, val_seqs)["accuracy"]
            aug = evaluate(rec, val_seqs, np.random.default_rng([seed, 2]))["accuracy"]
            score = (clean + aug) / 2
            selection.append({"leaves": setting[0], "iterations": setting[1], "learning_rate": setting[2],
                              "val_accuracy": round(clean, 4), "val_accuracy_augmented": round(aug, 4)})
            log(f"  leaves={setting[0]:<3} iterations={setting[1]:<4} lr={setting[2]:<5} "
                f"val={clean:.3f} val_aug={aug:.3f}")
            if best is None or score > best[0] + 1e-9:
                best = (score, setting)
        setting = best[1]
    else:
        setting = grid[0]
    x, y = make_windows(np.random.default_rng([seed, 3]), seqs, classes, per_class)
    model = fit(x, y, classes, *setting, seed)
    train_s = time.perf_counter() - t_start
    log(f"final: leaves={setting[0]} iterations={setting[1]} lr={setting[2]} on {len(seqs)} clips -> "
        f"{len(y)} windows ({train_s:.0f} s)")
    metrics = {
        "classes": list(classes), "seed": seed,
        "setting": {"leaves": setting[0], "iterations": setting[1], "learning_rate": setting[2]},
        "train_clips": len(seqs), "train_windows": int(len(y)), "windows_per_class": per_class,
        "validation_clips": len(val_seqs), "selection": selection, "training_seconds": round(train_s, 1),
    }
    if evaluate_test:
        test = load_sequences(penn_root, "test", limit_per_class)
        r = evaluate(ExerciseRecognizer(model), test)
        metrics["test"] = {
            "note": "official Penn Action test split (train == -1), ground-truth joints, whole clips; "
                    "reported only, never used for any choice",
            "clips": r["clips"], "accuracy": round(r["accuracy"], 4),
            "confusion_rows_true_cols_predicted": r["confusion"],
            "below_confidence_threshold": r["below_threshold"],
            "per_class_accuracy": {c: round(r["confusion"][i][i] / max(1, sum(r["confusion"][i])), 4)
                                   for i, c in enumerate(classes)},
            "errors": [p for p in r["per_clip"] if p[1] != p[2]],
        }
        log(f"test: {r['accuracy']:.4f} on {r['clips']} clips")
    return model, metrics


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--penn", required=True, help="Penn Action root (the folder holding labels/)")
    ap.add_argument("--out", required=True, help="output folder for model.npz, model.json, metrics.json")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--windows-per-class", type=int, default=2000)
    ap.add_argument("--no-test", action="store_true", help="skip the test-split report")
    a = ap.parse_args(argv)
    model, metrics = train(a.penn, seed=a.seed, per_class=a.windows_per_class, evaluate_test=not a.no_test)
    out = Path(a.out)
    model.save(out, extra={"seed": a.seed, "setting": metrics["setting"],
                           "trained_on": "Penn Action train split (train == 1), 8 gym classes"})
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    print(f"wrote {out / 'model.npz'} ({(out / 'model.npz').stat().st_size / 1024:.0f} KB), model.json, metrics.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
