"""Analyses as jobs that outlive the page: submitted, run in the background (in a process of their own, or
on a thread), and finished (result folder + history row) whether or not anybody is still watching.

A job is a folder `<jobs dir>/<id>/` holding `status.json`, rewritten atomically as it moves on:

    state     queued -> running -> done | failed | cannot_tell | no_person
    stage     "recognising" (Auto: the exercise is being recognised) | "analysing" (poses estimated, reps
              counted) | "judging" (the summary) | then, with the state already done: "drawing" (the annotated
              video, drawn after the result: run.render_video) | "drawn" | "not_drawn" (video_message says why)
    done, total       frames done / expected in the current stage
    eta_s, busy       the time left in the stage, from its measured rate (None: not known yet); other programs
                      are slowing it down (run.job_progress)
    kind, message     why it did not finish (kind: video, no_space, output, analysis, missing_upload, interrupted,
                      stopped, crashed, error)
    recognition       cannot_tell: the reason and the candidates (Recognition.to_dict())
    result_dir        the analysis folder's name under the analyses dir (while running: where it writes)
    history_id / history_warning      the history row it added (or why it could not)

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
import json
import os
import queue
import re
import secrets
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

from ..core.confine import PathError, safe_join
from ..core.io import NoSpaceError, OutputError, atomic_write_json
from ..core.rules import RuleSet
from ..media.estimator import PoseEstimator
from ..media.video import VideoError
from ..store.outputs import list_analyses, pid_alive, sweep_stale_temp_files
from ..store.uploads import list_files, new_analysis_dir, remove_upload, sweep_orphan_names, upload_name
from ..store.settings import dask_scheduler
from . import pipeline, remote
from .job_process import JobProcess, JobProcessDied
from .job_progress import ProgressClock
from .job_video import draw_later
from .render_video import abandon_unfinished
from .priority import background_group, lower_priority  # noqa: F401  (job_process imports them here)

QUEUED, RUNNING, DONE, FAILED, CANNOT_TELL, NO_PERSON = "queued", "running", "done", "failed", "cannot_tell", "no_person"
FINAL_STATES = (DONE, FAILED, CANNOT_TELL, NO_PERSON)
RECOGNISING, ANALYSING, JUDGING = "recognising", "analysing", "judging"
STATUS_JSON = "status.json"
JOB_ID = re.compile(r"^[0-9a-f]{32}$")
ORPHAN_UPLOAD_AGE_S = 6 * 3600  # an upload nobody refers to is kept this long (a page may be about to use it)
FINISHED_JOB_AGE_S = 30 * 86400  # a finished job's status (its link) is kept this long; the analysis stays
PROGRESS_WRITE_S = 0.25  # status.json is rewritten at most this often while frames are counted
STOPPED_MESSAGE = "Stopped when the server stopped, before this analysis finished. Analyse the video again."


class JobError(ValueError):
    """A job id that is not valid or names no job (the message is meant for the user)."""


class JobStopped(Exception):
    """Raised into a job running on the runner's thread when the server stops (JobRunner.shutdown)."""


@dataclass(frozen=True)
class JobStatus:
    id: str
    state: str = QUEUED
    video: str = ""  # the upload's file name (under the uploads dir)
    name: str = ""  # the user's file name, for display (plain text: render with care)
    exercise: str = ""  # as requested ("auto" or an exercise)
    owns_upload: bool = False  # a fresh upload made for this job: removed when the job fails
    stage: str = ""
    done: int = 0
    total: int = 0
    kind: str = ""
    message: str = ""
    recognition: dict | None = None
    result_dir: str = ""
    history_id: int | None = None
    history_warning: str = ""
    created: float = 0.0
    started: float = 0.0
    finished: float = 0.0
    pid: int = 0  # the server process that runs it (a dead one means it will never finish)
    eta_s: float | None = None
    busy: bool = False
    video_message: str = ""  # why the annotated video could not be drawn

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "JobStatus":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})


def job_dir(jobs_dir: str | Path, job_id: str) -> Path:
    """The folder of a job, after checking the id (a user may have typed it into the URL)."""
    if not isinstance(job_id, str) or not JOB_ID.match(job_id):
        raise JobError("This analysis link is not valid.")
    try:
        return safe_join(jobs_dir, job_id)
    except PathError:
        raise JobError("This analysis link is not valid.") from None


