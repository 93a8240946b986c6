"""The dashboard's analysis process (`JobRunner(isolate=True)`, run.jobs): spawned by the runner's own thread,
kept between jobs (its model and pose pool stay warm), one job at a time over a pipe. It ends with the
server: the kernel kills it the moment the server process dies (PR_SET_PDEATHSIG: run.workers, the execution
layer), its pose workers likewise with it, and a server that stops normally kills it first
(JobRunner.shutdown)."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import replace
from pathlib import Path


class JobProcessDied(RuntimeError):
    """The analysis process ended in the middle of a job (killed, out of memory, a crash in native code)."""


class JobProcess:
    """The process and its pipe: ("job", status, rules, history) in, ("done", id) out. Start it from a
    thread that outlives it (the kernel's kill-with-parent is tied to the thread that started it)."""

    def __init__(self, jobs_dir: Path, analyses_dir: Path, uploads_dir: Path, nice: int, live_gate: str = ""):
        from .workers import Worker, spawn_context

        self._conn, child = spawn_context().Pipe()
        # Not a daemon: it starts pose workers of its own. It ends with us (killed by the kernel when we die,
        # by JobRunner.shutdown when we stop, before multiprocessing would wait for it). Its priority is set
        # by itself (a process group of its own first), so the Worker's nice is not used.
        self._proc = Worker(_job_process_main, (child, str(jobs_dir), str(analyses_dir), str(uploads_dir), nice,
                                                live_gate), name="gympose-analysis", daemon=False, one_thread=False)
        child.close()

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    def run(self, work) -> None:
        """Hand the job over and wait for its end; JobProcessDied when the process ends first."""
        try:
            self._conn.send(("job", work.status, work.rules, work.history))
            while True:
                if self._conn.poll(0.5):
                    msg = self._conn.recv()
                    if msg == ("done", work.status.id):
                        return
                elif not self._proc.alive():
                    break
        except (EOFError, OSError, BrokenPipeError):
            pass
        self._proc.join(timeout=5)
        raise JobProcessDied(f"its process ended with {self._proc.exit_reason()}")

    def close(self) -> None:
        """Stop it after the job it is running, if any (5 s at most, then killed)."""
        if self._proc.exitcode is not None:
            return
        with contextlib.suppress(Exception):
            self._conn.send(None)  # (taken after the job it is running, if any)
        self._proc.stop(grace_s=5)

    def kill(self) -> None:
        """Stop it now, mid-job if need be, with its pose workers (its whole process group: Worker.kill)."""
        self._proc.kill()


def _job_process_main(conn, jobs_dir: str, analyses_dir: str, uploads_dir: str, nice: int,
                      live_gate: str = "") -> None:
    """The analysis process (a `workers.Worker`): runs the jobs it is handed, with its own warm estimator and
    pose pool. live_gate: its pose workers wait on the server's live frames (`run.live_gate`; they inherit
    the environment)."""
    from .job_executor import JobExecutor, Work
    from .job_status import FAILED, write_status
    from .priority import LiveYield, background_group, lower_priority

    if nice:
        background_group()  # before anything starts: decode threads, the encoder, the pose workers inherit
        lower_priority(nice)  # both
        if live_gate:
            LiveYield(live_gate).start()  # the lowest weight while a live session runs, an equal share otherwise
    if live_gate:
        from .live_gate import GATE_ENV

        os.environ[GATE_ENV] = live_gate  # before the pose pool starts
    ex = JobExecutor(Path(jobs_dir), Path(analyses_dir), Path(uploads_dir))
    ex.own_estimator_factory()  # warm now: the first analysis starts at once
    ex.own_pool()
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            break
        if msg is None:
            break
        _, status, rules, history = msg
        try:
            ex.run(Work(status, rules, None, None, history))
        except BaseException as e:  # (ex.run reports a job's failure in its status; this is the last resort)
            with contextlib.suppress(Exception):
                write_status(jobs_dir, replace(status, state=FAILED, kind="error", finished=time.time(),
                                               message=f"unexpected failure: {type(e).__name__}: {e}"))
        conn.send(("done", status.id))
    if JobExecutor._pool:
        JobExecutor._pool.close()
