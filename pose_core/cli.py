"""Command line (`gympose`, or `python -m pose_core`), one sub-command per job, each a small handler:

    analyze VIDEO --exercise EXERCISE [--out DIR] [--rules FILE] [--export-frames [--every N]] [--single-process]
                                                                      one video (pose_core.run.pipeline)
    evaluate FOLDER [--auto] [--json]                                 accuracy on hand-counted clips (pose_core.run.evaluate),
                                                                      form verdicts on labels.csv (run.evaluate_form),
                                                                      or recognition on labelled clips (run.evaluate_recognition)
    robustness FOLDER [--clips A,B | --limit N] [--transforms T1,T2] [--out DIR] [--json]
                                                                      counts of transformed clips (pose_core.run.robustness)
    batch INPUT [--out DIR] [--exercise EX] [--workers N] [--scheduler tcp://host:port] ...
                                                                      many videos or Penn Action (pose_core.run.batch)

The last line of stdout is the summary as one line of JSON. Errors: one clear line on stderr, exit code 2
(bad input, including an output folder that cannot be written), 130 (interrupted) or 1 (unexpected
failure), and no half-written output.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from .cli_common import (EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_INTERRUPTED, Progress, fail,  # noqa: F401
                         output_refused, quiet_native_logs, stderr_log)
from .cli_eval import add_evaluate_parser, add_robustness_parser


def _argument_problem(args: argparse.Namespace, video: Path) -> str | None:
    """What is wrong with analyze's arguments, said before the rules are read (None: nothing)."""
    if args.every is not None and not args.export_frames:
        return "--every needs --export-frames"
    if args.every is not None and args.every < 1:
        return f"--every must be 1 or more, got {args.every}"
    if not video.exists():
        return f"{video}: file not found"
    return None


def _exercise_problem(exercise: str | None, rules) -> str | None:
    known = ", ".join(sorted(rules.exercises)) + ", auto"
    if exercise is None:
        return f"--exercise is required (one of: {known})"
    if exercise != "auto" and exercise not in rules.exercises:
        return f"unknown exercise {exercise!r}; choose one of: {known}"
    return None


def cmd_analyze(args: argparse.Namespace) -> int:
    from .core.rules import RulesError, load_rules

    video = Path(args.video)
    problem = _argument_problem(args, video)
    if problem is not None:
        return fail(problem)
    try:
        rules = load_rules(args.rules) if args.rules else load_rules()
    except RulesError as e:
        return fail(f"invalid rules file: {e}")
    exercise = args.exercise
    out = Path(args.out) if args.out else Path("runs") / video.stem
    problem = _exercise_problem(exercise, rules) or output_refused(out)  # checked before the model starts
    if problem is not None:
        return fail(problem)
    # The pose workers start first: their start-up overlaps the import of the rest (run.parallel.started_pool).
    from .run.parallel import started_pool

    pool = None if args.single_process else started_pool(video)
    try:
        return _analyze(args, video, exercise, out, rules, pool)
    finally:
        if pool is not None:
            pool.close(grace_s=0.0)


def _analyze(args: argparse.Namespace, video: Path, exercise: str, out: Path, rules, pool) -> int:
    from .core.io import NoSpaceError, OutputError
    from .media.video import VideoError
    from .run.pipeline import AnalysisError, CannotTellError, analyze_video
    from .store.outputs import OutputFolderBusy
    from .store.settings import SettingsError

    progress = Progress(not args.quiet, video.name)
    try:
        result = analyze_video(video, exercise, out, rules=rules, progress=progress, write_video=not args.no_video,
                               parallel=False if args.single_process else None, pool=pool)
    except CannotTellError as e:
        # Said plainly, with the candidates, instead of a silent guess.
        progress.close()
        print(json.dumps({"exercise": None, **e.recognition.to_dict()}))
        return fail(str(e))
    except (VideoError, AnalysisError, OutputFolderBusy, SettingsError) as e:
        return fail(str(e))
    except (NoSpaceError, OutputError) as e:  # "no space left on device: <folder>", "cannot write to <folder>:
        return fail(str(e))                    # permission denied" (nothing half-written is left there)
    except KeyboardInterrupt:
        return fail("interrupted; nothing was written", EXIT_INTERRUPTED)
    finally:
        progress.close()
    for note in result.summary.notes:  # (e.g. "The file ends early at 6.4 s: analysed what could be read ...")
        print(f"note: {note}", file=sys.stderr)
    summary = result.summary.to_dict()
    summary["out_dir"] = str(out)
    if args.export_frames:  # after the analysis: its frames.csv holds the labels (the model does not run again)
        failed = _export_frames(args, video, out, summary)
        if failed is not None:
            return failed
    print(json.dumps(summary))
    return 0


def _export_frames(args: argparse.Namespace, video: Path, out: Path, summary: dict) -> int | None:
    """analyze --export-frames, into `summary`; an exit code when it failed."""
    from .media.video import VideoError
    from .store.frame_export import DEFAULT_EVERY, FrameExportError, export_labelled_frames

    try:
        exp = export_labelled_frames(video, out, every=args.every or DEFAULT_EVERY)
    except (FrameExportError, VideoError, OSError) as e:
        return fail(f"the analysis is written in {out}, but the frames could not be exported: {e}")
    except KeyboardInterrupt:
        return fail("interrupted while exporting frames; the analysis is written, no frames", EXIT_INTERRUPTED)
    summary["frames_exported"] = exp.images
    summary["frames_dir"] = str(exp.folder)
    return None


