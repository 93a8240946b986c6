"""Could Dask's LocalCluster be GymPose's execution layer on one machine? Measured against our own
(`pose_core.run.workers`: `Pool` for tasks, `Worker` for long-lived processes), same tasks, same run:

- start-up: from nothing to both workers having a warm pose estimator (one frame estimated each);
- per-task overhead: 200 empty tasks, round trip each (the chunked poses send a message every 6 frames);
- warm estimator reuse: 20 one-frame tasks on the warm workers (the estimator kept in the worker process);
- memory: the resident memory of every process the layer added (scheduler, nannies, workers, pool);
- priority: can the workers be given a nice value, and does it hold after a worker restart;
- dying with the parent: the owner killed with SIGKILL, how many of its processes are left 3 s later.

    python -m bench.bench_execution [--rounds 2] [--json bench/out/bench_execution.json]

Each figure is a median over rounds; the machine's load is printed (a busy machine moves the start-up
figures, not their order).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
_EST = None


def warm_task(_: int = 0) -> int:
    """Make (once per process) a tracking estimator and estimate one frame: what a pose worker does first."""
    global _EST
    import numpy as np

    from pose_core.media.estimator import PoseEstimator

    if _EST is None:
        _EST = PoseEstimator(static_image_mode=False)
    _EST.process(np.zeros((256, 256, 3), np.uint8), time.monotonic())
    return os.getpid()


def empty_task(i: int) -> int:
    return i


def nice_now(_: int = 0) -> int:
    return os.nice(0)


def _added_rss_mb(before: set[int]) -> float:
    me = psutil.Process()
    procs = [p for p in me.children(recursive=True) if p.pid not in before]
    rss = 0
    for p in procs:
        try:
            rss += p.memory_info().rss
        except psutil.Error:
            pass
    return rss / 2**20


class Ours:
    name = "own layer (workers.Pool)"

    def start(self) -> None:
        from pose_core.run.workers import Pool

        self.pool = Pool(2, nice=0)

    def map(self, fn, args) -> list:
        return [f.result() for f in [self.pool.submit(fn, a) for a in args]]

    def set_nice(self, n: int) -> None:  # the layer's own way: given when the pool is made
        self.pool.close()
        from pose_core.run.workers import Pool

        self.pool = Pool(2, nice=n)

    def restart(self) -> None:
        self.pool.restart()

    def close(self) -> None:
        self.pool.close()


class DaskLocal:
    name = "Dask LocalCluster (2 processes x 1 thread)"

    def start(self) -> None:
        from distributed import Client, LocalCluster

        self.cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                    silence_logs=50)
        self.client = Client(self.cluster)

    def map(self, fn, args) -> list:
        return self.client.gather([self.client.submit(fn, a, pure=False) for a in args])

    def set_nice(self, n: int) -> None:  # no setting for it: run os.nice in every worker afterwards
        self.client.run(os.nice, n)

    def restart(self) -> None:
        self.client.restart()

    def close(self) -> None:
        self.client.close()
        self.cluster.close()


def one_round(layer) -> dict:
    # The tasks by their module's name, not as __main__'s (python -m): Dask would send those by value, a
    # fresh copy of the module's globals with every task, and the kept estimator would be made again each time.
    from bench.bench_execution import empty_task, nice_now, warm_task

    before = {p.pid for p in psutil.Process().children(recursive=True)}
    t0 = time.perf_counter()
    layer.start()
    pids = set(layer.map(warm_task, [0, 1]))
    while len(pids) < 2:  # both workers warm (a free worker may have taken both tasks)
        pids |= set(layer.map(warm_task, [0, 1]))
    startup = time.perf_counter() - t0
    t0 = time.perf_counter()
    layer.map(empty_task, range(200))
    per_task_ms = (time.perf_counter() - t0) / 200 * 1000
    t0 = time.perf_counter()
    layer.map(warm_task, range(20))
    warm_ms = (time.perf_counter() - t0) / 20 * 1000
    rss = _added_rss_mb(before)
    layer.set_nice(10)
    nice_set = sorted(set(layer.map(nice_now, range(8))))
    layer.restart()
    nice_after_restart = sorted(set(layer.map(nice_now, range(8))))
    layer.close()
    return {"startup_s": round(startup, 2), "empty_task_ms": round(per_task_ms, 2),
            "warm_frame_task_ms": round(warm_ms, 1), "rss_mb": round(rss), "nice": nice_set,
            "nice_after_restart": nice_after_restart}


ORPHAN_SCRIPT = """
import time
from bench.bench_execution import Ours, DaskLocal, warm_task
layer = {cls}()
layer.start()
layer.map(warm_task, [0, 1])
print("ready", flush=True)
time.sleep(600)
"""


def orphans(cls: str) -> int:
    """Start the layer in a child process, kill that process with SIGKILL, count what is left after 3 s."""
    p = subprocess.Popen([sys.executable, "-c", ORPHAN_SCRIPT.format(cls=cls)], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    p.stdout.readline()
    kids = psutil.Process(p.pid).children(recursive=True)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    time.sleep(3)
    left = [k for k in kids if k.is_running() and k.status() != psutil.STATUS_ZOMBIE]
    for k in left:
        try:
            k.kill()
        except psutil.Error:
            pass
    return len(left)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    os.environ.setdefault("GLOG_minloglevel", "2")
    results: dict = {"load_before": round(os.getloadavg()[0], 1)}
    for layer in (Ours(), DaskLocal()):
        rounds = [one_round(layer) for _ in range(a.rounds)]
        med = {k: round(statistics.median(r[k] for r in rounds), 3) if isinstance(rounds[0][k], float | int)
               else rounds[-1][k] for k in rounds[0]}
        med["orphans_after_owner_sigkill"] = orphans(type(layer).__name__)
        results[layer.name] = med
        print(layer.name, json.dumps(med), flush=True)
    results["load_after"] = round(os.getloadavg()[0], 1)
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
