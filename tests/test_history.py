"""The SQLite history store: round trips, restarts, locked and damaged databases never lose a session."""

import json
import sqlite3
from pathlib import Path

import pytest

from pose_core.core.session import Summary
from pose_core.store.history import HistoryError, HistoryStore, SessionRecord, record_from_analysis
from pose_core.core.types import RepEvent


def rep(i: int, verdict: str = "correct", low: float = 80.0, reasons=()) -> RepEvent:
    return RepEvent(index=i, start_s=2.0 * i, end_s=2.0 * i + 1.5, peak_s=2.0 * i + 0.7, primary_min=low,
                    primary_max=175.0, verdict=verdict, reasons=tuple(reasons),
                    angle_extremes={"knee": (low, 175.0), "hip": (60.0, 178.0)})


def record(exercise="squat", n=3, bad=1, created_at="2026-01-01T10:00:00+00:00", **kw) -> SessionRecord:
    reps = tuple(rep(i + 1, "incorrect" if i < bad else "correct", 80.0 + i, ("Not deep enough",) if i < bad else ())
                 for i in range(n))
    return SessionRecord(exercise=exercise, name=f"{exercise}.mp4", reps=reps, frames=300, frames_correct_pct=88.5,
                         duration_s=10.0, primary_angle="knee", created_at=created_at, **kw)


@pytest.fixture
def store(tmp_path) -> HistoryStore:
    return HistoryStore(tmp_path / "h" / "history.sqlite3", timeout_s=0.2)


def test_round_trip_keeps_reps_and_verdicts(store):
    sid = store.add(record())
    got = store.get(sid)
    assert got.id == sid and got.exercise == "squat" and got.rep_count == 3 and got.reps_correct == 2
    assert [r.verdict for r in got.reps] == ["incorrect", "correct", "correct"]
    assert got.reps[0].reasons == ("Not deep enough",)
    assert got.reps[0].angle_extremes["hip"] == (60.0, 178.0)
    assert got.avg_extreme == pytest.approx(81.0)
    assert got.reps_correct_pct == pytest.approx(66.7)
    assert store.get(9999) is None


