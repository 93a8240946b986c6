"""Transformed copies of a video, the way people really film it (for the robustness suite, `run.robustness`).

Each transform is named, has fixed parameters and a seed: `TRANSFORMS[name].build(clip, seed)` gives a
`Recipe` whose `op(frame, t)` turns one decoded RGB frame at time t into the variant's frame (or None: drop
it). The same clip, name, parameters and seed always give the same pixels. Ops are called on the frames in
order (fps15 keeps a little state). `write_variant` decodes a clip, applies a recipe and writes H.264.
Parameters are chosen so that a person watching the variant would count the same reps as on the original.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..core.io import atomic_path
from ..core.landmarks import PoseLandmark

FrameOp = Callable[[np.ndarray, float], "np.ndarray | None"]
RECIPE_VERSION = 1  # bump when a transform's pixels change: cached variants are then made again
MIN_VISIBILITY = 0.5  # a sampled landmark below this is not used to place a box or a crop line
OUTLIER_LIMBS = 1.5  # the box: a joint farther than this many limb lengths from its median place is a misdetection
MAX_BOX_LIMBS = 2.5  # the box: at most this many limb lengths across (plus the margin)
OUTLIER_MADS = 3.0  # the crops: a part farther than this many (scaled) MADs from its median line is a misdetection


class NotApplicable(ValueError):
    """The transform cannot be made on this clip (e.g. the feet are already out of the picture)."""


@dataclass(frozen=True)
class PoseSample:
    """Poses sampled from the clip, in pixels of the clip's decoded frame size: where to put boxes and crops."""
    t: np.ndarray  # (n,) seconds
    xy: np.ndarray  # (n, 33, 2) pixels
    vis: np.ndarray  # (n, 33) 0..1

    def point(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(n, 2) pixels and (n,) visibility of a landmark ("left_knee"), or of "mid_<joint>": the mean of both
        sides where both are seen, else the better-seen side (a profile view hides the far one)."""
        if name.startswith("mid_"):
            (a, va), (b, vb) = self.point("left_" + name[4:]), self.point("right_" + name[4:])
            both = np.minimum(va, vb) >= MIN_VISIBILITY
            better = np.where((va >= vb)[:, None], a, b)
            return np.where(both[:, None], (a + b) / 2.0, better), np.where(both, np.minimum(va, vb),
                                                                             np.maximum(va, vb))
        i = int(PoseLandmark[name.upper()])
        return self.xy[:, i], self.vis[:, i]


@dataclass(frozen=True)
class Clip:
    """What a transform may know about the clip: decoded frame size, duration, frame rate, sampled poses, and
    the limb to hide (the joint, the landmark it points to, how far along: from the exercise's rule)."""
    width: int
    height: int
    duration_s: float
    fps: float
    poses: PoseSample | None = None
    limb: tuple[str, str, float] = ("knee", "ankle", 1.0)


@dataclass(frozen=True)
class Recipe:
    op: FrameOp
    fps: float  # the variant's nominal frame rate
    note: str = ""  # where the box / crop / cut went, for the report


@dataclass(frozen=True)
class Transform:
    name: str
    what: str  # one line: what it does to the picture
    build: Callable[..., Recipe]  # build(clip, seed, **params)
    params: dict = field(default_factory=dict)
    needs_poses: bool = False

    def recipe(self, clip: Clip, seed: int = 0) -> Recipe:
        return self.build(clip, seed, **self.params)

    def key(self, seed: int, limb: tuple[str, str, float] | None = None) -> str:
        """A short name for the cache: the transform, its parameters, the seed and (when placed from the
        poses) the limb to hide."""
        spec = {"v": RECIPE_VERSION, "name": self.name, "params": self.params, "seed": seed,
                "limb": list(limb) if (limb is not None and self.needs_poses) else None}
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:10]


# ------------------------------------------------------------------------------------------- geometry helpers

def _warp(frame: np.ndarray, angle_deg: float, zoom: float, shift_xy: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Rotate (counter-clockwise) and zoom about the centre, then shift (pixels); black outside the picture."""
    import cv2

    h, w = frame.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle_deg, zoom)
    m[:, 2] += shift_xy
    return cv2.warpAffine(frame, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _centre_zoom(frame: np.ndarray, zoom: float) -> np.ndarray:
    import cv2

    h, w = frame.shape[:2]
    cw, ch = max(2, int(round(w / zoom))), max(2, int(round(h / zoom)))
    x0, y0 = (w - cw) // 2, (h - ch) // 2
    return cv2.resize(frame[y0:y0 + ch, x0:x0 + cw], (w, h), interpolation=cv2.INTER_LINEAR)


def _fit(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """The frame scaled to fit a black width x height canvas, centred (letterbox or pillarbox)."""
    import cv2

    h, w = frame.shape[:2]
    scale = min(width / w, height / h)
    nw, nh = max(2, int(round(w * scale))), max(2, int(round(h * scale)))
    small = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    out = np.zeros((height, width, 3), np.uint8)
    x0, y0 = (width - nw) // 2, (height - nh) // 2
    out[y0:y0 + nh, x0:x0 + nw] = small
    return out


def _even(x: float) -> int:
    return max(2, int(round(x)) // 2 * 2)


def _frame_rng(seed: int, t: float) -> np.random.Generator:
    """Randomness of one frame: the same for the same seed and timestamp (ms), whatever was drawn before."""
    return np.random.default_rng([seed, int(round(t * 1000))])


def _smooth_wave(rng: np.random.Generator, periods_s: tuple[float, float]) -> Callable[[float], float]:
    """A slow wave in -1..1: two sinusoids with random periods in the range and random phases."""
    p1, p2 = rng.uniform(*periods_s, size=2)
    f1, f2 = rng.uniform(0, 2 * math.pi, size=2)
    return lambda t: 0.6 * math.sin(2 * math.pi * t / p1 + f1) + 0.4 * math.sin(2 * math.pi * t / p2 + f2)


# ------------------------------------------------------------------------------------------- the transforms

def _after_cut(clip: Clip, at: float, shown: Callable[[np.ndarray], np.ndarray], what: str) -> Recipe:
    t_cut = at * clip.duration_s
    return Recipe(lambda frame, t: frame if t < t_cut else shown(frame), clip.fps, f"{what} from {t_cut:.2f} s")


def cut_zoom(clip: Clip, seed: int, at: float = 0.45, zoom: float = 1.3) -> Recipe:
    return _after_cut(clip, at, lambda f: _centre_zoom(f, zoom), f"{zoom:g}x centre crop")


def cut_mirror(clip: Clip, seed: int, at: float = 0.45) -> Recipe:
    return _after_cut(clip, at, lambda f: np.ascontiguousarray(f[:, ::-1]), "mirrored")


def cut_rotate(clip: Clip, seed: int, at: float = 0.45, deg: float = 9.0) -> Recipe:
    return _after_cut(clip, at, lambda f: _warp(f, deg, 1.0), f"rotated {deg:g} deg")


def handheld(clip: Clip, seed: int, pan: float = 0.03, zoom_min: float = 1.0, zoom_max: float = 1.15,
             roll_deg: float = 3.0, period_min_s: float = 5.0, period_max_s: float = 14.0) -> Recipe:
    rng = np.random.default_rng(seed)
    waves = [_smooth_wave(rng, (period_min_s, period_max_s)) for _ in range(4)]
    mid, half = (zoom_max + zoom_min) / 2, (zoom_max - zoom_min) / 2

    def op(frame: np.ndarray, t: float) -> np.ndarray:
        h, w = frame.shape[:2]
        dx, dy, z, roll = (wave(t) for wave in waves)
        return _warp(frame, roll_deg * roll, mid + half * z, (pan * w * dx, pan * h * dy))

    return Recipe(op, clip.fps, f"pan +-{pan:.0%}, zoom {zoom_min:g}-{zoom_max:g}, roll +-{roll_deg:g} deg")


def _limb_points(clip: Clip, side: str, rows: np.ndarray) -> tuple[np.ndarray, float]:
    """Where the joint went in the sampled rows and, where its limb's end was seen too, the limb up to
    `reach`; and the limb's length. A detection far from the joint's usual place (a skeleton found in the
    rack) is left out: within a few seconds a joint stays within about a limb's length of its median place."""
    joint, toward, reach = clip.limb
    a, va = clip.poses.point(f"{side}_{joint}")
    b, vb = clip.poses.point(f"{side}_{toward}")
    seen = rows & (va >= MIN_VISIBILITY)
    both = seen & (vb >= MIN_VISIBILITY)
    if seen.sum() < 2:
        return np.empty((0, 2)), 0.0
    length = np.linalg.norm(b - a, axis=1)
    limb = float(np.median(length[both] if both.sum() >= 2 else length[seen]))
    near = np.linalg.norm(a - np.median(a[seen], axis=0), axis=1) <= OUTLIER_LIMBS * limb
    seen, both = seen & near, both & near
    ends = a[both] + reach * (b[both] - a[both])
    return np.concatenate([a[seen], (a[both] + ends) / 2, ends]), limb


def occlude(clip: Clip, seed: int, start: float = 0.35, length: float = 0.3, min_s: float = 1.0,
            max_s: float = 4.0, grey: int = 60, pad: float = 0.35) -> Recipe:
    """A solid grey box over the exercise's limb (the side seen better), for a few seconds, placed from the
    poses sampled in that time: it covers where the joint and its limb went, plus a margin."""
    if clip.poses is None:
        raise NotApplicable("no poses sampled to place the box")
    t0 = start * clip.duration_s
    t1 = t0 + min(max_s, max(min_s, length * clip.duration_s))
    rows = (clip.poses.t >= t0 - 0.5) & (clip.poses.t <= t1 + 0.5)
    sides = {s: _limb_points(clip, s, rows) for s in ("left", "right")}
    side = max(sides, key=lambda s: len(sides[s][0]))
    pts, limb = sides[side]
    joint = clip.limb[0]
    if len(pts) < 3:
        raise NotApplicable(f"the {joint} is not seen around {t0:.1f}-{t1:.1f} s")
    long_side = max(clip.width, clip.height)
    margin = min(max(pad * limb, 0.03 * long_side), 0.15 * long_side)
    # A camera that moves (or cuts) spreads the joint's places over the picture: the box stays the size of
    # the limb's reach, around the joint's median place, instead of hiding half the picture.
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    centre, half = np.median(pts, axis=0), MAX_BOX_LIMBS * limb / 2
    lo, hi = np.maximum(lo, centre - half), np.minimum(hi, centre + half)
    x0, y0 = np.floor(lo - margin).astype(int)
    x1, y1 = np.ceil(hi + margin).astype(int)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(clip.width, x1), min(clip.height, y1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise NotApplicable(f"the {joint} is outside the picture around {t0:.1f}-{t1:.1f} s")

    def op(frame: np.ndarray, t: float) -> np.ndarray:
        if not t0 <= t < t1:
            return frame
        out = frame.copy()
        out[y0:y1, x0:x1] = grey
        return out

    return Recipe(op, clip.fps, f"{side} {joint} hidden {t0:.1f}-{t1:.1f} s, box x {x0}-{x1} y {y0}-{y1}")


def _inliers(values: np.ndarray, floor: float) -> np.ndarray:
    """The values within OUTLIER_MADS robust deviations of their median (the spread at least `floor`)."""
    med = np.median(values)
    spread = max(1.4826 * float(np.median(np.abs(values - med))), floor)
    return values[np.abs(values - med) <= OUTLIER_MADS * spread]


def _edge_crop(clip: Clip, part: tuple[np.ndarray, np.ndarray], axis: np.ndarray, quantile: float,
               what: str, min_cut: float, min_keep: float) -> Recipe:
    """Cut the picture at the body part's line, on the side the part points to (the feet's side: below the
    body standing, left or right of it lying). The line sits where the part reaches farthest toward that
    edge (a robust quantile over the sampled poses): the part is out of the picture there and the body on
    the other side of it is never cut."""
    xy, ok = part
    if ok.sum() < 3 or not np.all(np.isfinite(axis)):
        raise NotApplicable(f"the {what} is not seen in the sampled poses")
    vertical = abs(axis[1]) >= abs(axis[0])
    size = clip.height if vertical else clip.width
    coord = _inliers(xy[ok, 1] if vertical else xy[ok, 0], floor=0.01 * size)
    toward_end = axis[1] > 0 if vertical else axis[0] > 0  # the part points to the bottom / right edge
    line = float(np.quantile(coord, 1 - quantile if toward_end else quantile))
    keep = int(round(line)) if toward_end else size - int(round(line))
    if size - keep < min_cut * size:
        raise NotApplicable(f"the {what} is already at the edge of the picture")
    keep = _even(max(keep, min_keep * size))
    edge = ("bottom" if toward_end else "top") if vertical else ("right" if toward_end else "left")
    lo = 0 if toward_end else size - keep

    def op(frame: np.ndarray, t: float) -> np.ndarray:
        return np.ascontiguousarray(frame[lo:lo + keep] if vertical else frame[:, lo:lo + keep])

    w, h = (clip.width, keep) if vertical else (keep, clip.height)
    return Recipe(op, clip.fps, f"cut at the {what} from the {edge}: {w}x{h} kept")


def _axis(clip: Clip, frm: str, to: str) -> np.ndarray:
    a, va = clip.poses.point(frm)
    b, vb = clip.poses.point(to)
    ok = (va >= MIN_VISIBILITY) & (vb >= MIN_VISIBILITY)
    return np.median(b[ok] - a[ok], axis=0) if ok.any() else np.array([np.nan, np.nan])


def crop_feet(clip: Clip, seed: int, quantile: float = 0.05, min_cut: float = 0.03, min_keep: float = 0.4) -> Recipe:
    if clip.poses is None:
        raise NotApplicable("no poses sampled to place the crop")
    knee, vk = clip.poses.point("mid_knee")
    ankle, va = clip.poses.point("mid_ankle")
    shin_middle = ((knee + ankle) / 2, (vk >= MIN_VISIBILITY) & (va >= MIN_VISIBILITY))
    return _edge_crop(clip, shin_middle, _axis(clip, "mid_hip", "mid_ankle"), quantile, "shin middle",
                      min_cut, min_keep)


def crop_head(clip: Clip, seed: int, quantile: float = 0.05, neck: float = 0.35, min_cut: float = 0.03,
              min_keep: float = 0.4) -> Recipe:
    if clip.poses is None:
        raise NotApplicable("no poses sampled to place the crop")
    shoulders, vs = clip.poses.point("mid_shoulder")
    nose, vn = clip.poses.point("nose")
    neck_point = (shoulders + neck * (nose - shoulders), (vs >= MIN_VISIBILITY) & (vn >= MIN_VISIBILITY))
    # The torso's direction says where the head is (the nose's own direction from the shoulders is
    # unreliable: ahead of the body in a profile, below the shoulders seen from the front of a push-up).
    return _edge_crop(clip, neck_point, _axis(clip, "mid_hip", "mid_shoulder"), quantile, "neck", min_cut, min_keep)


def dark(clip: Clip, seed: int, gamma: float = 2.2, noise: float = 3.0, fields: int = 4) -> Recipe:
    """Low light: gamma darkening (mid grey 128 -> 56) and a little grey sensor noise (a few fixed noise
    fields, one picked per frame from the seed and the timestamp: cheap and reproducible)."""
    import cv2

    lut = np.clip(np.round(255.0 * (np.arange(256) / 255.0) ** gamma), 0, 255).astype(np.uint8)
    cache: dict[tuple[int, int], list[tuple[np.ndarray, np.ndarray]]] = {}

    def op(frame: np.ndarray, t: float) -> np.ndarray:
        h, w = frame.shape[:2]
        if (h, w) not in cache:  # noise as (added, subtracted) uint8 parts: OpenCV saturates at 0 and 255
            n = np.round(np.random.default_rng([seed, h, w]).normal(0, noise, (fields, h, w, 1))).astype(np.int16)
            n = np.repeat(n, 3, axis=3)
            cache[(h, w)] = [(np.clip(f, 0, 255).astype(np.uint8), np.clip(-f, 0, 255).astype(np.uint8)) for f in n]
        plus, minus = cache[(h, w)][int(_frame_rng(seed, t).integers(fields))]
        return cv2.subtract(cv2.add(cv2.LUT(frame, lut), plus), minus)

    return Recipe(op, clip.fps, f"gamma {gamma:g}, noise sigma {noise:g}")


def lowres(clip: Clip, seed: int, long_side: int = 320, short_side: int = 240) -> Recipe:
    w, h = (long_side, short_side) if clip.width >= clip.height else (short_side, long_side)
    return Recipe(lambda frame, t: _fit(frame, w, h), clip.fps, f"{w}x{h} letterboxed")


def fps15(clip: Clip, seed: int, fps: float = 15.0) -> Recipe:
    """Keep the first frame of every 1/fps slot of time (a 30 fps clip loses every other frame; 24 or 25 fps
    clips lose about 2 in 5); timestamps are kept."""
    last = [-1]

    def op(frame: np.ndarray, t: float) -> np.ndarray | None:
        slot = math.floor(t * fps + 0.25)  # +0.25: timestamps a hair early (2/30 s * 15 = 0.999...) keep their slot
        if slot <= last[0]:
            return None
        last[0] = slot
        return frame

    return Recipe(op, fps, f"{fps:g} fps")


def portrait(clip: Clip, seed: int) -> Recipe:
    """Landscape (or square) into a 9:16 portrait canvas, black bars above and below; portrait into a 16:9
    landscape canvas, bars left and right. The long side stays as it was."""
    long_side = max(clip.width, clip.height)
    if clip.width >= clip.height:
        w, h = _even(long_side * 9 / 16), _even(long_side)
    else:
        w, h = _even(long_side), _even(long_side * 9 / 16)
    return Recipe(lambda frame, t: _fit(frame, w, h), clip.fps, f"{w}x{h} canvas")


def jpeg(clip: Clip, seed: int, quality: int = 12) -> Recipe:
    import cv2

    def op(frame: np.ndarray, t: float) -> np.ndarray:
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)

    return Recipe(op, clip.fps, f"JPEG quality {quality}")


def shake(clip: Clip, seed: int, shift: float = 0.012, roll_deg: float = 0.8, zoom: float = 1.04) -> Recipe:
    def op(frame: np.ndarray, t: float) -> np.ndarray:
        h, w = frame.shape[:2]
        dx, dy, roll = np.clip(_frame_rng(seed, t).normal(0, 0.5, 3), -1, 1)
        return _warp(frame, roll_deg * roll, zoom, (shift * max(w, h) * dx, shift * max(w, h) * dy))

    return Recipe(op, clip.fps, f"jitter up to {shift:.1%} and {roll_deg:g} deg a frame")


def blur(clip: Clip, seed: int, sigma: float = 0.003) -> Recipe:
    import cv2

    px = sigma * max(clip.width, clip.height)
    return Recipe(lambda frame, t: cv2.GaussianBlur(frame, (0, 0), px), clip.fps, f"Gaussian blur {px:.1f} px")


def reencode(clip: Clip, seed: int) -> Recipe:
    return Recipe(lambda frame, t: frame, clip.fps, "the frames as decoded")


CONTROL = "reencode"  # the untransformed frames written again: what re-encoding alone changes
TRANSFORMS: dict[str, Transform] = {t.name: t for t in (
    Transform("reencode", "control: the same frames, decoded and written again (H.264)", reencode),
    Transform("cut_zoom", "hard cut at 45% of the clip to a 1.3x centre crop of the same set", cut_zoom),
    Transform("cut_mirror", "hard cut at 45% of the clip to the mirrored picture", cut_mirror),
    Transform("cut_rotate", "hard cut at 45% of the clip to the picture rotated 9 deg", cut_rotate),
    Transform("handheld", "slow handheld drift: pan +-3%, zoom 1.0-1.15, roll +-3 deg (periods 5-14 s)", handheld),
    Transform("shake", "fast small jitter: up to ~1% shift and 0.8 deg roll a frame", shake),
    Transform("occlude", "a grey box over the exercise's limb for 1-4 s from 35% of the clip", occlude,
              needs_poses=True),
    Transform("crop_feet", "the picture cut at the shin middle (feet out of frame)", crop_feet, needs_poses=True),
    Transform("crop_head", "the picture cut at the neck (head out of frame)", crop_head, needs_poses=True),
    Transform("dark", "low light: gamma 2.2 and a little noise", dark),
    Transform("lowres", "320x240 (240x320 for portrait), letterboxed", lowres),
    Transform("fps15", "15 frames a second (frames dropped, timestamps kept)", fps15),
    Transform("portrait", "landscape in a 9:16 portrait frame (portrait in a 16:9 frame), black bars", portrait),
    Transform("jpeg", "heavy compression: every frame through JPEG quality 12", jpeg),
    Transform("blur", "out of focus: Gaussian blur of 0.3% of the long side", blur),
)}


def write_variant(src: str | Path, dst: str | Path, recipe: Recipe, max_side: int = 1280, crf: int = 18,
                  preset: str = "veryfast") -> int:
    """Decode src (upright, at most max_side), apply the recipe and write an H.264 mp4 to dst (atomically:
    a failure leaves no file). Returns the frames written. crf 18: the encoding itself changes little."""
    from .video import read_frames
    from .writer import H264Writer

    written = 0
    with atomic_path(dst) as tmp:
        writer = None
        try:
            for t, frame in read_frames(src, max_side=max_side):
                out = recipe.op(frame, t)
                if out is None:
                    continue
                if writer is None:
                    writer = H264Writer(tmp, out.shape[1], out.shape[0], recipe.fps, crf=crf, preset=preset)
                writer.write(t, out)
                written += 1
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            raise ValueError(f"{src}: the transform kept no frame")
    return written