def read_status(jobs_dir: str | Path, job_id: str) -> JobStatus:
    """A job's status as last written. Raises JobError (bad id, no such job, unreadable status)."""
    path = job_dir(jobs_dir, job_id) / STATUS_JSON
    try:
        doc = json.loads(path.read_text())
        status = JobStatus.from_dict(doc)
    except FileNotFoundError:
        raise JobError("There is no analysis with this link (it may have been removed).") from None
    except (OSError, ValueError, TypeError):
        raise JobError("This analysis's status cannot be read.") from None
    if status.id != job_id:
        raise JobError("This analysis's status cannot be read.")
    return status


def write_status(jobs_dir: str | Path, status: JobStatus) -> None:
    atomic_write_json(job_dir(jobs_dir, status.id) / STATUS_JSON, status.to_dict())


def list_jobs(jobs_dir: str | Path) -> list[JobStatus]:
    """Every readable job, oldest first."""
    root = Path(jobs_dir)
    out = []
    for d in root.iterdir() if root.is_dir() else ():
        if JOB_ID.match(d.name) and d.is_dir() and not d.is_symlink():
            with contextlib.suppress(JobError):
                out.append(read_status(root, d.name))
    return sorted(out, key=lambda s: s.created)


def _keeps_upload(status: JobStatus) -> bool:
    """A finished job still needs its upload: done (its analysis refers to it), or cannot-tell with candidates
    the page offers to analyse it as."""
    rec = status.recognition or {}
    return status.state == DONE or (status.state == CANNOT_TELL and bool(rec.get("top"))
                                    and int(rec.get("frames_with_pose") or 0) > 0)


def uploads_in_use(analyses_dir: str | Path, jobs_dir: str | Path) -> set[str]:
    """Upload file names that an analysis folder or an unfinished (or cannot-tell) job refers to."""
    used = {a.summary.video for a in list_analyses(analyses_dir) if a.summary.video}
    used |= {j.video for j in list_jobs(jobs_dir) if j.video and (not j.final or _keeps_upload(j))}
    return used


def sweep_orphan_uploads(uploads_dir: str | Path, analyses_dir: str | Path, jobs_dir: str | Path,
                         max_age_s: float = ORPHAN_UPLOAD_AGE_S, now: float | None = None) -> list[Path]:
    """Remove uploads older than max_age_s that no analysis and no unfinished job refers to (a page that was
    closed while storing, a job of a server that was stopped). Returns what was removed."""
    now = time.time() if now is None else now
    used = uploads_in_use(analyses_dir, jobs_dir)
    removed = []
    for p in list_files(uploads_dir):
        try:
            old = now - p.stat().st_mtime > max_age_s
        except OSError:
            continue
        if old and p.name not in used:
            with contextlib.suppress(OSError):
                remove_upload(p)
                removed.append(p)
    sweep_orphan_names(uploads_dir)
    return removed


def sweep_finished_jobs(jobs_dir: str | Path, max_age_s: float = FINISHED_JOB_AGE_S,
                        now: float | None = None) -> list[str]:
    """Remove the folders of jobs finished more than max_age_s ago (their analysis folders and history rows
    stay; only the link to the job stops working). Returns their ids."""
    now = time.time() if now is None else now
    removed = []
    for j in list_jobs(jobs_dir):
        if j.final and j.finished and now - j.finished > max_age_s:
            d = job_dir(jobs_dir, j.id)
            with contextlib.suppress(OSError):
                for f in d.iterdir():
                    f.unlink()
                d.rmdir()
                removed.append(j.id)
    return removed


def fail_interrupted(jobs_dir: str | Path, j: JobStatus, analyses_dir: str | Path | None,
                     uploads_dir: str | Path | None, message: str, kind: str = "interrupted") -> None:
    """Mark a job that will never finish as failed, remove what its analysis had half-written and the
    upload it owned (unless something else uses it)."""
    write_status(jobs_dir, replace(j, state=FAILED, kind=kind, finished=time.time(), message=message))
    if analyses_dir is not None and j.result_dir:
        with contextlib.suppress(PathError, OSError):
            out = safe_join(analyses_dir, j.result_dir)
            sweep_stale_temp_files(out)
            out.rmdir()  # (only when nothing else is in it)
    if uploads_dir is not None and analyses_dir is not None and j.owns_upload and j.video and \
            j.video not in uploads_in_use(analyses_dir, jobs_dir):
        with contextlib.suppress(PathError, OSError):
            remove_upload(safe_join(uploads_dir, j.video))


