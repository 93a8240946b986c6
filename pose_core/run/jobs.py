"""Analyses as jobs that outlive the page: submitted, run in the background (in a process of their own, or
on a thread), and finished (result folder + history row) whether or not anybody is still watching.

A job is a folder `<jobs dir>/<id>/` with its `status.json` (run.job_status: the fields, reading and writing,
the sweeps of old jobs and orphan uploads).

Ids are random (unguessable, so a link to a job is no way into somebody else's) and checked before use:
only `[0-9a-f]{32}` names inside the jobs folder are read. One analysis runs at a time per server process
(a long one already uses every core: run.parallel); later jobs wait in order.

Uploads are cleaned up here too: a job that fails deletes the upload it owns (unless a cannot-tell answer
offers to analyse it as one of the candidates), and `sweep_orphan_uploads` removes uploads older than some
hours that no analysis folder and no unfinished job refers to.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import queue
import secrets
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

from ..core.confine import PathError
from ..core.rules import RuleSet
from ..media.estimator import PoseEstimator
from ..store.outputs import list_analyses
from ..store.uploads import upload_name
from .job_executor import STOPPED_MESSAGE, JobExecutor, Work
from .job_process import JobProcess, JobProcessDied
from .job_status import (CANNOT_TELL, DONE, FAILED, NO_PERSON, ORPHAN_UPLOAD_AGE_S, QUEUED, RUNNING,  # noqa: F401
                         JobError, JobStatus, JobStopped, fail_interrupted, job_dir, read_status,  # (the states:
                         recover_interrupted, sweep_finished_jobs, sweep_orphan_uploads, write_status)  # for callers)
from .render_video import abandon_unfinished
from .priority import background_group, lower_priority  # noqa: F401  (job_process imports them here)


# One analysis at a time in this process, whatever the number of runners (workspaces).
_ONE_AT_A_TIME = threading.Lock()


class JobRunner:
    """Runs submitted analyses one after the other, in the background.

    `submit` returns at once with the job id. `status` reads the job's status.json (so any page, any tab,
    after any reload, sees the same thing); `ahead` says how many jobs will run before a queued one.
    Creating a runner sweeps what an earlier server left behind (interrupted jobs, orphan uploads).

    isolate=True (the dashboard): the analyses run in a process of their own, started with the runner and kept
    (its model and pose pool stay warm between analyses): the web server's threads (a live session's) never
    wait for it on Python's GIL, a crash in native code fails one job instead of the server, and with
    nice > 0 it is background work (run.priority): a scheduling group of its own, at an equal share beside
    other programs (never starved by them) but at the lowest weight while a live session runs on this server
    (`LiveYield` on the live gate), and inside it nice (`lower_priority`): the server's own threads go first.
    A finished job's annotated video is drawn after its result, at the lowest priority (run.job_video).
    isolate=False: a thread of this process (lowered the same way), for scripts and for tests that patch
    the pipeline.
    A job's `make_estimator()` / `pool` (given at submit, e.g. fakes in tests) are used in thread mode only;
    else the runner's own: a warm spare estimator, and a kept pose pool for long videos.
    When the server stops (SIGTERM, Ctrl-C: at exit) `shutdown` stops the analysis at once and marks the
    unfinished jobs "stopped when the server stopped", removing what they had half-written and their uploads."""

    def __init__(self, jobs_dir: str | Path, analyses_dir: str | Path, uploads_dir: str | Path,
                 orphan_age_s: float = ORPHAN_UPLOAD_AGE_S, nice: int = 0, isolate: bool = False,
                 live_gate: str | Path | None = None):
        self.nice = nice  # > 0: analyses yield the CPU to interactive work (a live session on this server)
        self.live_gate = str(live_gate) if live_gate else ""  # the analysis process's pose workers wait on it
        self.isolate = isolate
        self.jobs_dir, self.analyses_dir, self.uploads_dir = Path(jobs_dir), Path(analyses_dir), Path(uploads_dir)
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self._stopping = threading.Event()  # the server is stopping: no job starts, running ones stop
        self._exec = JobExecutor(self.jobs_dir, self.analyses_dir, self.uploads_dir, self._stopping)
        self._proc: JobProcess | None = None
        self._q: queue.Queue[Work] = queue.Queue()
        self._pending: list[str] = []  # ids queued or running here, in order
        self._lock = threading.Lock()
        recover_interrupted(self.jobs_dir, self.analyses_dir, self.uploads_dir)
        abandon_unfinished(a.path for a in list_analyses(self.analyses_dir))  # (an earlier server's drawings)
        sweep_orphan_uploads(self.uploads_dir, self.analyses_dir, self.jobs_dir, orphan_age_s)
        sweep_finished_jobs(self.jobs_dir)
        started = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(started,), name="gympose-jobs", daemon=True)
        self._thread.start()
        started.wait(60)  # (isolate: the analysis process is started; its model warms meanwhile)
        atexit.register(self.shutdown)  # (before multiprocessing's own exit handler, which would wait for it)

    # ------------------------------------------------------------------------------------- API
    def submit(self, video: str | Path, exercise: str, rules: RuleSet,
               make_estimator: Callable[[], PoseEstimator] | None = None, name: str | None = None,
               owns_upload: bool = False, history=None, pool=None) -> str:
        """Queue an analysis of `video` (a file under the uploads dir) and return the job's id.
        `history` (a HistoryStore) gets the row; `make_estimator()` (called once, when the job starts) and
        `pool` (a warm PosePool: long videos on every core, pipeline.analyze_video) replace the runner's own
        in thread mode."""
        video = Path(video)
        if video.parent.resolve() != self.uploads_dir.resolve():
            raise PathError(f"{video.name}: not an upload")
        job_id = secrets.token_hex(16)
        job_dir(self.jobs_dir, job_id).mkdir(parents=True)
        status = JobStatus(id=job_id, video=video.name, name=name or upload_name(video),
                           exercise=exercise, owns_upload=owns_upload, created=time.time(), pid=os.getpid())
        write_status(self.jobs_dir, status)
        with self._lock:
            self._pending.append(job_id)
        self._q.put(Work(status, rules, make_estimator, pool, history))
        return job_id

    def status(self, job_id: str) -> JobStatus:
        return read_status(self.jobs_dir, job_id)

    def ahead(self, job_id: str) -> int:
        """How many jobs of this runner run before `job_id` (0 when it runs, is done, or is not ours)."""
        with self._lock:
            return self._pending.index(job_id) if job_id in self._pending else 0

    def wait(self, job_id: str, timeout_s: float = 600.0, poll_s: float = 0.1) -> JobStatus:
        """Block until the job is finished (for scripts and tests; the page polls instead)."""
        end = time.monotonic() + timeout_s
        while True:
            s = self.status(job_id)
            if s.final or time.monotonic() > end:
                return s
            time.sleep(poll_s)

    @property
    def process_pid(self) -> int | None:
        """The analysis process's pid (isolate=True, once started), else None."""
        return self._proc.pid if self._proc is not None else None

    def close(self) -> None:
        """Stop the analysis process (isolate=True); a job still running there fails as interrupted."""
        if self._proc is not None:
            self._proc.close()

    def shutdown(self, wait_s: float = 10.0) -> list[str]:
        """The server is stopping: the running analysis is stopped now (the analysis process is killed, its
        pose workers die with it; on the runner's thread it stops at its next frame, up to wait_s), and
        every job of this runner that had not finished is marked stopped (not a crash), its half-written
        folder and the upload it owned removed. Called at exit; returns the ids it marked."""
        if self._stopping.is_set():
            return []
        self._stopping.set()
        with self._lock:
            ids = list(self._pending)  # (before the process is killed: its job leaves the list then)
        if self._proc is not None:
            self._proc.kill()
        end = time.monotonic() + wait_s
        while not self.isolate and ids and ids[0] in self._pending and time.monotonic() < end:
            time.sleep(0.05)  # (the job on our thread stops itself: JobStopped)
        marked = []
        for job_id in ids:
            with contextlib.suppress(JobError, OSError):
                s = read_status(self.jobs_dir, job_id)
                if not s.final:
                    fail_interrupted(self.jobs_dir, s, self.analyses_dir, self.uploads_dir, STOPPED_MESSAGE,
                                     kind="stopped")
                    marked.append(job_id)
        return marked

    # -------------------------------------------------------------------------------- the worker
    def _loop(self, started: threading.Event) -> None:
        try:  # (from this thread, which lives as long as the server: the kernel's kill-with-parent is per thread)
            if self.isolate:  # started now: its model and pose pool are warm by the time the first video is uploaded
                self._proc = JobProcess(self.jobs_dir, self.analyses_dir, self.uploads_dir, self.nice, self.live_gate)
        finally:
            started.set()
        if self.nice and not self.isolate:
            lower_priority(self.nice)  # this thread, and what it starts (decode threads, the encoder, a pool)
        while True:
            work = self._q.get()
            if self._stopping.is_set():
                continue  # (shutdown marks it)
            try:
                with _ONE_AT_A_TIME:
                    if self.isolate:
                        self._run_isolated(work)
                    else:
                        self._exec.run(work)
            except BaseException as e:  # never let the worker die: the next job must still run
                if self._stopping.is_set():
                    continue  # (shutdown marks it)
                with contextlib.suppress(Exception):
                    write_status(self.jobs_dir, replace(work.status, state=FAILED, kind="error",
                                                        message=f"unexpected failure: {type(e).__name__}: {e}",
                                                        finished=time.time()))
            finally:
                with self._lock:
                    with contextlib.suppress(ValueError):
                        self._pending.remove(work.status.id)

    def _run_isolated(self, work: Work) -> None:
        if self._proc is None:
            self._proc = JobProcess(self.jobs_dir, self.analyses_dir, self.uploads_dir, self.nice, self.live_gate)
        try:
            self._proc.run(work)
        except JobProcessDied as e:
            if self._stopping.is_set():
                return  # stopped with the server, not a crash: shutdown marks it
            self._proc = None  # a new one for the next job
            fail_interrupted(self.jobs_dir, read_status(self.jobs_dir, work.status.id), self.analyses_dir,
                             self.uploads_dir, f"The analysis stopped unexpectedly ({e}). Analyse the video "
                                               "again; if it happens again, the video may be too large for "
                                               "this server's memory.", kind="crashed")
