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
import os
import signal
import sys
from pathlib import Path

EXIT_BAD_INPUT = 2
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130


def _quiet_native_logs() -> None:
    """MediaPipe/TFLite write INFO/WARNING lines straight to file descriptor 2 from C++. Keep stderr for
    our own messages: native fd 2 goes to /dev/null, Python's sys.stderr keeps the real stderr."""
    from .store.settings import native_logs_wanted, quiet_native_libraries

    quiet_native_libraries()
    if native_logs_wanted():
        return
    try:
        sys.stderr.flush()
        real = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        sys.stderr = os.fdopen(real, "w", buffering=1)
    except OSError:
        pass


class _Progress:
    """A progress bar on stderr (tqdm), silent when stderr is not wanted."""

    def __init__(self, enabled: bool, desc: str, unit: str = "frame"):
        self.bar = None
        self.enabled, self.desc, self.unit = enabled, desc, unit

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:  # created on the first frame, so an early error prints no empty bar
            from tqdm import tqdm

            self.bar = tqdm(total=total or None, unit=self.unit, desc=self.desc, file=sys.stderr, dynamic_ncols=True,
                            leave=False, disable=None)  # disable=None: only on a terminal
        if total and self.bar.total != total:
            self.bar.total = total
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _fail(msg: str, code: int = EXIT_BAD_INPUT) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return code


def _not_a_folder(out: Path) -> Path | None:
    """The first existing path of out and its parents when it is not a folder (out cannot be created)."""
    for p in (out, *out.parents):
        if os.path.lexists(p):  # (False, not an error, for a name too long: output_problem says that)
            return None if p.is_dir() else p
    return None


def _output_refused(out: Path) -> str | None:
    """Why the output folder cannot be used, said before any work starts (None: it looks usable)."""
    from .core.io import output_problem

    blocked = _not_a_folder(out)
    if blocked is not None:
        return f"--out {out}: {blocked} exists and is not a folder"
    problem = output_problem(out)
    return str(problem) if problem is not None else None


def cmd_analyze(args: argparse.Namespace) -> int:
    from .core.io import NoSpaceError, OutputError
    from .core.rules import RulesError, load_rules
    from .media.video import VideoError
    from .run.pipeline import AnalysisError, CannotTellError, analyze_video
    from .store.frame_export import DEFAULT_EVERY, FrameExportError, export_labelled_frames
    from .store.outputs import OutputFolderBusy
    from .store.settings import SettingsError

    video = Path(args.video)
    if args.every is not None and not args.export_frames:
        return _fail("--every needs --export-frames")
    if args.every is not None and args.every < 1:
        return _fail(f"--every must be 1 or more, got {args.every}")
    if not video.exists():
        return _fail(f"{video}: file not found")
    try:
        rules = load_rules(args.rules) if args.rules else load_rules()
    except RulesError as e:
        return _fail(f"invalid rules file: {e}")
    exercise = args.exercise
    if exercise is None:
        return _fail("--exercise is required (one of: " + ", ".join(sorted(rules.exercises)) + ", auto)")
    if exercise != "auto" and exercise not in rules.exercises:
        return _fail(f"unknown exercise {exercise!r}; choose one of: " + ", ".join(sorted(rules.exercises)) + ", auto")
    out = Path(args.out) if args.out else Path("runs") / video.stem
    refused = _output_refused(out)
    if refused is not None:  # checked before the model starts
        return _fail(refused)
    progress = _Progress(not args.quiet, video.name)
    try:
        result = analyze_video(video, exercise, out, rules=rules, progress=progress, write_video=not args.no_video,
                               parallel=False if args.single_process else None)
    except CannotTellError as e:
        # Said plainly, with the candidates, instead of a silent guess.
        progress.close()
        print(json.dumps({"exercise": None, **e.recognition.to_dict()}))
        return _fail(str(e))
    except (VideoError, AnalysisError, OutputFolderBusy, SettingsError) as e:
        return _fail(str(e))
    except (NoSpaceError, OutputError) as e:  # "no space left on device: <folder>", "cannot write to <folder>:
        return _fail(str(e))                   # permission denied" (nothing half-written is left there)
    except KeyboardInterrupt:
        return _fail("interrupted; nothing was written", EXIT_INTERRUPTED)
    finally:
        progress.close()
    for note in result.summary.notes:  # (e.g. "The file ends early at 6.4 s: analysed what could be read ...")
        print(f"note: {note}", file=sys.stderr)
    summary = result.summary.to_dict()
    summary["out_dir"] = str(out)
    if args.export_frames:  # after the analysis: its frames.csv holds the labels (the model does not run again)
        try:
            exp = export_labelled_frames(video, out, every=args.every or DEFAULT_EVERY)
        except (FrameExportError, VideoError, OSError) as e:
            return _fail(f"the analysis is written in {out}, but the frames could not be exported: {e}")
        except KeyboardInterrupt:
            return _fail("interrupted while exporting frames; the analysis is written, no frames", EXIT_INTERRUPTED)
        summary["frames_exported"] = exp.images
        summary["frames_dir"] = str(exp.folder)
    print(json.dumps(summary))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .run.evaluate import EvaluateError, evaluate_folder, format_table, summarize, to_json
    from .run.evaluate_form import is_form_folder
    from .core.rules import RulesError, load_rules

    folder = Path(args.folder)
    if not folder.is_dir():
        return _fail(f"{folder}: folder not found")
    if args.rules:
        try:
            load_rules(args.rules)
        except RulesError as e:
            return _fail(f"invalid rules file: {e}")
    from .run.evaluate_recognition import has_form_labels, is_recognition_folder

    if is_recognition_folder(folder) and (args.auto or not has_form_labels(folder)):
        return cmd_evaluate_recognition(args, folder)
    progress = _Progress(not args.quiet and not args.json, "clips")
    if not args.auto and is_form_folder(folder):  # labels.csv with a `label` column: form verdicts per clip
        return _evaluate_form(args, folder, progress)
    try:
        results = evaluate_folder(folder, mode="auto" if args.auto else "given", workers=args.workers,
                                  rules_path=args.rules, out_dir=args.out, progress=progress, cache=args.cache)
    except EvaluateError as e:
        return _fail(str(e))
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)
    finally:
        progress.close()
    summary = summarize(results)
    if args.json:
        print(json.dumps(to_json(results, summary)))
    else:
        print(format_table(results, summary, mode="auto" if args.auto else "given"))
    return 0


