"""The life of a worker process, the same for every pool GymPose starts (the batch's local pool, the chunked
pose workers, the dashboard jobs' analysis process, a Dask worker's first task): it ends with its parent,
and native libraries are quietened and kept to one thread once per process."""

from __future__ import annotations

import contextlib
import os
import threading
import time

from ..store.settings import quiet_native_libraries

_INITIALISED = False
PARENT_POLL_S = 0.5  # how often a local worker checks that the batch that started it is still alive


def exit_with_parent(parent_pid: int, poll_s: float = PARENT_POLL_S) -> None:
    """In a worker process: end as soon as its parent is gone (kill -9 of the batch or of the analysis
    process gives no chance to shut the pool down; orphaned workers would hold the caller's pipes open and
    keep computing).

    On Linux the kernel does it (PR_SET_PDEATHSIG: SIGKILL the moment the parent dies): a watchdog thread
    polling os.getppid() needs the CPU and Python's GIL to notice, and a worker at the lowest priority on a
    busy machine got neither for 7-40 s. The kernel's signal is tied to the parent's *thread* that started the
    worker: pools are started from threads that outlive them (the main thread, the job runner's thread).
    The polling watchdog stays as the fallback elsewhere. os._exit: nothing of a half-done item is worth
    flushing."""
    die_with_parent()
    if os.getppid() != parent_pid:  # the parent died before the kernel was told
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent_pid:  # re-parented (to init or a subreaper): the parent died
                os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def die_with_parent() -> bool:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux); False where it cannot."""
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(1, int(signal.SIGKILL), 0, 0, 0) == 0  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return False


def local_worker_init(parent_pid: int) -> None:
    """Initializer of the local pool's processes."""
    exit_with_parent(parent_pid)
    worker_init()


def worker_init() -> None:
    """Once per worker process (local pool initializer; first task on a Dask worker)."""
    global _INITIALISED
    if _INITIALISED:
        return
    _INITIALISED = True
    quiet_native_libraries()  # before MediaPipe is first imported in this process
    with contextlib.suppress(Exception):
        import cv2

        cv2.setNumThreads(1)  # one core per process: the pool is the parallelism


def quiet_worker() -> None:
    """A pool process's initializer: MediaPipe's and TensorFlow Lite's native logs kept to warnings."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def map_in_order(fn, args: list[tuple], workers: int, progress=None) -> list:
    """fn(*a) for every a of `args`, the results in the order of `args`: in this process when workers <= 1,
    else in a pool of `workers` spawned processes (nothing of the caller inherited; quiet native logs).
    progress(done, total) after each one. An exception in fn is raised here (fn should not raise)."""
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from multiprocessing import get_context

    results: list = [None] * len(args)
    if workers <= 1:
        for i, a in enumerate(args):
            results[i] = fn(*a)
            if progress:
                progress(i + 1, len(args))
        return results
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"), initializer=quiet_worker) as ex:
        futures = {ex.submit(fn, *a): i for i, a in enumerate(args)}
        for done, fut in enumerate(as_completed(futures), start=1):
            results[futures[fut]] = fut.result()
            if progress:
                progress(done, len(args))
    return results
