"""What a batch runs: the per-item work (one video analysed, or one Penn Action clip labelled; never raises
for a bad item), and `run_items`, which runs it on a `workers.Pool` or `workers.DaskPool` (the execution
layer) and survives crashing workers."""

from __future__ import annotations

import concurrent.futures as cf
import time
from pathlib import Path
from typing import Callable, Sequence

from ..core.rules import RuleSet
from .batch_plan import BatchItem, item_row
from .workers import worker_init


def run_video_item(item: BatchItem, out_dir: str, rules: RuleSet, write_video: bool, fingerprint: str) -> dict:
    """Analyse one video into out_dir/<item.name>/. Never raises for a bad video: returns an error row."""
    from .pipeline import AnalysisError, analyze_video
    from ..media.video import VideoError

    worker_init()
    t0 = time.perf_counter()
    row = item_row(item, rules_fingerprint=fingerprint)
    try:
        # None: recognised by the pipeline on the clip's first seconds, whose poses it then reuses.
        # One process per video: the batch's workers already use every core.
        res = analyze_video(item.source, item.exercise or "auto", Path(out_dir) / item.name, rules=rules,
                            write_video=write_video, parallel=False)
        s = res.summary
        row["exercise"] = s.exercise
        row.update(status="ok", reps=s.reps, reps_correct=s.reps_correct, reps_incorrect=s.reps_incorrect,
                   partial_reps=s.partial_reps, frames=s.frames, error="")
    except (VideoError, AnalysisError) as e:
        row.update(status="error", error=str(e))
    except Exception as e:  # one bad item must not stop the batch; say what it was
        row.update(status="error", error=f"unexpected failure: {type(e).__name__}: {e}")
    row["seconds"] = round(time.perf_counter() - t0, 2)
    return row


def run_penn_item(item: BatchItem, out_dir: str, rules: RuleSet, write_images: bool, fingerprint: str) -> dict:
    """Label one Penn Action clip into out_dir/parts/<clip>.parquet (+ images). Returns its row."""
    from ..datasets.penn import load_clip
    from ..datasets.penn_export import export_clip

    worker_init()
    t0 = time.perf_counter()
    row = item_row(item, rules_fingerprint=fingerprint)
    try:
        clip = load_clip(item.source)
        done = export_clip(clip, rules, out_dir, images=write_images)
        note = f"warning: {len(done.errors)} frame image(s) missing or unreadable" if done.errors else ""
        row.update(status="ok", exercise=clip.action, reps=done.reps.reps, reps_correct=done.reps.reps_correct,
                   reps_incorrect=done.reps.reps_incorrect, partial_reps=done.reps.partial_reps, frames=done.frames,
                   error=note)
    except (ValueError, OSError) as e:  # PennFormatError is a ValueError
        row.update(status="error", error=str(e))
    except Exception as e:
        row.update(status="error", error=f"unexpected failure: {type(e).__name__}: {e}")
    row["seconds"] = round(time.perf_counter() - t0, 2)
    return row


def run_items(executor, fn: Callable, items: Sequence[BatchItem], args: tuple,
              on_done: Callable[[dict], None]) -> None:
    """Run fn(item, *args) for every item on the executor, calling on_done(row) as each finishes.

    A task that raises gives an error row. When a local worker process dies (the pool breaks), the items
    that were in flight (the first workers + 1 unfinished ones in submission order: the pool dispatches in
    order) are re-run one at a time, so a crash is pinned on its own item; the rest go on in parallel."""
    pending = list(items)
    suspects: list[BatchItem] = []
    while pending or suspects:
        if suspects:
            item = suspects.pop(0)
            try:
                row = executor.submit(fn, item, *args).result()
            except cf.process.BrokenProcessPool:
                row = item_row(item, status="error", error="the worker process crashed while processing this item")
                executor.restart()
            except Exception as e:
                row = item_row(item, status="error", error=f"task failed: {type(e).__name__}: {e}")
            on_done(row)
            continue
        futures = {executor.submit(fn, it, *args): it for it in pending}
        order = list(futures)
        pending = []
        reported: set = set()
        broken = False
        for f in executor.as_completed(order):
            try:
                row = f.result()
            except cf.process.BrokenProcessPool:
                broken = True
                break
            except Exception as e:  # e.g. distributed's KilledWorker, a task that could not be unpickled
                row = item_row(futures[f], status="error", error=f"task failed: {type(e).__name__}: {e}")
            reported.add(f)
            on_done(row)
        if broken:
            unfinished = []
            for f in order:
                if f in reported:
                    continue
                if f.done() and not f.cancelled() and f.exception() is None:
                    reported.add(f)
                    on_done(f.result())
                else:
                    unfinished.append(futures[f])
            executor.restart()
            k = executor.workers + 1
            suspects, pending = unfinished[:k], unfinished[k:]
