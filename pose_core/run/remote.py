"""One analysis on a Dask cluster, as if it ran here: `analyze_remote` runs `pipeline.analyze_video` as one task
on the scheduler configured in GYMPOSE_DASK_SCHEDULER (or given), reports its progress back through the same
`progress(done, expected)` callback (the task publishes it in a Dask `Variable`; this side polls it from the
caller's thread, so a Streamlit progress bar can be updated), and returns the same `AnalysisResult` or raises
the same exception types as a local run (VideoError, NoPersonError, CannotTellError, KeyError...).

`analyze` is what a job runner calls: on the configured scheduler when there is one, else here.

The video and the output folder are paths: the Dask workers must see the same filesystem (the usual setup:
workers on the web server's machine or a shared volume). A worker runs one analysis per thread in one process
(`parallel=False`: the cluster's workers are the parallelism, and Dask's worker processes are daemons that may
not start processes of their own).
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from ..core.rules import RuleSet
from ..media.video import ProgressFn
from ..store.settings import dask_scheduler

PROGRESS_EVERY_S = 0.2  # how often the task publishes its progress (and the caller looks at it)


class RemoteError(RuntimeError):
    """The Dask cluster could not be used (unreachable, no workers, the task was lost); the message says why."""


_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


def client_for(address: str, timeout_s: float = 10.0):
    """A Dask client for `address`, made once per process and reused (a client costs ~0.5 s to connect)."""
    from .workers import DaskPool, PoolInputError

    with _clients_lock:
        c = _clients.get(address)
        if c is not None and c.status == "running":
            return c
        try:
            c = DaskPool(address, timeout_s=timeout_s).client
        except PoolInputError as e:
            raise RemoteError(str(e).replace("--scheduler: ", "")) from None
        _clients[address] = c
        return c


def _remote_task(video: str, exercise: str, out_dir: str | None, rules: RuleSet | None, write_video: bool,
                 progress_key: str, kwargs: dict):
    """Runs on a Dask worker: the analysis, its progress published in the Variable `progress_key`."""
    from distributed import Variable

    from .workers import worker_init
    from .pipeline import analyze_video

    worker_init()
    var = Variable(progress_key)
    last = [0.0]

    def progress(done: int, expected: int) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY_S or (expected and done >= expected):
            last[0] = now
            with contextlib.suppress(Exception):  # progress is best effort, never a failure
                var.set([int(done), int(expected)])

    kwargs = {"parallel": False, **kwargs}
    return analyze_video(video, exercise, out_dir, rules=rules, progress=progress, write_video=write_video,
                         **kwargs)


def analyze_remote(video: str | Path, exercise: str, out_dir: str | Path | None = None,
                   rules: RuleSet | None = None, progress: ProgressFn | None = None, write_video: bool = True,
                   scheduler: str | None = None, client=None, timeout_s: float = 10.0, **kwargs):
    """`analyze_video` as one task on a Dask cluster (`client`, else `scheduler`, else GYMPOSE_DASK_SCHEDULER).
    Blocks until done; progress(done, expected) is called from this thread. Other keyword arguments go to
    analyze_video. Raises what analyze_video raises, or RemoteError when the cluster cannot be used."""
    from distributed import Variable

    if client is None:
        address = scheduler or dask_scheduler()
        if not address:
            raise RemoteError("no Dask scheduler configured (GYMPOSE_DASK_SCHEDULER)")
        client = client_for(address, timeout_s)
    key = f"gympose-progress-{uuid.uuid4().hex}"
    var = Variable(key, client=client)
    fut = client.submit(_remote_task, str(video), exercise, None if out_dir is None else str(out_dir), rules,
                        write_video, key, kwargs, pure=False, key=f"gympose-analyze-{uuid.uuid4().hex}")
    last = None
    try:
        while True:
            try:
                fut.result(timeout=PROGRESS_EVERY_S)
                break
            except TimeoutError:
                pass
            if progress is not None:
                with contextlib.suppress(TimeoutError, OSError):
                    value = var.get(timeout=PROGRESS_EVERY_S)
                    if value != last and value is not None:
                        last = value
                        progress(int(value[0]), int(value[1]))
        result = fut.result()
    except BaseException as e:
        with contextlib.suppress(Exception):
            fut.cancel()
        if _is_lost(e):
            raise RemoteError(f"the analysis was lost on the Dask cluster: {type(e).__name__}: {e}") from None
        raise
    finally:
        with contextlib.suppress(Exception):
            var.delete()
    if progress is not None and result.summary.frames and last != [result.summary.frames] * 2:
        progress(result.summary.frames, result.summary.frames)
    return result


def _is_lost(e: BaseException) -> bool:
    """Errors of the cluster itself (not of the analysis): a killed worker, a lost connection."""
    name = type(e).__name__
    return name in ("KilledWorker", "CommClosedError", "FutureCancelledError", "CancelledError")


def analyze(video: str | Path, exercise: str, out_dir: str | Path | None = None, **kwargs):
    """One analysis where it belongs: on the Dask scheduler configured in GYMPOSE_DASK_SCHEDULER when there is
    one, else in this process (`pipeline.analyze_video`, which uses every core for a long clip). A local-only
    keyword (pool, estimator, estimator_factory, stage: a callback of this process; video_after: the cluster
    draws the video in its loop) is dropped when the
    analysis runs remotely."""
    from .pipeline import analyze_video

    if dask_scheduler():
        for local_only in ("pool", "estimator", "estimator_factory", "stage", "video_after"):
            kwargs.pop(local_only, None)
        return analyze_remote(video, exercise, out_dir, **kwargs)
    return analyze_video(video, exercise, out_dir=out_dir, **kwargs)
