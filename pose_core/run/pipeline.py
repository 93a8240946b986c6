"""From a workout video to counted, judged reps.

`analyze_video` streams the file once: decode (background thread) -> pose -> `Session` (angles, smoothing,
counter, judging, tally) -> overlay -> H.264 encode (background thread), writing `frames.csv` row by row.
Memory does not grow with the video's length. The analysis folder is written staged (`store.outputs`):
a failure never leaves half-written files or clobbers an earlier result.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..core.io import NoSpaceError, is_no_space
from ..core.rules import ExerciseRule, RuleSet, load_rules
from ..core.session import Session, Summary
from ..core.types import PoseFrame, RepEvent
from ..media.drawing import draw_session_overlay
from ..media.estimator import PoseEstimator
from ..media.poses import estimator_for, poses
from ..media.video import H264Writer, ProgressFn, VideoError, VideoInfo, probe
from .crosscheck import cross_check
from ..store.outputs import (ANNOTATED_VIDEO, FRAMES_CSV, OUTPUT_FILES, REPS_JSON, SUMMARY_JSON, FramesCsvWriter,
                             staged_outputs, write_reps, write_summary)


class AnalysisError(RuntimeError):
    """The analysis could not produce a result (the message is meant for the user)."""


class NoPersonError(AnalysisError):
    pass


class CannotTellError(AnalysisError):
    """exercise="auto" could not decide; `.recognition` has the reason and the top candidates."""

    def __init__(self, message: str, recognition, repeats: dict[str, int] | None = None):
        super().__init__(message)
        self.recognition = recognition
        self.repeats = repeats or {}  # complete reps in the recognised stretch, counted as each candidate


# exercise="auto" on a file: the exercise is recognised on this many first seconds; those poses are reused
# for the analysis (the model runs once per frame), and memory stays bounded whatever the video's length.
RECOGNIZE_SECONDS = 20.0


@dataclass
class AnalysisResult:
    summary: Summary
    reps: list[RepEvent]
    out_dir: Path | None
    files: dict[str, Path] = field(default_factory=dict)


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


def recognise_exercise(video: str | Path, rules: RuleSet, est: PoseEstimator, max_side: int,
                       progress: ProgressFn | None, seconds: float) -> tuple[str, list, dict, list[str]]:
    """exercise="auto": the recognised exercise, the poses it was recognised on (reused by the analysis),
    the summary's recognition fields and notes. Recognition and counting check each other (`cross_check`):
    a recognised exercise that shows no complete repetition gives way to the one close candidate that
    repeats, said in a note and with that candidate's (lower) confidence. Raises CannotTellError."""
    known_poses, rec = recognize_start(video, rules, est, max_side, progress, seconds)
    xc = cross_check(rec.exercise, rec.top, known_poses, rules)
    if rec.exercise is None:
        raise CannotTellError(f"{video}: cannot tell which exercise this is: {rec.why_not}", rec, xc.counts)
    exercise, confidence, notes = rec.exercise, rec.confidence, []
    if xc.switch_to is not None:
        exercise, confidence, notes = xc.switch_to, dict(rec.top)[xc.switch_to], [xc.note]
    extra = {"exercise_auto": True, "exercise_confidence": round(confidence, 3),
             "exercise_candidates": [[n, round(p, 3)] for n, p in rec.top]}
    return exercise, known_poses, extra, notes


def run_frames(video: str | Path, session: Session, est: PoseEstimator, info: VideoInfo,
               tmp: dict[str, Path] | None, write_video: bool, max_side: int, known_poses: list,
               progress: ProgressFn | None, keep_first_s: float | None) -> list[PoseFrame | None]:
    """The frame loop: every frame through the session, frames.csv row by row and the overlay video into
    the staged files `tmp` (None: nothing is written). Returns the poses of the first `keep_first_s`."""
    first_poses: list[PoseFrame | None] = []
    with contextlib.ExitStack() as stack:
        rows = stack.enter_context(FramesCsvWriter(tmp[FRAMES_CSV], session.rule.angles)) if tmp else None
        writer = None
        # Frames stay RGB end to end: decode converts on its own thread, the model takes RGB, the overlay
        # is drawn in RGB and the encoder takes RGB. No colour conversion on the model's thread.
        for t, img, pose in poses(video, est, max_side, known=known_poses, progress=progress):
            if keep_first_s is not None and t <= keep_first_s:
                first_poses.append(pose)  # to say what the movement looks like, should no rep be found
            r = session.step(pose, t)
            if rows is not None:
                rows.write(r)
            if tmp is not None and write_video:
                if writer is None:
                    writer = stack.enter_context(H264Writer(tmp[ANNOTATED_VIDEO], img.shape[1], img.shape[0], info.fps))
                # The overlay is drawn on the writer's thread, off the pose model's critical path.
                writer.write(t, img, draw=lambda im, o=session.overlay(r): draw_session_overlay(im, o))
    return first_poses


