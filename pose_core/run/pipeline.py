"""From a workout video to counted, judged reps.

`analyze_video` streams the file once: decode (background thread) -> pose -> angles -> smoothing ->
counter -> overlay -> H.264 encode (background thread), writing `frames.csv` row by row. Memory does not
grow with the video's length. Outputs are written under temporary names and renamed only when the whole
analysis succeeded, so a failure never leaves half-written files or clobbers an earlier result.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..core.analysis import FrameAnalyzer, FrameResult
from ..media.drawing import draw_overlay, primary_joint_landmark
from ..media.estimator import PoseEstimator
from ..core.landmarks import PoseLandmark
from ..core.rules import RuleSet, load_rules
from ..core.types import RepEvent, cycle_times
from ..media.video import H264Writer, ProgressFn, VideoError, probe, read_frames

OUTPUT_FILES = ("annotated.mp4", "frames.csv", "reps.json", "summary.json")


class AnalysisError(RuntimeError):
    """The analysis could not produce a result (the message is meant for the user)."""


class NoPersonError(AnalysisError):
    pass


class CannotTellError(AnalysisError):
    """exercise="auto" could not decide; `.recognition` has the reason and the top candidates."""

    def __init__(self, message: str, recognition):
        super().__init__(message)
        self.recognition = recognition


# exercise="auto" on a file: the exercise is recognised on this many first seconds; those poses are reused
# for the analysis (the model runs once per frame), and memory stays bounded whatever the video's length.
RECOGNIZE_SECONDS = 20.0


@dataclass
class AnalysisResult:
    summary: dict
    reps: list[RepEvent]
    out_dir: Path | None
    files: dict[str, Path] = field(default_factory=dict)


def frames_csv_header(angle_names) -> list[str]:
    cols = ["frame", "time_s", "has_pose", "phase", "label", "reason", "rep_count", "counting_value"]
    cols += [f"{n}" for n in angle_names] + [f"raw_{n}" for n in angle_names]
    for lm in PoseLandmark:
        n = lm.name.lower()
        cols += [f"{n}_x", f"{n}_y", f"{n}_z", f"{n}_v"]
    return cols


def _fmt(v: float, nd: int = 2) -> str:
    return "" if v is None or not math.isfinite(v) else f"{v:.{nd}f}"


def frames_csv_row(i: int, r: FrameResult, angle_names) -> list:
    row = [i, f"{r.timestamp_s:.4f}", int(r.has_pose), r.phase, r.label.label, r.label.reason, r.rep_count,
           _fmt(r.counting_value)]
    row += [_fmt(r.angles[n]) for n in angle_names] + [_fmt(r.raw_angles[n]) for n in angle_names]
    if r.pose is None:
        row += [""] * (4 * len(PoseLandmark))
    else:
        for (x, y, z), v in zip(r.pose.landmarks, r.pose.visibility):
            row += [f"{x:.5f}", f"{y:.5f}", f"{z:.5f}", f"{v:.3f}"]
    return row


def build_summary(exercise: str, reps: list[RepEvent], partial: int, frames: int, frames_with_pose: int,
                  duration_s: float, processing_fps: float, rule_primary: str, labels: dict[str, int],
                  extra: dict | None = None) -> dict:
    correct = sum(r.verdict == "correct" for r in reps)
    judged = labels.get("correct", 0) + labels.get("incorrect", 0)
    depth = [r.primary_min for r in reps] if reps else []
    mean = lambda xs: round(sum(xs) / len(xs), 2) if xs else None  # noqa: E731
    s = {
        "exercise": exercise,
        "reps": len(reps),
        "reps_correct": correct,
        "reps_incorrect": len(reps) - correct,
        "partial_reps": partial,
        "frames": frames,
        "frames_with_pose": frames_with_pose,
        "frames_correct_pct": round(100.0 * labels.get("correct", 0) / judged, 1) if judged else None,
        "duration_s": round(duration_s, 3),
        "processing_fps": round(processing_fps, 1),
        "primary_angle": rule_primary,
        # a rep's full cycle, rest to rest (pauses at rest included); down + up is the movement alone
        "avg_rep_s": mean(cycle_times(reps)),
        "avg_down_s": mean([r.down_s for r in reps]),
        "avg_up_s": mean([r.up_s for r in reps]),
        "avg_range_of_motion": mean([r.range_of_motion for r in reps]),
        "avg_extreme": round(sum(depth) / len(depth), 1) if depth else None,
    }
    if extra:
        s.update(extra)
    return s


@contextlib.contextmanager
def _staged_outputs(out_dir: Path, names: tuple[str, ...]):
    """Temporary paths for each output; renamed over the real names only if the block succeeds.
    A folder this call created is removed again on failure."""
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    ok = False
    stamp = f".tmp-{os.getpid()}-{time.monotonic_ns()}"
    tmp = {n: out_dir / f".{n}{stamp}" for n in names}
    try:
        yield tmp
        for n, p in tmp.items():
            if p.exists():
                os.replace(p, out_dir / n)
        ok = True
    finally:
        for p in tmp.values():
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        if created and not ok:
            with contextlib.suppress(OSError):
                out_dir.rmdir()


def recognize_start(video: str | Path, rules: RuleSet, est: PoseEstimator, max_side: int,
                    progress: ProgressFn | None = None, seconds: float = RECOGNIZE_SECONDS):
    """Poses of the first `seconds` of the video and the recognised exercise (Recognition)."""
    from ..datasets.recognition import default_recognizer, video_poses

    poses = video_poses(video, max_seconds=seconds, progress=progress, estimator=est, max_side=max_side)
    return poses, default_recognizer().predict(poses, allowed=list(rules.exercises))


def looks_like_another(poses: list, exercise: str, rules: RuleSet) -> list[str]:
    """When no rep was found: a note naming the exercise the movement looks like, if it is another one."""
    from ..datasets.recognition import default_recognizer

    if sum(p is not None for p in poses) < 10:
        return []
    rec = default_recognizer().predict(poses, allowed=list(rules.exercises))
    if rec.exercise is None or rec.exercise == exercise:
        return []
    return [f"The movement looks more like {rules[rec.exercise].display_name.lower()} ({rec.confidence:.0%} sure): "
            f"try analysing it as {rules[rec.exercise].display_name.lower()}."]


def analyze_video(video: str | Path, exercise: str, out_dir: str | Path | None = None, rules: RuleSet | None = None,
                  progress: ProgressFn | None = None, write_video: bool = True, max_side: int = 1280,
                  estimator: PoseEstimator | None = None, recognize_seconds: float = RECOGNIZE_SECONDS,
                  ) -> AnalysisResult:
    """Analyse one video with one exercise's rule. Writes annotated.mp4, frames.csv, reps.json, summary.json
    into out_dir (when given). exercise="auto" recognises it first (summary: exercise_confidence,
    exercise_candidates). Raises VideoError / NoPersonError / CannotTellError / KeyError (unknown exercise)."""
    t_start = time.perf_counter()
    rules = rules or load_rules()
    info = probe(video)
    own_estimator = estimator is None
    est = estimator or PoseEstimator(static_image_mode=False)
    known_poses: list = []
    first_poses: list = []
    extra: dict = {}
    if exercise == "auto":
        try:
            known_poses, rec = recognize_start(video, rules, est, max_side, progress, recognize_seconds)
        except BaseException:
            if own_estimator:
                est.close()
            raise
        extra = {"exercise_auto": True, "exercise_confidence": round(rec.confidence, 3),
                 "exercise_candidates": [[n, round(p, 3)] for n, p in rec.top]}
        if rec.exercise is None:
            if own_estimator:
                est.close()
            raise CannotTellError(f"{video}: cannot tell which exercise this is: {rec.describe()[len('cannot tell: '):]}",
                                  rec)
        exercise = rec.exercise
    try:
        rule = rules[exercise]
    except KeyError:
        if own_estimator:
            est.close()
        raise
    out = Path(out_dir) if out_dir is not None else None
    names = [n for n in rule.angles]
    analyzer = FrameAnalyzer(rule, rules.defaults)
    frames = with_pose = 0
    labels: dict[str, int] = {}
    last_t = 0.0
    expected = info.frame_count

    stage = _staged_outputs(out, OUTPUT_FILES) if out is not None else contextlib.nullcontext(None)
    with stage as tmp:
        writer = None
        csv_file = None
        try:
            if tmp is not None:
                csv_file = open(tmp["frames.csv"], "w", newline="")
                cw = csv.writer(csv_file)
                cw.writerow(frames_csv_header(names))
            # Frames stay RGB end to end: decode converts on its own thread, the model takes RGB, the overlay
            # is drawn in RGB and the encoder takes RGB. No colour conversion on the model's thread.
            for t, img in read_frames(video, max_side=max_side):
                # Frames already seen by the recogniser keep their pose: the model runs once per frame, and
                # the tracker continues from the last of them.
                pose = known_poses[frames] if frames < len(known_poses) else est.process(img, t)
                if not extra.get("exercise_auto") and t <= recognize_seconds:
                    first_poses.append(pose)  # to say what the movement looks like, should no rep be found
                r = analyzer.process(pose, t)
                frames += 1
                with_pose += pose is not None
                labels[r.label.label] = labels.get(r.label.label, 0) + 1
                last_t = t
                if csv_file is not None:
                    cw.writerow(frames_csv_row(frames - 1, r, names))
                if tmp is not None and write_video:
                    if writer is None:
                        writer = H264Writer(tmp["annotated.mp4"], img.shape[1], img.shape[0], info.fps)
                    overlay = dict(pose=pose, exercise=rule.display_name, primary_name=rule.primary_angle,
                                   primary_value=r.angles.get(rule.primary_angle, math.nan),
                                   primary_joint=primary_joint_landmark(rule.primary.joints, pose),
                                   rep_count=r.rep_count, phase=rule.counting.display_phase(r.phase),
                                   label=r.label.label, feedback=r.feedback,
                                   last_rep_verdict=analyzer.last_rep.verdict if analyzer.last_rep else None)
                    # The overlay is drawn on the writer's thread, off the pose model's critical path.
                    writer.write(t, img, draw=lambda im, kw=overlay: draw_overlay(im, **kw))
                if progress is not None:
                    progress(frames, max(expected, frames))
        finally:
            if writer is not None:
                writer.close()
            if csv_file is not None:
                csv_file.close()
            if own_estimator:
                est.close()
        analyzer.finish()
        if frames == 0:
            raise VideoError(f"{video}: the video has no frames")
        if with_pose == 0:
            raise NoPersonError(f"{video}: no person was found in any of the {frames} frames")
        elapsed = time.perf_counter() - t_start
        fps_frame = 1.0 / info.fps if info.fps else 0.0
        notes = analyzer.notes()
        if not analyzer.reps:
            notes += looks_like_another(first_poses or known_poses, exercise, rules)
        summary = build_summary(exercise, analyzer.reps, analyzer.partial_reps, frames, with_pose,
                                last_t + fps_frame, frames / elapsed if elapsed > 0 else 0.0, rule.primary_angle,
                                labels, {"view": analyzer.view, "notes": notes,
                                         "largest_swing": round(analyzer.counter.largest_swing, 1),
                                         "video": Path(video).name, "width": info.width, "height": info.height,
                                         "rules": rules.source, **extra})
        files = {}
        if tmp is not None:
            with open(tmp["reps.json"], "w") as f:
                json.dump({"exercise": exercise, "partial_reps": analyzer.partial_reps, "view": analyzer.view,
                           "reps": [r.to_dict() for r in analyzer.reps]}, f, indent=2)
            with open(tmp["summary.json"], "w") as f:
                json.dump(summary, f, indent=2)
            files = {n: out / n for n in OUTPUT_FILES if tmp[n].exists()}
    return AnalysisResult(summary=summary, reps=list(analyzer.reps), out_dir=out, files=files)
