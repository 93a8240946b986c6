"""MediaPipe Pose (BlazePose, model_complexity=1, bundled with mediapipe 0.10.21, runs offline).

`from_mediapipe` is the one place where MediaPipe's result type becomes our `PoseFrame`.
"""

from __future__ import annotations

import numpy as np

from ..core.landmarks import NUM_LANDMARKS
from ..core.types import PoseFrame


class ImageError(ValueError):
    """The image handed to the estimator is not an HxWx3 uint8 RGB array."""


def check_image(image: np.ndarray) -> None:
    """Refuse anything but an H x W x 3 uint8 image (RGB, as every image inside pose_core)."""
    if not isinstance(image, np.ndarray):
        raise ImageError(f"expected a numpy image, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ImageError(f"expected an RGB image with 3 channels (H x W x 3), got shape {image.shape}")
    if image.dtype != np.uint8:
        raise ImageError(f"expected an 8-bit image (uint8), got {image.dtype}")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise ImageError(f"image too small: {image.shape[1]}x{image.shape[0]}")


def from_mediapipe(pose_landmarks, image_size: tuple[int, int], timestamp_s: float,
                   world_landmarks=None) -> PoseFrame | None:
    """Convert `results.pose_landmarks` (a NormalizedLandmarkList or None) to a PoseFrame, with
    `results.pose_world_landmarks` (metric 3D, the same 33 points) as its `world` when given and sound."""
    if pose_landmarks is None:
        return None
    lms = pose_landmarks.landmark
    if len(lms) != NUM_LANDMARKS:
        return None
    arr = np.array([(p.x, p.y, p.z, p.visibility) for p in lms], dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        return None
    world = None
    if world_landmarks is not None and len(world_landmarks.landmark) == NUM_LANDMARKS:
        world = np.array([(p.x, p.y, p.z) for p in world_landmarks.landmark], dtype=np.float64)
        if not np.all(np.isfinite(world)):
            world = None
    return PoseFrame(arr[:, :3], np.clip(arr[:, 3], 0.0, 1.0), image_size, timestamp_s, world)


class PoseEstimator:
    """One person's pose per image. Use as a context manager.

    static_image_mode=False tracks across video frames (faster, steadier); True detects every image afresh.
    """

    MODEL_COMPLEXITY = 1  # the only model bundled in the wheel; 0 and 2 would download at run time

    def __init__(self, static_image_mode: bool = False, min_detection_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5, smooth_landmarks: bool = True):
        import mediapipe as mp  # imported here so that importing pose_core stays light

        self._pose = mp.solutions.pose.Pose(
            static_image_mode=static_image_mode,
            model_complexity=self.MODEL_COMPLEXITY,
            smooth_landmarks=smooth_landmarks,
            enable_segmentation=False,
            min_detection_confidence=min_detection_confidence,
            min_tracking_confidence=min_tracking_confidence,
        )
        self.static_image_mode = static_image_mode

    def process(self, image_rgb: np.ndarray, timestamp_s: float = 0.0) -> PoseFrame | None:
        """Pose of the most prominent person in an RGB image, or None when nobody is found."""
        if self._pose is None:
            raise RuntimeError("PoseEstimator is closed")
        check_image(image_rgb)
        h, w = image_rgb.shape[:2]
        result = self._pose.process(image_rgb)
        return from_mediapipe(result.pose_landmarks, (w, h), timestamp_s, result.pose_world_landmarks)

    def close(self) -> None:
        if self._pose is not None:
            self._pose.close()
            self._pose = None

    def __enter__(self) -> "PoseEstimator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
