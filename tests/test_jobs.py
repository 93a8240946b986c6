"""Issue 12, item 15 (pose_core side): analyses run as jobs (pose_core.run.jobs). A job runs in the
background, writes its status atomically, adds its own history row, runs one at a time (later ones wait in
order), refuses ids that are not its own, and cleans up uploads nobody refers to, never one that is in use.
The page side (reload, new tab, messages) is in test_dashboard_jobs.py and test_browser.py."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import SQUAT_CLIP, SQUAT_CLIP_REPS, FakeEstimator, needs_videos
from media import write_video

from pose_core.core.rules import load_rules
from pose_core.run import job_executor, job_status, jobs, pipeline
from pose_core.run.jobs import JobError, JobRunner, JobStatus, read_status, sweep_orphan_uploads
from pose_core.run.priority import NORMAL_GROUP_NICE
from pose_core.store.history import HistoryStore

ROOT = Path(__file__).resolve().parent.parent

RULES = load_rules()


@pytest.fixture
def ws(tmp_path):
    d = {n: tmp_path / n for n in ("jobs", "analyses", "uploads")}
    for p in d.values():
        p.mkdir()
    d["history"] = HistoryStore(tmp_path / "history.sqlite3")
    return d


def runner(ws) -> JobRunner:
    return JobRunner(ws["jobs"], ws["analyses"], ws["uploads"])


def wait_drawn(ws, job_id: str, timeout_s: float = 120.0) -> JobStatus:
    """The job's status once its annotated video is drawn (or could not be): the video comes after the result."""
    end = time.monotonic() + timeout_s
    while True:
        s = read_status(ws["jobs"], job_id)
        if s.stage in ("drawn", "not_drawn") or time.monotonic() > end:
            return s
        time.sleep(0.05)


def clip(ws, name="20260101-000000_clip.mp4", frames=150) -> Path:
    """A real (synthetic) H.264 upload; FakeEstimator puts two squats into it (see helpers)."""
    return write_video(ws["uploads"] / name, frames=frames, fps=30)


def test_a_job_runs_in_the_background_writes_its_status_and_adds_the_history_row(ws):
    r = runner(ws)
    video = clip(ws)
    job_id = r.submit(video, "squat", RULES, lambda: FakeEstimator(reps=2, rep_s=1.5, lead_s=0.3),
                      name="my squats.mp4", owns_upload=True, history=ws["history"])
    seen = []
    end = time.monotonic() + 120
    while time.monotonic() < end:  # read the status while it is rewritten: always whole, valid JSON
        raw = (ws["jobs"] / job_id / "status.json").read_text()
        s = JobStatus.from_dict(json.loads(raw))
        seen.append((s.state, s.stage, s.done, s.total))
        if s.final:
            break
    assert s.state == jobs.DONE, s
    assert any(st == jobs.RUNNING and stage == job_status.ANALYSING and done > 0 for st, stage, done, _ in seen), seen[:20]
    assert s.done == s.total == 150 and s.finished >= s.started >= s.created > 0
    out = ws["analyses"] / s.result_dir
    assert (out / "summary.json").is_file()
    assert json.loads((out / "summary.json").read_text())["video"] == video.name
    assert wait_drawn(ws, job_id).stage == "drawn" and (out / "annotated.mp4").is_file()  # drawn after the result
    (row,) = ws["history"].list_sessions()
    assert row.id == s.history_id and row.name == "my squats.mp4" and row.rep_count == 2
    assert row.analysis_dir == str(out)
    assert video.is_file()  # a finished analysis keeps its upload (it refers to it)
    assert not list(ws["jobs"].glob(f"{job_id}/.*"))  # no temporary status files left behind


