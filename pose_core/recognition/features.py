"""Recognition features: a pose sequence -> the 13 Penn-compatible joints -> resampled, imputed,
normalised and mirrored per-frame features -> window statistics (see the package docstring for the
design). Pure numpy; the same code for MediaPipe detections and Penn Action annotations."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from ..core.landmarks import PoseLandmark
from ..core.types import PoseFrame

L = PoseLandmark

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
MIN_WINDOW_COVERAGE = 0.6  # share of a window's grid points that must have hips or shoulders
WINDOW_S = 3.0  # prediction window; longer sequences are covered by windows every HOP_S
HOP_S = 0.5
SPEED_LAG = 3  # grid steps (0.2 s) over which speeds are measured
SIDE_BOTH_COVERAGE = 0.8  # a limb is averaged over both sides only if each is seen this often in a window

# Typical length of each limb segment over the torso length (90th percentile over a clip, Penn Action
# train split, median over clips). Used to estimate the body scale from several segments.
SEGMENT_TORSO_RATIO = {"upper_arm": 0.53, "forearm": 0.48, "thigh": 0.80, "shank": 0.68}
# Where a hidden torso joint lies (same data, median over frames): the mid-shoulder at this fraction of the
# way from the mid-hip to the head; the mid-hip at this fraction from the mid-shoulder to the mid-knee.
SHOULDER_ON_HIP_HEAD = 0.715
HIP_ON_SHOULDER_KNEE = 0.587


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


def _one_side_per_limb(c: np.ndarray) -> None:
    """In place: one consistent side per limb. A detector's far-side arm or leg flickers in and out of
    view, and averaging it in only when seen would make the limb jump between two bodies' worth of
    positions."""
    for chain in ((LEL, LWR, REL, RWR), (LKN, LAN, RKN, RAN)):
        left, right = list(chain[:2]), list(chain[2:])
        cov_l = float(np.mean(~np.isnan(c[:, left, 0]).any(axis=1)))
        cov_r = float(np.mean(~np.isnan(c[:, right, 0]).any(axis=1)))
        if min(cov_l, cov_r) < SIDE_BOTH_COVERAGE:
            c[:, right if cov_l >= cov_r else left] = np.nan


def _mirror_head_forward(c: np.ndarray, merged: dict[str, np.ndarray]) -> None:
    """In place: the canonical mirror, the head on the +x side of the ankles (else of the centre, else the
    shoulders')."""
    for ref in (c[:, HEAD, 0] - merged["ankle"][:, 0], c[:, HEAD, 0], merged["shoulder"][:, 0]):
        d = ref[~np.isnan(ref)]
        if d.size and abs(float(d.mean())) > 1e-9:
            if d.mean() < 0:
                c[..., 0] *= -1
                for v in merged.values():
                    v[:, 0] *= -1
            break


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
    _one_side_per_limb(c)
    merged = {k: mid_point(c[:, a], c[:, b]) for k, (a, b) in _PAIRS.items()}
    _mirror_head_forward(c, merged)
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
    return [v for _, _, v in timed_windows(t, xy, vis, window_s, hop_s)]


def timed_windows(t: np.ndarray, xy: np.ndarray, vis: np.ndarray, window_s: float = WINDOW_S,
                  hop_s: float = HOP_S) -> list[tuple[float, float, np.ndarray]]:
    """(start s, end s, feature vector) of the windows covering a sequence, as `sequence_windows`: the times
    say which stretch of the clip a window shows (training labels a window by the reps counted in it)."""
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
            out.append((float(grid[s]), float(grid[s + per - 1]), v))
    return out