# A file whose decoding stops this much before the container's stated duration is "truncated" (a frame or
# two short is normal: the stated duration often counts the last frame's length or an audio tail).
ENDS_EARLY_MIN_S = 0.5
ENDS_EARLY_FRACTION = 0.03


def ends_early(session: Session, info: VideoInfo) -> list[str]:
    """A note when the frames ran out well before the duration the file itself states (a truncated upload or
    copy: the decoder keeps what it could read and stops without a word)."""
    frame_s = 1.0 / info.fps if info.fps else 0.0
    read_s = session.last_t + frame_s
    if session.frames and info.duration_s > 0 and \
            info.duration_s - read_s > max(ENDS_EARLY_MIN_S, ENDS_EARLY_FRACTION * info.duration_s, 2 * frame_s):
        return [f"The file ends early at {read_s:.1f} s: analysed what could be read (the file says it lasts "
                f"{info.duration_s:.1f} s; it may be cut off or damaged)."]
    return []


def summarise(video: str | Path, session: Session, info: VideoInfo, rules: RuleSet, elapsed_s: float,
              notes_from_poses: list, extra: dict, recognition_notes: list[str] = ()) -> Summary:
    """The finished session's summary (raises VideoError / NoPersonError when there is nothing to report)."""
    session.finish()
    if session.frames == 0:
        raise VideoError(f"{video}: the video has no frames")
    if session.frames_with_pose == 0:
        raise NoPersonError(f"{video}: no person was found in any of the {session.frames} frames")
    notes = list(recognition_notes) + session.notes() + ends_early(session, info)
    if not session.reps:
        notes += looks_like_another(notes_from_poses, session.rule.name, rules)
    return session.summary(frame_s=1.0 / info.fps if info.fps else 0.0,
                           processing_fps=session.frames / elapsed_s if elapsed_s > 0 else 0.0, notes=notes,
                           video=Path(video).name, width=info.width, height=info.height, rules=rules.source,
                           **extra)


@contextlib.contextmanager
def _no_space_said(out: Path | None):
    """A full disk while writing the analysis folder (frames.csv, the video, the JSON files) is raised as
    NoSpaceError naming the folder, not as whatever layer noticed it first."""
    try:
        yield
    except NoSpaceError:
        raise
    except (OSError, RuntimeError) as e:
        if out is not None and is_no_space(e):
            raise NoSpaceError(out) from None
        raise


def analyze_video(video: str | Path, exercise: str, out_dir: str | Path | None = None, rules: RuleSet | None = None,
                  progress: ProgressFn | None = None, write_video: bool = True, max_side: int = 1280,
                  estimator: PoseEstimator | None = None, recognize_seconds: float = RECOGNIZE_SECONDS,
                  stage: Callable[[str], None] | None = None) -> AnalysisResult:
    """Analyse one video with one exercise's rule. Writes annotated.mp4, frames.csv, reps.json, summary.json
    into out_dir (when given). exercise="auto" recognises it first (summary: exercise_confidence,
    exercise_candidates). Raises VideoError / NoPersonError / CannotTellError / KeyError (unknown exercise) /
    NoSpaceError (the disk filled up while writing out_dir: nothing half-written is left).
    `stage(name)` is called as a stage starts ("recognising", "analysing"); `progress` counts each from 1."""
    t_start = time.perf_counter()
    rules = rules or load_rules()
    info = probe(video)
    known_poses: list = []
    extra: dict = {}
    rec_notes: list[str] = []
    with estimator_for(estimator) as est:
        if exercise == "auto":
            if stage is not None:
                stage("recognising")
            exercise, known_poses, extra, rec_notes = recognise_exercise(video, rules, est, max_side, progress,
                                                                         recognize_seconds)
        rule: ExerciseRule = rules[exercise]
        out = Path(out_dir) if out_dir is not None else None
        session = Session(rule, rules.defaults)
        if stage is not None:
            stage("analysing")
        with _no_space_said(out), \
                (staged_outputs(out, OUTPUT_FILES) if out is not None else contextlib.nullcontext(None)) as tmp:
            first_poses = run_frames(video, session, est, info, tmp, write_video, max_side, known_poses, progress,
                                     None if extra else recognize_seconds)
            summary = summarise(video, session, info, rules, time.perf_counter() - t_start,
                                first_poses or known_poses, extra)
            written: list[str] = []
            if tmp is not None:
                write_reps(tmp[REPS_JSON], exercise, session.reps, session.partial_reps, session.view)
                write_summary(tmp[SUMMARY_JSON], summary)
                written = [n for n in OUTPUT_FILES if tmp[n].exists()]
    files = {n: out / n for n in written}
    return AnalysisResult(summary=summary, reps=list(session.reps), out_dir=out, files=files)