def test_auto_reports_the_recognising_stage_then_the_analysing_stage(ws, monkeypatch):
    stages = []

    def fake_analyze(video, exercise, progress=None, stage=None, **kw):
        for name in ("recognising", "analysing"):
            stage(name)
            for i in range(1, 4):
                progress(i, 3)
                stages.append(read_status(ws["jobs"], job_id).stage)  # (throttled writes: may lag a frame)
        raise pipeline.NoPersonError("nobody")

    monkeypatch.setattr(pipeline, "analyze_video", fake_analyze)
    monkeypatch.setattr(job_executor, "PROGRESS_WRITE_S", 0.0)
    r = runner(ws)
    job_id = r.submit(clip(ws, frames=5), "auto", RULES, FakeEstimator, owns_upload=True)
    s = r.wait(job_id, 30)
    assert stages == ["recognising"] * 3 + ["analysing"] * 3
    assert s.state == jobs.NO_PERSON


@pytest.mark.parametrize("bad", ["../../etc", "..", "", "ABCDEF0123456789ABCDEF0123456789", "a" * 31, "a" * 33,
                                 "/etc/passwd", "0" * 31 + "/", None, 12])
def test_job_ids_that_are_not_ours_are_refused(ws, bad):
    with pytest.raises(JobError, match="not valid"):
        read_status(ws["jobs"], bad)


def test_a_well_formed_id_that_names_no_job_or_leaves_the_folder(ws, tmp_path):
    with pytest.raises(JobError, match="no analysis"):
        read_status(ws["jobs"], "0" * 32)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "status.json").write_text(json.dumps({"id": "1" * 32, "state": "done", "result_dir": "/etc"}))
    (ws["jobs"] / ("1" * 32)).symlink_to(outside)  # a symlink out of the jobs folder is not followed
    with pytest.raises(JobError, match="not valid"):
        read_status(ws["jobs"], "1" * 32)


class SlowEstimator(FakeEstimator):
    """Counts how many analyses run at once, and waits for a gate before its first frame."""
    running = 0
    most = 0
    lock = threading.Lock()

    def __init__(self, gate: threading.Event):
        super().__init__(reps=1, rep_s=0.5, lead_s=0.2)
        self.gate = gate
        self.started = False

    def process(self, rgb, t):
        if not self.started:
            self.started = True
            with SlowEstimator.lock:
                SlowEstimator.running += 1
                SlowEstimator.most = max(SlowEstimator.most, SlowEstimator.running)
            self.gate.wait(60)
        return super().process(rgb, t)

    def close(self):
        with SlowEstimator.lock:
            SlowEstimator.running -= 1
        super().close()


def test_one_job_at_a_time_the_others_wait_in_order(ws):
    r = runner(ws)
    gate = threading.Event()
    ids = [r.submit(clip(ws, f"20260101-00000{i}_c{i}.mp4", frames=30), "squat", RULES,
                    lambda: SlowEstimator(gate)) for i in range(3)]
    end = time.monotonic() + 30
    while r.status(ids[0]).state != jobs.RUNNING and time.monotonic() < end:
        time.sleep(0.05)
    time.sleep(0.3)
    assert [r.status(i).state for i in ids] == [jobs.RUNNING, job_status.QUEUED, job_status.QUEUED]
    assert [r.ahead(i) for i in ids] == [0, 1, 2]
    gate.set()
    states = [r.wait(i, 60).state for i in ids]
    assert states == [jobs.DONE] * 3
    assert SlowEstimator.most == 1
    assert [r.ahead(i) for i in ids] == [0, 0, 0]
    done = [r.status(i) for i in ids]
    assert done[0].finished <= done[1].started and done[1].finished <= done[2].started  # in order


def test_a_failed_job_removes_the_upload_it_owns(ws):
    r = runner(ws)
    bad = ws["uploads"] / "20260101-000000_notes.mp4"
    bad.write_bytes(b"not a video at all\n" * 100)
    s = r.wait(r.submit(bad, "squat", RULES, FakeEstimator, owns_upload=True), 30)
    assert (s.state, s.kind) == (jobs.FAILED, "video") and "not a video" in s.message
    assert not bad.exists()
    # An earlier upload analysed again (not owned by the job) is kept when it fails.
    bad.write_bytes(b"not a video at all\n" * 100)
    s = r.wait(r.submit(bad, "squat", RULES, FakeEstimator, owns_upload=False), 30)
    assert s.state == jobs.FAILED and bad.exists()


