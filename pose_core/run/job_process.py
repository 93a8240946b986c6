"""The dashboard's analysis process (`JobRunner(isolate=True)`, run.jobs): spawned by the runner's own thread,
kept between jobs (its model and pose pool stay warm), one job at a time over a pipe. It ends with the
server: the kernel kills it the moment the server process dies (PR_SET_PDEATHSIG, run.batch_executors), its
pose workers likewise with it, and a server that stops normally kills it first (JobRunner.shutdown)."""

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
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")  # nothing of the web server is inherited
        self._conn, child = ctx.Pipe()
        # Not a daemon: it starts pose workers of its own. It ends with us (killed by the kernel when we die,
        # by JobRunner.shutdown when we stop, before multiprocessing would wait for it).
        self._proc = ctx.Process(target=_job_process_main, name="gympose-analysis", daemon=False,
                                 args=(child, str(jobs_dir), str(analyses_dir), str(uploads_dir), nice, os.getpid(),
                                       live_gate))
        self._proc.start()
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
                elif not self._proc.is_alive():
                    break
        except (EOFError, OSError, BrokenPipeError):
            pass
        self._proc.join(timeout=5)
        code = self._proc.exitcode
        raise JobProcessDied(f"its process ended with {'signal ' + str(-code) if code and code < 0 else code}")

    def close(self) -> None:
        """Stop it after the job it is running, if any (5 s at most, then killed)."""
        if self._proc.exitcode is not None:
            return
        with contextlib.suppress(Exception):
            self._conn.send(None)  # (taken after the job it is running, if any)
        self._proc.join(timeout=5)
        self.kill()

    def kill(self) -> None:
        """Stop it now, mid-job if need be, with its pose workers: at background priority it leads a process
        group of its own (background_group), and the whole group is killed at once (a process at the lowest
        priority on a busy machine takes seconds to exit: the kernel's kill-with-parent would reach the
        workers only after that)."""
        import signal

        pid = self._proc.pid
        if self._proc.is_alive():
            with contextlib.suppress(OSError):
                if pid and os.getpgid(pid) == pid != os.getpgid(0):
                    os.killpg(pid, signal.SIGKILL)
            self._proc.kill()
        self._proc.join(timeout=5)


def _job_process_main(conn, jobs_dir: str, analyses_dir: str, uploads_dir: str, nice: int, parent_pid: int,
                      live_gate: str = "") -> None:
    """The analysis process: runs the jobs it is handed, with its own warm estimator and pose pool. live_gate:
    its pose workers wait on the server's live frames (`run.live_gate`; they inherit the environment)."""
    import signal

    from .workers import exit_with_parent
    from .jobs import FAILED, _Executor, _Work, write_status
    from .priority import LiveYield, background_group, lower_priority
    from ..store.settings import quiet_native_libraries

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server handles Ctrl-C and stops us
    exit_with_parent(parent_pid)
    if nice:
        background_group()  # before anything starts: decode threads, the encoder, the pose workers inherit
        lower_priority(nice)  # both
        if live_gate:
            LiveYield(live_gate).start()  # the lowest weight while a live session runs, an equal share otherwise
    quiet_native_libraries()
    if live_gate:
        from .live_gate import GATE_ENV

        os.environ[GATE_ENV] = live_gate  # before the pose pool starts
    ex = _Executor(Path(jobs_dir), Path(analyses_dir), Path(uploads_dir))
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
            ex.run(_Work(status, rules, None, None, history))
        except BaseException as e:  # (ex.run reports a job's failure in its status; this is the last resort)
            with contextlib.suppress(Exception):
                write_status(jobs_dir, replace(status, state=FAILED, kind="error", finished=time.time(),
                                               message=f"unexpected failure: {type(e).__name__}: {e}"))
        conn.send(("done", status.id))
    if _Executor._pool:
        _Executor._pool.close()
