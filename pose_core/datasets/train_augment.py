"""Training-data augmentation for the exercise recogniser: Penn Action's hand-annotated joints made to look
like a pose tracker on real video (time, body, camera), one random window at a time. Used by
`train_recognizer`; deterministic for a given numpy Generator."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..recognition.features import (HEAD, LAN, LEL, LHIP, LKN, LSH, LWR, MIN_VISIBILITY, RAN, REL, RHIP, RKN, RSH,
                                   RWR, WINDOW_S, body_scale, impute_torso, mid_point)

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
# Not for pull-ups: on real video a hanging body's arms are seen up (wrists more than 0.3 torso lengths below
# the shoulders in at most 3% of the frames of 14 of the 15 real pull-up clips, 18% in one close-up; in 76-100%
# of the frames of the 2 dips clips), and a hanging body with the arms down is what dips look like, which must
# not be learnt as a pull-up.
HANGING_FALLBACK_EXCLUDED = frozenset({"pullup"})
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
    Camera: mirror, roll (+-~6 deg), aspect (0.85..1.15), distance.
    The steps draw from `rng` in a fixed order: same seed, same windows."""
    w, h = s.size
    t, xy, vis = _crop_time(rng, s, window_s)
    vis = (vis >= MIN_VISIBILITY).astype(np.float64)
    scale = body_scale(np.where(vis[..., None] > 0, xy, np.nan))
    if not scale > 0:
        scale = 0.3 * h
    _other_arms(rng, s, xy, vis, scale)
    _reveal_hidden_joints(rng, s, xy, vis, scale)
    _proportions(rng, xy, vis, scale)
    xy = _tracker_errors(rng, t, xy, scale)
    _missing_joints(rng, vis)
    return t, _camera(rng, xy, w, h), vis


def _crop_time(rng: np.random.Generator, s: LabelledClip, window_s: float) -> tuple[np.ndarray, ...]:
    """Speed, a random crop, dropped frames and short bursts without a pose (copies of the clip's arrays)."""
    t, xy, vis = s.t.copy(), s.xy.copy(), s.vis.copy()
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
    return t[keep], xy[keep], vis[keep]


def _other_arms(rng: np.random.Generator, s: LabelledClip, xy: np.ndarray, vis: np.ndarray, scale: float) -> None:
    """Other arm postures (arm-free exercises), or arms falling back to hanging (in place)."""
    n = xy.shape[0]
    if rng.random() < ARM_FREE_EXERCISES.get(s.action, 0.0):
        synthesise_arms(rng, xy, vis, s.view, scale)
    elif s.action not in HANGING_FALLBACK_EXCLUDED and rng.random() < 0.12:
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


def _reveal_hidden_joints(rng: np.random.Generator, s: LabelledClip, xy: np.ndarray, vis: np.ndarray,
                          scale: float) -> None:
    """Annotators mark hidden joints invisible; a detector always places them (in place). Hidden far-side
    joints go near their visible partner (a per-window offset plus per-frame jitter); hidden pairs of
    shoulders or hips go where the torso rule puts them, spread apart as the view shows them."""
    n = xy.shape[0]
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


def _proportions(rng: np.random.Generator, xy: np.ndarray, vis: np.ndarray, scale: float) -> None:
    """Limb proportions and joint placement (in place).

    People differ, and a detector's knees, ankles and wrists sit elsewhere on the limb than an annotator's
    (MediaPipe shanks measure 0.75-0.9 torso lengths on our clips, Penn's 0.68). Each distal joint moves
    along its segment; what hangs below it moves along."""
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


def _tracker_errors(rng: np.random.Generator, t: np.ndarray, xy: np.ndarray, scale: float) -> np.ndarray:
    """Tracker noise (some joints much noisier), a wandering occluded limb, one-frame glitches."""
    n = xy.shape[0]
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
    return xy


def _missing_joints(rng: np.random.Generator, vis: np.ndarray) -> None:
    """Missing joints (in place): random frames, whole limbs for the window, a whole joint group unseen
    (barbell over the shoulders, hips behind a bench...)."""
    n = vis.shape[0]
    drop = rng.random((n, 13)) < rng.uniform(0.0, 0.1)
    vis[drop] = 0.0
    if rng.random() < 0.25:
        limb = LIMBS[rng.integers(len(LIMBS))]
        vis[:, list(limb)] = 0.0
    r = rng.random()
    if r < 0.08:
        vis[:, [LSH, RSH]] = 0.0
    elif r < 0.12:
        vis[:, [LHIP, RHIP]] = 0.0
    elif r < 0.16:
        vis[:, HEAD] = 0.0


def _camera(rng: np.random.Generator, xy: np.ndarray, w: int, h: int) -> np.ndarray:
    """Camera: mirror, roll, aspect, distance."""
    if rng.random() < 0.5:
        xy[..., 0] = w - xy[..., 0]
    ang = math.radians(float(np.clip(rng.normal(0, 6), -15, 15)))
    c, s_ = math.cos(ang), math.sin(ang)
    ctr = np.array([w / 2, h / 2])
    d = xy - ctr
    xy = ctr + np.stack([c * d[..., 0] - s_ * d[..., 1], s_ * d[..., 0] + c * d[..., 1]], axis=-1)
    xy[..., 0] *= rng.uniform(0.85, 1.15)
    xy *= rng.uniform(0.5, 2.0)  # distance to the camera (features must not care)
    return xy


def clean_window(rng: np.random.Generator, s: LabelledClip, window_s: float = WINDOW_S) -> tuple[np.ndarray, ...]:
    """A random crop without any perturbation."""
    t, xy, vis = s.t, s.xy, s.vis
    if t[-1] - t[0] > window_s:
        t0 = rng.uniform(t[0], t[-1] - window_s)
        keep = (t >= t0) & (t <= t0 + window_s)
        t, xy, vis = t[keep], xy[keep], vis[keep]
    return t, xy, vis


def held_window(rng: np.random.Generator, s: LabelledClip, window_s: float = WINDOW_S) -> tuple[np.ndarray, ...]:
    """A person holding still (standing, resting on the floor, hanging, setting up): one frame of the clip
    held for 1.5 s up to a window, with a slow drift of the whole body and the tracker's noise. Teaches the
    OTHER class that a posture without a movement is not an exercise; the shapes stay the exercises' own."""
    i = int(rng.integers(s.t.size))
    length = rng.uniform(1.5, window_s)
    t = np.arange(0.0, length, 1 / 30.0)
    n = t.size
    xy = np.repeat(s.xy[i:i + 1], n, axis=0).astype(np.float64)
    vis = (np.repeat(s.vis[i:i + 1], n, axis=0) >= MIN_VISIBILITY).astype(np.float64)
    scale = body_scale(np.where(vis[..., None] > 0, xy, np.nan))
    if not scale > 0:
        scale = 0.3 * s.size[1]
    drift = np.cumsum(rng.normal(0, rng.uniform(0.002, 0.01) * scale, (n, 1, 2)), axis=0)
    xy = _tracker_errors(rng, t, xy + drift, scale)
    _missing_joints(rng, vis)
    return t, _camera(rng, xy, *s.size), vis
