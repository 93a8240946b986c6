"""The execution layer: every piece of GymPose work that runs in another process starts here, one way.

- `Worker`: one long-lived process (a chunked-pose worker, the dashboard's analysis process). `stop()` waits
  a grace period and then kills it (its whole process group when it leads one); `exit_reason()` says how it
  ended.
- `Pool`: a pool of processes for independent tasks (batch items, evaluate clips, robustness pairs, model
  fits): `submit`, `as_completed`, `restart` (after a crash broke it), `close`. `Pool(1, inline=True)` runs
  each task at once in this process (tests, one core). `DaskPool` is the same interface on a Dask cluster
  (`batch --scheduler`, `run.remote`).
- `map_in_order(fn, args, workers)`: fn over a list on a Pool, results in order.

Every process it starts is spawned (nothing of the caller is inherited: not the web server, not MediaPipe),
ends with its parent (the kernel's PR_SET_PDEATHSIG plus a polling watchdog), has MediaPipe's native logs
kept to errors, and runs at the nice value it is given. Long-lived workers also ignore SIGINT: their parent
turns Ctrl-C into an orderly stop. Why not Dask's LocalCluster on one machine: docs/execution.md (measured).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import os
import signal
import threading
import time
from typing import Callable, Iterable, Iterator

from ..store.settings import quiet_native_libraries

_INITIALISED = False
PARENT_POLL_S = 0.5  # how often a worker checks that the process that started it is still alive


class PoolInputError(ValueError):
    """A pool could not be made (bad worker count, unreachable or empty Dask cluster); the message says why."""


# ------------------------------------------------------------------------------ a worker process's life

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

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(1, int(signal.SIGKILL), 0, 0, 0) == 0  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return False


def worker_init(one_thread: bool = True) -> None:
    """Once per worker process (pool initializer; first task on a Dask worker): native logs quiet before
    MediaPipe is first imported; one_thread: OpenCV on one thread (one core per process: the pool is the
    parallelism)."""
    global _INITIALISED
    if _INITIALISED:
        return
    _INITIALISED = True
    quiet_native_libraries()
    if one_thread:
        with contextlib.suppress(Exception):
            import cv2

            cv2.setNumThreads(1)


def _pool_init(parent_pid: int, nice: int) -> None:
    """A Pool process's initializer."""
    exit_with_parent(parent_pid)
    _lower(nice)
    worker_init()


def _lower(nice: int) -> None:
    if nice:
        with contextlib.suppress(OSError):
            os.nice(nice)