def test_a_failed_job_never_removes_an_upload_an_earlier_analysis_uses(ws, monkeypatch):
    r = runner(ws)
    video = clip(ws, frames=60)
    ok = r.wait(r.submit(video, "squat", RULES, lambda: FakeEstimator(reps=1, rep_s=1.0, lead_s=0.2)), 60)
    assert ok.state == jobs.DONE

    def no_person(video, exercise, **kw):
        raise pipeline.NoPersonError("nobody")

    monkeypatch.setattr(pipeline, "analyze_video", no_person)
    s = r.wait(r.submit(video, "squat", RULES, FakeEstimator, owns_upload=True), 30)
    assert s.state == jobs.NO_PERSON
    assert video.is_file()  # the earlier analysis (its summary names this upload) still uses it


def test_cannot_tell_keeps_the_upload_only_when_it_offers_candidates(ws, monkeypatch):
    from pose_core.recognition import Recognition

    answers = {"a": Recognition(None, 0.45, (("situp", 0.45), ("pushup", 0.4)), "low confidence", 90, 90, 5),
               "b": Recognition(None, 0.0, (), "no person was found", 90, 0, 0)}

    def fake(video, exercise, **kw):
        raise pipeline.CannotTellError("cannot tell", answers[Path(video).stem[-1]])

    monkeypatch.setattr(pipeline, "analyze_video", fake)
    r = runner(ws)
    a, b = (clip(ws, f"20260101-000000_{n}.mp4", frames=5) for n in "ab")
    sa = r.wait(r.submit(a, "auto", RULES, FakeEstimator, owns_upload=True), 30)
    sb = r.wait(r.submit(b, "auto", RULES, FakeEstimator, owns_upload=True), 30)
    assert sa.state == sb.state == jobs.CANNOT_TELL
    assert sa.recognition["top"] == [["situp", 0.45], ["pushup", 0.4]] and sa.recognition["reason"] == "low confidence"
    assert a.is_file()  # "Analyze as sit-up" will need it
    assert not b.exists()  # nothing to offer: nothing to keep


def test_a_job_whose_upload_is_gone_says_so(ws):
    r = runner(ws)
    video = clip(ws, frames=5)
    job_id = r.submit(video, "squat", RULES, FakeEstimator)
    r.wait(job_id, 30)
    video2 = clip(ws, "20260101-000001_gone.mp4", frames=5)
    gate = threading.Event()
    blocker = r.submit(clip(ws, "20260101-000002_b.mp4", frames=30), "squat", RULES, lambda: SlowEstimator(gate))
    job2 = r.submit(video2, "squat", RULES, FakeEstimator)
    video2.unlink()  # removed while the job waited
    gate.set()
    r.wait(blocker, 60)
    s = r.wait(job2, 30)
    assert (s.state, s.kind) == (jobs.FAILED, "missing_upload") and "no longer available" in s.message


def test_jobs_of_a_server_that_died_are_marked_failed_at_start_up(ws):
    dead = subprocess.Popen(["true"])
    dead.wait()
    video = clip(ws, frames=5)
    half = ws["analyses"] / "20260101-000000_clip_squat"  # what its analysis had half-written
    half.mkdir()
    (half / f".frames.csv.tmp-{dead.pid}-1").write_text("frame,time_s\n0,0.0\n")
    jid = "ab" * 16
    (ws["jobs"] / jid).mkdir()
    jobs.write_status(ws["jobs"], JobStatus(id=jid, state=jobs.RUNNING, video=video.name, created=1.0,
                                            pid=dead.pid, owns_upload=True, result_dir=half.name))
    runner(ws)
    s = read_status(ws["jobs"], jid)
    assert (s.state, s.kind) == (jobs.FAILED, "interrupted") and "server stopped" in s.message
    assert not half.exists() and not video.exists()


