"""Which of the 8 gym exercises does a pose sequence show?

One code path for every source: a sequence of our `PoseFrame`s (MediaPipe detections, or Penn Action
annotations through `pose_core.datasets.penn`) -> the 13 Penn-compatible joints -> window features -> a small
gradient-boosted tree ensemble stored as plain arrays (`recognizer/model.npz`, read with
`allow_pickle=False`, + `model.json`). Inference is pure numpy; training is `pose_core.datasets.train_recognizer`.

Features (see `window_features`), all independent of the camera's distance and the person's size:
- joints reduced to head (nose), shoulders, elbows, wrists, hips, knees, ankles; a joint with
  visibility < MIN_VISIBILITY is *missing* (Penn marks hidden joints invisible and sometimes stores
  garbage coordinates for them); gaps up to MAX_GAP_S are interpolated;
- the sequence is resampled to RESAMPLE_HZ on its timestamps (the video's frame rate does not matter)
  and median-filtered over 3 samples (a detector's one-frame glitches);
- hidden shoulders / hips are placed from the other joints (`impute_torso`), because annotators hide
  them where a detector always reports them;
- coordinates centred on the mid-hip and divided by a body scale (the median of the torso, upper arm,
  forearm, thigh and shank lengths, each over its typical ratio to the torso: one foreshortened segment,
  such as the torso of a bench press filmed from the head end, does not distort the scale);
- left and right are merged (one consistent side per limb unless both are well seen) and x is flipped so
  the head lies on the +x side of the ankles: mirrored videos and swapped sides give the same features;
- joint angles (elbows, shoulders, hips, knees), segment directions against the image vertical (torso
  orientation tells lying / standing / hanging apart), joint positions in the torso's own frame;
- over each window: mean, std, 10th / 90th percentiles, speed over 0.2 s, whole-body motion, and the
  rate of (hysteresis) crossings of key signals, i.e. the repetition frequency.

Prediction: windows of WINDOW_S every HOP_S; each window's probabilities are the mean of the whole-body
answer and the answer with the arm features missing (arms are what a detector gets wrong most); the
sequence's probabilities are the mean over windows.

"Cannot tell" (exercise None, with the reason and the top candidates) is returned when fewer than
MIN_POSE_FRAMES frames or MIN_DURATION_S seconds have a pose, when no window has hips or shoulders in
enough of its frames, or when the top probability is below CONFIDENCE_THRESHOLD.
"""

from __future__ import annotations

import json
import math
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from ..core.landmarks import PoseLandmark
from ..core.types import PoseFrame

L = PoseLandmark

DEFAULT_MODEL_DIR = Path(__file__).parent / "recognizer"
MODEL_FORMAT = "gympose-recognizer/1"

# The 13 joints, in Penn Action's order (head, shoulders, elbows, wrists, hips, knees, ankles), as our
# landmarks. Which side Penn calls "left" does not matter here: every feature is left/right symmetric.
JOINT_LANDMARKS: tuple[PoseLandmark, ...] = (
    L.NOSE, L.LEFT_SHOULDER, L.RIGHT_SHOULDER, L.LEFT_ELBOW, L.RIGHT_ELBOW, L.LEFT_WRIST, L.RIGHT_WRIST,
    L.LEFT_HIP, L.RIGHT_HIP, L.LEFT_KNEE, L.RIGHT_KNEE, L.LEFT_ANKLE, L.RIGHT_ANKLE,
)
_IDX = np.array([int(lm) for lm in JOINT_LANDMARKS])
HEAD, LSH, RSH, LEL, REL, LWR, RWR, LHIP, RHIP, LKN, RKN, LAN, RAN = range(13)

MIN_VISIBILITY = 0.5  # a joint below this is treated as missing
RESAMPLE_HZ = 15.0  # features are computed on a uniform time grid at this rate
MAX_GAP_S = 0.5  # missing stretches up to this long are interpolated
MIN_POSE_FRAMES = 15  # fewer frames with a pose than this: cannot tell
MIN_DURATION_S = 0.5  # a shorter span of frames with a pose: cannot tell (Penn clips go down to 0.6 s)
MIN_WINDOW_COVERAGE = 0.6  # share of a window's grid points that must have hips or shoulders
WINDOW_S = 3.0  # prediction window; longer sequences are covered by windows every HOP_S
HOP_S = 0.5
SPEED_LAG = 3  # grid steps (0.2 s) over which speeds are measured
SIDE_BOTH_COVERAGE = 0.8  # a limb is averaged over both sides only if each is seen this often in a window
CONFIDENCE_THRESHOLD = 0.5  # below this top probability the answer is "cannot tell"
TOP_K = 3

# Typical length of each limb segment over the torso length (90th percentile over a clip, Penn Action
# train split, median over clips). Used to estimate the body scale from several segments.
SEGMENT_TORSO_RATIO = {"upper_arm": 0.53, "forearm": 0.48, "thigh": 0.80, "shank": 0.68}
# Where a hidden torso joint lies (same data, median over frames): the mid-shoulder at this fraction of the
# way from the mid-hip to the head; the mid-hip at this fraction from the mid-shoulder to the mid-knee.
SHOULDER_ON_HIP_HEAD = 0.715
HIP_ON_SHOULDER_KNEE = 0.587


# ------------------------------------------------------------------------------------------ results

