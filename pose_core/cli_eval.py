"""The measuring sub-commands of `gympose` (see cli.py): evaluate (counts, form verdicts or recognition on a
labelled folder) and robustness (counts of transformed copies of the clips)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .cli_common import EXIT_INTERRUPTED, Progress, fail, not_a_folder, stderr_log


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .run.evaluate import evaluate_folder, format_table, summarize, to_json
    from .run.evaluate_form import is_form_folder
    from .core.rules import RulesError, load_rules

    folder = Path(args.folder)
    if not folder.is_dir():
        return fail(f"{folder}: folder not found")
    if args.rules:
        try:
            load_rules(args.rules)
        except RulesError as e:
            return fail(f"invalid rules file: {e}")
    from .run.evaluate_recognition import has_form_labels, is_recognition_folder

    # labels.csv with a `label` column: form verdicts per clip; labels.csv alone (or --auto): recognition
    report = "recognition" if is_recognition_folder(folder) and (args.auto or not has_form_labels(folder)) else \
        "form" if not args.auto and is_form_folder(folder) else "counts"
    if args.chunked and report != "counts":
        return fail("--chunked is for counts (a folder with videos.csv), not for form verdicts or recognition")
    if report == "recognition":
        return cmd_evaluate_recognition(args, folder)
    progress = Progress(not args.quiet and not args.json, "clips")
    if report == "form":
        return _evaluate_form(args, folder, progress)
    mode = "auto" if args.auto else "given"
    return _report(args, progress, lambda: evaluate_folder(folder, mode=mode, workers=args.workers,
                                                           rules_path=args.rules, out_dir=args.out,
                                                           progress=progress, cache=args.cache,
                                                           chunked=args.chunked),
                   summarize, to_json, lambda results, summary: format_table(results, summary, mode=mode))


def _report(args: argparse.Namespace, progress: Progress, compute, summarize, as_json, as_text) -> int:
    """Run one of evaluate's reports (counts, form verdicts, recognition): errors and Ctrl-C as the other
    commands."""
    from .run.evaluate import EvaluateError

    try:
        results = compute()
    except EvaluateError as e:
        return fail(str(e))
    except KeyboardInterrupt:
        return fail("interrupted", EXIT_INTERRUPTED)
    finally:
        progress.close()
    summary = summarize(results)
    print(json.dumps(as_json(results, summary)) if args.json else as_text(results, summary))
    return 0


def _evaluate_form(args: argparse.Namespace, folder: Path, progress: Progress) -> int:
    from .run.evaluate_form import evaluate_form, form_to_json, format_form_report, summarize_form

    return _report(args, progress, lambda: evaluate_form(folder, workers=args.workers, rules_path=args.rules,
                                                         cache=args.cache, progress=progress),
                   summarize_form, form_to_json, format_form_report)


def cmd_evaluate_recognition(args: argparse.Namespace, folder: Path) -> int:
    """A folder of labels without counts (labels.csv, no videos.csv): recognition alone."""
    from .run.evaluate_recognition import (evaluate_recognition, format_recognition, recognition_json,
                                           summarize_recognition)

    progress = Progress(not args.quiet and not args.json, "clips")
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
        return fail(f"{folder}: folder not found")
    if args.workers < 1:
        return fail(f"--workers must be 1 or more, got {args.workers}")
    out = Path(args.out)
    blocked = not_a_folder(out)
    if blocked is not None:
        return fail(f"--out {out}: {blocked} exists and is not a folder")
    blocked = not_a_folder(Path(args.cache)) if args.cache else None
    if blocked is not None:
        return fail(f"--cache {args.cache}: {blocked} exists and is not a folder")
    try:
        select(folder, _names(args.clips), args.limit, _names(args.transforms))  # said before any work starts
        if args.rules:
            load_rules(args.rules)
    except RobustnessError as e:
        return fail(str(e))
    except RulesError as e:
        return fail(f"invalid rules file: {e}")

    log = stderr_log(args.quiet)
    progress = Progress(not args.quiet, "robustness", unit="run")
    try:
        result = run_suite(folder, _names(args.clips), args.limit, _names(args.transforms), out, args.workers,
                           args.seed, args.rules, progress=progress, log=log, cache=args.cache)
    except RobustnessError as e:
        return fail(str(e))
    except KeyboardInterrupt:
        return fail(f"interrupted; the variants made so far are kept in {out} (run again to reuse them)",
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
    e.add_argument("--chunked", action="store_true", help="analyse each clip as `analyze` and the dashboard do: a "
                                                         "long clip's poses on time chunks on every core, one clip "
                                                         "at a time (the chunked path's accuracy; not with --cache)")
    e.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    e.set_defaults(func=cmd_evaluate)
    return e
