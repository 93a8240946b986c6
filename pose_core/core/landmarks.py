"""The 33 BlazePose landmarks and the skeleton's connections, as data.

Indices follow MediaPipe Pose. Side-less joint names ("knee") resolve to LEFT_/RIGHT_ landmarks.
"""

from __future__ import annotations

from enum import IntEnum


class PoseLandmark(IntEnum):
    NOSE = 0
    LEFT_EYE_INNER = 1
    LEFT_EYE = 2
    LEFT_EYE_OUTER = 3
    RIGHT_EYE_INNER = 4
    RIGHT_EYE = 5
    RIGHT_EYE_OUTER = 6
    LEFT_EAR = 7
    RIGHT_EAR = 8
    MOUTH_LEFT = 9
    MOUTH_RIGHT = 10
    LEFT_SHOULDER = 11
    RIGHT_SHOULDER = 12
    LEFT_ELBOW = 13
    RIGHT_ELBOW = 14
    LEFT_WRIST = 15
    RIGHT_WRIST = 16
    LEFT_PINKY = 17
    RIGHT_PINKY = 18
    LEFT_INDEX = 19
    RIGHT_INDEX = 20
    LEFT_THUMB = 21
    RIGHT_THUMB = 22
    LEFT_HIP = 23
    RIGHT_HIP = 24
    LEFT_KNEE = 25
    RIGHT_KNEE = 26
    LEFT_ANKLE = 27
    RIGHT_ANKLE = 28
    LEFT_HEEL = 29
    RIGHT_HEEL = 30
    LEFT_FOOT_INDEX = 31
    RIGHT_FOOT_INDEX = 32


NUM_LANDMARKS = len(PoseLandmark)

L = PoseLandmark
# Body skeleton (face points other than the nose are drawn as dots only).
POSE_CONNECTIONS: tuple[tuple[PoseLandmark, PoseLandmark], ...] = (
    (L.LEFT_SHOULDER, L.RIGHT_SHOULDER),
    (L.LEFT_SHOULDER, L.LEFT_ELBOW), (L.LEFT_ELBOW, L.LEFT_WRIST),
    (L.RIGHT_SHOULDER, L.RIGHT_ELBOW), (L.RIGHT_ELBOW, L.RIGHT_WRIST),
    (L.LEFT_SHOULDER, L.LEFT_HIP), (L.RIGHT_SHOULDER, L.RIGHT_HIP),
    (L.LEFT_HIP, L.RIGHT_HIP),
    (L.LEFT_HIP, L.LEFT_KNEE), (L.LEFT_KNEE, L.LEFT_ANKLE),
    (L.RIGHT_HIP, L.RIGHT_KNEE), (L.RIGHT_KNEE, L.RIGHT_ANKLE),
    (L.LEFT_ANKLE, L.LEFT_HEEL), (L.LEFT_HEEL, L.LEFT_FOOT_INDEX), (L.LEFT_ANKLE, L.LEFT_FOOT_INDEX),
    (L.RIGHT_ANKLE, L.RIGHT_HEEL), (L.RIGHT_HEEL, L.RIGHT_FOOT_INDEX), (L.RIGHT_ANKLE, L.RIGHT_FOOT_INDEX),
    (L.LEFT_WRIST, L.LEFT_INDEX), (L.RIGHT_WRIST, L.RIGHT_INDEX),
)
del L

# Joint names usable in rule files, without side. "nose" and "mid_*" are side-less on purpose.
SIDED_JOINTS = (
    "ear", "shoulder", "elbow", "wrist", "index", "hip", "knee", "ankle", "heel", "foot_index",
)
SIDELESS_JOINTS = ("nose", "mid_shoulder", "mid_hip", "mid_ankle", "torso_centre")
KNOWN_JOINTS = (SIDED_JOINTS + SIDELESS_JOINTS + tuple(f"left_{j}" for j in SIDED_JOINTS)
                + tuple(f"right_{j}" for j in SIDED_JOINTS))


def landmark_for(joint: str, side: str) -> PoseLandmark:
    """`landmark_for("knee", "left")` -> PoseLandmark.LEFT_KNEE. Raises KeyError on unknown names."""
    if joint not in SIDED_JOINTS:
        raise KeyError(f"not a sided joint: {joint!r}")
    if side not in ("left", "right"):
        raise KeyError(f"side must be 'left' or 'right', got {side!r}")
    return PoseLandmark[f"{side.upper()}_{joint.upper()}"]
