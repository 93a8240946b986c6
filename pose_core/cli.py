"""Command line: `python -m pose_core analyze VIDEO --exercise EXERCISE [--out DIR] [--rules FILE]`.

The last line of stdout is the summary as one line of JSON. Errors: one clear line on stderr, exit code 2
(bad input) or 1 (unexpected failure), and no half-written output.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

EXIT_BAD_INPUT = 2
EXIT_FAILURE = 1


def _quiet_native_logs() -> None:
    """MediaPipe/TFLite write INFO/WARNING lines straight to file descriptor 2 from C++. Keep stderr for
    our own messages: native fd 2 goes to /dev/null, Python's sys.stderr keeps the real stderr."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if os.environ.get("GYMPOSE_NATIVE_LOGS"):
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

    def __init__(self, enabled: bool, desc: str):
        self.bar = None
        self.enabled, self.desc = enabled, desc

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:  # created on the first frame, so an early error prints no empty bar
            from tqdm import tqdm

            self.bar = tqdm(total=total or None, unit="frame", desc=self.desc, file=sys.stderr, dynamic_ncols=True,
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


def cmd_analyze(args: argparse.Namespace) -> int:
    from .run.pipeline import AnalysisError, CannotTellError, analyze_video
    from .core.rules import RulesError, load_rules
    from .media.video import VideoError

    video = Path(args.video)
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
    progress = _Progress(not args.quiet, video.name)
    try:
        result = analyze_video(video, exercise, out, rules=rules, progress=progress, write_video=not args.no_video)
    except CannotTellError as e:
        # Said plainly, with the candidates, instead of a silent guess.
        progress.close()
        print(json.dumps({"exercise": None, **e.recognition.to_dict()}))
        return _fail(str(e))
    except VideoError as e:
        return _fail(str(e))
    except AnalysisError as e:
        return _fail(str(e))
    except KeyboardInterrupt:
        return _fail("interrupted; nothing was written", 130)
    finally:
        progress.close()
    summary = dict(result.summary)
    summary["out_dir"] = str(out)
    print(json.dumps(summary))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pose_core", description="GymPose: analyse workout videos.")
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("analyze", help="analyse one video: annotated video, per-frame labels, judged reps")
    a.add_argument("video", help="the workout video (mp4, mov, webm...)")
    a.add_argument("--exercise", "-e", help="bench_press, clean_and_jerk, jump_rope, jumping_jacks, pullup, "
                                            "pushup, situp, squat, or auto")
    a.add_argument("--out", "-o", help="output folder (default: runs/<video name>)")
    a.add_argument("--rules", help="a rules TOML file overriding the packaged rules")
    a.add_argument("--no-video", action="store_true", help="skip the annotated video (faster)")
    a.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    a.set_defaults(func=cmd_analyze)
    try:
        from .run.batch import add_batch_parser  # the batch command (Penn Action / folders), when present
    except ImportError:
        pass
    else:
        add_batch_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    _quiet_native_logs()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except Exception as e:  # last resort: one line, no traceback for the user
        return _fail(f"unexpected failure: {type(e).__name__}: {e}", EXIT_FAILURE)
