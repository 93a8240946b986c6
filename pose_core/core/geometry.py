"""Angles from landmarks.

Conventions (documented here once, used everywhere):
- A *joint angle* is the angle at the middle joint b between segments b->a and b->c, in degrees,
  0..180, where 180 means a straight limb (knee straight when standing) and smaller means more flexed.
- A *segment angle* of a->b against "vertical" is the angle between the vector a->b and "up" on the
  image (0 = a->b points straight up, 90 = horizontal, 180 = straight down); against "horizontal" it is
  the acute angle to the horizontal line (0..90).
- A *height* is the vertical position of a joint, up positive, in percent of the torso length
  (shoulder-hip distance), so it does not depend on the camera's distance. Its offset is arbitrary:
  only changes of it are meaningful (the counter removes a moving baseline).
All maths runs on pixel coordinates, so the image's aspect ratio does not distort angles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .landmarks import SIDED_JOINTS, PoseLandmark, landmark_for
from .types import PoseFrame

L = PoseLandmark


def joint_angle_deg(a: np.ndarray, b: np.ndarray, c: np.ndarray, dims: int = 2) -> float:
    """Angle at b (degrees, 0..180) between b->a and b->c, in the image plane (dims=2, the first two
    coordinates) or in 3D (dims=3, metric world landmarks). NaN if a segment has zero length."""
    v1 = np.asarray(a, dtype=float)[:dims] - np.asarray(b, dtype=float)[:dims]
    v2 = np.asarray(c, dtype=float)[:dims] - np.asarray(b, dtype=float)[:dims]
    n1, n2 = float(np.linalg.norm(v1)), float(np.linalg.norm(v2))
    if n1 < 1e-9 or n2 < 1e-9:
        return math.nan
    cos = float(np.dot(v1, v2) / (n1 * n2))
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))


def segment_angle_deg(a: np.ndarray, b: np.ndarray, reference: str = "vertical", dims: int = 2) -> float:
    """Angle of the segment a->b against the image's vertical (0..180, 0 = pointing up) or horizontal
    (0..90). Image y grows downwards; "up" is -y. dims=3: in 3D (world landmarks, y down as in the image;
    "horizontal" is then the x-z plane)."""
    dx = float(b[0] - a[0])
    dy = float(b[1] - a[1])
    dz = float(b[2] - a[2]) if dims == 3 else 0.0
    n = math.sqrt(dx * dx + dy * dy + dz * dz)
    if n < 1e-9:
        return math.nan
    if reference == "vertical":
        return math.degrees(math.acos(max(-1.0, min(1.0, -dy / n))))
    if reference == "horizontal":
        return math.degrees(math.atan2(abs(dy), math.hypot(dx, dz)))
    raise ValueError(f"reference must be 'vertical' or 'horizontal', got {reference!r}")


MID_BOTH_MIN_VISIBILITY = 0.5


def _resolve(frame: PoseFrame, joint: str, side: str, world: bool = False) -> tuple[np.ndarray, float]:
    """Pixel point (or metric 3D point, world=True) and visibility of a joint name on one side ("mid_*"
    average both sides)."""
    px = frame.world if world else frame.pixels
    vis = frame.visibility
    if joint == "nose":
        return px[L.NOSE], float(vis[L.NOSE])
    if joint == "torso_centre":
        # The mean of both shoulders and both hips (those seen): four landmarks' jitter averages out, so the
        # body's own up-down movement shows better than in any one of them (a skipping rope's small jumps).
        four = [L.LEFT_SHOULDER, L.RIGHT_SHOULDER, L.LEFT_HIP, L.RIGHT_HIP]
        seen = [i for i in four if vis[i] >= MID_BOTH_MIN_VISIBILITY] or four
        return px[seen].mean(axis=0), float(min(vis[i] for i in seen))
    for fixed in ("left", "right"):
        if joint.startswith(fixed + "_"):
            lm = landmark_for(joint[len(fixed) + 1:], fixed)
            return px[lm], float(vis[lm])
    if joint.startswith("mid_"):
        # The midpoint of both sides; when one side is hidden (a side view, or annotations that mark the far
        # side invisible) the visible side stands in for it: the midline is close to it in a profile view.
        base = joint[4:]
        li, ri = landmark_for(base, "left"), landmark_for(base, "right")
        lv, rv = float(vis[li]), float(vis[ri])
        if min(lv, rv) >= MID_BOTH_MIN_VISIBILITY or abs(lv - rv) < 1e-9:
            return (px[li] + px[ri]) / 2.0, min(lv, rv)
        return (px[li], lv) if lv > rv else (px[ri], rv)
    lm = landmark_for(joint, side)
    return px[lm], float(vis[lm])


def torso_length_px(frame: PoseFrame) -> float:
    """Distance between mid-shoulder and mid-hip in pixels."""
    px = frame.pixels
    ms = (px[L.LEFT_SHOULDER] + px[L.RIGHT_SHOULDER]) / 2
    mh = (px[L.LEFT_HIP] + px[L.RIGHT_HIP]) / 2
    return float(math.hypot(*(ms - mh)))


# Typical length of each body segment relative to the torso (shoulder-hip), on people standing square to the
# camera (Penn Action's training split; the same figures as the recogniser's).
_SEGMENTS = ((L.LEFT_SHOULDER, L.LEFT_ELBOW, L.RIGHT_SHOULDER, L.RIGHT_ELBOW, 0.53),
             (L.LEFT_ELBOW, L.LEFT_WRIST, L.RIGHT_ELBOW, L.RIGHT_WRIST, 0.48),
             (L.LEFT_HIP, L.LEFT_KNEE, L.RIGHT_HIP, L.RIGHT_KNEE, 0.80),
             (L.LEFT_KNEE, L.LEFT_ANKLE, L.RIGHT_KNEE, L.RIGHT_ANKLE, 0.68))
SCALE_MIN_VISIBILITY = 0.5


def body_scale_px(frame: PoseFrame) -> float:
    """The body's size on the image, in pixels of torso length: the median of what the torso and each limb
    segment (the longer side, each over its typical ratio to the torso) say. One foreshortened segment (the
    torso of a push-up seen head-on, the thighs of a squat seen from the front) does not change it, so a
    height in these units moves with the body, not with the camera's view of it. NaN when nothing is seen."""
    px, vis = frame.pixels, frame.visibility
    est = [torso_length_px(frame)] if min(vis[L.LEFT_SHOULDER], vis[L.RIGHT_SHOULDER], vis[L.LEFT_HIP],
                                           vis[L.RIGHT_HIP]) >= SCALE_MIN_VISIBILITY else []
    for la, lb, ra, rb, ratio in _SEGMENTS:
        sides = [math.hypot(*(px[a] - px[b])) for a, b in ((la, lb), (ra, rb))
                 if min(vis[a], vis[b]) >= SCALE_MIN_VISIBILITY]
        if sides:
            est.append(max(sides) / ratio)
    est = [e for e in est if e > 1e-6]
    return float(np.median(est)) if est else math.nan


