"""Batch analysis: many videos, or a whole Penn Action folder, in parallel, resumable.

    python -m pose_core batch INPUT --out DIR [--exercise EX | --from-folder-names] [--workers N]
                                    [--scheduler tcp://host:port] [--no-video] [--penn]

INPUT is either
- a folder of videos (searched recursively): each video is one item, analysed with
  `pipeline.analyze_video` into DIR/<video stem>/. The exercise is --exercise for all of them, `auto`
  (recognised per video), or by default taken from the names: the nearest parent folder called like an
  exercise (`squat/clip.mp4`), else the file name's prefix (`squat_3.mp4`, `bench-press 2.mov`);
- or a Penn Action folder (`--penn`, or detected by its `labels/` subfolder): each annotated clip of the
  gym classes is one item, labelled with `penn_export.export_clip` into DIR/parts/<clip>.parquet (plus
  labelled images when the frames exist), and DIR/manifest.parquet + .csv are assembled at the end,
  exactly the layout of `penn_export.export_dataset`.

Where it runs: by default a pool of local processes (one per core). Each process builds its own pose
model (MediaPipe is not fork-safe once used, so the pool uses the "spawn" start method and the parent
never builds one). With `--scheduler tcp://host:port` every item is one task on an existing Dask
cluster (its workers need this package and must see INPUT and DIR at the same paths). Both go through
the same small executor interface (`submit`, `as_completed`).

Results in DIR:
    batch.jsonl   journal: one JSON row per finished item, appended (and fsynced) as it finishes
    batch.csv     the table (item, exercise, status, reps, reps_correct, reps_incorrect, partial_reps,
                  frames, seconds, error, source), written atomically at the end
Re-running resumes: an item whose last journal row is ok, made with the same rules (fingerprint) and
exercise, and whose output is still on disk, is skipped. A bad item (corrupt video, nobody in frame,
unreadable label file) is an error row, never fatal to the batch. A worker process that crashes is
survived too: the items that were in flight are re-run one at a time, so only the culprit fails.

The last stdout line is a JSON summary: items, ok (including skipped), errors, skipped, seconds, workers.

The rooms: batch_plan (what the items are), batch_executors (the per-item work, and where it runs),
batch_journal (journal, table, resuming), this module (one batch from start to end), cli.py (the command).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from ..core.io import output_error
from ..core.rules import RuleSet
from ..datasets.penn import GYM_CLASSES
from ..datasets.penn_export import export_columns, export_lock, prepare_export_dir, write_manifest
from ..datasets.penn_labels import rules_fingerprint
from ..media.video import VIDEO_EXTENSIONS
from .batch_executors import run_items, run_penn_item, run_video_item
from .workers import DaskPool, Pool, PoolInputError
from .batch_journal import JOURNAL, TABLE, Journal, already_done, file_size, read_journal, row_from_part, write_table
from .batch_plan import (BATCH_COLUMNS, BatchInputError, BatchItem, exercise_from_path, find_videos, plan_penn,
                         plan_videos)


@dataclass
class BatchReport:
    mode: str  # "videos" | "penn"
    out_dir: str
    items: int
    ok: int  # including skipped
    errors: int
    skipped: int
    seconds: float
    workers: int
    executor: str
    rows: list[dict]

    def summary(self) -> dict:
        d = asdict(self)
        d.pop("rows")
        d["batch_csv"] = str(Path(self.out_dir) / TABLE)
        return d


@dataclass
class _Plan:
    mode: str  # "videos" | "penn"
    fn: Callable[..., dict]  # the per-item work
    items: list[BatchItem]
    errors: list[dict]  # rows of items that could not be planned
    fingerprint: str
    actions: tuple[str, ...] = ()  # Penn Action classes


def run_batch(input_dir: str | Path, out_dir: str | Path, *, exercise: str | None = None, penn: bool | None = None,
              workers: int | None = None, scheduler: str | None = None, write_video: bool = True,
              rules: RuleSet | None = None, split: str | None = None, limit: int | None = None,
              connect_timeout_s: float = 10.0, progress: bool = True,
              log: Callable[[str], None] | None = None) -> BatchReport:
    """Run a batch (see the module docstring). Raises BatchInputError for bad input; never for a bad item.

    penn: True / False, or None to detect a Penn Action folder by its labels/ subfolder.
    exercise: videos: one exercise for all, "auto", or None (from names); Penn: restrict to one action.
    workers: local processes (default: all cores, at most one per item); refused together with
    `scheduler` (the cluster decides). split / limit: Penn only (official split, first N clips)."""
    from ..core.rules import load_rules

    t0 = time.perf_counter()
    src, out = Path(input_dir), Path(out_dir)
    _check_request(src, workers, scheduler, limit)
    rules = rules or load_rules()
    if penn is None:
        penn = (src / "labels").is_dir()
    _check_exercise(exercise, sorted(rules.exercises), penn)
    plan = _plan_penn(src, exercise, rules, split, limit) if penn else _plan_videos(src, out, exercise, rules)

    with contextlib.ExitStack() as stack:
        executor: Pool | DaskPool | None = None
        if scheduler is not None:  # before anything is written: an unreachable cluster leaves no trace
            executor = _pool(DaskPool, scheduler, connect_timeout_s)
            stack.callback(executor.close, True)
        _claim_out_dir(stack, out, plan, rules, src)
        results, todo = _resume(plan, out)
        skipped = len(plan.items) - len(todo)
        if todo and executor is None:
            executor = _pool(Pool, workers if workers is not None else max(1, min(_cores(), len(todo))))
            stack.callback(executor.close, True)  # also on errors and Ctrl-C: cancel what has not started
        rows = _execute(stack, plan, executor, todo, results, skipped, out, (str(out), rules, write_video),
                        progress, log)
        if plan.mode == "penn":
            ok_ids = [it.name for it in plan.items if results[it.name].get("status") == "ok"]
            write_manifest(out, ok_ids, export_columns(rules, plan.actions))

    ok = sum(r.get("status") == "ok" for r in rows)
    return BatchReport(mode=plan.mode, out_dir=str(out), items=len(rows), ok=ok, errors=len(rows) - ok,
                       skipped=skipped, seconds=round(time.perf_counter() - t0, 2),
                       workers=executor.workers if executor is not None else 0,
                       executor=executor.description if executor is not None else "none (nothing to do)", rows=rows)


def _check_request(src: Path, workers: int | None, scheduler: str | None, limit: int | None) -> None:
    if not src.exists():
        raise BatchInputError(f"{src}: folder not found")
    if not src.is_dir():
        raise BatchInputError(f"{src}: not a folder (give a folder of videos or a Penn Action folder)")
    if scheduler is not None and workers is not None:
        raise BatchInputError("--workers applies to local runs; with --scheduler the Dask cluster's workers are used")
    if workers is not None and workers < 1:
        raise BatchInputError(f"--workers must be at least 1, got {workers}")
    if limit is not None and limit < 1:
        raise BatchInputError(f"--limit must be at least 1, got {limit}")


def _check_exercise(exercise: str | None, known: list[str], penn: bool) -> None:
    if exercise is not None and exercise not in known and not (exercise == "auto" and not penn):
        raise BatchInputError(f"unknown exercise {exercise!r}; choose one of: {', '.join(known)}"
                              + ("" if penn else ", auto"))
    if exercise == "auto":
        try:
            from ..recognition import default_recognizer

            default_recognizer()  # fail here, once, rather than in every task
        except Exception as e:
            raise BatchInputError(f"--exercise auto is not available (no usable exercise recogniser: {e})") from None


def _plan_penn(src: Path, exercise: str | None, rules: RuleSet, split: str | None, limit: int | None) -> _Plan:
    if not (src / "labels").is_dir():
        raise BatchInputError(f"{src}: not a Penn Action folder (no labels/ subfolder)")
    actions = (exercise,) if exercise else tuple(a for a in GYM_CLASSES if a in rules.exercises)
    if split is not None and split not in ("train", "test"):
        raise BatchInputError(f"--split must be train or test, got {split!r}")
    items, errors = plan_penn(src, actions, split, limit)
    if not items and not errors:
        raise BatchInputError(f"{src}: no Penn Action clips of {', '.join(actions)} found")
    return _Plan("penn", run_penn_item, items, errors, rules_fingerprint(rules, actions), actions)


def _plan_videos(src: Path, out: Path, exercise: str | None, rules: RuleSet) -> _Plan:
    items, errors = plan_videos(src, sorted(rules.exercises), exercise, exclude=out)
    if not items and not errors:
        raise BatchInputError(f"{src}: no videos found ({', '.join(VIDEO_EXTENSIONS)})")
    return _Plan("videos", run_video_item, items, errors, rules_fingerprint(rules))


def _claim_out_dir(stack: contextlib.ExitStack, out: Path, plan: _Plan, rules: RuleSet, src: Path) -> None:
    """Create out, hold its lock for the batch (one batch or export at a time), prepare a Penn export."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        stack.enter_context(export_lock(out))
    except RuntimeError:
        raise BatchInputError(f"another batch or export is already running in {out}") from None
    except OSError as e:  # (no permission, a read-only file system...: one plain line, as for a full disk)
        raise BatchInputError(str(output_error(e, out))) from None
    if plan.mode == "penn":
        try:
            prepare_export_dir(out, rules, plan.actions, src)
        except ValueError as e:
            raise BatchInputError(str(e)) from None


