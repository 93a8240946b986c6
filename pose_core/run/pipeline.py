"""From a workout video to counted, judged reps.

`analyze_video` streams the file once: decode (background thread) -> pose -> `Session` (angles, smoothing,
counter, judging, tally) -> overlay -> H.264 encode (background thread), writing `frames.csv` row by row.
With the pose workers (run.parallel) and no video drawn in the loop (--no-video, or video_after: drawn later
by run.render_video), this process decodes nothing: the workers send each pose with its picture signature.
Memory does not grow with the video's length. The analysis folder is written staged (`store.outputs`):
a failure never leaves half-written files or clobbers an earlier result.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from ..core.io import NoSpaceError, is_no_space, output_error
from ..core.rules import ExerciseRule, RuleSet, load_rules
from ..core.session import Session, Summary
from ..core.types import PoseFrame, RepEvent
from ..media.damage import gaps_note
from ..media.drawing import draw_session_overlay
from ..media.estimator import PoseEstimator
from ..media.poses import estimator_for, poses
from ..media.shots import frame_signature, signature_distance
from ..media.video import ProgressFn, VideoError, VideoInfo, probe
from ..media.writer import H264Writer
from ..store.settings import parallel_workers
from ..store.outputs import (ANNOTATED_VIDEO, FRAMES_CSV, OUTPUT_FILES, OVERLAY_DATA, REPS_JSON, SUMMARY_JSON,
                             FramesCsvWriter, staged_outputs, write_reps, write_summary)
from .crosscheck import checked
from .parallel import ParallelError, PosePool, StreamedPoses, plan_chunks, use_parallel
from .render_video import OverlayLog
from .crosscheck import decide_exercise  # noqa: F401 (the one place auto decides; callers import it here)
from .errors import AnalysisError, CannotTellError, NoPersonError  # noqa: F401 (raised here)
from .streamed import ParallelProgress, recognise_from_stream, stream_items


# exercise="auto" on a file: the exercise is recognised on this many first seconds; those poses are reused
# for the analysis (the model runs once per frame), and memory stays bounded whatever the video's length.
RECOGNIZE_SECONDS = 20.0


@dataclass
class AnalysisResult:
    summary: Summary
    reps: list[RepEvent]
    out_dir: Path | None
    files: dict[str, Path] = field(default_factory=dict)
    # Stretches of the video that could not be read (damaged data in the middle), (start_s, end_s), in order.
    gaps: list[tuple[float, float]] = field(default_factory=list)
    # The annotated video is still to be drawn from the stored overlay (`run.render_video.draw_annotated`).
    video_pending: bool = False


def recognize_start(video: str | Path, rules: RuleSet, est: PoseEstimator, max_side: int,
                    progress: ProgressFn | None = None, seconds: float = RECOGNIZE_SECONDS, backend: str = "auto"):
    """Poses of the first `seconds` of the video and the recognised exercise (Recognition)."""
    from ..recognition import default_recognizer, video_poses

    poses = video_poses(video, max_seconds=seconds, progress=progress, estimator=est, max_side=max_side,
                        backend=backend)
    return poses, default_recognizer().predict(poses, allowed=list(rules.exercises))


def looks_like_another(poses: list, exercise: str, rules: RuleSet) -> tuple[str, list[str]]:
    """When no rep was found: the exercise the movement looks like, if it is another one, and a note naming
    it (("", []) otherwise)."""
    from ..recognition import default_recognizer

    if sum(p is not None for p in poses) < 10:
        return "", []
    rec = default_recognizer().predict(poses, allowed=list(rules.exercises))
    if rec.exercise is None or rec.exercise == exercise:
        return "", []
    return rec.exercise, [f"The movement looks more like {rules[rec.exercise].display_name.lower()} "
                          f"({rec.confidence:.0%} sure): try analysing it as {rules[rec.exercise].display_name.lower()}."]


def recognise_exercise(video: str | Path, rules: RuleSet, est: PoseEstimator, max_side: int,
                       progress: ProgressFn | None, seconds: float, backend: str = "auto"
                       ) -> tuple[str, list, dict, list[str]]:
    """exercise="auto": the recognised exercise, the poses it was recognised on (reused by the analysis),
    the summary's recognition fields and notes (see `decide_exercise`). Raises CannotTellError."""
    known_poses, rec = recognize_start(video, rules, est, max_side, progress, seconds, backend)
    exercise, extra, notes = decide_exercise(video, rec, known_poses, rules)
    return exercise, known_poses, extra, notes


