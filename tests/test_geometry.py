import math

import numpy as np
import pytest

from pose_core.core.geometry import AngleDef, facing_side, joint_angle_deg, measure, segment_angle_deg
from pose_core.core.landmarks import NUM_LANDMARKS, PoseLandmark as L
from pose_core.core.types import PoseFrame


def frame_with(points: dict, vis: dict | None = None, size=(1000, 1000)) -> PoseFrame:
    xy = np.full((NUM_LANDMARKS, 2), 500.0)
    v = np.zeros(NUM_LANDMARKS)
    for lm, p in points.items():
        xy[lm] = p
        v[lm] = 1.0
    for lm, val in (vis or {}).items():
        v[lm] = val
    return PoseFrame.from_pixels(xy, v, size)


@pytest.mark.parametrize("a,b,c,expected", [
    ((0, 0), (1, 0), (2, 0), 180.0),   # straight
    ((0, 0), (1, 0), (1, 1), 90.0),    # right angle
    ((1, 1), (0, 0), (1, 1), 0.0),     # folded
    ((0, 1), (0, 0), (1, 1), 45.0),
])
def test_joint_angle_table(a, b, c, expected):
    assert joint_angle_deg(np.array(a), np.array(b), np.array(c)) == pytest.approx(expected, abs=1e-4)


def test_joint_angle_degenerate_is_nan():
    assert math.isnan(joint_angle_deg(np.array((1, 1)), np.array((1, 1)), np.array((2, 2))))


@pytest.mark.parametrize("a,b,ref,expected", [
    ((0, 10), (0, 0), "vertical", 0.0),     # pointing up (image y grows down)
    ((0, 0), (0, 10), "vertical", 180.0),   # pointing down
    ((0, 0), (10, 0), "vertical", 90.0),
    ((0, 0), (10, 10), "horizontal", 45.0),
    ((0, 0), (-10, 0), "horizontal", 0.0),
])
def test_segment_angle_table(a, b, ref, expected):
    assert segment_angle_deg(np.array(a, float), np.array(b, float), ref) == pytest.approx(expected, abs=1e-6)


def test_segment_angle_bad_reference_raises():
    with pytest.raises(ValueError):
        segment_angle_deg(np.array((0, 0.)), np.array((1, 1.)), "diagonal")


def test_angles_use_pixels_not_normalised_coordinates():
    # On a 2:1 image a 45-degree bend in pixels is not 45 degrees in normalised units.
    f = frame_with({L.LEFT_HIP: (0, 0), L.LEFT_KNEE: (100, 0), L.LEFT_ANKLE: (200, 100)}, size=(2000, 1000))
    knee = AngleDef("knee", "joint", ("hip", "knee", "ankle"), side="left")
    assert measure(f, knee) == pytest.approx(135.0, abs=1e-6)


def test_auto_side_picks_more_visible_side_and_averages_when_both_clear():
    pts = {L.LEFT_HIP: (0, 0), L.LEFT_KNEE: (0, 100), L.LEFT_ANKLE: (0, 200),     # left leg straight: 180
           L.RIGHT_HIP: (0, 0), L.RIGHT_KNEE: (0, 100), L.RIGHT_ANKLE: (100, 100)}  # right knee at 90
    knee = AngleDef("knee", "joint", ("hip", "knee", "ankle"))
    right_hidden = frame_with(pts, {L.RIGHT_KNEE: 0.6})
    assert measure(right_hidden, knee) == pytest.approx(180.0)
    left_hidden = frame_with(pts, {L.LEFT_ANKLE: 0.55, L.RIGHT_KNEE: 0.7})
    assert measure(left_hidden, knee) == pytest.approx(90.0)
    both = frame_with(pts)
    assert measure(both, knee) == pytest.approx(135.0)
    none = frame_with(pts, {L.LEFT_KNEE: 0.1, L.RIGHT_KNEE: 0.1})
    assert math.isnan(measure(none, knee))