def _report(args: argparse.Namespace, progress: _Progress, compute, summarize, as_json, as_text) -> int:
    """Run one of evaluate's reports (form verdicts, recognition): errors and Ctrl-C as the other commands."""
    from .run.evaluate import EvaluateError

    try:
        results = compute()
    except EvaluateError as e:
        return _fail(str(e))
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)
    finally:
        progress.close()
    summary = summarize(results)
    print(json.dumps(as_json(results, summary)) if args.json else as_text(results, summary))
    return 0


def _evaluate_form(args: argparse.Namespace, folder: Path, progress: _Progress) -> int:
    from .run.evaluate_form import evaluate_form, form_to_json, format_form_report, summarize_form

    return _report(args, progress, lambda: evaluate_form(folder, workers=args.workers, rules_path=args.rules,
                                                         cache=args.cache, progress=progress),
                   summarize_form, form_to_json, format_form_report)


def cmd_evaluate_recognition(args: argparse.Namespace, folder: Path) -> int:
    """A folder of labels without counts (labels.csv, no videos.csv): recognition alone."""
    from .run.evaluate_recognition import (evaluate_recognition, format_recognition, recognition_json,
                                           summarize_recognition)

    progress = _Progress(not args.quiet and not args.json, "clips")
    return _report(args, progress, lambda: evaluate_recognition(folder, workers=args.workers, rules_path=args.rules,
                                                                progress=progress, cache=args.cache),
                   summarize_recognition, recognition_json, format_recognition)


def _names(text: str | None) -> list[str] | None:
    """A comma-separated list from the command line ("a.mp4, b.mp4" -> ["a.mp4", "b.mp4"]); None if not given."""
    return None if text is None else [n.strip() for n in text.split(",") if n.strip()]


def cmd_robustness(args: argparse.Namespace) -> int:
    from .core.rules import RulesError, load_rules
    from .core.io import atomic_write_json, atomic_write_text
    from .run.robustness import RobustnessError, run_suite, select
    from .run.robustness_report import format_table, summarize, to_json

    folder = Path(args.folder)
    if not folder.is_dir():
        return _fail(f"{folder}: folder not found")
    if args.workers < 1:
        return _fail(f"--workers must be 1 or more, got {args.workers}")
    out = Path(args.out)
    blocked = _not_a_folder(out)
    if blocked is not None:
        return _fail(f"--out {out}: {blocked} exists and is not a folder")
    blocked = _not_a_folder(Path(args.cache)) if args.cache else None
    if blocked is not None:
        return _fail(f"--cache {args.cache}: {blocked} exists and is not a folder")
    try:
        select(folder, _names(args.clips), args.limit, _names(args.transforms))  # said before any work starts
        if args.rules:
            load_rules(args.rules)
    except RobustnessError as e:
        return _fail(str(e))
    except RulesError as e:
        return _fail(f"invalid rules file: {e}")

    def log(msg: str) -> None:
        if not args.quiet:
            from tqdm import tqdm

            tqdm.write(msg, file=sys.stderr)

    progress = _Progress(not args.quiet, "robustness", unit="run")
    try:
        result = run_suite(folder, _names(args.clips), args.limit, _names(args.transforms), out, args.workers,
                           args.seed, args.rules, progress=progress, log=log, cache=args.cache)
    except RobustnessError as e:
        return _fail(str(e))
    except KeyboardInterrupt:
        return _fail(f"interrupted; the variants made so far are kept in {out} (run again to reuse them)",
                     EXIT_INTERRUPTED)
    finally:
        progress.close()
    summary = summarize(result)
    table, doc = format_table(result, summary), to_json(result, summary)
    atomic_write_text(out / "robustness.txt", table + "\n")  # the last run's report beside its variants
    atomic_write_json(out / "robustness.json", doc)
    print(json.dumps(doc) if args.json else table)
    return 0