@dataclass(frozen=True)
class Recognition:
    """The recognised exercise, or None ("cannot tell") with `reason`.

    confidence: probability of the top candidate (0 when nothing could be computed).
    top: the best candidates as (exercise, probability), most likely first (empty when nothing could be
        computed).
    frames / frames_with_pose: what the decision was made on; windows: how many windows were averaged.
    """

    exercise: str | None
    confidence: float
    top: tuple[tuple[str, float], ...] = ()
    reason: str = ""
    frames: int = 0
    frames_with_pose: int = 0
    windows: int = 0

    @property
    def cannot_tell(self) -> bool:
        return self.exercise is None

    def describe(self) -> str:
        """One line for people: "squat (93%)" or "cannot tell: <reason> (candidates: ...)"."""
        cands = ", ".join(f"{n} {p:.0%}" for n, p in self.top)
        if self.exercise is not None:
            return f"{self.exercise} ({self.confidence:.0%})"
        return f"cannot tell: {self.reason}" + (f" (candidates: {cands})" if cands else "")

    def to_dict(self) -> dict:
        return {"exercise": self.exercise, "confidence": round(self.confidence, 4),
                "top": [[n, round(p, 4)] for n, p in self.top], "reason": self.reason,
                "frames": self.frames, "frames_with_pose": self.frames_with_pose, "windows": self.windows}


def _cannot_tell(reason: str, frames: int = 0, with_pose: int = 0, top=(), windows: int = 0) -> Recognition:
    conf = float(top[0][1]) if top else 0.0
    return Recognition(None, conf, tuple(top), reason, frames, with_pose, windows)


# ------------------------------------------------------------------------------------ pose -> arrays