def test_orphan_uploads_are_swept_but_never_one_in_use(ws):
    old = time.time() - 7 * 3600
    names = {"orphan_old": True, "orphan_new": False, "analysed_old": True, "queued_old": True}
    paths = {}
    for n, is_old in names.items():
        p = ws["uploads"] / f"20260101-000000_{n}.mp4"
        p.write_bytes(b"x")
        if is_old:
            os.utime(p, (old, old))
        paths[n] = p
    a = ws["analyses"] / "20260101-000000_analysed_old_squat"
    a.mkdir()
    (a / "summary.json").write_text(json.dumps({"exercise": "squat", "video": paths["analysed_old"].name}))
    (a / "frames.csv").write_text("frame,time_s\n")
    jid = "cd" * 16
    (ws["jobs"] / jid).mkdir()
    jobs.write_status(ws["jobs"], JobStatus(id=jid, state=job_status.QUEUED, video=paths["queued_old"].name,
                                            pid=os.getpid()))
    removed = sweep_orphan_uploads(ws["uploads"], ws["analyses"], ws["jobs"])
    assert removed == [paths["orphan_old"]]
    assert {p.name for p in ws["uploads"].iterdir()} == {paths[n].name for n in names if n != "orphan_old"}
    # Creating the runner (server start-up) sweeps too.
    os.utime(paths["orphan_new"], (old, old))
    runner(ws)
    assert not paths["orphan_new"].exists() and paths["queued_old"].exists() and paths["analysed_old"].exists()


def test_submit_refuses_a_file_outside_the_uploads_folder(ws, tmp_path):
    other = write_video(tmp_path / "elsewhere.mp4", frames=5)
    with pytest.raises(ValueError, match="not an upload"):
        runner(ws).submit(other, "squat", RULES, FakeEstimator)


def test_finished_jobs_are_forgotten_after_a_month_but_unfinished_ones_never(ws):
    now = time.time()
    old_done, new_done, old_queued = "e1" * 16, "e2" * 16, "e3" * 16
    for jid, st, fin in ((old_done, jobs.DONE, now - 31 * 86400), (new_done, jobs.DONE, now - 86400),
                         (old_queued, job_status.QUEUED, 0.0)):
        (ws["jobs"] / jid).mkdir()
        jobs.write_status(ws["jobs"], JobStatus(id=jid, state=st, finished=fin, created=1.0, pid=os.getpid()))
    assert jobs.sweep_finished_jobs(ws["jobs"], now=now) == [old_done]
    assert sorted(p.name for p in ws["jobs"].iterdir()) == sorted([new_done, old_queued])
    with pytest.raises(JobError, match="no analysis"):
        read_status(ws["jobs"], old_done)


# ------------------------------------------------------------------- the analysis process (the dashboard's)

def _upload_copy(ws, src: Path, name: str) -> Path:
    dst = ws["uploads"] / name
    dst.write_bytes(src.read_bytes())
    return dst