def recover_interrupted(jobs_dir: str | Path, analyses_dir: str | Path | None = None,
                        uploads_dir: str | Path | None = None) -> list[str]:
    """Jobs left queued or running by a server process that no longer exists will never finish: mark them
    failed with a message saying so, remove what their analysis had half-written and the upload they
    owned (unless something else uses it). Returns their ids."""
    ids = []
    for j in list_jobs(jobs_dir):
        if not j.final and j.pid != os.getpid() and not pid_alive(j.pid):
            fail_interrupted(jobs_dir, j, analyses_dir, uploads_dir,
                             "The server stopped before this analysis finished. Analyse the video again.")
            ids.append(j.id)
    return ids


@dataclass
class _Work:
    status: JobStatus
    rules: RuleSet
    make_estimator: Callable[[], PoseEstimator] | None  # None: the runner's own (a warm spare)
    pool: object | None  # a kept-warm PosePool for long videos (run.parallel), or None: the runner's own
    history: object | None  # a HistoryStore (anything with .add(record) -> id)


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
        self._exec = _Executor(self.jobs_dir, self.analyses_dir, self.uploads_dir, self._stopping)
        self._proc: JobProcess | None = None
        self._q: queue.Queue[_Work] = queue.Queue()
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
        self._q.put(_Work(status, rules, make_estimator, pool, history))
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

    def _run_isolated(self, work: _Work) -> None:
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


def failed_status(s: JobStatus, e: Exception) -> JobStatus:
    """The status of a job whose analysis raised `e`: why it did not finish, said for the user."""
    if isinstance(e, pipeline.CannotTellError):  # (an AnalysisError: first)
        rec = e.recognition
        return replace(s, state=CANNOT_TELL, kind="cannot_tell", message=str(e),
                       recognition=dict(rec.to_dict(), repeats=getattr(e, "repeats", {}))
                       if hasattr(rec, "to_dict") else None)
    if isinstance(e, pipeline.NoPersonError):
        return replace(s, state=NO_PERSON, kind="no_person", message=str(e))
    # (OutputError: "cannot write to <folder>: permission denied", a read-only file system...)
    for cls, kind in ((VideoError, "video"), (NoSpaceError, "no_space"), (OutputError, "output"),
                      (pipeline.AnalysisError, "analysis")):
        if isinstance(e, cls):
            return replace(s, state=FAILED, kind=kind, message=str(e))
    if isinstance(e, remote.RemoteError):
        return replace(s, state=FAILED, kind="remote", message=f"The analysis cluster could not be used: {e}")
    return replace(s, state=FAILED, kind="error", message=f"unexpected failure: {type(e).__name__}: {e}")


