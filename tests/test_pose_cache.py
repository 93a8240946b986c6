"""The pose cache: a video's observations (timestamp, pose with world landmarks, picture signature) kept as
plain arrays, so evaluation re-runs the counting without the model; replaying them gives the same result."""
import numpy as np
import pytest

from helpers import VIDEOS, needs_videos
from pose_core.core.types import PoseFrame
from pose_core.store.pose_cache import Observation, PoseCache, decode, encode


def _pose(t, world=True):
    rng = np.random.default_rng(int(t * 100))
    return PoseFrame(rng.uniform(0, 1, (33, 3)), rng.uniform(0, 1, 33), (640, 480), t,
                     rng.normal(0, 0.3, (33, 3)) if world else None)


def test_observations_round_trip_as_plain_arrays(tmp_path):
    obs = [Observation(0.0, _pose(0.0), np.full((18, 32, 3), 7, np.uint8)), Observation(0.033, None, None),
           Observation(0.067, _pose(0.067, world=False), np.zeros((18, 32, 3), np.uint8))]
    back = decode(encode(obs))
    assert [o.t for o in back] == [o.t for o in obs]
    assert back[1].pose is None and back[1].signature is None and back[2].pose.world is None
    np.testing.assert_allclose(back[0].pose.landmarks, obs[0].pose.landmarks, atol=1e-6)
    np.testing.assert_allclose(back[0].pose.world, obs[0].pose.world, atol=1e-6)
    assert back[0].pose.image_size == (640, 480) and back[0].signature[0, 0, 0] == 7
    # No pickle inside: numpy refuses object arrays with allow_pickle=False, and decode uses it.
    (tmp_path / "x.npz").write_bytes(encode(obs))
    with np.load(tmp_path / "x.npz", allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)


def test_a_damaged_cache_file_is_estimated_again_not_trusted(tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not really a video")
    cache = PoseCache(tmp_path / "cache")
    cache.path_for(video).parent.mkdir(parents=True)
    cache.path_for(video).write_bytes(b"garbage")
    assert cache.get(video) is None


@needs_videos
def test_replaying_cached_poses_gives_the_analysis_of_the_video(tmp_path):
    from pose_core.run.pipeline import analyze_observations, analyze_video

    video = VIDEOS / "squat_1.mp4"
    cache = PoseCache(tmp_path)
    obs = cache.observations(video)
    assert cache.get(video) is not None and len(obs) > 300
    replay = analyze_observations(video, obs, "squat")
    direct = analyze_video(video, "squat", write_video=False, parallel=False)
    assert replay.summary.reps == direct.summary.reps == 3
    assert [r.verdict for r in replay.reps] == [r.verdict for r in direct.reps]
    assert [round(r.end_s, 2) for r in replay.reps] == [round(r.end_s, 2) for r in direct.reps]