@needs_videos
def test_an_isolated_runner_analyses_in_its_own_lower_priority_process_and_keeps_it(ws):
    """Issue 14, item 3: the dashboard's analyses run in a process of their own (the web server's live
    session never waits for them on the GIL) at nice 10, kept warm between jobs. Issue 24: at nice, NOT
    SCHED_IDLE (that starved it beside any busy program), in a group of its own at an equal share."""
    r = JobRunner(ws["jobs"], ws["analyses"], ws["uploads"], nice=10, isolate=True)
    try:
        first = r.submit(_upload_copy(ws, SQUAT_CLIP, "20260101-000000_a.mp4"), "squat", RULES,
                         history=ws["history"])
        s = r.wait(first, timeout_s=300)
        assert s.state == jobs.DONE, s
        pid = r.process_pid
        assert pid and pid != os.getpid() and s.pid == pid  # it ran there, not in this process
        assert os.getpriority(os.PRIO_PROCESS, pid) == 10
        assert os.sched_getscheduler(pid) == os.SCHED_OTHER  # not SCHED_IDLE: other programs cannot starve it
        # ... and as a whole it is a scheduling group of its own at the normal weight (no live session runs)
        assert os.getsid(pid) == pid != os.getsid(0)
        if Path("/proc/self/autogroup").exists():
            assert Path(f"/proc/{pid}/autogroup").read_text().split()[-1] == str(NORMAL_GROUP_NICE)
        summary = json.loads((ws["analyses"] / s.result_dir / "summary.json").read_text())
        assert summary["reps"] == SQUAT_CLIP_REPS
        (row,) = ws["history"].list_sessions()
        assert row.id == s.history_id and row.rep_count == SQUAT_CLIP_REPS
        second = r.submit(_upload_copy(ws, SQUAT_CLIP, "20260101-000000_b.mp4"), "squat", RULES)
        s2 = r.wait(second, timeout_s=300)
        assert s2.state == jobs.DONE and s2.pid == pid  # the same (warm) process
    finally:
        r.close()


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads the pose workers' environment in /proc")
def test_the_analysis_process_pose_workers_are_given_the_servers_live_gate(ws, monkeypatch):
    """Live frames first: the dashboard's analysis process hands the server's live gate to its pose workers
    (pose_core.run.live_gate; they wait on it before each frame)."""
    from pose_core.run.live_gate import GATE_ENV

    monkeypatch.setenv("GYMPOSE_WORKERS", "2")
    monkeypatch.delenv("GYMPOSE_PARALLEL", raising=False)
    gate = ws["jobs"].parent / "live.gate"
    r = JobRunner(ws["jobs"], ws["analyses"], ws["uploads"], nice=10, isolate=True, live_gate=gate)
    try:
        pid = r.process_pid
        children: list[str] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(children) < 2:
            with contextlib.suppress(OSError):
                children = [c for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
                            if b"gympose" in Path(f"/proc/{c}/cmdline").read_bytes()
                            or b"multiprocessing" in Path(f"/proc/{c}/cmdline").read_bytes()]
            time.sleep(0.5)
        envs = [Path(f"/proc/{c}/environ").read_bytes().split(b"\0") for c in children]
        workers = [e for e in envs if f"{GATE_ENV}={gate}".encode() in e]
        assert len(workers) >= 2, (children, [[v for v in e if b"GYMPOSE" in v] for e in envs])
    finally:
        r.close()


@needs_videos
def test_a_job_whose_process_dies_fails_plainly_cleans_up_and_the_next_job_runs(ws):
    import signal

    r = JobRunner(ws["jobs"], ws["analyses"], ws["uploads"], isolate=True)
    try:
        upload = _upload_copy(ws, SQUAT_CLIP, "20260101-000000_a.mp4")
        job = r.submit(upload, "squat", RULES, owns_upload=True)
        end = time.monotonic() + 300
        while time.monotonic() < end:
            s = r.status(job)
            if s.state == jobs.RUNNING and s.done > 0 or s.final:
                break
            time.sleep(0.05)
        assert s.state == jobs.RUNNING, s
        os.kill(r.process_pid, signal.SIGKILL)  # e.g. the kernel's out-of-memory killer
        s = r.wait(job, timeout_s=60)
        assert s.state == jobs.FAILED and s.kind == "crashed", s
        assert "stopped unexpectedly" in s.message and "signal 9" in s.message, s.message
        assert not list(ws["analyses"].iterdir())  # nothing half-written is left
        assert not upload.exists()  # the upload it owned is gone with it
        again = r.submit(_upload_copy(ws, SQUAT_CLIP, "20260101-000000_b.mp4"), "squat", RULES)
        s2 = r.wait(again, timeout_s=300)
        assert s2.state == jobs.DONE, s2  # a new analysis process took over
    finally:
        r.close()


