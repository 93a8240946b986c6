"""One job run to its end, in whichever process or thread it is called: status.json moved on, the result
folder, the history row, the upload's clean-up, the annotated video drawn after the result. The runner that
queues jobs and hands them over is run.jobs; the process it hands them to is run.job_process."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from ..core.io import NoSpaceError, OutputError
from ..core.rules import RuleSet
from ..media.estimator import PoseEstimator
from ..media.video import VideoError
from ..store.uploads import new_analysis_dir, remove_upload
from . import pipeline, remote
from .job_progress import ProgressClock
from .job_status import (CANNOT_TELL, DONE, FAILED, JUDGING, NO_PERSON, RUNNING, JobStatus, JobStopped, keeps_upload,
                         uploads_in_use, write_status)
from .job_video import draw_later

PROGRESS_WRITE_S = 0.25  # status.json is rewritten at most this often while frames are counted
STOPPED_MESSAGE = "Stopped when the server stopped, before this analysis finished. Analyse the video again."


@dataclass
class Work:
    status: JobStatus
    rules: RuleSet
    make_estimator: Callable[[], PoseEstimator] | None  # None: the runner's own (a warm spare)
    pool: object | None  # a kept-warm PosePool for long videos (run.parallel), or None: the runner's own
    history: object | None  # a HistoryStore (anything with .add(record) -> id)


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


class JobExecutor:
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

    def run(self, work: Work) -> None:
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
        try:
            out_dir = new_analysis_dir(self.analyses_dir, s.video, s.exercise)
            update(result_dir=out_dir.name)  # (where it writes: cleaned up should this server stop meanwhile)
            # On the Dask cluster when one is configured (GYMPOSE_DASK_SCHEDULER), else here. The estimator is
            # made only if this process estimates the poses itself (not on the pose workers), one per analysis
            # (tracking state must not leak between videos), and closed at its end.
            result = remote.analyze(
                video, s.exercise, out_dir=out_dir, rules=work.rules, estimator_factory=make_estimator, pool=pool,
                progress=lambda done, total: update(done=done, total=total),
                stage=lambda name: update(stage=name, eta_s=None, **({} if name == JUDGING else {"done": 0, "total": 0})),
                video_after=True)  # (judging: the frames counted stay on show)
        except JobStopped:
            self._finish(work, replace(current[0], state=FAILED, kind="stopped", message=STOPPED_MESSAGE))
            return
        except Exception as e:
            self._finish(work, failed_status(current[0], e))
            return
        done = self._add_history(work, replace(current[0], state=DONE, result_dir=out_dir.name, eta_s=None), result,
                                 out_dir)
        self._finish(work, done)  # the result is on the page now; its video follows
        if getattr(result, "video_pending", False):
            draw_later(replace(done, finished=time.time()), video, out_dir, lambda st: write_status(self.jobs_dir, st))

    def _add_history(self, work: Work, s: JobStatus, result, out_dir: Path) -> JobStatus:
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

    def _finish(self, work: Work, s: JobStatus) -> None:
        s = replace(s, finished=time.time(), result_dir=s.result_dir if s.state == DONE else "")
        write_status(self.jobs_dir, s)
        if s.owns_upload and not keeps_upload(s):
            # (never an upload that another job or a listed analysis still uses)
            if s.video not in uploads_in_use(self.analyses_dir, self.jobs_dir):
                with contextlib.suppress(OSError):
                    remove_upload(self.uploads_dir / s.video)