# Kinds that can be measured on the metric world landmarks (space = "world").
WORLD_KINDS = ("joint", "segment", "offset")


@dataclass(frozen=True)
class AngleDef:
    """How to measure one named angle. Loaded from the rules file (see rules.py)."""

    name: str
    kind: str  # "joint" | "segment" | "height"
    joints: tuple[str, ...]  # 3 for joint, 2 for segment, 1 for height
    side: str = "auto"  # "auto" | "left" | "right" | "both"
    reference: str = "vertical"  # for kind = "segment"
    unit: str = "deg"
    # "image": measured on the picture (2D); "world": joint and segment angles and line offsets measured on
    # MediaPipe's metric 3D landmarks, which a camera at an angle does not foreshorten (the image is used when
    # a pose has none).
    space: str = "image"


def _measure_side(frame: PoseFrame, d: AngleDef, side: str, scale: float | None = None,
                  origin_y: float = 0.0) -> tuple[float, float]:
    world = d.space == "world" and frame.world is not None and d.kind in WORLD_KINDS
    pts = [_resolve(frame, j, side, world) for j in d.joints]
    vis = min(v for _, v in pts)
    if d.kind == "joint":
        value = joint_angle_deg(pts[0][0], pts[1][0], pts[2][0], dims=3 if world else 2)
    elif d.kind == "segment":
        value = segment_angle_deg(pts[0][0], pts[1][0], d.reference, dims=3 if world else 2)
    elif d.kind == "height":
        scale = scale or body_scale_px(frame)
        value = -100.0 * (float(pts[0][0][1]) - origin_y) / scale if scale > 1e-6 else math.nan
    elif d.kind == "rise":
        scale = scale or body_scale_px(frame)
        value = 100.0 * float(pts[1][0][1] - pts[0][0][1]) / scale if scale > 1e-6 else math.nan
    elif d.kind == "offset":
        value = (line_offset_3d_pct if world else line_offset_pct)(pts[0][0], pts[1][0], pts[2][0])
    else:  # validated on load; kept for safety with hand-built definitions
        raise ValueError(f"unknown angle kind {d.kind!r}")
    return value, vis