def add_robustness_parser(subparsers) -> argparse.ArgumentParser:
    from .media.variants import TRANSFORMS
    from .run.robustness import DEFAULT_OUT

    r = subparsers.add_parser(
        "robustness", help="count transformed copies of hand-counted clips (cuts, crops, low light, 15 fps...)",
        description="Make transformed copies of the clips in FOLDER/videos.csv (cached in --out) and check that "
                    "each one counts the same as the untransformed clip and as the hand count.")
    r.add_argument("folder", help="a folder with videos.csv (file, exercise, reps_complete) and the clips")
    which = r.add_mutually_exclusive_group()
    which.add_argument("--clips", help="only these clips, comma-separated (e.g. squat_1.mp4,pushup_4.mp4)")
    which.add_argument("--limit", type=int, help="only the first N clips of videos.csv")
    r.add_argument("--transforms", help="only these transforms, comma-separated (default all: " +
                   ", ".join(TRANSFORMS) + ")")
    r.add_argument("--out", default=str(DEFAULT_OUT),
                   help=f"where the variants are cached and the report is written (default {DEFAULT_OUT})")
    r.add_argument("--workers", type=int, default=2, help="clips analysed in parallel (default 2: one per core)")
    r.add_argument("--seed", type=int, default=0, help="the seed of the random transforms (default 0)")
    r.add_argument("--rules", help="a rules TOML file overriding the packaged rules")
    r.add_argument("--cache", help="a pose cache folder: the poses of every variant and clip are estimated once and "
                                   "kept there, so a rerun after a counter or rules change takes seconds")
    r.add_argument("--json", action="store_true", help="one JSON document instead of the table")
    r.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    r.set_defaults(func=cmd_robustness)
    return r


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
        return _fail(f"invalid rules file: {e}")
    out = Path(args.out) if args.out else Path("runs") / f"batch_{Path(args.input).resolve().name}"
    refused = _output_refused(out)
    if refused is not None:
        return _fail(refused)

    def log(msg: str) -> None:
        if not args.quiet:
            from tqdm import tqdm

            tqdm.write(msg, file=sys.stderr)

    try:
        report = run_batch(args.input, out, exercise=None if args.from_folder_names else args.exercise,
                           penn=True if args.penn else None, workers=args.workers, scheduler=args.scheduler,
                           write_video=not args.no_video, rules=rules, split=args.split, limit=args.limit,
                           connect_timeout_s=args.connect_timeout, progress=not args.quiet, log=log)
    except BatchInputError as e:
        return _fail(str(e))
    except OSError as e:  # writing into --out failed midway (a full disk, the folder made read-only...)
        said = output_error(e, out)
        if said is e:
            raise
        return _fail(f"{said}; finished items are kept in {out} (batch.jsonl)")
    except KeyboardInterrupt:
        return _fail(f"interrupted; finished items are kept in {out} (batch.jsonl): run the same command again "
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


def add_evaluate_parser(subparsers) -> argparse.ArgumentParser:
    e = subparsers.add_parser("evaluate", help="count accuracy on a folder of hand-counted clips (FOLDER/videos.csv), "
                                               "form verdicts on clip-labelled form, or recognition alone "
                                               "(FOLDER/labels.csv)")
    e.add_argument("folder", help="a folder with videos.csv (file, exercise, reps_complete[, reps_partial, "
                                  "rep_verdicts]) and the clips, or with labels.csv (file, exercise[, label "
                                  "correct|incorrect[, source_group]]) and no videos.csv: form verdicts per view and "
                                  "group when it has labels, else (or with --auto) recognition alone")
    e.add_argument("--auto", action="store_true", help="recognise each clip's exercise instead of using its label "
                                                      "(a labels.csv folder: the recognition report)")
    e.add_argument("--json", action="store_true", help="one JSON document instead of the table")
    e.add_argument("--workers", type=int, default=2, help="clips analysed in parallel (default 2: one per core)")
    e.add_argument("--rules", help="a rules TOML file overriding the packaged rules")
    e.add_argument("--out", help="also keep each clip's frames.csv / reps.json / summary.json here")
    e.add_argument("--cache", help="a pose cache folder: each clip's poses are estimated once and kept there, so a "
                                   "re-evaluation after a rules or code change runs in seconds (--out is then unused)")
    e.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    e.set_defaults(func=cmd_evaluate)
    return e


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
    _quiet_native_logs()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except Exception as e:  # last resort: one line, no traceback for the user
        return _fail(f"unexpected failure: {type(e).__name__}: {e}", EXIT_FAILURE)
