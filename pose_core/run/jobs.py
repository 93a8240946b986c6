"""Analyses as jobs that outlive the page: submitted, run in the background of the server process, and
finished (result folder + history row) whether or not anybody is still watching.

A job is a folder `<jobs dir>/<id>/` holding `status.json`, rewritten atomically as it moves on:

    state     queued -> running -> done | failed | cannot_tell | no_person
    stage     "recognising" (Auto: the exercise is being recognised) | "analysing"
    done, total       frames done / expected in the current stage
    kind, message     why it did not finish (kind: video, no_space, analysis, missing_upload, interrupted, error)
    recognition       cannot_tell: the reason and the candidates (Recognition.to_dict())
    result_dir        the analysis folder's name under the analyses dir (while running: where it writes)
    history_id / history_warning      the history row it added (or why it could not)

Ids are random (unguessable, so a link to a job is no way into somebody else's) and checked before use:
only `[0-9a-f]{32}` names inside the jobs folder are read. One analysis runs at a time per server process
(one worker thread: the pose model already uses a core, the encoder the other); later jobs wait in order.

Uploads are cleaned up here too: a job that fails deletes the upload it owns (unless a cannot-tell answer
offers to analyse it as one of the candidates), and `sweep_orphan_uploads` removes uploads older than some
hours that no analysis folder and no unfinished job refers to.
"""

from __future__ import annotations

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
from ..core.io import NoSpaceError, atomic_write_json
from ..core.rules import RuleSet
from ..media.estimator import PoseEstimator
from ..media.video import VideoError
from ..store.outputs import list_analyses, pid_alive, sweep_stale_temp_files
from ..store.uploads import list_files, new_analysis_dir, upload_display_name
from . import pipeline

QUEUED, RUNNING, DONE, FAILED, CANNOT_TELL, NO_PERSON = "queued", "running", "done", "failed", "cannot_tell", "no_person"
FINAL_STATES = (DONE, FAILED, CANNOT_TELL, NO_PERSON)
RECOGNISING, ANALYSING = "recognising", "analysing"
STATUS_JSON = "status.json"
JOB_ID = re.compile(r"^[0-9a-f]{32}$")
ORPHAN_UPLOAD_AGE_S = 6 * 3600  # an upload nobody refers to is kept this long (a page may be about to use it)
FINISHED_JOB_AGE_S = 30 * 86400  # a finished job's status (its link) is kept this long; the analysis stays
PROGRESS_WRITE_S = 0.25  # status.json is rewritten at most this often while frames are counted


class JobError(ValueError):
    """A job id that is not valid or names no job (the message is meant for the user)."""


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
                p.unlink()
                removed.append(p)
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


def recover_interrupted(jobs_dir: str | Path, analyses_dir: str | Path | None = None,
                        uploads_dir: str | Path | None = None) -> list[str]:
    """Jobs left queued or running by a server process that no longer exists will never finish: mark them
    failed with a message saying so, remove what their analysis had half-written and the upload they
    owned (unless something else uses it). Returns their ids."""
    ids = []
    for j in list_jobs(jobs_dir):
        if not j.final and j.pid != os.getpid() and not pid_alive(j.pid):
            write_status(jobs_dir, replace(j, state=FAILED, kind="interrupted", finished=time.time(),
                                           message="The server stopped before this analysis finished. "
                                                   "Analyse the video again."))
            ids.append(j.id)
            if analyses_dir is not None and j.result_dir:
                with contextlib.suppress(PathError, OSError):
                    out = safe_join(analyses_dir, j.result_dir)
                    sweep_stale_temp_files(out)
                    out.rmdir()  # (only when nothing else is in it)
            if uploads_dir is not None and analyses_dir is not None and j.owns_upload and j.video and \
                    j.video not in uploads_in_use(analyses_dir, jobs_dir):
                with contextlib.suppress(PathError, OSError):
                    safe_join(uploads_dir, j.video).unlink()
    return ids


@dataclass
class _Work:
    status: JobStatus
    rules: RuleSet
    make_estimator: Callable[[], PoseEstimator]
    pool: object | None  # a kept-warm PosePool for long videos (run.parallel), or None
    history: object | None  # a HistoryStore (anything with .add(record) -> id)


# One analysis at a time in this process, whatever the number of runners (workspaces).
_ONE_AT_A_TIME = threading.Lock()