@pytest.mark.skipif(not Path("/proc/self/autogroup").exists(), reason="Linux autogroup scheduling is not enabled here")
def test_background_group_gives_a_process_and_its_children_a_low_weight_group_of_their_own():
    code = ("import os, subprocess, sys; from pose_core.run.jobs import background_group; "
            "sid = os.getsid(0); ok = background_group(); "
            "child = subprocess.run(['cat', '/proc/self/autogroup'], capture_output=True, text=True).stdout; "
            "print(ok, os.getsid(0) == os.getpid() != sid, open('/proc/self/autogroup').read().split()[-1], "
            "child.split()[-1])")
    before = Path("/proc/self/autogroup").read_text()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    # the process and what it starts are in the new group; the caller's own group is untouched
    assert out.stdout.split() == ["True", "True", str(NORMAL_GROUP_NICE), str(NORMAL_GROUP_NICE)]
    assert Path("/proc/self/autogroup").read_text() == before


def test_lower_priority_lowers_only_the_calling_thread_and_what_it_starts():
    got = {}

    def background():
        got["ok"] = jobs.lower_priority(10)
        tid = threading.get_native_id()
        got["nice"] = os.getpriority(os.PRIO_PROCESS, tid)
        got["policy"] = os.sched_getscheduler(tid)
        child = subprocess.run(["python3", "-c", "import os; print(os.nice(0), os.sched_getscheduler(0))"],
                               capture_output=True, text=True)
        got["child"] = child.stdout.split()

    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    t = threading.Thread(target=background)
    t.start()
    t.join()
    assert got["ok"] and got["nice"] == min(19, before + 10) and got["policy"] == os.SCHED_OTHER  # (issue 24)
    assert got["child"] == [str(min(19, before + 10)), str(os.SCHED_OTHER)]  # inherited by what it starts
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before  # this thread: untouched
    assert os.sched_getscheduler(0) == os.SCHED_OTHER


def test_a_server_stop_marks_running_and_queued_jobs_stopped_and_cleans_up(ws):
    """Issue 25, item 3 (the runner's thread; the analysis process with a real server: test_server_stop.py):
    at exit the running job stops at its next frame, and it and the queued one say the server stopped,
    not that anything crashed; their uploads and half-written folder are removed."""

    class Slow(FakeEstimator):
        def process(self, rgb, t):
            time.sleep(0.05)
            return super().process(rgb, t)

    r = runner(ws)
    first = r.submit(clip(ws, "20260101-000000_a.mp4", frames=300), "squat", RULES, Slow, owns_upload=True)
    second = r.submit(clip(ws, "20260101-000000_b.mp4"), "squat", RULES, Slow, owns_upload=True)
    end = time.monotonic() + 120
    while not (r.status(first).state == jobs.RUNNING and r.status(first).done > 0) and time.monotonic() < end:
        time.sleep(0.05)
    t0 = time.monotonic()
    assert second in r.shutdown()  # (the running one stops itself and says so; the queued one is marked)
    assert time.monotonic() - t0 < 5
    for job in (first, second):
        s = r.status(job)
        assert s.state == jobs.FAILED and s.kind == "stopped" and "stopped when the server stopped" in s.message.lower()
    assert not list(ws["uploads"].iterdir()) and not list(ws["analyses"].iterdir())


def test_an_analysis_folder_that_cannot_be_written_fails_with_one_plain_message(ws, monkeypatch):
    """Issue 25, item 8 on the dashboard's side: the analyses folder read-only, or not ours to write."""
    import errno

    from pose_core.core.io import OutputError

    def unwritable(video, exercise, out_dir=None, **kw):
        raise OutputError(out_dir, PermissionError(errno.EACCES, "Permission denied", str(out_dir)))

    monkeypatch.setattr(pipeline, "analyze_video", unwritable)
    r = runner(ws)
    video = clip(ws, frames=30)
    s = r.wait(r.submit(video, "squat", RULES, FakeEstimator, owns_upload=True), 30)
    assert (s.state, s.kind) == (jobs.FAILED, "output") and s.message.startswith("cannot write to ")
    assert s.message.endswith(": permission denied") and "unexpected" not in s.message
    assert not video.exists()
