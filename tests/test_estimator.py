import numpy as np
import pytest

from helpers import VIDEOS, needs_videos
from media import frame_at
from pose_core.media.estimator import ImageError, PoseEstimator, from_mediapipe
from pose_core.core.landmarks import PoseLandmark as L


@pytest.fixture(scope="module")
def estimator():
    with PoseEstimator(static_image_mode=True) as est:
        yield est


def test_blank_image_gives_no_pose(estimator):
    assert estimator.process(np.zeros((240, 320, 3), np.uint8)) is None
    assert estimator.process(np.full((480, 640, 3), 255, np.uint8)) is None


@pytest.mark.parametrize("image,fragment", [
    (np.zeros((240, 320), np.uint8), "3 channels"),
    (np.zeros((240, 320, 4), np.uint8), "3 channels"),
    (np.zeros((240, 320, 3), np.float32), "uint8"),
    ("not an image", "numpy image"),
])
def test_wrong_input_raises_clear_error(estimator, image, fragment):
    with pytest.raises(ImageError, match=fragment):
        estimator.process(image)


def test_closed_estimator_refuses_work():
    est = PoseEstimator()
    est.close()
    with pytest.raises(RuntimeError, match="closed"):
        est.process(np.zeros((10, 10, 3), np.uint8))


def test_adapter_handles_missing_result():
    assert from_mediapipe(None, (10, 10), 0.0) is None


@needs_videos
def test_landmarks_land_on_the_person_in_a_real_frame(estimator):
    # squat_1.mp4: side view, person standing in the middle of a 960x544 frame at t = 1 s.
    img = frame_at(VIDEOS / "squat_1.mp4", 1.0)
    pose = estimator.process(img, 1.0)
    assert pose is not None
    assert pose.image_size == (img.shape[1], img.shape[0])
    px = pose.pixels
    nose, hip, ankle = px[L.NOSE], (px[L.LEFT_HIP] + px[L.RIGHT_HIP]) / 2, (px[L.LEFT_ANKLE] + px[L.RIGHT_ANKLE]) / 2
    assert nose[1] < hip[1] < ankle[1]  # upright: head above hips above feet
    assert 0.2 * img.shape[1] < hip[0] < 0.8 * img.shape[1]
    assert (ankle[1] - nose[1]) > 0.4 * img.shape[0]  # a full body, not a speck
    assert pose.visibility[[L.LEFT_HIP, L.RIGHT_HIP, L.NOSE]].max() > 0.9
    assert pose.timestamp_s == 1.0


@needs_videos
def test_the_person_vanishes_when_the_image_is_blanked(estimator):
    img = frame_at(VIDEOS / "squat_1.mp4", 1.0)
    assert estimator.process(img) is not None
    assert estimator.process(np.zeros_like(img)) is None


@needs_videos
def test_world_landmarks_are_metric_3d_with_the_origin_between_the_hips(estimator):
    pose = estimator.process(frame_at(VIDEOS / "squat_1.mp4", 1.0), 1.0)
    assert pose is not None and pose.world is not None and pose.world.shape == (33, 3)
    mid_hip = (pose.world[L.LEFT_HIP] + pose.world[L.RIGHT_HIP]) / 2
    assert np.linalg.norm(mid_hip) < 0.05  # metres: the origin is between the hips
    mid_shoulder = (pose.world[L.LEFT_SHOULDER] + pose.world[L.RIGHT_SHOULDER]) / 2
    assert 0.3 < np.linalg.norm(mid_shoulder - mid_hip) < 0.8  # a torso is about half a metre
    assert mid_shoulder[1] < mid_hip[1]  # y down, as on the image: standing, the shoulders are above
    assert pose.with_timestamp(2.0).world is pose.world