class JobRunner:
    """Runs submitted analyses one after the other on a background thread of this process.

    `submit` returns at once with the job id; `make_estimator()` is called once per job and the estimator
    closed at its end (or handed to `make_estimator.release(est)` when the factory has one: a pool).
    `status` reads the job's status.json (so any page, any tab, after any reload, sees the same thing);
    `ahead` says how many jobs will run before a queued one.
    Creating a runner sweeps what an earlier server left behind (interrupted jobs, orphan uploads)."""

    def __init__(self, jobs_dir: str | Path, analyses_dir: str | Path, uploads_dir: str | Path,
                 orphan_age_s: float = ORPHAN_UPLOAD_AGE_S):
        self.jobs_dir, self.analyses_dir, self.uploads_dir = Path(jobs_dir), Path(analyses_dir), Path(uploads_dir)
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self._q: queue.Queue[_Work] = queue.Queue()
        self._pending: list[str] = []  # ids queued or running here, in order
        self._lock = threading.Lock()
        recover_interrupted(self.jobs_dir, self.analyses_dir, self.uploads_dir)
        sweep_orphan_uploads(self.uploads_dir, self.analyses_dir, self.jobs_dir, orphan_age_s)
        sweep_finished_jobs(self.jobs_dir)
        self._thread = threading.Thread(target=self._loop, name="gympose-jobs", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------------------------- API
    def submit(self, video: str | Path, exercise: str, rules: RuleSet, make_estimator: Callable[[], PoseEstimator],
               name: str | None = None, owns_upload: bool = False, history=None, pool=None) -> str:
        """Queue an analysis of `video` (a file under the uploads dir) and return the job's id.
        `make_estimator()` is called once, when the job starts; `history` (a HistoryStore) gets the row;
        `pool` (a warm PosePool) estimates long videos on every core (pipeline.analyze_video)."""
        video = Path(video)
        if video.parent.resolve() != self.uploads_dir.resolve():
            raise PathError(f"{video.name}: not an upload")
        job_id = secrets.token_hex(16)
        job_dir(self.jobs_dir, job_id).mkdir(parents=True)
        status = JobStatus(id=job_id, video=video.name, name=name or upload_display_name(video.name),
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

    # -------------------------------------------------------------------------------- the worker
    def _loop(self) -> None:
        while True:
            work = self._q.get()
            try:
                with _ONE_AT_A_TIME:
                    self._run(work)
            except BaseException as e:  # never let the worker die: the next job must still run
                with contextlib.suppress(Exception):
                    write_status(self.jobs_dir, replace(work.status, state=FAILED, kind="error",
                                                        message=f"unexpected failure: {type(e).__name__}: {e}",
                                                        finished=time.time()))
            finally:
                with self._lock:
                    with contextlib.suppress(ValueError):
                        self._pending.remove(work.status.id)

    def _run(self, work: _Work) -> None:
        s = replace(work.status, state=RUNNING, started=time.time(), pid=os.getpid())
        write_status(self.jobs_dir, s)
        video = self.uploads_dir / s.video
        if not video.is_file():
            self._finish(work, replace(s, state=FAILED, kind="missing_upload",
                                       message="That upload is no longer available. Upload the video again."))
            return
        last_write, shown = [0.0], [0]  # when status.json was last written, and the frames it said were done
        current = [s]

        def update(**changes) -> None:
            current[0] = replace(current[0], **changes)
            now = time.monotonic()
            # (throttled, but the first frame of a stage and the last one are always written)
            if "stage" in changes or now - last_write[0] >= PROGRESS_WRITE_S or shown[0] == 0 or \
                    current[0].done == current[0].total:
                write_status(self.jobs_dir, current[0])
                last_write[0], shown[0] = now, current[0].done

        est = None
        try:
            out_dir = new_analysis_dir(self.analyses_dir, s.video, s.exercise)
            update(result_dir=out_dir.name)  # (where it writes: cleaned up should this server stop meanwhile)
            est = work.make_estimator()  # (one per analysis: tracking state must not leak between videos)
            result = pipeline.analyze_video(
                video, s.exercise, out_dir=out_dir, rules=work.rules, estimator=est, pool=work.pool,
                progress=lambda done, total: update(done=done, total=total),
                stage=lambda name: update(stage=name, done=0, total=0))
        except pipeline.CannotTellError as e:  # (an AnalysisError: caught first)
            rec = e.recognition
            self._finish(work, replace(current[0], state=CANNOT_TELL, kind="cannot_tell", message=str(e),
                                       recognition=dict(rec.to_dict(), repeats=getattr(e, "repeats", {}))
                                       if hasattr(rec, "to_dict") else None))
            return
        except pipeline.NoPersonError as e:
            self._finish(work, replace(current[0], state=NO_PERSON, kind="no_person", message=str(e)))
            return
        except VideoError as e:
            self._finish(work, replace(current[0], state=FAILED, kind="video", message=str(e)))
            return
        except NoSpaceError as e:
            self._finish(work, replace(current[0], state=FAILED, kind="no_space", message=str(e)))
            return
        except pipeline.AnalysisError as e:
            self._finish(work, replace(current[0], state=FAILED, kind="analysis", message=str(e)))
            return
        except Exception as e:
            self._finish(work, replace(current[0], state=FAILED, kind="error",
                                       message=f"unexpected failure: {type(e).__name__}: {e}"))
            return
        finally:
            if est is not None:  # the model's memory goes back now, not when the garbage collector gets to it
                release = getattr(work.make_estimator, "release", None)  # (a factory that pools estimators)
                with contextlib.suppress(Exception):
                    release(est) if callable(release) else est.close()
        done = replace(current[0], state=DONE, result_dir=out_dir.name)
        self._finish(work, self._add_history(work, done, result, out_dir))

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
                    (self.uploads_dir / s.video).unlink()
