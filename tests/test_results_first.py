"""Issue 24: results first, the video after; --no-video decodes each frame once; never starved; progress
that tells the truth (pose_core.run.render_video, job_video, streamed, priority, job_progress)."""

from __future__ import annotations

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
from pose_core.media.video import probe
from pose_core.run import job_executor, jobs, render_video
from pose_core.run.job_progress import ProgressClock
from pose_core.run.jobs import JobRunner, read_status
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


def _wait(pred, timeout_s=120.0):
    end = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > end:
            raise AssertionError("timed out")
        time.sleep(0.05)


def test_the_result_and_the_history_row_come_before_the_video_which_then_appears_complete(ws, monkeypatch):
    """The job is done (result folder complete, history row added) while the video is still being drawn;
    then annotated.mp4 appears with every frame and the overlay data is gone."""
    gate = threading.Event()
    real = render_video._draw

    def held_drawer(folder, source, progress):  # the drawing waits until the test has seen the result
        assert gate.wait(60)
        return real(folder, source, progress)

    monkeypatch.setattr(render_video, "_draw", held_drawer)
    r = JobRunner(ws["jobs"], ws["analyses"], ws["uploads"])
    video = write_video(ws["uploads"] / "20260101-000000_clip.mp4", frames=150, fps=30)
    job = r.submit(video, "squat", RULES, lambda: FakeEstimator(reps=2, rep_s=1.5, lead_s=0.3), history=ws["history"])
    s = r.wait(job, 120)
    assert s.state == jobs.DONE, s
    out = ws["analyses"] / s.result_dir
    _wait(lambda: read_status(ws["jobs"], job).stage == "drawing")
    assert {p.name for p in out.iterdir()} >= {"summary.json", "reps.json", "frames.csv", "overlay.jsonl"}
    assert not (out / "annotated.mp4").exists() and render_video.video_state(out) == render_video.DRAWING
    assert json.loads((out / "summary.json").read_text())["reps"] == 2
    (row,) = ws["history"].list_sessions()
    assert row.id == s.history_id and row.rep_count == 2
    gate.set()
    _wait(lambda: read_status(ws["jobs"], job).stage in ("drawn", "not_drawn"))
    assert read_status(ws["jobs"], job).stage == "drawn"
    assert render_video.video_state(out) == render_video.READY and not (out / "overlay.jsonl").exists()
    assert probe(out / "annotated.mp4").frame_count == 150
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_a_drawing_that_fails_leaves_the_result_and_says_why(ws, monkeypatch):
    def broken(folder, source, progress):
        raise RuntimeError("encoder exploded")

    monkeypatch.setattr(render_video, "_draw", broken)
    r = JobRunner(ws["jobs"], ws["analyses"], ws["uploads"])
    video = write_video(ws["uploads"] / "20260101-000000_clip.mp4", frames=90, fps=30)
    job = r.submit(video, "squat", RULES, lambda: FakeEstimator(reps=1, rep_s=1.5, lead_s=0.3))
    s = r.wait(job, 120)
    assert s.state == jobs.DONE
    _wait(lambda: read_status(ws["jobs"], job).stage in ("drawn", "not_drawn"))
    s = read_status(ws["jobs"], job)
    out = ws["analyses"] / s.result_dir
    assert s.state == jobs.DONE and s.stage == "not_drawn" and "encoder exploded" in s.video_message
    assert render_video.video_state(out) == render_video.FAILED and "encoder exploded" in render_video.video_error(out)
    assert json.loads((out / "summary.json").read_text())["reps"] == 1 and (out / "frames.csv").is_file()


def test_a_drawing_left_by_a_stopped_server_is_said_not_drawn_by_the_next(ws):
    out = ws["analyses"] / "a"
    out.mkdir()
    (out / "summary.json").write_text("{}")
    (out / "frames.csv").write_text("time_s\n")
    (out / "overlay.jsonl").write_text("{}\n")
    assert render_video.abandon_unfinished([out]) == [out]
    assert render_video.video_state(out) == render_video.FAILED and "server stopped" in render_video.video_error(out)


@needs_videos
def test_no_video_on_the_pose_workers_decodes_nothing_in_the_main_process(tmp_path, monkeypatch):
    """--no-video with chunked poses: the workers send each pose with its picture signature; the main
    process decodes no frame (it decoded every frame again before), and the result is the same."""
    from pose_core.media import poses as poses_mod
    from pose_core.run.pipeline import analyze_video

    decoded = [0]
    real = poses_mod.read_frames

    def counting(*a, **k):
        for item in real(*a, **k):
            decoded[0] += 1
            yield item

    monkeypatch.setattr(poses_mod, "read_frames", counting)
    chunked = analyze_video(SQUAT_CLIP, "squat", tmp_path / "c", write_video=False, parallel=True)
    assert decoded[0] == 0 and chunked.summary.reps == SQUAT_CLIP_REPS
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["frames.csv", "reps.json", "summary.json"]
    # One process, Auto: the first seconds are recognised and analysed in the same pass (each frame decoded
    # once; the recognition decoded them a second time before)
    single = analyze_video(SQUAT_CLIP, "auto", tmp_path / "s", write_video=False, parallel=False)
    assert decoded[0] == single.summary.frames == chunked.summary.frames
    assert single.summary.exercise == "squat" and single.summary.reps == chunked.summary.reps


