"""Which of the 8 gym exercises does a pose sequence show?

One code path for every source: a sequence of our `PoseFrame`s (MediaPipe detections, or Penn Action
annotations through `pose_core.datasets.penn`) -> the 13 Penn-compatible joints -> window features -> a small
gradient-boosted tree ensemble stored as plain arrays (`pose_core/recognition/model_files/model.npz`, read with
`allow_pickle=False`, + `model.json`). Inference is pure numpy; training is `pose_core.datasets.train_recognizer`.

The rooms: `features` (poses -> window features), `model` (the tree ensemble, ExerciseRecognizer,
Recognition), `online` (the live stream's OnlineRecognizer), `video` (a video file's poses -> Recognition).

Features (see `window_features`), all independent of the camera's distance and the person's size:
- joints reduced to head (nose), shoulders, elbows, wrists, hips, knees, ankles; a joint with
  visibility < MIN_VISIBILITY is *missing* (Penn marks hidden joints invisible and sometimes stores
  garbage coordinates for them); gaps up to MAX_GAP_S are interpolated;
- the sequence is resampled to RESAMPLE_HZ on its timestamps (the video's frame rate does not matter)
  and median-filtered over 3 samples (a detector's one-frame glitches);
- hidden shoulders / hips are placed from the other joints (`impute_torso`), because annotators hide
  them where a detector always reports them;
- coordinates centred on the mid-hip and divided by a body scale (the median of the torso, upper arm,
  forearm, thigh and shank lengths, each over its typical ratio to the torso: one foreshortened segment,
  such as the torso of a bench press filmed from the head end, does not distort the scale);
- left and right are merged (one consistent side per limb unless both are well seen) and x is flipped so
  the head lies on the +x side of the ankles: mirrored videos and swapped sides give the same features;
- joint angles (elbows, shoulders, hips, knees), segment directions against the image vertical (torso
  orientation tells lying / standing / hanging apart), joint positions in the torso's own frame;
- over each window: mean, std, 10th / 90th percentiles, speed over 0.2 s, whole-body motion, and the
  rate of (hysteresis) crossings of key signals, i.e. the repetition frequency.

Prediction: windows of WINDOW_S every HOP_S; each window's probabilities are the mean of the whole-body
answer and the answer with the arm features missing (arms are what a detector gets wrong most); the
sequence's probabilities are the mean over windows.

The model answers per window over the 8 exercises and OTHER (other sports, idle stretches, postures held
still, movements outside the 8); `decision` turns a clip's windows into the answer (see its docstring):
- the exercise with its calibrated confidence (>= SURE_CONFIDENCE is shown as sure);
- "not one of these" (exercise None, outcome "none_of_these"): most windows say OTHER, or the postures are
  far from anything the named exercise was trained on;
- "cannot tell" (exercise None, outcome "cannot_tell", with the reason and the top candidates) when fewer
  than MIN_POSE_FRAMES frames or MIN_DURATION_S seconds have a pose, when no window has hips or shoulders in
  enough of its frames, or when the top probability is below CONFIDENCE_THRESHOLD.
"""

from .features import (FEATURE_NAMES, JOINT_LANDMARKS, NUM_FEATURES, WINDOW_S, pose_arrays, resample, sequence_windows,
                       window_features)
from .decision import CANNOT_TELL, NAMED, NONE_OF_THESE, OTHER, Calibration, Evidence, Typical
from .model import (CONFIDENCE_THRESHOLD, DEFAULT_MODEL_DIR, MIN_DURATION_S, MIN_POSE_FRAMES, SURE_CONFIDENCE,
                    ExerciseRecognizer, Recognition, TreeEnsemble, default_recognizer)
from .online import LOW_CONFIDENCE, OnlineRecognizer, OnlineState
from .video import recognize_video, video_poses

__all__ = [
    "CANNOT_TELL", "Calibration", "Evidence", "NAMED", "NONE_OF_THESE", "OTHER", "SURE_CONFIDENCE", "Typical",
    "CONFIDENCE_THRESHOLD", "DEFAULT_MODEL_DIR", "ExerciseRecognizer", "FEATURE_NAMES", "JOINT_LANDMARKS",
    "LOW_CONFIDENCE", "MIN_DURATION_S", "MIN_POSE_FRAMES", "NUM_FEATURES", "OnlineRecognizer", "OnlineState",
    "Recognition", "TreeEnsemble", "WINDOW_S", "default_recognizer", "pose_arrays", "recognize_video", "resample",
    "sequence_windows", "video_poses", "window_features",
]