def add_analyze_parser(subparsers) -> argparse.ArgumentParser:
    from .store.frame_export import DEFAULT_EVERY

    a = subparsers.add_parser("analyze", help="analyse one video: annotated video, per-frame labels, judged reps")
    a.add_argument("video", help="the workout video (mp4, mov, webm...)")
    a.add_argument("--exercise", "-e", help="bench_press, clean_and_jerk, jump_rope, jumping_jacks, pullup, "
                                            "pushup, situp, squat, or auto")
    a.add_argument("--out", "-o", help="output folder (default: runs/<video name>)")
    a.add_argument("--rules", help="a rules TOML file overriding the packaged rules")
    a.add_argument("--no-video", action="store_true", help="skip the annotated video (faster)")
    a.add_argument("--single-process", action="store_true",
                   help="estimate poses in this process only (default: a clip long enough to pay off uses every "
                        "core; GYMPOSE_PARALLEL=off does the same as this flag)")
    a.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    a.add_argument("--export-frames", action="store_true",
                   help="also write sampled frames as JPEGs into OUT/frames/<label>/ (correct, incorrect, unknown) "
                        "with OUT/frames/manifest.csv (frame, time, label, reason...)")
    a.add_argument("--every", type=int, metavar="N",
                   help=f"with --export-frames: every Nth frame (default {DEFAULT_EVERY})")
    a.set_defaults(func=cmd_analyze)
    return a


def cmd_batch(args: argparse.Namespace) -> int:
    from .core.io import output_error
    from .core.rules import RulesError, load_rules
    from .run.batch import BatchInputError, run_batch

    try:
        rules = load_rules(args.rules) if args.rules else load_rules()
    except RulesError as e:
        return fail(f"invalid rules file: {e}")
    out = Path(args.out) if args.out else Path("runs") / f"batch_{Path(args.input).resolve().name}"
    refused = output_refused(out)
    if refused is not None:
        return fail(refused)

    log = stderr_log(args.quiet)
    try:
        report = run_batch(args.input, out, exercise=None if args.from_folder_names else args.exercise,
                           penn=True if args.penn else None, workers=args.workers, scheduler=args.scheduler,
                           write_video=not args.no_video, rules=rules, split=args.split, limit=args.limit,
                           connect_timeout_s=args.connect_timeout, progress=not args.quiet, log=log)
    except BatchInputError as e:
        return fail(str(e))
    except OSError as e:  # writing into --out failed midway (a full disk, the folder made read-only...)
        said = output_error(e, out)
        if said is e:
            raise
        return fail(f"{said}; finished items are kept in {out} (batch.jsonl)")
    except KeyboardInterrupt:
        return fail(f"interrupted; finished items are kept in {out} (batch.jsonl): run the same command again "
                     "to resume", EXIT_INTERRUPTED)
    print(json.dumps(report.summary()))
    return 0


def add_batch_parser(subparsers) -> argparse.ArgumentParser:
    b = subparsers.add_parser(
        "batch", help="analyse a folder of videos or label a Penn Action folder, in parallel (local or Dask)",
        description="Analyse every video in a folder (or label every clip of a Penn Action folder) in parallel, "
                    "on local processes or a Dask cluster. Resumable: run the same command again after an "
                    "interruption. Results: one subfolder per video (or parts/ + manifest for Penn Action), "
                    "batch.csv and batch.jsonl in --out.")
    b.add_argument("input", help="a folder of videos (searched recursively) or a Penn Action folder (with labels/)")
    b.add_argument("--out", "-o", help="output folder (default: runs/batch_<input folder name>)")
    ex = b.add_mutually_exclusive_group()
    ex.add_argument("--exercise", "-e", help="videos: the exercise of all videos, or auto (recognised per video); "
                                             "Penn Action: label only this class")
    ex.add_argument("--from-folder-names", action="store_true",
                    help="videos (the default): exercise from the parent folder name or the file name prefix, "
                         "e.g. squat/clip.mp4 or squat_1.mp4")
    b.add_argument("--workers", "-j", type=int, help="local worker processes (default: all cores)")
    b.add_argument("--scheduler", help="run on a Dask cluster: the scheduler's address, e.g. tcp://10.0.0.5:8786")
    b.add_argument("--connect-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="how long to wait for the Dask scheduler and its first worker (default 10)")
    b.add_argument("--no-video", action="store_true",
                   help="videos: skip the annotated video (faster); Penn Action: skip the labelled images")
    b.add_argument("--penn", action="store_true", help="INPUT is a Penn Action folder (detected from labels/ anyway)")
    b.add_argument("--split", choices=("train", "test"), help="Penn Action: only this official split")
    b.add_argument("--limit", type=int, help="Penn Action: only the first N clips (by id)")
    b.add_argument("--rules", help="a rules TOML file overriding the packaged rules")
    b.add_argument("--quiet", "-q", action="store_true", help="no progress bar, no per-item failure lines")
    b.set_defaults(func=cmd_batch)
    return b


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gympose", description="GymPose: analyse workout videos.")
    sub = p.add_subparsers(dest="command", required=True)
    add_analyze_parser(sub)
    add_evaluate_parser(sub)
    add_robustness_parser(sub)
    add_batch_parser(sub)
    return p


def _terminate_as_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM (a service stop, `kill`) cleans up exactly like Ctrl-C


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    quiet_native_logs()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except Exception as e:  # last resort: one line, no traceback for the user
        return fail(f"unexpected failure: {type(e).__name__}: {e}", EXIT_FAILURE)