def line_offset_pct(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    """Signed distance of b from the straight line a-c, in percent of |a-c|; positive when b lies below the
    line on the image (a push-up's hips sagging toward the floor), negative above it (piking)."""
    d = np.asarray(c, dtype=float)[:2] - np.asarray(a, dtype=float)[:2]
    n = math.hypot(*d)
    if n < 1e-9:
        return math.nan
    normal = np.array([-d[1], d[0]]) / n
    if normal[1] < 0:  # point it down the image
        normal = -normal
    return 100.0 * float(np.dot(np.asarray(b, dtype=float)[:2] - np.asarray(a, dtype=float)[:2], normal)) / n


def line_offset_3d_pct(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    """The same in 3D (metric world landmarks, y down): b's distance from the line a-c along the direction
    toward the floor that is square to the line, in percent of |a-c|; positive below the line. A push-up's
    hips sag toward the floor whichever way the camera looks at the body; a sideways shift of the hips (the
    part of the offset the camera sees head-on as "up" or "down") does not count. NaN for a vertical line."""
    a, b, c = (np.asarray(p, dtype=float)[:3] for p in (a, b, c))
    d = c - a
    n = float(np.linalg.norm(d))
    if n < 1e-9:
        return math.nan
    u = d / n
    down = np.array([0.0, 1.0, 0.0]) - u[1] * u  # gravity's direction without its part along the line
    m = float(np.linalg.norm(down))
    if m < 1e-3:
        return math.nan
    return 100.0 * float(np.dot(b - a, down / m)) / n


def width_ratio_pct(frame: PoseFrame, a: str, b: str) -> tuple[float, float]:
    """How far apart the left and right joint `a` are, in percent of how far apart the left and right `b`
    are (knees 70% as wide as the ankles: knees caving in), and the lowest visibility of the four."""
    px, vis = frame.pixels, frame.visibility
    la, ra, lb, rb = (landmark_for(j, s) for j in (a, b) for s in ("left", "right"))
    wb = math.hypot(*(px[lb] - px[rb]))
    value = math.nan if wb < 1e-6 else 100.0 * math.hypot(*(px[la] - px[ra])) / wb
    return value, float(min(vis[la], vis[ra], vis[lb], vis[rb]))


# Both sides are averaged only when each is clearly visible; otherwise the better-visible side is used.
BOTH_SIDES_MIN_VISIBILITY = 0.8


def measure(frame: PoseFrame, d: AngleDef, min_visibility: float = 0.5,
            both_sides_min_visibility: float = BOTH_SIDES_MIN_VISIBILITY, scale: float | None = None,
            origin_y: float = 0.0) -> float:
    """Value of an angle definition on a frame, or NaN when its joints are not visible enough.

    side="auto" picks the body side facing the camera (higher visibility), or averages both sides
    when both are clearly visible (>= both_sides_min_visibility). scale: the body's size in pixels for
    heights and rises (default: this frame's body_scale_px; a stream passes a steadier one, see BodyScale).
    origin_y: the picture row heights are measured from (default its top; a stream passes where the body
    was first seen, see BodyScale.origin_y)."""
    if d.kind == "width":  # both sides by definition
        value, vis = width_ratio_pct(frame, d.joints[0], d.joints[1])
        return value if vis >= min_visibility else math.nan
    sided = any(j in SIDED_JOINTS for j in d.joints)
    if not sided:
        value, vis = _measure_side(frame, d, "left", scale, origin_y)
        return value if vis >= min_visibility else math.nan
    if d.side in ("left", "right"):
        value, vis = _measure_side(frame, d, d.side, scale, origin_y)
        return value if vis >= min_visibility else math.nan
    lv, lvis = _measure_side(frame, d, "left", scale, origin_y)
    rv, rvis = _measure_side(frame, d, "right", scale, origin_y)
    ok_l = lvis >= min_visibility and math.isfinite(lv)
    ok_r = rvis >= min_visibility and math.isfinite(rv)
    if d.side == "both":
        if ok_l and ok_r:
            return (lv + rv) / 2
        return math.nan
    if ok_l and ok_r and min(lvis, rvis) >= both_sides_min_visibility:
        return (lv + rv) / 2
    if ok_l and (not ok_r or lvis >= rvis):
        return lv
    if ok_r:
        return rv
    return math.nan


_BODY_ROWS = [L.LEFT_SHOULDER, L.RIGHT_SHOULDER, L.LEFT_HIP, L.RIGHT_HIP]


class BodyScale:
    """The body's size on the picture over the last `window_s` (the median of each frame's body_scale_px): a
    height is a large pixel position over this size, so a frame's jitter in the size would show in it as
    movement; the size itself only changes when the person or the camera moves closer. Also the row heights
    are measured from (`origin_y`). `reset()` at a cut."""

    def __init__(self, window_s: float = 1.0):
        self.window_s = window_s
        self.reset()

    def reset(self) -> None:
        self._recent: list[tuple[float, float]] = []
        self.origin_y: float | None = None  # the picture row heights are measured from (_update_origin)

    def __call__(self, frame: PoseFrame, t: float) -> float | None:
        s = body_scale_px(frame)
        if math.isfinite(s):
            self._recent.append((t, s))
        self._recent = [x for x in self._recent if x[0] >= t - self.window_s]
        self._update_origin(frame)
        return float(np.median([x[1] for x in self._recent])) if self._recent else None

    def _update_origin(self, frame: PoseFrame) -> None:
        """Heights are measured from the row where the body was first seen in this shot, not from the picture's
        top: a height is a pixel distance over the body's size, so the size's own jitter moves it in proportion
        to that distance. A small person low in a tall picture (a portrait frame, a wide shot) stands many body
        sizes below the top, and a few percent of jitter in the size would read as a jump. The row is fixed for
        the shot (a moving one would take part of the movement off the height)."""
        if self.origin_y is not None:
            return
        seen = frame.visibility[_BODY_ROWS] >= SCALE_MIN_VISIBILITY
        if seen.any():
            self.origin_y = float(np.mean(frame.pixels[_BODY_ROWS][seen, 1]))


def facing_side(frame: PoseFrame) -> str:
    """"left" or "right": the body side more visible to the camera."""
    vis = frame.visibility
    left = [L.LEFT_SHOULDER, L.LEFT_ELBOW, L.LEFT_WRIST, L.LEFT_HIP, L.LEFT_KNEE, L.LEFT_ANKLE]
    right = [L.RIGHT_SHOULDER, L.RIGHT_ELBOW, L.RIGHT_WRIST, L.RIGHT_HIP, L.RIGHT_KNEE, L.RIGHT_ANKLE]
    return "left" if float(np.mean(vis[left])) >= float(np.mean(vis[right])) else "right"