def decoded_items(video: str | Path, est: PoseEstimator, max_side: int, known_poses: list,
                  progress: ProgressFn | None, backend: str, gaps: list) -> Iterator[tuple]:
    """(t, rgb image, pose, picture signature) of each frame, decoded in this process."""
    for t, img, pose in poses(video, est, max_side, known=known_poses, progress=progress, backend=backend,
                              gaps=gaps):
        yield t, img, pose, frame_signature(img)


def run_frames(session: Session, items, info: VideoInfo, tmp: dict[str, Path] | None, video_mode: str,
               keep_first_s: float | None, gaps: list, backend: str = "auto", max_side: int = 1280
               ) -> list[PoseFrame | None]:
    """The frame loop: every frame (`items`: (t, image or None, pose, signature)) through the session,
    frames.csv row by row and, into the staged files `tmp` (None: nothing is written), the video:
    video_mode "inline" draws and encodes it here, "after" stores each frame's overlay for drawing it later
    (run.render_video), "none" neither. Returns the poses of the first `keep_first_s`.
    gaps: the stretches that could not be read, each known before the first frame after it comes."""
    first_poses: list[PoseFrame | None] = []
    with contextlib.ExitStack() as stack:
        rows = stack.enter_context(FramesCsvWriter(tmp[FRAMES_CSV], session.rule.angles)) if tmp else None
        log = stack.enter_context(OverlayLog(tmp[OVERLAY_DATA], backend, max_side)) \
            if tmp is not None and video_mode == "after" else None
        writer = None
        # Frames stay RGB end to end: decode converts on its own thread, the model takes RGB, the overlay
        # is drawn in RGB and the encoder takes RGB. No colour conversion on the model's thread.
        prev = None
        gaps_cut = 0  # how many of the gaps are already a cut
        for t, img, pose, sig in items:
            if keep_first_s is not None and t <= keep_first_s:
                first_poses.append(pose)  # to say what the movement looks like, should no rep be found
            # A stretch that could not be read is a cut at the first frame after it: no rep is counted across it.
            if len(gaps) > gaps_cut and gaps[gaps_cut][1] <= t + 1e-6:
                session.cut(t)
                gaps_cut = sum(1 for g in gaps if g[1] <= t + 1e-6)
            r = session.step(pose, t, signature_distance(prev, sig) if prev is not None else None)
            prev = sig
            if rows is not None:
                rows.write(r)
            if log is not None:
                log.write(t, session.overlay(r))
            if tmp is not None and video_mode == "inline" and img is not None:
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
              notes_from_poses: list, extra: dict, recognition_notes: list[str] = (),
              gaps: list[tuple[float, float]] = ()) -> Summary:
    """The finished session's summary (raises VideoError / NoPersonError when there is nothing to report).
    gaps: the stretches that could not be read, named in a note (a file cut off at the end: ends_early)."""
    session.finish()
    if session.frames == 0:
        raise VideoError(f"{video}: the video has no frames")
    if session.frames_with_pose == 0:
        raise NoPersonError(f"{video}: no person was found in any of the {session.frames} frames")
    notes = list(recognition_notes) + session.notes() + gaps_note(list(gaps)) + ends_early(session, info)
    looks_like = ""
    if not session.reps:
        looks_like, more = looks_like_another(notes_from_poses, session.rule.name, rules)
        notes += more
    return session.summary(frame_s=1.0 / info.fps if info.fps else 0.0,
                           processing_fps=session.frames / elapsed_s if elapsed_s > 0 else 0.0, notes=notes,
                           looks_like=looks_like,
                           video=Path(video).name, width=info.width, height=info.height, rules=rules.source,
                           **extra)


@contextlib.contextmanager
def _output_errors_said(out: Path | None):
    """A full disk while writing the analysis folder (frames.csv, the video, the JSON files) is raised as
    NoSpaceError naming the folder, not as whatever layer noticed it first; any other OSError on it (no
    permission, a read-only file system, a name too long) as OutputError naming it."""
    try:
        yield
    except NoSpaceError:
        raise
    except OSError as e:
        said = output_error(e, out) if out is not None else e
        if said is e:
            raise
        raise said from None
    except RuntimeError as e:
        if out is not None and is_no_space(e):
            raise NoSpaceError(out) from None
        raise


