"""A job's status: `<jobs dir>/<id>/status.json`, read, written (atomically) and swept here; the runner that
moves jobs on is run.jobs.

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
only `[0-9a-f]{32}` names inside the jobs folder are read.

Uploads are cleaned up here too: a job that fails deletes the upload it owns (unless a cannot-tell answer
offers to analyse it as one of the candidates), and `sweep_orphan_uploads` removes uploads older than some
hours that no analysis folder and no unfinished job refers to.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ..core.confine import PathError, safe_join
from ..core.io import atomic_write_json
from ..store.outputs import list_analyses, pid_alive, sweep_stale_temp_files
from ..store.uploads import list_files, remove_upload, sweep_orphan_names

QUEUED, RUNNING, DONE, FAILED, CANNOT_TELL, NO_PERSON = "queued", "running", "done", "failed", "cannot_tell", "no_person"
FINAL_STATES = (DONE, FAILED, CANNOT_TELL, NO_PERSON)
RECOGNISING, ANALYSING, JUDGING = "recognising", "analysing", "judging"
STATUS_JSON = "status.json"
JOB_ID = re.compile(r"^[0-9a-f]{32}$")
ORPHAN_UPLOAD_AGE_S = 6 * 3600  # an upload nobody refers to is kept this long (a page may be about to use it)
FINISHED_JOB_AGE_S = 30 * 86400  # a finished job's status (its link) is kept this long; the analysis stays


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


def keeps_upload(status: JobStatus) -> bool:
    """A finished job still needs its upload: done (its analysis refers to it), or cannot-tell with candidates
    the page offers to analyse it as."""
    rec = status.recognition or {}
    return status.state == DONE or (status.state == CANNOT_TELL and bool(rec.get("top"))
                                    and int(rec.get("frames_with_pose") or 0) > 0)


def uploads_in_use(analyses_dir: str | Path, jobs_dir: str | Path) -> set[str]:
    """Upload file names that an analysis folder or an unfinished (or cannot-tell) job refers to."""
    used = {a.summary.video for a in list_analyses(analyses_dir) if a.summary.video}
    used |= {j.video for j in list_jobs(jobs_dir) if j.video and (not j.final or keeps_upload(j))}
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