class _Executor:
    """Runs one job to its end (status.json, the result folder, the history row, the upload's cleanup), in
    whichever process or thread it is called. Never raises for a job that fails: the status says why."""

    # The warm spare estimator and the kept pose pool are one per process, whatever the number of runners
    # (workspaces): made on first use, kept until the process ends.
    _factory = None
    _pool: object | None = False  # (False: not made yet; None: no pool here, one core or parallel off)
    _own_lock = threading.Lock()

    def __init__(self, jobs_dir: Path, analyses_dir: Path, uploads_dir: Path,
                 stopping: threading.Event | None = None):
        self.jobs_dir, self.analyses_dir, self.uploads_dir = jobs_dir, analyses_dir, uploads_dir
        self.stopping = stopping  # set: the server is stopping (a job on the runner's thread stops at its next frame)

    @classmethod
    def own_estimator_factory(cls):
        with cls._own_lock:
            if cls._factory is None:
                from .live import EstimatorFactory

                cls._factory = EstimatorFactory(keep_spare=True)
            return cls._factory

    @classmethod
    def own_pool(cls):
        with cls._own_lock:
            if cls._pool is False:
                from .parallel import kept_pool

                cls._pool = kept_pool()
            return cls._pool

    def run(self, work: _Work) -> None:
        s = replace(work.status, state=RUNNING, started=time.time(), pid=os.getpid())
        write_status(self.jobs_dir, s)
        video = self.uploads_dir / s.video
        if not video.is_file():
            self._finish(work, replace(s, state=FAILED, kind="missing_upload",
                                       message="That upload is no longer available. Upload the video again."))
            return
        last_write, shown = [0.0], [0]  # when status.json was last written, and the frames it said were done
        current = [s]
        clock = ProgressClock()

        def update(**changes) -> None:
            if self.stopping is not None and self.stopping.is_set():
                raise JobStopped()
            if "stage" in changes:
                clock.stage(changes["stage"])
            elif "done" in changes:
                changes["eta_s"], changes["busy"] = clock.update(changes["done"], changes.get("total", 0))
            current[0] = replace(current[0], **changes)
            now = time.monotonic()
            # (throttled, but the first frame of a stage and the last one are always written)
            if "stage" in changes or now - last_write[0] >= PROGRESS_WRITE_S or shown[0] == 0 or \
                    current[0].done == current[0].total:
                write_status(self.jobs_dir, current[0])
                last_write[0], shown[0] = now, current[0].done

        if work.make_estimator is None and work.pool is None:  # the runner's own, warm
            make_estimator, pool = self.own_estimator_factory(), self.own_pool()
        else:  # the caller's (e.g. a fake estimator in a test: then no pool unless given)
            make_estimator, pool = work.make_estimator or self.own_estimator_factory(), work.pool
        est = None
        try:
            out_dir = new_analysis_dir(self.analyses_dir, s.video, s.exercise)
            update(result_dir=out_dir.name)  # (where it writes: cleaned up should this server stop meanwhile)
            if not dask_scheduler():  # (one per analysis: tracking state must not leak between videos)
                est = make_estimator()
            # On the Dask cluster when one is configured (GYMPOSE_DASK_SCHEDULER), else here.
            result = remote.analyze(
                video, s.exercise, out_dir=out_dir, rules=work.rules, estimator=est, pool=pool,
                progress=lambda done, total: update(done=done, total=total),
                stage=lambda name: update(stage=name, eta_s=None, **({} if name == JUDGING else {"done": 0, "total": 0})),
                video_after=True)  # (judging: the frames counted stay on show)
        except JobStopped:
            self._finish(work, replace(current[0], state=FAILED, kind="stopped", message=STOPPED_MESSAGE))
            return
        except Exception as e:
            self._finish(work, failed_status(current[0], e))
            return
        finally:
            if est is not None:  # the model's memory goes back now, not when the garbage collector gets to it
                release = getattr(make_estimator, "release", None)  # (a factory that pools estimators)
                with contextlib.suppress(Exception):
                    release(est) if callable(release) else est.close()
        done = self._add_history(work, replace(current[0], state=DONE, result_dir=out_dir.name, eta_s=None), result,
                                 out_dir)
        self._finish(work, done)  # the result is on the page now; its video follows
        if getattr(result, "video_pending", False):
            draw_later(replace(done, finished=time.time()), video, out_dir, lambda st: write_status(self.jobs_dir, st))

    def _add_history(self, work: _Work, s: JobStatus, result, out_dir: Path) -> JobStatus:
        """The history row, added here so it is saved even when nobody watches the page."""
        if work.history is None:
            return s
        from ..store.history import HistoryError, record_from_analysis

        summary = result.summary
        extra = {"exercise_auto": True, "exercise_confidence": summary.exercise_confidence} \
            if summary.exercise_auto else {}
        record = record_from_analysis(summary, result.reps, out_dir, rest=work.rules[summary.exercise].counting.rest,
                                      name=s.name, extra=extra)
        try:
            return replace(s, history_id=int(work.history.add(record)))
        except HistoryError as e:
            return replace(s, history_warning=str(e))

    def _finish(self, work: _Work, s: JobStatus) -> None:
        s = replace(s, finished=time.time(), result_dir=s.result_dir if s.state == DONE else "")
        write_status(self.jobs_dir, s)
        if s.owns_upload and not _keeps_upload(s):
            # (never an upload that another job or a listed analysis still uses)
            if s.video not in uploads_in_use(self.analyses_dir, self.jobs_dir):
                with contextlib.suppress(OSError):
                    remove_upload(self.uploads_dir / s.video)