def analyze_video(video: str | Path, exercise: str, out_dir: str | Path | None = None, rules: RuleSet | None = None,
                  progress: ProgressFn | None = None, write_video: bool = True, max_side: int = 1280,
                  estimator: PoseEstimator | None = None, recognize_seconds: float = RECOGNIZE_SECONDS,
                  stage: Callable[[str], None] | None = None, parallel: bool | None = None,
                  pool: PosePool | None = None, estimator_factory: Callable[[], PoseEstimator] | None = None,
                  video_after: bool = False) -> AnalysisResult:
    """Analyse one video with one exercise's rule. Writes annotated.mp4, frames.csv, reps.json, summary.json
    into out_dir (when given). exercise="auto" recognises it first (summary: exercise_confidence,
    exercise_candidates). Raises VideoError / NoPersonError / CannotTellError / KeyError (unknown exercise) /
    NoSpaceError (the disk filled up while writing out_dir: nothing half-written is left).
    `stage(name)` is called as a stage starts ("recognising", "analysing" (poses estimated, through the session),
    "judging" (the summary, the files)); `progress` counts frames in the first two, each from 1.
    video_after: the annotated video is not drawn here: each frame's overlay is stored (overlay.jsonl) and
    the result is published without it (`result.video_pending`); `run.render_video.draw_annotated` draws it.

    parallel: True estimates poses on time chunks in worker processes (`run.parallel`; `pool` when given, a
    kept warm pool, else one started for this video); False in this process (with `estimator` when given);
    None (default) decides from the settings (GYMPOSE_PARALLEL) and the clip's length. The results are the
    same; should the workers fail or their poses not line up with the frames, the single-process path runs.
    estimator_factory: makes the single-process path's estimator (closed at the end), e.g. a warm spare."""
    t_start = time.perf_counter()
    rules = rules or load_rules()
    info = probe(video)
    if exercise != "auto":
        rules[exercise]  # KeyError for an unknown exercise, before any worker starts
    if use_parallel(info, parallel, pool):
        own = pool is None
        pool = pool or PosePool(workers=parallel_workers())
        try:
            if pool.acquire():  # a kept pool busy with another analysis: this one runs in its own process
                try:
                    return _analyze(video, exercise, out_dir, rules, progress, write_video, max_side, None,
                                    recognize_seconds, info, t_start, pool, stage, video_after)
                except ParallelError:
                    pool.cancel()  # e.g. a file that decodes differently from its middle: one process instead
                finally:
                    pool.release()
        finally:
            if own:
                pool.close()
    if estimator is None and estimator_factory is not None:  # (made only now: the pose workers need none)
        est = estimator_factory()
        try:
            return _analyze(video, exercise, out_dir, rules, progress, write_video, max_side, est,
                            recognize_seconds, info, t_start, None, stage, video_after)
        finally:  # the model's memory goes back now, not when the garbage collector gets to it
            with contextlib.suppress(Exception):
                est.close()
    return _analyze(video, exercise, out_dir, rules, progress, write_video, max_side, estimator, recognize_seconds,
                    info, t_start, None, stage, video_after)


def _analyze(video, exercise, out_dir, rules, progress, write_video, max_side, estimator, recognize_seconds,
             info, t_start, pool, stage=None, video_after: bool = False) -> AnalysisResult:
    out = Path(out_dir) if out_dir is not None else None
    video_mode = "none" if not write_video or out is None else "after" if video_after else "inline"
    stream = None
    if pool is not None:
        # The frame loop decodes with PyAV, as the workers do, so that every pose's timestamp can be checked
        # against its frame's. Progress: the poses estimated (see ParallelProgress).
        chunks = plan_chunks(info.duration_s, pool.workers)
        progress = ParallelProgress(progress, info.frame_count, recognising=exercise == "auto",
                                    cheap_loop=video_mode != "inline")
        stream = StreamedPoses(pool, pool.submit(video, info, chunks, max_side), chunks, info.fps,
                               on_wait=progress.refresh)
        progress.stream = stream
    try:
        with (contextlib.nullcontext(stream) if stream is not None else estimator_for(estimator)) as est:
            return _analyze_with(video, exercise, out, rules, progress, video_mode, max_side, est, stream,
                                 recognize_seconds, info, t_start, stage)
    except BaseException:
        if pool is not None:
            pool.cancel()
        raise