def test_progress_gives_the_time_left_from_the_measured_rate_and_says_when_others_slow_it():
    now, load = [0.0], [0.5]
    c = ProgressClock(clock=lambda: now[0], loadavg=lambda: (load[0], 0, 0), cores=2, pressure=lambda: None)
    c.stage("analysing")
    assert c.update(0, 300) == (None, False)  # nothing measured yet
    for i in range(1, 11):  # 30 frames a second
        now[0] = i * 0.5
        eta, busy = c.update(15 * i, 300)
    assert eta == pytest.approx((300 - 150) / 30, rel=0.01) and not busy
    load[0] = 3.0  # others load the machine and the rate halves
    for i in range(11, 21):
        now[0] = i * 0.5
        eta, busy = c.update(150 + 7 * (i - 10), 300)
    assert busy and eta == pytest.approx((300 - 220) / 14, rel=0.05)
    load[0] = 1.5  # the load is ours alone: not busy, whatever the rate
    assert c.update(230, 300)[1] is False


def test_job_status_carries_stages_in_order_with_a_time_left(ws, monkeypatch):
    """Every status written, in order: analysing (with a time left once measured), judging, done, then the
    video: drawing, drawn."""
    monkeypatch.setattr(job_executor, "PROGRESS_WRITE_S", 0.0)
    written = []
    real_write = jobs.write_status
    monkeypatch.setattr(job_executor, "write_status", lambda d, st: (written.append(st), real_write(d, st))[1])

    class Slow(FakeEstimator):
        def process(self, image, t):
            time.sleep(0.02)  # (the stage runs ~3 s: a time left is given once 2 s were measured)
            return super().process(image, t)

    r = JobRunner(ws["jobs"], ws["analyses"], ws["uploads"])
    video = write_video(ws["uploads"] / "20260101-000000_clip.mp4", frames=150, fps=30)
    job = r.submit(video, "squat", RULES, lambda: Slow(reps=2, rep_s=1.5, lead_s=0.3))
    assert r.wait(job, 120).state == jobs.DONE
    _wait(lambda: read_status(ws["jobs"], job).stage in ("drawn", "not_drawn"))
    steps = []
    for st in written:
        if (st.stage, st.state) not in steps[-1:]:
            steps.append((st.stage, st.state))
    assert [x for x in steps if x[0]] == [("analysing", jobs.RUNNING), ("judging", jobs.RUNNING),
                                          ("judging", jobs.DONE), ("drawing", jobs.DONE), ("drawn", jobs.DONE)], steps
    etas = [st.eta_s for st in written if st.stage == "analysing" and st.eta_s is not None]
    assert etas and all(e >= 0 for e in etas) and etas[-1] < etas[0]  # measured, and counting down


