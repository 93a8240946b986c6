"""How well a pose detector agrees with Penn Action's ground truth on a clip's real frames: PCK per joint and
the error of the rule's angles (the check behind the detector figures; needs the dataset's frames)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..core.geometry import AngleDef, measure
from ..core.rules import RuleSet, load_rules
from ..core.types import PoseFrame
from .penn import (PENN_FPS, PENN_JOINTS, PennClip, bbox_size_px, penn_to_pose_frame, pose_frame_to_penn,
                   read_frame_image)


def _default_estimator():
    from ..media.estimator import PoseEstimator

    return PoseEstimator(static_image_mode=False)


def _ratio(a: float, b: float) -> float:
    return float(a) / float(b) if b else math.nan


@dataclass
class _Tally:
    """The running counts of a comparison (one clip)."""

    angles: dict[str, AngleDef]
    min_vis: float
    alpha: float
    visible: np.ndarray = field(default_factory=lambda: np.zeros(len(PENN_JOINTS), dtype=np.int64))  # GT-visible
    hits: np.ndarray = field(default_factory=lambda: np.zeros(len(PENN_JOINTS), dtype=np.int64))
    visible_det: np.ndarray = field(default_factory=lambda: np.zeros(len(PENN_JOINTS), dtype=np.int64))  # ...detected
    dists: list[list[float]] = field(default_factory=lambda: [[] for _ in PENN_JOINTS])  # normalised, per joint
    angle_err: dict[str, list[float]] = field(default_factory=dict)
    frames_read: int = 0
    detections: int = 0

    def add(self, clip: PennClip, i: int, det: PoseFrame | None, fps: float) -> None:
        gt_vis = clip.visibility[i]
        self.frames_read += 1
        self.visible += gt_vis
        if det is None:
            return
        self.detections += 1
        self.visible_det += gt_vis
        # The detector sees the real image; scale to the annotation's size if the two differ.
        xy, _ = pose_frame_to_penn(det)
        xy = xy * np.array([clip.width / det.image_size[0], clip.height / det.image_size[1]])
        norm = self.alpha * bbox_size_px(clip, i)
        d = np.hypot(*(xy - clip.xy[i]).T)
        self.hits += gt_vis & (d <= norm)
        for j in np.flatnonzero(gt_vis):
            self.dists[j].append(float(d[j] / max(norm / self.alpha, 1e-9)))
        gt = penn_to_pose_frame(clip, i, fps)
        for name, ad in self.angles.items():
            a, b = measure(gt, ad, self.min_vis), measure(det, ad, self.min_vis)
            if math.isfinite(a) and math.isfinite(b):
                self.angle_err.setdefault(name, []).append(abs(a - b))

    def result(self, clip: PennClip, n: int) -> dict:
        per_joint = {name: {"visible": int(self.visible[j]), "correct": int(self.hits[j]),
                            "pck": _ratio(self.hits[j], self.visible[j]),
                            "pck_detected": _ratio(self.hits[j], self.visible_det[j]),
                            "median_dist_bbox": float(np.median(self.dists[j])) if self.dists[j] else math.nan}
                     for j, name in enumerate(PENN_JOINTS)}
        errs = {a: self.angle_err.get(a, []) for a in self.angles}
        angle_mae = {a: (float(np.mean(v)) if v else math.nan) for a, v in errs.items()}
        finite = [v for v in angle_mae.values() if math.isfinite(v)]
        return {
            "clip": clip.id, "action": clip.action, "frames": n, "frames_read": self.frames_read,
            "detections": self.detections, "detection_rate": _ratio(self.detections, self.frames_read),
            "alpha": self.alpha, "normaliser": f"{self.alpha} x max(bbox width, bbox height) per frame",
            "pck": _ratio(self.hits.sum(), self.visible.sum()),
            "pck_detected": _ratio(self.hits.sum(), self.visible_det.sum()),
            "per_joint": per_joint,
            "angle_mae_deg": angle_mae, "angle_pairs": {a: len(v) for a, v in errs.items()},
            "mean_angle_mae_deg": float(np.mean(finite)) if finite else math.nan,
        }


def compare_detector(clip: PennClip, estimator_factory: Callable[[], object] | None = None,
                     rules: RuleSet | None = None, max_frames: int | None = None, alpha: float = 0.2,
                     fps: float = PENN_FPS) -> dict:
    """Run a pose estimator on a clip's frames and compare it with the ground truth.

    PCK@alpha: a GT-visible joint is correct when the detected joint is within alpha x max(bbox width,
    bbox height) pixels of it (the frame's Penn bounding box; for the padded last row of the two short
    sequences, the box around the annotated joints). A frame without a detection counts all its visible
    joints as misses (`pck`); `pck_detected` uses only frames with a detection.
    Angle error: mean absolute difference, in degrees, between each joint/segment angle of the action's
    rule measured (unsmoothed, as `geometry.measure`) on the GT pose and on the detected pose, over
    frames where both are defined. Height-type values (not degrees) are left out.

    `estimator_factory()` must return a context manager with `process(image_rgb, timestamp_s) ->
    PoseFrame | None` (default: PoseEstimator(static_image_mode=False)). Raises FileNotFoundError when
    the clip has no frames folder.
    """
    if clip.frames_dir is None:
        raise FileNotFoundError(f"clip {clip.id} ({clip.labels_path}) has no frames folder")
    rules = rules or load_rules()
    rule = rules[clip.action] if clip.action in rules.exercises else None
    deg_angles = {n: d for n, d in (rule.angles.items() if rule else ()) if d.kind in ("joint", "segment")}
    tally = _Tally(deg_angles, rules.defaults.min_visibility, alpha)
    n = clip.nframes if max_frames is None else min(clip.nframes, max_frames)
    with (estimator_factory or _default_estimator)() as est:
        for i in range(n):
            image = read_frame_image(clip.frame_path(i))
            if image is not None:
                tally.add(clip, i, est.process(image, i / fps), fps)
    return tally.result(clip, n)


__all__ = ["compare_detector"]