def _analyze_with(video, exercise, out, rules, progress, video_mode, max_side, est, stream, recognize_seconds,
                  info, t_start, stage) -> AnalysisResult:
    """The analysis with its poses coming from `est` (decoding here) or `stream` (the pose workers: decoded
    here only when the video is drawn during the loop, else not at all)."""
    known_poses, extra, rec_notes, gaps = [], {}, [], []
    backend = "av" if stream is not None else "auto"
    inline = video_mode == "inline"
    head, rest = [], None
    if exercise == "auto":
        if stage is not None:
            stage("recognising")
        if not inline:  # one pass over the frames: the first seconds are recognised, then analysed as they are
            source = stream.frames(gaps) if stream is not None else \
                ((t, pose, sig) for t, _img, pose, sig in decoded_items(video, est, max_side, [], None, backend, gaps))
            exercise, extra, rec_notes, head, rest = recognise_from_stream(
                video, source, rules, recognize_seconds, progress, int(recognize_seconds * info.fps) if info.fps else 0)
        else:
            exercise, known_poses, extra, rec_notes = recognise_exercise(video, rules, est, max_side, progress,
                                                                         recognize_seconds, backend)
    rule: ExerciseRule = rules[exercise]
    session = Session(rule, rules.defaults)
    if stage is not None:
        stage("analysing")
    if rest is not None or (stream is not None and not inline):
        items = stream_items(rest if rest is not None else stream.frames(gaps), progress, info.frame_count, head)
    else:
        items = decoded_items(video, est, max_side, known_poses, progress, backend, gaps)
    with _output_errors_said(out), \
            (staged_outputs(out, OUTPUT_FILES + (OVERLAY_DATA,)) if out is not None else contextlib.nullcontext(None)) as tmp:
        first_poses = run_frames(session, items, info, tmp, video_mode, None if extra else recognize_seconds, gaps,
                                 backend, max_side)
        if stream is not None:
            stream.finish()
        if stage is not None:
            stage("judging")
        summary = summarise(video, session, info, rules, time.perf_counter() - t_start,
                            first_poses or known_poses or [h[1] for h in head], extra, rec_notes, gaps)
        written: list[str] = []
        if tmp is not None:
            write_reps(tmp[REPS_JSON], exercise, session.reps, session.partial_reps, session.view,
                       rule.counting.concentric)
            write_summary(tmp[SUMMARY_JSON], summary)
            written = [n for n in OUTPUT_FILES if tmp[n].exists()]
    files = {n: out / n for n in written}
    return AnalysisResult(summary=summary, reps=list(session.reps), out_dir=out, files=files, gaps=gaps,
                          video_pending=video_mode == "after")


def analyze_observations(video: str | Path, observations: list, exercise: str, rules: RuleSet | None = None,
                         recognize_seconds: float = RECOGNIZE_SECONDS) -> AnalysisResult:
    """The analysis of a video from its already estimated observations (`store.pose_cache`): recognition
    (exercise="auto"), the session, the summary, without decoding a frame or running the model. The same
    result as analyze_video(write_video=False) on the same poses; nothing is written."""
    t_start = time.perf_counter()
    rules = rules or load_rules()
    info = probe(video)
    extra: dict = {}
    rec_notes: list[str] = []
    first = [o.pose for o in observations if o.t <= recognize_seconds]
    if exercise == "auto":
        from ..recognition import default_recognizer

        rec = default_recognizer().predict(first, allowed=list(rules.exercises))
        exercise, extra, rec_notes = decide_exercise(video, rec, first, rules)
    session = Session(rules[exercise], rules.defaults)
    prev = None
    for o in observations:
        session.step(o.pose, o.t, signature_distance(prev, o.signature) if prev is not None else None)
        prev = o.signature
    summary = summarise(video, session, info, rules, time.perf_counter() - t_start, first, extra, rec_notes)
    return AnalysisResult(summary=summary, reps=list(session.reps), out_dir=None)
