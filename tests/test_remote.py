"""An analysis on a Dask cluster (pose_core.run.remote) returns what a local one returns, raises the same
exception types, and reports its progress back to the caller's thread."""

import pickle
import threading

import pytest
from helpers import VIDEOS, needs_videos
from media import write_video

from pose_core.run import remote
from pose_core.run.pipeline import CannotTellError, NoPersonError, analyze_video

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    # A real worker process (processes=True): results and exceptions cross a process boundary, as on a cluster.
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as c:
        yield c


@needs_videos
def test_remote_analysis_equals_local_and_reports_progress(tmp_path, client):
    video = VIDEOS / "situp_3.mp4"
    local = analyze_video(video, "situp", tmp_path / "local", write_video=False, parallel=False)
    seen, threads = [], set()

    def progress(done, total):
        seen.append((done, total))
        threads.add(threading.get_ident())

    res = remote.analyze_remote(video, "situp", tmp_path / "remote", write_video=False, client=client,
                                progress=progress)
    assert res.summary.reps == local.summary.reps == 1
    assert [r.verdict for r in res.reps] == [r.verdict for r in local.reps]
    assert res.summary.frames == local.summary.frames
    assert (tmp_path / "remote" / "summary.json").exists() and res.files["summary.json"].exists()
    assert seen and seen[-1] == (res.summary.frames, res.summary.frames)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert threads == {threading.get_ident()}  # called from the caller's thread (a Streamlit bar may be updated)


def test_remote_failure_raises_the_local_exception_type(tmp_path, client):
    nobody = write_video(tmp_path / "nobody.mp4")
    with pytest.raises(NoPersonError, match="no person"):
        remote.analyze_remote(nobody, "squat", tmp_path / "o", client=client)
    with pytest.raises(KeyError):
        remote.analyze_remote(nobody, "deadlift", None, client=client)
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_cannot_tell_survives_pickling_with_its_recognition():
    e = CannotTellError("cannot tell", recognition={"top": [["squat", 0.4]]}, repeats={"squat": 3})
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is CannotTellError and str(back) == "cannot tell" and back.recognition == e.recognition
    assert back.repeats == {"squat": 3}


def test_analyze_runs_here_without_a_scheduler_and_remotely_with_one(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr("pose_core.run.pipeline.analyze_video", lambda *a, **kw: calls.append(("local", kw)))
    monkeypatch.setattr(remote, "analyze_remote", lambda *a, **kw: calls.append(("remote", kw)))
    monkeypatch.delenv("GYMPOSE_DASK_SCHEDULER", raising=False)
    remote.analyze("v.mp4", "squat", None, pool="p")
    monkeypatch.setenv("GYMPOSE_DASK_SCHEDULER", "tcp://127.0.0.1:1")
    remote.analyze("v.mp4", "squat", None, pool="p", stage=print, write_video=False)
    # (the local-only arguments, a pool and this process's stage callback, stay here)
    assert calls == [("local", {"out_dir": None, "pool": "p"}), ("remote", {"write_video": False})]


def test_no_scheduler_configured_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("GYMPOSE_DASK_SCHEDULER", raising=False)
    with pytest.raises(remote.RemoteError, match="no Dask scheduler configured"):
        remote.analyze_remote("v.mp4", "squat")


def test_an_unreachable_scheduler_is_a_clear_error():
    with pytest.raises(remote.RemoteError, match="cannot reach|not a Dask scheduler"):
        remote.analyze_remote("v.mp4", "squat", scheduler="tcp://127.0.0.1:9", timeout_s=1)


@needs_videos
def test_a_dashboard_job_runs_on_the_configured_scheduler(tmp_path, client, monkeypatch):
    """Issue 14, item 4: with GYMPOSE_DASK_SCHEDULER set, the dashboard's analyses (jobs) run on the cluster:
    the job finishes with the right count, its progress and its history row, and this process never loads
    the pose model for it."""
    from pose_core.core.rules import load_rules
    from pose_core.run import jobs
    from pose_core.store.history import HistoryStore

    monkeypatch.setenv("GYMPOSE_DASK_SCHEDULER", client.scheduler.address)
    d = {n: tmp_path / n for n in ("jobs", "analyses", "uploads")}
    for p in d.values():
        p.mkdir()
    upload = d["uploads"] / "20260101-000000_situp_3.mp4"
    upload.write_bytes((VIDEOS / "situp_3.mp4").read_bytes())
    history = HistoryStore(tmp_path / "history.sqlite3")
    runner = jobs.JobRunner(d["jobs"], d["analyses"], d["uploads"])
    made = []
    job = runner.submit(upload, "situp", load_rules(), lambda: made.append(1), history=history)
    s = runner.wait(job, timeout_s=300)
    assert s.state == jobs.DONE, s
    assert s.done == s.total > 0  # progress came back from the cluster
    assert not made  # no local estimator was made for it
    (row,) = history.list_sessions()
    assert row.rep_count == 1 and row.id == s.history_id
    assert (d["analyses"] / s.result_dir / "annotated.mp4").is_file()
