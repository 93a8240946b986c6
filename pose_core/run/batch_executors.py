"""Where a batch runs, and what runs there: the per-item work (one video analysed, or one Penn Action clip
labelled; never raises for a bad item), a pool of local processes or a Dask cluster behind the same small
interface (`submit`, `as_completed`, `restart`, `close`), and `run_items`, which survives crashing workers."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from ..core.rules import RuleSet
from .batch_plan import BatchInputError, BatchItem, item_row
from .workers import local_worker_init, worker_init


# (the worker processes' life: run.workers, shared with the chunked pose pool and the jobs' analysis process)


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


class LocalExecutor:
    """A pool of `workers` local processes started with "spawn" (nothing MediaPipe-related is inherited)."""

    crash_prone = True  # a dying worker breaks the whole pool (BrokenProcessPool)

    def __init__(self, workers: int):
        if workers < 1:
            raise BatchInputError(f"--workers must be at least 1, got {workers}")
        self.workers = workers
        self.description = f"local, {workers} process{'es' if workers != 1 else ''}"
        self._pool = self._new_pool()

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                                      initializer=local_worker_init, initargs=(os.getpid(),))

    def submit(self, fn: Callable, *args) -> cf.Future:
        return self._pool.submit(fn, *args)

    def as_completed(self, futures: Iterable) -> Iterator:
        return cf.as_completed(list(futures))

    def restart(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()

    def close(self, cancel: bool = False) -> None:
        self._pool.shutdown(wait=True, cancel_futures=cancel)


class DaskExecutor:
    """One task per item on an existing Dask cluster (`distributed.Client(address)`)."""

    crash_prone = False  # the scheduler re-runs tasks of dead workers and fails only the culprit (KilledWorker)

    def __init__(self, address: str, timeout_s: float = 10.0):
        try:
            from distributed.comm.addressing import get_address_host_port
        except ImportError:
            raise BatchInputError("--scheduler needs the 'distributed' package (pip install distributed)") from None
        # A malformed address is refused before a Client exists: a Client that fails while starting hangs
        # in its destructor (closing its never-connected loop, twice the timeout) and prints a traceback.
        try:
            get_address_host_port(address)
        except ValueError as e:
            raise BatchInputError(f"--scheduler: {address!r} is not a Dask scheduler address ({e}); "
                                  "expected e.g. tcp://10.0.0.5:8786") from None
        try:
            self.client = _quick_client()(address, timeout=f"{timeout_s}s", set_as_default=False)
        except (OSError, TimeoutError, ValueError) as e:
            raise BatchInputError(f"cannot reach the Dask scheduler at {address}: {e}") from None
        try:
            self.client.wait_for_workers(1, timeout=timeout_s)
        except (TimeoutError, OSError):
            self.client.close()
            raise BatchInputError(f"the Dask scheduler at {address} has no workers (waited {timeout_s:g} s)") from None
        info = self.client.scheduler_info(n_workers=-1)["workers"]
        self.workers = sum(int(w.get("nthreads", 1)) for w in info.values()) or 1
        self.description = f"dask {address}, {len(info)} worker(s), {self.workers} thread(s)"

    def submit(self, fn: Callable, *args):
        return self.client.submit(fn, *args, pure=False)

    def as_completed(self, futures: Iterable) -> Iterator:
        from distributed import as_completed

        return iter(as_completed(list(futures), loop=self.client.loop))

    def restart(self) -> None:  # pragma: no cover - never needed (not crash_prone)
        pass

    def close(self, cancel: bool = False) -> None:
        with contextlib.suppress(Exception):
            self.client.close()


def _quick_client():
    """distributed.Client whose destructor closes within a second, silently (never the 2x-timeout wait of a
    client that failed while starting)."""
    from distributed import Client

    class QuickClient(Client):
        def __del__(self):
            with contextlib.suppress(Exception):
                if getattr(self, "status", "closed") not in ("closed", "newly-created"):
                    self.close(timeout=1)

    return QuickClient


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