def test_survives_restart_and_uses_wal(store, tmp_path):
    store.add(record())
    again = HistoryStore(store.path)
    assert again.count() == 1
    con = sqlite3.connect(store.path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()


def test_list_progress_and_delete(store):
    a = store.add(record(created_at="2026-01-01T10:00:00+00:00", n=3))
    b = store.add(record(created_at="2026-01-03T10:00:00+00:00", n=5, bad=0))
    store.add(record(exercise="pushup", created_at="2026-01-02T10:00:00+00:00"))
    assert [r.id for r in store.list_sessions()] == [b, 3, a]  # newest first
    assert [r.id for r in store.list_sessions("squat")] == [b, a]
    assert store.exercises() == ["pushup", "squat"]
    prog = store.progress("squat")
    assert [p["reps"] for p in prog] == [3, 5]  # oldest first
    assert [p["reps_correct_pct"] for p in prog] == [66.7, 100.0]
    assert store.delete(a) is True
    assert store.delete(a) is False
    assert [r.id for r in store.list_sessions("squat")] == [b]
    con = sqlite3.connect(store.path)
    assert con.execute("SELECT COUNT(*) FROM reps WHERE session_id = ?", (a,)).fetchone()[0] == 0  # cascade
    con.close()


def test_delete_removes_files_only_inside_root(store, tmp_path):
    inside = tmp_path / "analyses" / "one"
    outside = tmp_path / "elsewhere"
    inside.mkdir(parents=True)
    outside.mkdir()
    s1 = store.add(record(analysis_dir=str(inside)))
    s2 = store.add(record(analysis_dir=str(outside)))
    store.delete(s1, files_root=tmp_path / "analyses")
    store.delete(s2, files_root=tmp_path / "analyses")
    assert not inside.exists()
    assert outside.exists()


def test_locked_database_keeps_the_session_and_imports_it_later(store):
    store.add(record())
    blocker = sqlite3.connect(store.path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        assert len(HistoryStore(store.path).list_sessions()) == 1  # WAL: reading works while another writes
        with pytest.raises(HistoryError, match="busy") as err:
            store.add(record(n=4))
        assert err.value.pending_path is not None and err.value.pending_path.exists()
        assert len(store.pending()) == 1
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert store.import_pending() == 1
    assert store.pending() == []
    assert sorted(r.rep_count for r in store.list_sessions()) == [3, 4]


def test_importing_twice_does_not_duplicate(store):
    rec = record()
    store.add(rec)
    store.add(rec)  # same uid
    (store.pending_dir).mkdir(parents=True, exist_ok=True)
    (store.pending_dir / f"{rec.uid}.json").write_text(json.dumps(rec.to_json()))
    store.import_pending()
    assert store.count() == 1


def test_corrupt_database_is_reported_left_untouched_and_session_kept(tmp_path):
    db = tmp_path / "history.sqlite3"
    garbage = b"this is not an sqlite database" * 100
    db.write_bytes(garbage)
    store = HistoryStore(db)
    with pytest.raises(HistoryError, match="damaged"):
        store.list_sessions()
    with pytest.raises(HistoryError, match="kept in") as err:
        store.add(record())
    assert db.read_bytes() == garbage
    kept = SessionRecord.from_json(json.loads(err.value.pending_path.read_text()))
    assert kept.rep_count == 3 and kept.reps[0].reasons == ("Not deep enough",)
    # The user moves the damaged file aside: the kept session lands in the new database.
    db.rename(tmp_path / "history.broken")
    fresh = HistoryStore(db)
    assert fresh.count() == 0
    fresh.add(record(exercise="pushup"))
    assert sorted(r.exercise for r in fresh.list_sessions()) == ["pushup", "squat"]


def test_record_from_analysis_summary():
    summary = Summary(exercise="squat", video="squat_1.mp4", reps=2, partial_reps=1, frames=300,
                      frames_correct_pct=91.2, duration_s=10.7, primary_angle="knee", rules="defaults")
    rec = record_from_analysis(summary, [rep(1), rep(2, "incorrect")], "/x/y", rest="high")
    assert rec.source == "video" and rec.rep_count == 2 and rec.reps_correct == 1 and rec.partial_reps == 1
    assert rec.frames_correct_pct == 91.2 and rec.analysis_dir == "/x/y" and rec.avg_extreme == 80.0


def test_invalid_source_refused():
    with pytest.raises(ValueError):
        SessionRecord(exercise="squat", name="x", source="tv")


def test_database_replaced_while_running_is_recreated(store):
    store.add(record())
    store.path.unlink()
    for p in store.path.parent.glob(store.path.name + "-*"):  # WAL side files
        p.unlink()
    assert store.list_sessions() == []  # a new, empty database
    store.add(record())
    assert store.count() == 1


# ------------------------------------------------------------------------------- issue 12, items 13, 14

def test_damage_in_the_middle_is_found_and_never_written_into(tmp_path):
    db = tmp_path / "history.sqlite3"
    store = HistoryStore(db)
    for i in range(120):
        store.add(record(n=8, created_at=f"2026-01-01T10:{i // 60:02d}:{i % 60:02d}+00:00"))
    assert not db.with_name(db.name + "-wal").exists() or db.with_name(db.name + "-wal").stat().st_size == 0
    size = db.stat().st_size
    assert size > 64 * 1024
    with open(db, "r+b") as f:  # 8 KB of garbage at half its size: the header stays intact
        f.seek(size // 2)
        f.write(b"\xa5" * 8192)
    damaged = db.read_bytes()
    store = HistoryStore(db)  # a fresh store (e.g. after a restart)
    with pytest.raises(HistoryError, match="damaged"):
        store.list_sessions()
    with pytest.raises(HistoryError, match="damaged.*kept in") as err:
        store.add(record(n=2))
    assert db.read_bytes() == damaged  # not written into
    assert err.value.pending_path is not None and err.value.pending_path.exists()
    # The same store that saw the file healthy also notices (the check runs when the file changed).
    healthy = tmp_path / "b.sqlite3"
    s2 = HistoryStore(healthy)
    s2.add(record())
    for _ in range(60):
        s2.add(record(n=8))
    size = healthy.stat().st_size
    with open(healthy, "r+b") as f:
        f.seek(size // 2)
        f.write(b"\x00\xff" * 4096)
    before = healthy.read_bytes()
    with pytest.raises(HistoryError, match="kept in"):
        s2.add(record(n=5))
    assert healthy.read_bytes() == before


def test_concurrent_writers_never_see_a_transient_busy(tmp_path):
    import threading

    db = tmp_path / "history.sqlite3"
    HistoryStore(db).count()  # created
    errors, ids = [], []
    lock = threading.Lock()

    def writer(k: int) -> None:
        store = HistoryStore(db, timeout_s=0.02, busy_retry_s=20.0)  # a tiny busy timeout: busy is certain
        for i in range(40):
            try:
                sid = store.add(record(n=6, created_at=f"2026-01-0{k % 9 + 1}T10:00:{i:02d}+00:00"))
            except HistoryError as e:
                with lock:
                    errors.append(str(e))
            else:
                with lock:
                    ids.append(sid)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(ids)) == 320 and HistoryStore(db).count() == 320
    assert HistoryStore(db).pending() == []


def test_a_busy_database_is_retried_before_it_is_reported(tmp_path):
    import threading

    store = HistoryStore(tmp_path / "history.sqlite3", timeout_s=0.05, busy_retry_s=3.0)
    store.add(record())
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:  # another writer holds the lock for 0.5 s
        blocker = sqlite3.connect(store.path, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        locked.set()
        release.wait(0.5)
        blocker.execute("ROLLBACK")
        blocker.close()

    holder = threading.Thread(target=hold)
    holder.start()
    locked.wait(5)
    try:
        assert store.add(record(n=4)) > 0  # waited for the lock instead of failing after 0.05 s
    finally:
        holder.join()
    assert store.pending() == [] and store.count() == 2


# ------------------------------------------------------------------ reading the history (issue 13 item 6)

def _rec(name="squat_1.mp4", reps=3, low=90.0, pct=80.0, day=1, source="video", sid=None):
    from pose_core.core.types import RepEvent

    rs = tuple(RepEvent(i + 1, 2.0 * i, 2.0 * i + 1.5, 2.0 * i + 0.7, low, 175.0, "correct", ()) for i in range(reps))
    return SessionRecord(exercise="squat", name=name, source=source, reps=rs, frames_correct_pct=pct,
                         extra={"rest": "high"}, created_at=f"2026-01-0{day}T10:00:00+00:00", id=sid)


def test_identical_reanalyses_fold_into_the_newest_and_different_results_stay():
    from pose_core.store.history_compare import distinct_results

    newest_first = [_rec(day=4, sid=4), _rec(day=3, sid=3, reps=4), _rec(day=2, sid=2), _rec(day=1, sid=1),
                    _rec(name="Live session (Squat)", source="live", day=1, sid=9),
                    _rec(name="Live session (Squat)", source="live", day=1, sid=8)]
    d = distinct_results(newest_first)
    assert [(x.record.id, x.repeats) for x in d] == [(4, (2, 1)), (3, ()), (9, ()), (8, ())]
    assert d[0].times == 3


def test_comparing_two_sessions_orders_them_and_says_better_or_worse():
    from pose_core.store.history_compare import compare_sessions

    later, earlier = _rec(day=2, sid=2, reps=5, low=80.0, pct=90.0), _rec(day=1, sid=1, reps=3, low=100.0, pct=70.0)
    rows = {c.measure: c for c in compare_sessions(later, earlier, "high")}  # either order: earlier first
    assert (rows["reps"].earlier, rows["reps"].later, rows["reps"].change, rows["reps"].better) == (3, 5, 2, True)
    assert rows["depth"].change == -20.0 and rows["depth"].better is True  # knees bent further: deeper
    assert rows["correct frames"].change == 20.0 and rows["correct frames"].better is True
    assert rows["rep time"].better is None  # tempo has no better direction
    low_rest = {c.measure: c for c in compare_sessions(later, earlier, "low")}
    assert low_rest["depth"].better is False  # resting low (a pull-up's elbows): a lower peak is worse
    no_reps = {c.measure: c for c in compare_sessions(_rec(reps=0, sid=5, day=3), earlier)}
    assert no_reps["depth"].change is None and no_reps["depth"].better is None


# ------------------------------------------------------------------------------------------- issue 25

READ_AND_SAVE = """
import json, sys
from pose_core.store.history import HistoryError, HistoryStore, SessionRecord
store = HistoryStore(sys.argv[1], timeout_s=0.2)
out = {"listed": [r.exercise for r in store.list_sessions()], "count": store.count(),
       "progress": len(store.progress("squat")), "exercises": store.exercises()}
out["reps"] = len(store.get(store.list_sessions()[0].id).reps)
try:
    store.add(SessionRecord(exercise="situp", name="new.mp4"))
    out["saved"] = True
except HistoryError as e:
    out["error"] = str(e)
print(json.dumps(out))
"""


@pytest.mark.parametrize("read_only", ["file and folder", "folder", "file", "folder, WAL files kept"])
def test_a_read_only_history_can_be_read_and_saving_says_it_is_read_only(tmp_path, read_only):
    """Item 5: read-only (by its permissions, for a user who cannot override them) it is read as usual;
    saving says the history is read-only, not that it cannot be written when only reading."""
    import os
    import subprocess
    import sys

    from helpers import without_root_powers

    prefix = without_root_powers()
    if prefix is None:
        pytest.skip("running as root without setpriv: root writes whatever the permissions")
    folder = tmp_path / "h"
    store = HistoryStore(folder / "history.sqlite3")
    store.add(record(created_at="2026-01-01T10:00:00+00:00"))
    store.add(record(exercise="pushup", created_at="2026-01-02T10:00:00+00:00"))
    holder = None
    if "WAL" in read_only:  # another program has it open: its -wal and -shm files exist
        holder = sqlite3.connect(store.path)
        holder.execute("SELECT COUNT(*) FROM sessions").fetchone()
        assert store.path.with_name("history.sqlite3-shm").exists()
    if "file" in read_only:
        store.path.chmod(0o444)
    if "folder" in read_only:
        folder.chmod(0o555)
    try:
        p = subprocess.run(prefix + [sys.executable, "-c", READ_AND_SAVE, str(store.path)], capture_output=True,
                           text=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(Path(__file__).parent.parent)))
    finally:
        folder.chmod(0o755)
        store.path.chmod(0o644)
        if holder is not None:
            holder.close()
    assert p.returncode == 0, p.stderr[-2000:]
    got = json.loads(p.stdout)
    assert got["listed"] == ["pushup", "squat"] and got["count"] == 2 and got["progress"] == 1 and got["reps"] == 3
    assert got["exercises"] == ["pushup", "squat"]
    assert "saved" not in got and got["error"].startswith("The history is read-only"), got["error"]
    assert "cannot be written" not in got["error"]
    if "folder" not in read_only:  # (with a writable folder the session is kept in the spool folder)
        assert "kept in" in got["error"]


def test_pending_sessions_are_listed_marked_and_imported_at_the_next_chance(store):
    """Item 6: a session kept in .pending (the database was busy) is listed at once, marked not yet saved,
    and imported by the next listing that can write, not only by the next save."""
    store.add(record(created_at="2026-01-01T10:00:00+00:00"))
    blocker = sqlite3.connect(store.path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(HistoryError, match="kept in"):
            store.add(record(n=4, created_at="2026-01-02T10:00:00+00:00"))
        listed = HistoryStore(store.path, timeout_s=0.2).list_sessions()
        assert [(r.rep_count, r.pending, r.id is None) for r in listed] == [(4, True, True), (3, False, False)]
        assert len(store.pending()) == 1
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    listed = HistoryStore(store.path).list_sessions()  # no save in between: the listing imports it
    assert [(r.rep_count, r.pending) for r in listed] == [(4, False), (3, False)] and all(r.id for r in listed)
    assert store.pending() == []


def test_pending_sessions_of_a_damaged_database_are_still_listed(tmp_path):
    db = tmp_path / "history.sqlite3"
    db.write_bytes(b"this is not an sqlite database" * 100)
    store = HistoryStore(db)
    with pytest.raises(HistoryError, match="kept in"):
        store.add(record(exercise="pushup"))
    with pytest.raises(HistoryError, match="damaged"):
        store.list_sessions()
    (kept,) = store.pending_records()
    assert kept.pending and kept.exercise == "pushup" and kept.rep_count == 3