def _resume(plan: _Plan, out: Path) -> tuple[dict[str, dict], list[BatchItem]]:
    """Rows of what an earlier run already did (and of the unplannable items), and the items still to do."""
    journal_rows = read_journal(out)
    results: dict[str, dict] = {r["item"]: r for r in plan.errors}
    todo: list[BatchItem] = []
    for it in plan.items:
        prev = journal_rows.get(it.name)
        if already_done(it, prev, out, plan.fingerprint):
            results[it.name] = prev if prev is not None and prev.get("status") == "ok" else row_from_part(it, out)
        else:
            todo.append(it)
    if plan.mode == "videos":  # biggest first: a long clip started last would leave the other workers idle
        todo.sort(key=lambda it: -file_size(it.source))
    return results, todo


def _pool(make, *args):
    """A Pool or DaskPool; what stops it from being made is bad input for the whole batch."""
    try:
        return make(*args)
    except PoolInputError as e:
        raise BatchInputError(str(e)) from None


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _execute(stack: contextlib.ExitStack, plan: _Plan, executor, todo: list[BatchItem], results: dict[str, dict],
             skipped: int, out: Path, args: tuple, progress: bool, log: Callable[[str], None] | None) -> list[dict]:
    """Run the items still to do, journaling each row as it finishes; write the table. The rows, in order."""
    journal = stack.enter_context(contextlib.closing(Journal(out / JOURNAL)))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = stack.enter_context(tqdm(
            total=len(plan.items) + len(plan.errors), initial=skipped + len(plan.errors), unit="item",
            desc=f"batch ({executor.description})" if executor else "batch", file=sys.stderr,
            dynamic_ncols=True, leave=False, disable=None))

    def report_failure(row: dict) -> None:
        if row.get("status") != "ok" and log is not None:
            log(f"failed: {row['item']}: {row.get('error')}")

    def on_done(row: dict) -> None:
        results[row["item"]] = row
        journal.append(row)
        if bar is not None:
            bar.update(1)
        report_failure(row)

    for r in plan.errors:
        journal.append(r)
        report_failure(r)
    order = [it.name for it in plan.items] + [r["item"] for r in plan.errors]
    try:
        if executor is not None:
            run_items(executor, plan.fn, todo, (*args, plan.fingerprint), on_done)
    except BaseException:  # KeyboardInterrupt: keep the table of what finished (the journal has it too)
        write_table(out / TABLE, [results[n] for n in order if n in results])
        raise
    rows = [results[n] for n in order]
    write_table(out / TABLE, rows)
    return rows


__all__ = [
    "BATCH_COLUMNS", "BatchInputError", "BatchItem", "BatchReport", "DaskPool", "Pool",
    "exercise_from_path", "find_videos", "plan_penn", "plan_videos", "read_journal", "run_batch", "run_items",
    "run_penn_item", "run_video_item",
]