def pose_arrays(frames: Iterable[PoseFrame | None]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(t (N,), xy (N, 13, 2) pixels with y down, visibility (N, 13)) of the frames that have a pose."""
    ts, xys, viss = [], [], []
    for f in frames:
        if f is None:
            continue
        ts.append(f.timestamp_s)
        xys.append(f.pixels[_IDX])
        viss.append(f.visibility[_IDX])
    if not ts:
        return np.zeros(0), np.zeros((0, 13, 2)), np.zeros((0, 13))
    return np.asarray(ts, dtype=np.float64), np.stack(xys), np.stack(viss)


def resample(t: np.ndarray, xy: np.ndarray, vis: np.ndarray, hz: float = RESAMPLE_HZ,
             max_gap_s: float = MAX_GAP_S) -> tuple[np.ndarray, np.ndarray]:
    """Joints on a uniform grid from t[0] to t[-1]: (grid times (M,), xy (M, 13, 2) with NaN = missing).

    A joint is interpolated linearly between its visible samples; grid points farther than max_gap_s/2
    from a visible sample of it (i.e. inside a longer gap, or beyond its ends) are NaN."""
    t = np.asarray(t, dtype=np.float64)
    if t.size == 0:
        return np.zeros(0), np.zeros((0, 13, 2))
    order = np.argsort(t, kind="stable")
    t, xy, vis = t[order], xy[order], vis[order]
    keep = np.r_[np.diff(t) > 0, True]  # one sample per timestamp (the last)
    t, xy, vis = t[keep], xy[keep], vis[keep]
    n = int(math.floor((t[-1] - t[0]) * hz + 1e-9)) + 1
    grid = t[0] + np.arange(n) / hz
    out = np.full((n, 13, 2), np.nan)
    ok = vis >= MIN_VISIBILITY
    for j in range(13):
        tj = t[ok[:, j]]
        if tj.size == 0:
            continue
        k = np.searchsorted(tj, grid)
        prev_gap = grid - tj[np.clip(k - 1, 0, tj.size - 1)]
        next_gap = tj[np.clip(k, 0, tj.size - 1)] - grid
        prev_gap[k == 0] = np.inf
        next_gap[k == tj.size] = np.inf
        # near a sample, or inside a short gap
        good = (np.minimum(np.abs(prev_gap), np.abs(next_gap)) <= 0.5 / hz + 1e-9) | (prev_gap + next_gap <= max_gap_s)
        if not good.any():
            continue
        for c in range(2):
            out[good, j, c] = np.interp(grid[good], tj, xy[ok[:, j], j, c])
    return grid, _median3(out)


def _median3(x: np.ndarray) -> np.ndarray:
    """Running median over 3 grid points along axis 0, ignoring NaN (a missing point stays missing).
    Removes a detector's single-frame glitches; repetitions last far longer than 3 / RESAMPLE_HZ."""
    if x.shape[0] < 3:
        return x
    prev = np.concatenate([x[:1], x[:-1]])
    nxt = np.concatenate([x[1:], x[-1:]])
    st = np.stack([prev, x, nxt])
    # median of 3 with NaN ignored: sort puts NaN last; median of the valid ones
    st = np.sort(st, axis=0)
    nvalid = (~np.isnan(st)).sum(axis=0)
    med = np.where(nvalid == 3, st[1], np.where(nvalid == 2, (st[0] + st[1]) / 2, st[0]))
    return np.where(np.isnan(x), np.nan, med)


# ---------------------------------------------------------------------------------------- features

def mid_point(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean of two (M, 2) point tracks; where one is missing, the other."""
    out = (a + b) / 2
    ma, mb = np.isnan(a[:, 0]), np.isnan(b[:, 0])
    out[ma & ~mb] = b[ma & ~mb]
    out[mb & ~ma] = a[mb & ~ma]
    return out


def _mean_sides(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """nanmean of two equally shaped arrays without warnings (NaN where both are NaN)."""
    s = np.where(np.isnan(a), 0.0, a) + np.where(np.isnan(b), 0.0, b)
    n = (~np.isnan(a)).astype(float) + (~np.isnan(b))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / np.maximum(n, 1), np.nan)


def _angle(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Angle at b (0..1 = 0..180 degrees) per frame; NaN when a point is missing."""
    v1, v2 = a - b, c - b
    n = np.linalg.norm(v1, axis=1) * np.linalg.norm(v2, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.sum(v1 * v2, axis=1) / n
    cos[~(n > 1e-12)] = np.nan
    return np.arccos(np.clip(cos, -1, 1)) / np.pi


def _unit(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    v = b - a
    n = np.linalg.norm(v, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        u = v / n
    u[~(n[:, 0] > 1e-12)] = np.nan
    return u


def _seg_len(p: np.ndarray, a: int, b: int) -> np.ndarray:
    return np.linalg.norm(p[:, a] - p[:, b], axis=1)


def _p90(x: np.ndarray) -> float:
    x = x[~np.isnan(x)]
    return float(np.percentile(x, 90)) if x.size else math.nan


def body_scale(p: np.ndarray) -> float:
    """Body size in pixels: median of the torso length and the limb segments' lengths, each over its
    typical ratio to the torso (90th percentile over the window, longer side). Segments that are never
    seen are left out (barbell squats often hide the shoulders in Penn Action); NaN when none is seen."""
    mid_sh, mid_hip = mid_point(p[:, LSH], p[:, RSH]), mid_point(p[:, LHIP], p[:, RHIP])
    est = []
    torso = _p90(np.linalg.norm(mid_sh - mid_hip, axis=1))
    if torso > 0:
        est.append(torso)
    for name, (a1, b1, a2, b2) in (("upper_arm", (LSH, LEL, RSH, REL)), ("forearm", (LEL, LWR, REL, RWR)),
                                   ("thigh", (LHIP, LKN, RHIP, RKN)), ("shank", (LKN, LAN, RKN, RAN))):
        sides = [v for v in (_p90(_seg_len(p, a1, b1)), _p90(_seg_len(p, a2, b2))) if v > 0]
        if sides:
            est.append(max(sides) / SEGMENT_TORSO_RATIO[name])
    return float(np.median(est)) if est else math.nan


def _crossing_rate(s: np.ndarray, duration_s: float, eps: float) -> float:
    """Repetitions per second of a signal: crossings of +-max(0.3 std, eps) around its mean / 2 / duration."""
    s = s[~np.isnan(s)]
    if s.size < 3 or duration_s <= 0:
        return math.nan
    s = s - s.mean()
    thr = max(0.3 * float(s.std()), eps)
    state = np.where(s > thr, 1, np.where(s < -thr, -1, 0))
    state = state[state != 0]
    flips = int(np.count_nonzero(state[1:] != state[:-1]))
    return flips / 2.0 / duration_s


_PER_FRAME_NAMES: list[str] = (
    [f"{j}_{c}" for j in ("head", "shoulder", "elbow", "wrist", "hip", "knee", "ankle") for c in ("x", "y")]
    + [f"spread_{j}" for j in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")]
    + [f"angle_{j}" for j in ("elbow", "shoulder", "hip", "knee")]
    + [f"dir_{s}_{c}" for s in ("torso", "upper_arm", "forearm", "thigh", "shank") for c in ("x", "y")]
    + [f"body_{j}_{c}" for j in ("head", "elbow", "wrist", "knee", "ankle") for c in ("x", "y")]
)
_STATS = ("mean", "std", "p10", "p90", "speed")
_RATE_SIGNALS = ("wrist_y", "ankle_y", "head_y", "angle_elbow", "angle_knee", "angle_hip", "dir_torso_y",
                 "spread_wrist", "spread_ankle", "global_y")
# Smallest swing counted by the repetition rate (hysteresis half-width): well above a video pose
# tracker's noise (0.02-0.04 torso lengths, a few degrees), so that jitter is not counted as repetitions.
RATE_MIN_SWING = {"position": 0.1, "angle_elbow": 0.05, "angle_knee": 0.05, "angle_hip": 0.05,
                  "dir_torso_y": 0.05}
FEATURE_NAMES: tuple[str, ...] = tuple(
    [f"{n}:{s}" for s in _STATS for n in _PER_FRAME_NAMES]
    + ["global_x:std", "global_y:std", "global_x:speed", "global_y:speed"]
    + [f"{n}:rate" for n in _RATE_SIGNALS]
    + ["centred_on_shoulders"]
)
NUM_FEATURES = len(FEATURE_NAMES)
# Features that describe the arms: the limbs a detector gets wrong most (hidden behind a barbell, plates
# or the body it falls back to arms hanging at the sides). Predictions average the whole-body answer with
# the answer without these (the model is trained with them missing in part of its windows).
ARM_FEATURE_GROUPS = frozenset(
    [f"{j}_{c}" for j in ("elbow", "wrist") for c in ("x", "y")]
    + ["spread_elbow", "spread_wrist", "angle_elbow", "angle_shoulder"]
    + [f"dir_{s}_{c}" for s in ("upper_arm", "forearm") for c in ("x", "y")]
    + [f"body_{j}_{c}" for j in ("elbow", "wrist") for c in ("x", "y")])
ARM_FEATURES = np.array([i for i, n in enumerate(FEATURE_NAMES) if n.split(":")[0] in ARM_FEATURE_GROUPS])
_PAIRS = {"shoulder": (LSH, RSH), "elbow": (LEL, REL), "wrist": (LWR, RWR), "hip": (LHIP, RHIP),
          "knee": (LKN, RKN), "ankle": (LAN, RAN)}


@dataclass(frozen=True)
class _FrameFeatures:
    values: np.ndarray  # (M, K) per-frame features, NaN = unknown
    centre: np.ndarray  # (M, 2) track of the centre in body-scale units, y up
    centred_on_shoulders: bool


def impute_torso(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fill frames where both shoulders (or both hips) are unseen from the other joints: Penn Action hides
    the shoulders of most barbell squats and the hips of push-ups filmed head-on, while a detector always
    places them. Without this the model would learn "no shoulders = squat". Returns (p with the filled
    joints, frames whose shoulders were filled, frames whose hips were filled)."""
    p = p.copy()
    sh_miss = np.isnan(p[:, LSH, 0]) & np.isnan(p[:, RSH, 0])
    hip_miss = np.isnan(p[:, LHIP, 0]) & np.isnan(p[:, RHIP, 0])
    mid_hip = mid_point(p[:, LHIP], p[:, RHIP])
    est_sh = mid_hip + SHOULDER_ON_HIP_HEAD * (p[:, HEAD] - mid_hip)
    fill_sh = sh_miss & ~np.isnan(est_sh[:, 0])
    mid_sh = mid_point(p[:, LSH], p[:, RSH])
    est_hip = mid_sh + HIP_ON_SHOULDER_KNEE * (mid_point(p[:, LKN], p[:, RKN]) - mid_sh)
    fill_hip = hip_miss & ~np.isnan(est_hip[:, 0])
    for j in (LSH, RSH):
        p[fill_sh, j] = est_sh[fill_sh]
    for j in (LHIP, RHIP):
        p[fill_hip, j] = est_hip[fill_hip]
    return p, fill_sh, fill_hip


def centre_track(p: np.ndarray) -> tuple[np.ndarray, bool] | None:
    """The window's origin: the mid-hip when the hips are known in at least half the frames, else the
    mid-shoulder (hips hidden, e.g. push-ups filmed head-on); None when neither is."""
    mid_hip = mid_point(p[:, LHIP], p[:, RHIP])
    if np.mean(~np.isnan(mid_hip[:, 0])) >= 0.5:
        return mid_hip, False
    mid_sh = mid_point(p[:, LSH], p[:, RSH])
    if np.mean(~np.isnan(mid_sh[:, 0])) >= 0.5:
        return mid_sh, True
    return None


def per_frame_features(xy: np.ndarray) -> _FrameFeatures | None:
    """(M, 13, 2) pixel joints (NaN = missing, y down) -> per-frame features. None when the window has
    neither hips nor shoulders in half its frames, or no body segment to measure the scale by."""
    p = np.array(xy, dtype=np.float64)
    p[..., 1] = -p[..., 1]  # y up
    scale = body_scale(p)
    p, filled_sh, filled_hip = impute_torso(p)
    ct = centre_track(p)
    if ct is None or not (scale > 0):
        return None
    centre, on_shoulders = ct
    c = (p - centre[:, None, :]) / scale
    # One consistent side per limb: a detector's far-side arm or leg flickers in and out of view, and
    # averaging it in only when seen would make the limb jump between two bodies' worth of positions.
    for chain in ((LEL, LWR, REL, RWR), (LKN, LAN, RKN, RAN)):
        left, right = list(chain[:2]), list(chain[2:])
        cov_l = float(np.mean(~np.isnan(c[:, left, 0]).any(axis=1)))
        cov_r = float(np.mean(~np.isnan(c[:, right, 0]).any(axis=1)))
        if min(cov_l, cov_r) < SIDE_BOTH_COVERAGE:
            c[:, right if cov_l >= cov_r else left] = np.nan
    merged = {k: mid_point(c[:, a], c[:, b]) for k, (a, b) in _PAIRS.items()}
    # Canonical mirror: the head on the +x side of the ankles (else of the centre, else the shoulders').
    for ref in (c[:, HEAD, 0] - merged["ankle"][:, 0], c[:, HEAD, 0], merged["shoulder"][:, 0]):
        d = ref[~np.isnan(ref)]
        if d.size and abs(float(d.mean())) > 1e-9:
            if d.mean() < 0:
                c[..., 0] *= -1
                for v in merged.values():
                    v[:, 0] *= -1
            break
    merged["head"] = c[:, HEAD]
    cols: list[np.ndarray] = []
    for j in ("head", "shoulder", "elbow", "wrist", "hip", "knee", "ankle"):
        cols += [merged[j][:, 0], merged[j][:, 1]]
    for j, (a, b) in _PAIRS.items():
        spread = np.linalg.norm(c[:, a] - c[:, b], axis=1)
        if j in ("shoulder", "hip"):  # a filled pair has no width
            spread[filled_sh if j == "shoulder" else filled_hip] = np.nan
        cols.append(spread)
    sides = ((LSH, LEL, LWR, LHIP, LKN, LAN), (RSH, REL, RWR, RHIP, RKN, RAN))
    ang = {k: [] for k in ("elbow", "shoulder", "hip", "knee")}
    for sh, el, wr, hp, kn, an in sides:
        ang["elbow"].append(_angle(c[:, sh], c[:, el], c[:, wr]))
        ang["shoulder"].append(_angle(c[:, hp], c[:, sh], c[:, el]))
        ang["hip"].append(_angle(c[:, sh], c[:, hp], c[:, kn]))
        ang["knee"].append(_angle(c[:, hp], c[:, kn], c[:, an]))
    for k in ang:  # (no |left - right| differences: a detector's far-side limb makes them noise)
        cols.append(_mean_sides(*ang[k]))
    # Torso direction hip -> shoulder; without shoulders hip -> head (close to it), without hips
    # shoulder -> head.
    torso_dir = _unit(merged["hip"], merged["shoulder"])
    for fallback in (_unit(merged["hip"], merged["head"]), _unit(merged["shoulder"], merged["head"])):
        miss = np.isnan(torso_dir[:, 0])
        torso_dir[miss] = fallback[miss]
    # (no shoulder -> head direction: a detector's nose and an annotator's head centre differ by ~40 deg
    # in profile)
    dirs = {"torso": torso_dir}
    for name, (a, b) in {"upper_arm": ((LSH, LEL), (RSH, REL)), "forearm": ((LEL, LWR), (REL, RWR)),
                         "thigh": ((LHIP, LKN), (RHIP, RKN)), "shank": ((LKN, LAN), (RKN, RAN))}.items():
        dirs[name] = _mean_sides(_unit(c[:, a[0]], c[:, a[1]]), _unit(c[:, b[0]], c[:, b[1]]))
    for name in ("torso", "upper_arm", "forearm", "thigh", "shank"):
        cols += [dirs[name][:, 0], dirs[name][:, 1]]
    # Positions in the torso's own frame: y along the torso, x perpendicular to it.
    uy = torso_dir
    ux = np.stack([uy[:, 1], -uy[:, 0]], axis=1)
    for j in ("head", "elbow", "wrist", "knee", "ankle"):
        cols += [np.sum(merged[j] * ux, axis=1), np.sum(merged[j] * uy, axis=1)]
    return _FrameFeatures(np.stack(cols, axis=1), centre / scale, on_shoulders)


def _nanstats(f: np.ndarray, hz: float) -> np.ndarray:
    """Per column: mean, std, p10, p90, mean |speed| (units per second, measured over SPEED_LAG grid steps
    so that frame-to-frame jitter does not dominate). NaN for all-missing columns."""
    k = f.shape[1]
    out = np.full((5, k), np.nan)
    valid = ~np.isnan(f)
    cnt = valid.sum(axis=0)
    has = cnt > 0
    if has.any():
        g = f[:, has]
        with np.errstate(invalid="ignore"):
            out[0, has] = np.nanmean(g, axis=0)
            out[1, has] = np.nanstd(g, axis=0)
            out[2:4, has] = np.nanpercentile(g, [10, 90], axis=0)
    lag = min(SPEED_LAG, f.shape[0] - 1)
    if lag >= 1:
        d = np.abs(f[lag:] - f[:-lag]) * (hz / lag)
        dv = ~np.isnan(d)
        dc = dv.sum(axis=0)
        s = np.where(dv, d, 0.0).sum(axis=0)
        out[4, dc > 0] = s[dc > 0] / dc[dc > 0]
    return out.reshape(-1)


def window_features(xy: np.ndarray, hz: float = RESAMPLE_HZ) -> np.ndarray | None:
    """Feature vector (NUM_FEATURES,) of one window of resampled joints (M, 13, 2) (NaN = missing), or
    None (see per_frame_features). Individual features may be NaN (e.g. wrists never seen)."""
    r = per_frame_features(xy)
    if r is None:
        return None
    f, ctr = r.values, r.centre
    duration = max(f.shape[0] - 1, 1) / hz
    stats = _nanstats(f, hz)
    g = np.full(4, np.nan)
    cv = ~np.isnan(ctr[:, 0])
    if cv.sum() >= 2:
        g[0], g[1] = np.std(ctr[cv, 0]), np.std(ctr[cv, 1])
        g[2], g[3] = _nanstats(ctr, hz).reshape(5, 2)[4]
    col = {n: i for i, n in enumerate(_PER_FRAME_NAMES)}
    sig = {n: (ctr[:, 1] if n == "global_y" else f[:, col[n]]) for n in _RATE_SIGNALS}
    rates = np.array([_crossing_rate(sig[n], duration, RATE_MIN_SWING.get(n, RATE_MIN_SWING["position"]))
                      for n in _RATE_SIGNALS])
    return np.concatenate([stats, g, rates, [float(r.centred_on_shoulders)]])


def sequence_windows(t: np.ndarray, xy: np.ndarray, vis: np.ndarray, window_s: float = WINDOW_S,
                     hop_s: float = HOP_S) -> list[np.ndarray]:
    """Feature vectors of the windows covering a sequence (one window when it is shorter than window_s).
    Windows where hips and shoulders are mostly unseen are left out."""
    grid, g = resample(t, xy, vis)
    if grid.size == 0:
        return []
    per = int(round(window_s * RESAMPLE_HZ)) + 1
    hop = max(1, int(round(hop_s * RESAMPLE_HZ)))
    if grid.size <= per:
        starts = [0]
        per = grid.size
    else:
        starts = list(range(0, grid.size - per + 1, hop))
        if starts[-1] != grid.size - per:
            starts.append(grid.size - per)
    centre_ok = ~np.isnan(mid_point(g[:, LSH], g[:, RSH])[:, 0]) | ~np.isnan(mid_point(g[:, LHIP], g[:, RHIP])[:, 0])
    out = []
    for s in starts:
        if centre_ok[s:s + per].mean() < MIN_WINDOW_COVERAGE:
            continue
        v = window_features(g[s:s + per])
        if v is not None:
            out.append(v)
    return out


# ------------------------------------------------------------------------------------------ model

@dataclass(frozen=True, eq=False)
class TreeEnsemble:
    """Gradient-boosted decision trees (multiclass, softmax), as plain arrays; inference in numpy.

    Trees rather than a linear model or an MLP because a detector on real video produces feature values
    outside Penn Action's range (a flickering wrist, a jittering far-side ankle): a tree keeps its last
    split's answer for an out-of-range value, where a weighted sum extrapolates. Missing features (NaN)
    follow the branch learned for missing values.

    Node arrays are concatenated over trees; children are indices local to their tree. Tree k adds its
    leaf value to class tree_class[k]; probabilities are softmax(baseline + sums)."""

    classes: tuple[str, ...]
    baseline: np.ndarray  # (C,)
    tree_start: np.ndarray  # (T,) first node of each tree
    tree_class: np.ndarray  # (T,)
    feature: np.ndarray  # (nodes,) feature index of a split
    threshold: np.ndarray  # (nodes,) go left when x <= threshold
    missing_left: np.ndarray  # (nodes,) bool: NaN goes left
    left: np.ndarray  # (nodes,) local index of the left child
    right: np.ndarray
    is_leaf: np.ndarray  # (nodes,) bool
    value: np.ndarray  # (nodes,) leaf value (learning rate included)
    depth: int  # longest root-to-leaf path

    ARRAYS = ("baseline", "tree_start", "tree_class", "feature", "threshold", "missing_left", "left", "right",
              "is_leaf", "value")

    def __post_init__(self) -> None:
        n = self.feature.shape[0]
        for name in ("threshold", "missing_left", "left", "right", "is_leaf", "value"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"tree array {name!r} has shape {getattr(self, name).shape}, expected ({n},)")
        if self.baseline.shape != (len(self.classes),) or self.tree_class.shape != self.tree_start.shape:
            raise ValueError("tree ensemble: inconsistent class or tree arrays")
        split = ~self.is_leaf
        if split.any() and (self.feature[split].max() >= NUM_FEATURES or self.feature[split].min() < 0):
            raise ValueError(f"the model uses feature indices outside the {NUM_FEATURES} this code computes")
        if np.any(self.tree_class >= len(self.classes)):
            raise ValueError("tree ensemble: a tree's class index is out of range")

    def raw(self, x: np.ndarray) -> np.ndarray:
        """(n, NUM_FEATURES) -> (n, C) summed scores."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        x = np.where(np.isfinite(x), x, np.nan)
        n = x.shape[0]
        node = np.broadcast_to(self.tree_start, (n, self.tree_start.size)).copy()
        rows = np.arange(n)[:, None]
        for _ in range(self.depth):
            leaf = self.is_leaf[node]
            if leaf.all():
                break
            v = x[rows, self.feature[node]]
            go_left = np.where(np.isnan(v), self.missing_left[node], v <= self.threshold[node])
            child = np.where(go_left, self.left[node], self.right[node])
            node = np.where(leaf, node, self.tree_start + child)
        out = np.tile(self.baseline, (n, 1))
        vals = self.value[node]
        for c in range(len(self.classes)):
            out[:, c] += vals[:, self.tree_class == c].sum(axis=1)
        return out

    def proba(self, x: np.ndarray) -> np.ndarray:
        """(n, NUM_FEATURES) -> (n, C) class probabilities."""
        z = self.raw(x)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    STORED_DTYPES = {"baseline": np.float64, "tree_start": np.int32, "tree_class": np.int16, "feature": np.int16,
                     "threshold": np.float32, "missing_left": np.uint8, "left": np.int16, "right": np.int16,
                     "is_leaf": np.uint8, "value": np.float32}

    def rounded(self) -> "TreeEnsemble":
        """The same trees with thresholds and leaf values rounded to float32, i.e. exactly what `save`
        stores (half the size); metrics computed with this model are what the saved file reproduces."""
        f32 = lambda a: a.astype(np.float32).astype(np.float64)  # noqa: E731
        return TreeEnsemble(self.classes, self.baseline, self.tree_start, self.tree_class, self.feature,
                            f32(self.threshold), self.missing_left, self.left, self.right, self.is_leaf,
                            f32(self.value), self.depth)

    def save(self, out_dir: str | Path, extra: dict | None = None) -> None:
        """model.npz (numpy arrays only) + model.json (classes, feature names, constants)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        arrays = {}
        for k in self.ARRAYS:
            a = np.asarray(getattr(self, k))
            arrays[k] = a.astype(self.STORED_DTYPES[k])
            if not np.array_equal(arrays[k].astype(a.dtype), a):
                raise ValueError(f"tree array {k!r} does not fit its stored type; save model.rounded()")
        np.savez_compressed(out / "model.npz", **arrays)
        meta = {"format": MODEL_FORMAT, "kind": "gradient-boosted trees (softmax)", "classes": list(self.classes),
                "trees": int(self.tree_start.size), "nodes": int(self.feature.size), "depth": self.depth,
                "num_features": NUM_FEATURES, "feature_names": list(FEATURE_NAMES),
                "resample_hz": RESAMPLE_HZ, "window_s": WINDOW_S, "hop_s": HOP_S,
                "min_visibility": MIN_VISIBILITY, "confidence_threshold": CONFIDENCE_THRESHOLD}
        meta.update(extra or {})
        (out / "model.json").write_text(json.dumps(meta, indent=1) + "\n")

    @classmethod
    def load(cls, model_dir: str | Path) -> "TreeEnsemble":
        """Read model.json + model.npz (allow_pickle=False: the file can hold nothing but arrays)."""
        d = Path(model_dir)
        meta = json.loads((d / "model.json").read_text())
        if meta.get("format") != MODEL_FORMAT:
            raise ValueError(f"{d / 'model.json'}: unknown model format {meta.get('format')!r}")
        if list(meta.get("feature_names", [])) != list(FEATURE_NAMES):
            raise ValueError(f"{d}: the model was trained on other features than this code computes; retrain it")
        with np.load(d / "model.npz", allow_pickle=False) as z:
            arrays = {k: z[k] for k in cls.ARRAYS}
        return cls(
            classes=tuple(meta["classes"]), baseline=arrays["baseline"].astype(np.float64),
            tree_start=arrays["tree_start"].astype(np.int64), tree_class=arrays["tree_class"].astype(np.int64),
            feature=arrays["feature"].astype(np.int64), threshold=arrays["threshold"].astype(np.float64),
            missing_left=arrays["missing_left"].astype(bool), left=arrays["left"].astype(np.int64),
            right=arrays["right"].astype(np.int64), is_leaf=arrays["is_leaf"].astype(bool),
            value=arrays["value"].astype(np.float64), depth=int(meta["depth"]))


class ExerciseRecognizer:
    """Recognise the exercise in a sequence of pose frames. `ExerciseRecognizer.load()` reads the
    committed model; `predict(frames)` averages the class probabilities over windows of WINDOW_S."""

    def __init__(self, model: TreeEnsemble, confidence_threshold: float = CONFIDENCE_THRESHOLD,
                 window_s: float = WINDOW_S, hop_s: float = HOP_S):
        self.model = model
        self.confidence_threshold = confidence_threshold
        self.window_s = window_s
        self.hop_s = hop_s

    @property
    def classes(self) -> tuple[str, ...]:
        return self.model.classes

    @classmethod
    def load(cls, path: str | Path = DEFAULT_MODEL_DIR, **kw) -> "ExerciseRecognizer":
        return cls(TreeEnsemble.load(path), **kw)

    def proba_arrays(self, t: np.ndarray, xy: np.ndarray, vis: np.ndarray) -> tuple[np.ndarray | None, int]:
        """Mean class probabilities over the sequence's windows (None when no window is usable), windows."""
        feats = sequence_windows(t, xy, vis, self.window_s, self.hop_s)
        if not feats:
            return None, 0
        return self.window_proba(np.stack(feats)).mean(axis=0), len(feats)

    def window_proba(self, x: np.ndarray) -> np.ndarray:
        """(n, NUM_FEATURES) -> (n, C): mean of the whole-body and the arms-ignored probabilities."""
        no_arms = np.array(x, dtype=np.float64, copy=True)
        no_arms[:, ARM_FEATURES] = np.nan
        return (self.model.proba(x) + self.model.proba(no_arms)) / 2

    def predict(self, frames: Sequence[PoseFrame | None], allowed: Iterable[str] | None = None) -> Recognition:
        """Recognition over all frames (None entries = frames without a pose).

        allowed: restrict the answer to these exercises (probabilities renormalised over them)."""
        frames = list(frames)
        t, xy, vis = pose_arrays(frames)
        return self._decide(t, xy, vis, len(frames), allowed)

    def _decide(self, t, xy, vis, n_frames: int, allowed=None) -> Recognition:
        n_pose = int(t.size)
        if n_pose == 0:
            return _cannot_tell("no person was found in the frames", n_frames, 0)
        span = float(t.max() - t.min())
        if n_pose < MIN_POSE_FRAMES or span < MIN_DURATION_S:
            return _cannot_tell(f"too little to decide: {n_pose} frame(s) with a pose over {span:.2f} s "
                                f"(need at least {MIN_POSE_FRAMES} frames and {MIN_DURATION_S:g} s)",
                                n_frames, n_pose)
        p, nw = self.proba_arrays(t, xy, vis)
        if p is None:
            return _cannot_tell("the shoulders and hips are not visible long enough to recognise the exercise",
                                n_frames, n_pose)
        classes = list(self.classes)
        if allowed is not None:
            allowed = set(allowed)
            mask = np.array([c in allowed for c in classes])
            if not mask.any():
                return _cannot_tell("none of the allowed exercises is known to the recogniser", n_frames, n_pose)
            p = np.where(mask, p, 0.0)
            p = p / p.sum()
        order = np.argsort(-p, kind="stable")
        top = tuple((classes[i], float(p[i])) for i in order[:TOP_K] if p[i] > 0)
        best, conf = top[0]
        if conf < self.confidence_threshold:
            return _cannot_tell(f"low confidence: the best candidate {best} has {conf:.0%} "
                                f"(threshold {self.confidence_threshold:.0%})", n_frames, n_pose, top, nw)
        return Recognition(best, conf, top, "", n_frames, n_pose, nw)


# ---------------------------------------------------------------------------------------- live use

@dataclass
class OnlineState:
    """What the live page shows. `exercise` is the locked exercise (user's override first), else None."""

    exercise: str | None
    locked: bool
    source: str  # "none" | "auto" | "user"
    last: Recognition | None
    streak: int  # consecutive confident predictions of the same exercise


class OnlineRecognizer:
    """Feed PoseFrames (or None) one at a time; every `every_s` seconds of stream time the last `window_s`
    seconds are recognised. Once the same exercise is predicted with confidence >= lock_confidence
    `lock_after` times in a row it is locked (and prediction stops, costing nothing). `override(name)`
    locks the user's choice; `reset()` forgets everything (back to automatic). While nothing is locked,
    `state.last` is the latest Recognition (candidate, confidence, top list, or the cannot-tell reason)."""

    def __init__(self, recognizer: ExerciseRecognizer | None = None, window_s: float = WINDOW_S,
                 every_s: float = 0.5, lock_after: int = 3, lock_confidence: float = 0.7):
        self.recognizer = recognizer or ExerciseRecognizer.load()
        self.window_s = window_s
        self.every_s = every_s
        self.lock_after = lock_after
        self.lock_confidence = lock_confidence
        self.reset()

    def reset(self) -> None:
        self._buf: deque[tuple[float, PoseFrame | None]] = deque()
        self._next_t: float | None = None
        self.state = OnlineState(None, False, "none", None, 0)

    def override(self, exercise: str) -> OnlineState:
        if exercise not in self.recognizer.classes:
            raise KeyError(f"unknown exercise {exercise!r}; known: {', '.join(self.recognizer.classes)}")
        self.state = OnlineState(exercise, True, "user", self.state.last, self.state.streak)
        return self.state

    def update(self, frame: PoseFrame | None, timestamp_s: float | None = None) -> OnlineState:
        if timestamp_s is None:
            if frame is None:
                raise ValueError("a frame without a pose needs its timestamp_s")
            timestamp_s = frame.timestamp_s
        t = float(timestamp_s)
        if self._buf and t < self._buf[-1][0]:  # the stream's clock restarted: start the window afresh
            self._buf.clear()
            self._next_t = None
        self._buf.append((t, frame))
        while self._buf and self._buf[0][0] < t - self.window_s:
            self._buf.popleft()
        if self.state.locked:
            return self.state
        if self._next_t is None:
            self._next_t = t + MIN_DURATION_S
        if t < self._next_t:
            return self.state
        self._next_t = t + self.every_s
        rec = self.recognizer.predict([f for _, f in self._buf])
        prev = self.state.last.exercise if self.state.last is not None else None
        confident = rec.exercise is not None and rec.confidence >= self.lock_confidence
        streak = (self.state.streak + 1 if rec.exercise == prev else 1) if confident else 0
        if confident and streak >= self.lock_after:
            self.state = OnlineState(rec.exercise, True, "auto", rec, streak)
        else:
            self.state = OnlineState(None, False, "none", rec, streak)
        return self.state


# ------------------------------------------------------------------------------------------- videos

ProgressFn = Callable[[int, int], None]


def video_poses(path: str | Path, max_seconds: float | None = None, progress: ProgressFn | None = None,
                estimator=None, max_side: int = 1280) -> list[PoseFrame | None]:
    """MediaPipe poses of a clip (or its first max_seconds), one entry per decoded frame (None = no pose)."""
    from ..media.estimator import PoseEstimator
    from ..media.video import probe, read_frames

    info = probe(path)
    expected = info.frame_count
    if max_seconds is not None and info.fps > 0:
        expected = min(expected, int(math.ceil(max_seconds * info.fps))) if expected else 0
    own = estimator is None
    est = estimator or PoseEstimator(static_image_mode=False)
    poses: list[PoseFrame | None] = []
    try:
        for t, img in read_frames(path, max_side=max_side):  # as pipeline.analyze_video
            if max_seconds is not None and t > max_seconds:
                break
            poses.append(est.process(img, t))
            if progress is not None:
                progress(len(poses), max(expected, len(poses)))
    finally:
        if own:
            est.close()
    return poses


_DEFAULT: ExerciseRecognizer | None = None


def default_recognizer() -> ExerciseRecognizer:
    """The committed model, loaded once per process."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = ExerciseRecognizer.load()
    return _DEFAULT


def recognize_video(path: str | Path, rules=None, max_seconds: float | None = None,
                    progress: ProgressFn | None = None, estimator=None,
                    recognizer: ExerciseRecognizer | None = None) -> Recognition:
    """Run the pose estimator over a clip (or its first max_seconds) and recognise the exercise.

    rules: a RuleSet; when given, only exercises it has a rule for can be answered. Raises VideoError for
    unreadable files; a clip without a person gives a "cannot tell" Recognition."""
    poses = video_poses(path, max_seconds=max_seconds, progress=progress, estimator=estimator)
    allowed = list(rules.exercises) if rules is not None else None
    return (recognizer or default_recognizer()).predict(poses, allowed=allowed)


__all__ = [
    "CONFIDENCE_THRESHOLD", "DEFAULT_MODEL_DIR", "ExerciseRecognizer", "FEATURE_NAMES", "JOINT_LANDMARKS",
    "MIN_DURATION_S", "MIN_POSE_FRAMES", "NUM_FEATURES", "OnlineRecognizer", "OnlineState", "Recognition",
    "TreeEnsemble", "default_recognizer", "pose_arrays", "recognize_video", "resample", "sequence_windows",
    "video_poses", "window_features",
]