def test_explicit_sides_and_mid_points():
    f = frame_with({L.LEFT_ANKLE: (0, 200), L.RIGHT_ANKLE: (200, 200), L.LEFT_HIP: (100, 0), L.RIGHT_HIP: (100, 0)})
    spread = AngleDef("spread", "joint", ("left_ankle", "mid_hip", "right_ankle"))
    assert measure(f, spread) == pytest.approx(2 * math.degrees(math.atan(0.5)), abs=1e-6)


def test_facing_side():
    f = frame_with({L.LEFT_SHOULDER: (0, 0)}, {L.LEFT_ELBOW: 1, L.LEFT_HIP: 1, L.RIGHT_HIP: 0.2})
    assert facing_side(f) == "left"


@pytest.mark.parametrize("kwargs,error", [
    (dict(landmarks=np.zeros((32, 3)), visibility=np.zeros(33), image_size=(10, 10)), "landmarks must have shape"),
    (dict(landmarks=np.zeros((33, 3)), visibility=np.zeros(30), image_size=(10, 10)), "visibility must have shape"),
    (dict(landmarks=np.full((33, 3), np.nan), visibility=np.zeros(33), image_size=(10, 10)), "NaN"),
    (dict(landmarks=np.zeros((33, 3)), visibility=np.full(33, 2.0), image_size=(10, 10)), "within 0..1"),
    (dict(landmarks=np.zeros((33, 3)), visibility=np.zeros(33), image_size=(0, 10)), "positive"),
])
def test_pose_frame_validation(kwargs, error):
    with pytest.raises(ValueError, match=error):
        PoseFrame(**kwargs)


def test_pose_frame_is_read_only():
    f = PoseFrame(np.zeros((33, 3)), np.zeros(33), (10, 10))
    with pytest.raises(ValueError):
        f.landmarks[0, 0] = 1.0


def test_a_height_is_measured_from_where_the_body_was_so_jitter_in_its_size_does_not_move_it():
    # jump_rope_10 in a portrait frame: a person 27 px of torso standing ~1100 px below the picture's top.
    # Measured from the top, a 10% wobble of the estimated body size moved the body's height by ~4 torso
    # lengths, ten times a jump (~30% of the torso); measured from the row where the body was first seen it
    # moves by a fraction of one.
    from pose_core.core.geometry import BodyScale

    height = AngleDef("hip_height", "height", ("mid_hip",))

    def standing(torso_px: float, size=(720, 1280)) -> PoseFrame:
        hip_y = 1100.0
        sh_y = hip_y - torso_px
        return frame_with({L.LEFT_SHOULDER: (350, sh_y), L.RIGHT_SHOULDER: (370, sh_y), L.LEFT_HIP: (352, hip_y),
                           L.RIGHT_HIP: (368, hip_y)}, size=size)

    scale = BodyScale(window_s=0.0)  # this frame's size only: the wobble is not averaged away
    values = []
    for i, torso in enumerate((27.0, 24.3, 29.7, 27.0)):
        f = standing(torso)
        s = scale(f, i / 30)
        values.append(measure(f, height, scale=s, origin_y=scale.origin_y))
    # The hips are half a torso from the origin (the body's centre): a 10% wobble moves them by ~5% of a torso.
    assert max(values) - min(values) < 12.0
    from_top = [measure(standing(t), height) for t in (27.0, 24.3, 29.7)]
    assert max(from_top) - min(from_top) > 100.0  # what it was: a jump is ~30


def test_the_heights_origin_starts_again_after_a_cut():
    from pose_core.core.geometry import BodyScale

    scale = BodyScale()
    f = frame_with({L.LEFT_SHOULDER: (400, 300), L.RIGHT_SHOULDER: (420, 300), L.LEFT_HIP: (402, 500),
                    L.RIGHT_HIP: (418, 500)})
    scale(f, 0.0)
    assert scale.origin_y == pytest.approx(400.0)
    scale.reset()
    assert scale.origin_y is None
    g = frame_with({L.LEFT_SHOULDER: (400, 100), L.RIGHT_SHOULDER: (420, 100), L.LEFT_HIP: (402, 300),
                    L.RIGHT_HIP: (418, 300)})
    scale(g, 0.1)
    assert scale.origin_y == pytest.approx(200.0)
