"""Camera cuts: the picture and the pose jump at once.

A cut (an edited clip, a broadcast's switch of camera, a phone's recording resumed) changes the picture far
more in one frame than a moving person or a panning camera does, and the person's landmarks jump with it
(another angle, another zoom). Either alone is not a cut: a flash or a passer-by changes the picture, and a
tracking glitch moves the landmarks. The counter treats a cut as a boundary (counter.RepCounter.cut).
The picture's change is measured by `media.shots` (this module never sees an image).
"""

from __future__ import annotations

import collections
import math

import numpy as np

from .geometry import body_scale_px
from .landmarks import PoseLandmark as L
from .types import PoseFrame

# A cut to a mirrored or zoomed picture of a plain or dark room changes the 32x18 signature by only 0.06-0.15
# (the robustness suite's cut_mirror / cut_zoom); the pose jump beside it is what tells it from a flash.
MIN_PICTURE_CHANGE = 0.06  # media.shots.signature_distance of a cut: at least this (0 same .. 1 unrelated)...
PICTURE_RATIO = 4.0  # ... and this many times the typical frame-to-frame change of the last second
MIN_POSE_JUMP = 0.25  # the joints moved by this much of the body's size between two frames...
SCALE_JUMP = 1.2  # ... or the body's size on the picture changed by this factor (a 1.2x zoom or more)
_BODY = [L.LEFT_SHOULDER, L.RIGHT_SHOULDER, L.LEFT_ELBOW, L.RIGHT_ELBOW, L.LEFT_WRIST, L.RIGHT_WRIST,
         L.LEFT_HIP, L.RIGHT_HIP, L.LEFT_KNEE, L.RIGHT_KNEE, L.LEFT_ANKLE, L.RIGHT_ANKLE]


def pose_jump(a: PoseFrame | None, b: PoseFrame | None) -> bool | None:
    """Whether the body jumped between two consecutive poses (None when that cannot be told). A person
    appearing or vanishing counts as a jump."""
    if (a is None) != (b is None):
        return True
    if a is None or b is None:
        return None
    sa, sb = body_scale_px(a), body_scale_px(b)
    if not (sa > 0 and sb > 0):
        return None
    moved = float(np.median(np.linalg.norm(a.pixels[_BODY] - b.pixels[_BODY], axis=1))) / sa
    return moved >= MIN_POSE_JUMP or max(sa / sb, sb / sa) >= SCALE_JUMP


class CutDetector:
    """Feed `update(t, picture_change, pose)` once per frame; it returns True on the first frame after a cut."""

    def __init__(self, window_s: float = 1.0):
        self.window_s = window_s
        self._recent: collections.deque[tuple[float, float]] = collections.deque()
        self._last_pose: PoseFrame | None = None
        self._seen = False
        self.cuts: list[float] = []

    def update(self, t: float, picture_change: float | None, pose: PoseFrame | None) -> bool:
        cut = False
        if picture_change is not None and math.isfinite(picture_change):
            typical = float(np.median([d for _, d in self._recent])) if self._recent else 0.0
            if self._seen and picture_change >= MIN_PICTURE_CHANGE and picture_change >= PICTURE_RATIO * typical:
                cut = bool(pose_jump(self._last_pose, pose))
            self._recent.append((t, picture_change))
            while self._recent and self._recent[0][0] < t - self.window_s:
                self._recent.popleft()
        self._seen = True
        self._last_pose = pose
        if cut:
            self.cuts.append(t)
        return cut
