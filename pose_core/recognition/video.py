"""Recognition on a video file: its poses (MediaPipe, as the pipeline sees them), then the recogniser."""

from __future__ import annotations

from pathlib import Path

from ..core.types import PoseFrame
from ..media.video import ProgressFn
from .model import ExerciseRecognizer, Recognition, default_recognizer


def video_poses(path: str | Path, max_seconds: float | None = None, progress: ProgressFn | None = None,
                estimator=None, max_side: int = 1280, backend: str = "auto") -> list[PoseFrame | None]:
    """MediaPipe poses of a clip (or its first max_seconds), one entry per decoded frame (None = no pose)."""
    from ..media.poses import estimator_for, poses

    with estimator_for(estimator) as est:
        return [pose for _t, _img, pose in poses(path, est, max_side, max_seconds, progress=progress,
                                                 backend=backend)]


def recognize_video(path: str | Path, rules=None, max_seconds: float | None = None,
                    progress: ProgressFn | None = None, estimator=None,
                    recognizer: ExerciseRecognizer | None = None) -> Recognition:
    """Run the pose estimator over a clip (or its first max_seconds) and recognise the exercise.

    rules: a RuleSet; when given, only exercises it has a rule for can be answered. Raises VideoError for
    unreadable files; a clip without a person gives a "cannot tell" Recognition."""
    poses = video_poses(path, max_seconds=max_seconds, progress=progress, estimator=estimator)
    allowed = list(rules.exercises) if rules is not None else None
    return (recognizer or default_recognizer()).predict(poses, allowed=allowed)