def _bootstrap(target: Callable, args: tuple, parent_pid: int, nice: int, one_thread: bool) -> None:
    """The first code of every Worker process, then target(*args)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    exit_with_parent(parent_pid)
    _lower(nice)
    worker_init(one_thread)
    target(*args)


def spawn_context():
    import multiprocessing

    return multiprocessing.get_context("spawn")


# ------------------------------------------------------------------------------------- long-lived workers

class Worker:
    """One long-lived worker process running target(*args). Start it from a thread that outlives it (the
    kernel's kill-with-parent is tied to the thread that started it). daemon=False for a worker that starts
    processes of its own (the analysis process starts pose workers)."""

    def __init__(self, target: Callable, args: tuple = (), name: str = "gympose-worker", nice: int = 0,
                 daemon: bool = True, one_thread: bool = True):
        self._proc = spawn_context().Process(target=_bootstrap, name=name, daemon=daemon,
                                             args=(target, tuple(args), os.getpid(), nice, one_thread))
        self._proc.start()

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    @property
    def exitcode(self) -> int | None:
        return self._proc.exitcode

    def alive(self) -> bool:
        return self._proc.is_alive()

    def join(self, timeout: float | None = None) -> None:
        self._proc.join(timeout)

    def stop(self, grace_s: float = 2.0) -> None:
        """Give it grace_s to end on its own (it was asked to), then kill it."""
        self._proc.join(timeout=max(0.0, grace_s))
        self.kill()

    def kill(self) -> None:
        """End it now. A worker that leads a process group of its own (the analysis process at background
        priority) is killed with its whole group at once: a process at the lowest priority on a busy machine
        takes seconds to exit, and the kernel's kill-with-parent would reach its children only after that."""
        pid = self._proc.pid
        if self._proc.is_alive():
            with contextlib.suppress(OSError):
                if pid and os.getpgid(pid) == pid != os.getpgid(0):
                    os.killpg(pid, signal.SIGKILL)
            self._proc.kill()
        self._proc.join(timeout=5)

    def exit_reason(self) -> str:
        code = self._proc.exitcode
        return f"signal {-code}" if code is not None and code < 0 else str(code)


def stop_all(workers: list[Worker], grace_s: float = 2.0) -> None:
    """Stop several workers (already asked to end) within one grace period in total."""
    deadline = time.monotonic() + grace_s
    for w in workers:
        w.stop(grace_s=deadline - time.monotonic())


# ---------------------------------------------------------------------------------------- task pools

class _InlineExecutor:
    """The executor interface, each task run at once in this process."""

    def submit(self, fn: Callable, *args) -> cf.Future:
        fut: cf.Future = cf.Future()
        try:
            fut.set_result(fn(*args))
        except Exception as e:  # raised by result(), as from a process
            fut.set_exception(e)
        return fut

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        pass


class Pool:
    """`workers` local processes for independent tasks. inline=True with workers <= 1: no process at all."""

    crash_prone = True  # a dying worker breaks the whole pool (BrokenProcessPool): see restart()

    def __init__(self, workers: int, nice: int = 0, inline: bool = False):
        if workers < 1:
            raise PoolInputError(f"--workers must be at least 1, got {workers}")
        self.workers = workers
        self.nice = nice
        self.inline = inline and workers <= 1
        self.description = "this process" if self.inline else \
            f"local, {workers} process{'es' if workers != 1 else ''}"
        self._pool = self._new_pool()

    def _new_pool(self):
        if self.inline:
            return _InlineExecutor()
        return cf.ProcessPoolExecutor(max_workers=self.workers, mp_context=spawn_context(), initializer=_pool_init,
                                      initargs=(os.getpid(), self.nice))

    def submit(self, fn: Callable, *args) -> cf.Future:
        return self._pool.submit(fn, *args)

    def as_completed(self, futures: Iterable) -> Iterator:
        return cf.as_completed(list(futures))

    def restart(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()

    def close(self, cancel: bool = False) -> None:
        self._pool.shutdown(wait=True, cancel_futures=cancel)

    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, *exc) -> None:
        self.close(cancel=exc[0] is not None)  # an interrupt drops the queued tasks instead of running them


class DaskPool:
    """The Pool interface on an existing Dask cluster (`distributed.Client(address)`): one task per item."""

    crash_prone = False  # the scheduler re-runs tasks of dead workers and fails only the culprit (KilledWorker)

    def __init__(self, address: str, timeout_s: float = 10.0):
        try:
            from distributed.comm.addressing import get_address_host_port
        except ImportError:
            raise PoolInputError("--scheduler needs the 'distributed' package (pip install distributed)") from None
        # A malformed address is refused before a Client exists: a Client that fails while starting hangs
        # in its destructor (closing its never-connected loop, twice the timeout) and prints a traceback.
        try:
            get_address_host_port(address)
        except ValueError as e:
            raise PoolInputError(f"--scheduler: {address!r} is not a Dask scheduler address ({e}); "
                                 "expected e.g. tcp://10.0.0.5:8786") from None
        try:
            self.client = _quick_client()(address, timeout=f"{timeout_s}s", set_as_default=False)
        except (OSError, TimeoutError, ValueError) as e:
            raise PoolInputError(f"cannot reach the Dask scheduler at {address}: {e}") from None
        try:
            self.client.wait_for_workers(1, timeout=timeout_s)
        except (TimeoutError, OSError):
            self.client.close()
            raise PoolInputError(f"the Dask scheduler at {address} has no workers (waited {timeout_s:g} s)") from None
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


def map_in_order(fn, args: list[tuple], workers: int, progress=None) -> list:
    """fn(*a) for every a of `args`, the results in the order of `args`, on a Pool of `workers` processes (in
    this process when workers <= 1). progress(done, total) after each one. An exception in fn is raised here
    (fn should not raise)."""
    results: list = [None] * len(args)
    if workers <= 1:  # one at a time, so that progress is told as each one ends
        for i, a in enumerate(args):
            results[i] = fn(*a)
            if progress:
                progress(i + 1, len(args))
        return results
    with Pool(workers) as pool:
        futures = {pool.submit(fn, *a): i for i, a in enumerate(args)}
        for done, fut in enumerate(pool.as_completed(futures), start=1):
            results[futures[fut]] = fut.result()
            if progress:
                progress(done, len(args))
    return results