@pytest.mark.skipif(not Path("/proc/self/autogroup").exists(), reason="Linux autogroup scheduling is not enabled here")
def test_the_analysis_group_yields_only_while_a_live_session_runs(tmp_path):
    """No live session: the analysis' group has the normal weight (never starved by other programs); live
    frames on the gate: the lowest weight, back to normal once they stop. In a process of its own (the
    group's nice is the whole session's)."""
    code = f"""
import os
from pose_core.run import priority
from pose_core.run.live_gate import LiveGate
now = [100.0]
clock = lambda: now[0]
priority.background_group()
y = priority.LiveYield({str(tmp_path / 'live.gate')!r}, clock=clock)
g = LiveGate({str(tmp_path / 'live.gate')!r}, clock=clock)
out = [y.check(), priority.group_nice()]  # (no gate file yet: not live; looked for again a second later)
now[0] += 2
with g.held():
    out += [y.check(), priority.group_nice()]
now[0] += priority.LIVE_QUIET_S / 2
out += [y.check(), priority.group_nice()]
now[0] += priority.LIVE_QUIET_S
out += [y.check(), priority.group_nice()]
print(out)
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[False, 0, True, 19, True, 19, False, 0]"


def test_the_page_names_the_steps_in_order_with_the_time_left():
    from dashboard.common import progress_detail

    def said(stage, exercise="squat", eta=None):
        return progress_detail(jobs.JobStatus(id="x", state=jobs.RUNNING, exercise=exercise, stage=stage, eta_s=eta))

    assert said("") == ""
    assert [said(s, "auto") for s in ("recognising", "analysing", "judging")] == [
        "Step 1 of 4: recognising the exercise", "Step 2 of 4: estimating poses and counting",
        "Step 3 of 4: judging the reps"]
    assert said("analysing", eta=24.6) == "Step 1 of 3: estimating poses and counting · about 25 s left"
    assert said("drawing", eta=150) == "Step 3 of 3: drawing the video · about 2 min left"


def test_the_video_is_drawn_only_after_a_grace_the_page_needs_to_show_the_result(ws, monkeypatch):
    """Between the result (state done) and the first "drawing" status, at least DRAW_GRACE_S pass: the browser
    that shows the result gets the processor first. The video is then drawn as usual."""
    from pose_core.run import job_video

    monkeypatch.setattr(job_video, "DRAW_GRACE_S", 0.6)
    written = []
    real_write = jobs.write_status
    monkeypatch.setattr(job_executor, "write_status",
                        lambda d, st: (written.append((time.monotonic(), st)), real_write(d, st))[1])
    r = JobRunner(ws["jobs"], ws["analyses"], ws["uploads"])
    video = write_video(ws["uploads"] / "20260101-000000_clip.mp4", frames=60, fps=30)
    job = r.submit(video, "squat", RULES, lambda: FakeEstimator(reps=1, rep_s=1.0, lead_s=0.2))
    assert r.wait(job, 120).state == jobs.DONE
    _wait(lambda: read_status(ws["jobs"], job).stage in ("drawn", "not_drawn"))
    assert read_status(ws["jobs"], job).stage == "drawn"
    t_done = min(t for t, st in written if st.state == jobs.DONE)
    t_drawing = min(t for t, st in written if st.stage == "drawing")
    assert t_drawing - t_done >= 0.55, (t_done, t_drawing)


def test_chunked_progress_counts_the_poses_all_workers_estimated_when_the_frame_loop_is_cheap():
    """Two chunks: the frame loop takes the first chunk's poses as they come while the second chunk's wait for
    it. With nothing drawn in the loop, `done` is the poses estimated (the true rate: a time left that is
    right), not the mean with the frames analysed (half the rate, then a jump at the end). With the video
    drawn in the loop (as slow as the model), the mean."""
    from pose_core.run.streamed import ParallelProgress

    class Stream:
        estimated = 0

    for cheap, expect in ((True, [100, 200, 300, 400]), (False, [75, 150, 225, 300])):
        said = []
        p = ParallelProgress(lambda d, e: said.append(d), 400, cheap_loop=cheap)
        p.stream = Stream()
        for k in range(1, 5):  # both workers estimate 50 frames a step; the loop analyses the first chunk's 50
            p.stream.estimated = 100 * k
            p(50 * k, 400)
        assert said == expect, (cheap, said)


def test_a_page_waits_for_the_result_on_the_server_only_near_the_job_end():
    from dashboard.common import JOB_POLL_S, job_near_end

    def s(**kw):
        return jobs.JobStatus(id="x", state=jobs.RUNNING, exercise="squat", **kw)

    assert not job_near_end(s(stage="analysing", done=10, total=900, eta_s=30.0))
    assert not job_near_end(s(stage="analysing", done=10, total=900))  # no time left measured yet
    assert job_near_end(s(stage="analysing", done=850, total=900, eta_s=JOB_POLL_S))
    assert job_near_end(s(stage="analysing", done=900, total=900))
    assert job_near_end(s(stage="judging", done=900, total=900))


def test_busy_from_the_processor_pressure_at_once_and_read_from_the_kernel_file(tmp_path):
    """Where Linux gives the CPU pressure (PSI), busy follows it at once, whatever the slow 1-minute load says:
    two CPU-bound programs beside the analysis leave a task waiting nearly all the time; the analysis alone
    seldom. The file is read as the kernel writes it; a missing or garbled one gives None (the load rule)."""
    from pose_core.run.job_progress import PRESSURE_BUSY, cpu_pressure

    psi = [95.0]
    c = ProgressClock(clock=lambda: 0.0, loadavg=lambda: (1.2, 0, 0), cores=2, pressure=lambda: psi[0])
    assert c.busy(30.0) is True
    psi[0] = 20.0
    assert c.busy(30.0) is False
    f = tmp_path / "cpu"
    f.write_text("some avg10=71.50 avg60=40.00 avg300=10.00 total=123\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n")
    assert cpu_pressure(str(f)) == 71.5 >= PRESSURE_BUSY
    f.write_text("garbled\n")
    assert cpu_pressure(str(f)) is None
    assert cpu_pressure(str(tmp_path / "missing")) is None
