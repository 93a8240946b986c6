"""Session history: every analysed video and every saved live session, with its reps and verdicts.

An embedded SQLite database (WAL journal; one short transaction per write) at a configurable path.

Never losing a session: each record carries a unique id (`uid`). When the database cannot take a write
(locked by another program, damaged, read-only, disk full) the record is first written as JSON into a spool
folder beside the database (`<db>.pending/`), then `HistoryError` is raised with a message for the user.
Spooled records are listed with the others (marked `pending`: not yet saved) and imported at the next
chance (the next listing or save that can write); importing is idempotent (the uid is unique), so a crash
between commit and spool clean-up cannot duplicate a session.

A read-only database (file or folder) is read through SQLite's read-only modes; only saving is refused,
and the message says the history is read-only.

A damaged database is never repaired or overwritten here: the user is told where it is. Damage is looked
for when a connection opens (`PRAGMA quick_check`, skipped while the file is unchanged since the last good
check), so a file damaged in the middle is never written into: the session goes to the spool instead.
A transient "busy" (another writer holds the lock longer than the busy timeout) is retried with backoff
before anything is reported.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import shutil
import sqlite3
import time
import urllib.parse
from dataclasses import replace
from pathlib import Path
from typing import Iterator

from ..core.confine import is_within
from ..core.io import atomic_write_json
from ..core.types import RepEvent
# The record lives in history_record; imported here for the callers that take it from the store's module.
from .history_record import SessionRecord, finite_or_none, rep_from_dict, record_from_analysis  # noqa: F401

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uid TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,              -- ISO 8601, UTC
    source TEXT NOT NULL CHECK (source IN ('video', 'live')),
    exercise TEXT NOT NULL,
    name TEXT NOT NULL,
    reps INTEGER NOT NULL,
    reps_correct INTEGER NOT NULL,
    partial_reps INTEGER NOT NULL DEFAULT 0,
    frames INTEGER NOT NULL DEFAULT 0,
    frames_correct_pct REAL,               -- % of judged frames labelled correct
    duration_s REAL NOT NULL DEFAULT 0,
    avg_extreme REAL,                      -- mean of each rep's primary-angle extreme (depth), degrees
    avg_rep_s REAL,
    primary_angle TEXT NOT NULL DEFAULT '',
    analysis_dir TEXT,                     -- folder with annotated.mp4 / frames.csv / reps.json, if any
    rules_source TEXT NOT NULL DEFAULT '',
    extra_json TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS sessions_exercise_time ON sessions (exercise, created_at);
CREATE TABLE IF NOT EXISTS reps (
    session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    start_s REAL NOT NULL,
    end_s REAL NOT NULL,
    peak_s REAL NOT NULL,
    primary_min REAL,
    primary_max REAL,
    verdict TEXT NOT NULL,
    reasons_json TEXT NOT NULL DEFAULT '[]',
    extremes_json TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (session_id, idx)
);
"""


class HistoryError(RuntimeError):
    """The history database cannot be used right now. The message is meant for the user.

    `pending_path` is set when a session could not be stored and was kept in the spool folder instead."""

    def __init__(self, message: str, pending_path: Path | None = None):
        super().__init__(message)
        self.pending_path = pending_path


class HistoryBusyError(HistoryError):
    """Another writer held the database longer than the busy timeout (transient: worth retrying)."""


def _is_busy(e: Exception) -> bool:
    msg = str(e).lower()
    return isinstance(e, sqlite3.OperationalError) and ("locked" in msg or "busy" in msg)


class HistoryStore:
    """The history database at `path` (created on first use). Safe to use from several threads/processes:
    every call opens its own short-lived connection."""

    def __init__(self, path: str | Path, timeout_s: float = 2.0, busy_retry_s: float | None = None):
        self.path = Path(path)
        self.timeout_s = timeout_s
        # How long a write keeps retrying a busy database (with backoff) before it spools and says so.
        self.busy_retry_s = 5 * timeout_s if busy_retry_s is None else busy_retry_s
        self.pending_dir = self.path.with_name(self.path.name + ".pending")
        self._checked_state: tuple | None = None  # the file's state at the last good integrity check

    # ----------------------------------------------------------------------------------- plumbing
    def _explain(self, e: Exception) -> str:
        msg = str(e).lower()
        if "locked" in msg or "busy" in msg:
            return (f"The history database is busy (locked by another program): {self.path}. "
                    "Close the other program or try again in a moment.")
        if isinstance(e, sqlite3.DatabaseError) and not isinstance(e, sqlite3.OperationalError) or \
                "not a database" in msg or "malformed" in msg or "corrupt" in msg:
            return (f"The history database is damaged and cannot be read: {self.path} ({e}). It was left untouched; "
                    "move it aside (or restore a backup) and a new one will be created.")
        if "readonly" in msg or "read-only" in msg:
            return (f"The history is read-only ({self.path}): it can be read, but new sessions cannot be saved "
                    "into it.")
        if "unable to open" in msg or "disk" in msg:
            return f"The history database cannot be written: {self.path} ({e})."
        return f"The history database failed: {self.path} ({type(e).__name__}: {e})."

    def read_only(self) -> bool:
        """The database exists but this process may not write it or its folder (SQLite's WAL journal needs
        the folder too): it is then opened read-only."""
        return self.path.is_file() and not (os.access(self.path, os.W_OK) and os.access(self.path.parent, os.W_OK))

    def _open(self, read: bool) -> sqlite3.Connection:
        if not (read and self.read_only()):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None)
        uri = "file:" + urllib.parse.quote(str(self.path.resolve()))
        try:  # (needs the WAL's -shm file to exist, or to be allowed to make it)
            con = sqlite3.connect(uri + "?mode=ro", uri=True, timeout=self.timeout_s, isolation_level=None)
            con.execute("PRAGMA user_version").fetchone()
            return con
        except sqlite3.OperationalError:
            # No WAL files and no right to make them: nobody can be writing it, so it can be read as it is.
            return sqlite3.connect(uri + "?immutable=1", uri=True, timeout=self.timeout_s, isolation_level=None)

    @contextlib.contextmanager
    def _connect(self, read: bool = False) -> Iterator[sqlite3.Connection]:
        """A connection for one call; read=True: only reads follow (a read-only database is opened read-only;
        writing to one is refused at once, saying so)."""
        if not read and self.read_only():
            raise HistoryError(self._explain(sqlite3.OperationalError("attempt to write a readonly database")))
        try:
            con = self._open(read)
        except (sqlite3.Error, OSError) as e:
            raise HistoryError(self._explain(e)) from None
        try:
            con.row_factory = sqlite3.Row
            con.execute("PRAGMA foreign_keys = ON")
            self._init_schema(con)
            self._check_integrity(con)
            yield con
        except sqlite3.Error as e:
            raise (HistoryBusyError if _is_busy(e) else HistoryError)(self._explain(e)) from None
        finally:
            con.close()

    def _file_state(self) -> tuple | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        wal = self.path.with_name(self.path.name + "-wal")
        w = wal.stat() if wal.exists() else None
        return (st.st_ino, st.st_size, st.st_mtime_ns, w and (w.st_ino, w.st_size, w.st_mtime_ns))

    def _check_integrity(self, con: sqlite3.Connection) -> None:
        """Refuse a damaged file (sqlite3.DatabaseError, explained as damaged): a header-intact file with
        garbage in the middle opens fine and would take writes. Skipped while the file is unchanged."""
        state = self._file_state()
        if state is not None and state == self._checked_state:
            return
        rows = [r[0] for r in con.execute("PRAGMA quick_check").fetchall()]
        if rows != ["ok"]:
            raise sqlite3.DatabaseError(f"database disk image is malformed (quick_check: {'; '.join(rows[:3])})")
        self._checked_state = state

    def _retrying(self, fn):
        """fn(), retried with jittered exponential backoff while the database is busy (up to busy_retry_s)."""
        deadline = time.monotonic() + self.busy_retry_s
        delay = 0.01
        while True:
            try:
                return fn()
            except HistoryBusyError:
                if time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay * (0.5 + random.random()))
                delay = min(2 * delay, 0.25)

    def _init_schema(self, con: sqlite3.Connection) -> None:
        version = con.execute("PRAGMA user_version").fetchone()[0]  # fails on a file that is not a database
        if version > SCHEMA_VERSION:
            raise HistoryError(f"{self.path} was written by a newer GymPose (schema {version} > {SCHEMA_VERSION}).")
        if version == SCHEMA_VERSION:  # set up (WAL is a property of the file); reads need no write lock
            return  # (checked on every connection: a replaced or deleted file is set up again)
        # WAL: readers never block the writer. On file systems without shared memory SQLite keeps its
        # previous journal mode, which still works (less concurrently).
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    con.execute(statement)
            con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            con.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                con.execute("ROLLBACK")
            raise

    @staticmethod
    def _insert(con: sqlite3.Connection, rec: SessionRecord) -> int | None:
        """Insert one record inside the caller's transaction; None if its uid is already stored."""
        cur = con.execute(
            "INSERT OR IGNORE INTO sessions (uid, created_at, source, exercise, name, reps, reps_correct, partial_reps, "
            "frames, frames_correct_pct, duration_s, avg_extreme, avg_rep_s, primary_angle, analysis_dir, rules_source, "
            "extra_json) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (rec.uid, rec.created_at, rec.source, rec.exercise, rec.name, rec.rep_count, rec.reps_correct,
             rec.partial_reps, rec.frames, finite_or_none(rec.frames_correct_pct), float(rec.duration_s),
             rec.avg_extreme, rec.avg_rep_s, rec.primary_angle, rec.analysis_dir, rec.rules_source, json.dumps(rec.extra)))
        if cur.rowcount == 0:
            return None
        sid = cur.lastrowid
        con.executemany(
            "INSERT INTO reps (session_id, idx, start_s, end_s, peak_s, primary_min, primary_max, verdict, reasons_json, "
            "extremes_json) VALUES (?,?,?,?,?,?,?,?,?,?)",
            [(sid, r.index, r.start_s, r.end_s, r.peak_s, finite_or_none(r.primary_min),
              finite_or_none(r.primary_max), r.verdict,
              json.dumps(list(r.reasons)), json.dumps({k: list(v) for k, v in r.angle_extremes.items()}))
             for r in rec.reps])
        return sid

    def _spool(self, rec: SessionRecord) -> Path:
        p = self.pending_dir / f"{rec.uid}.json"
        atomic_write_json(p, rec.to_json())
        return p

    # --------------------------------------------------------------------------------------- API
    def add(self, rec: SessionRecord) -> int:
        """Store a session with its reps in one transaction and return its id.

        A busy database is retried first (see busy_retry_s). On failure the session is kept in the spool
        folder and HistoryError says so."""
        try:
            return self._retrying(lambda: self._add_once(rec))
        except HistoryError as e:
            try:
                p = self._spool(rec)
            except OSError as e2:
                raise HistoryError(f"{e} The session could not be kept either ({e2}).") from None
            raise HistoryError(f"{e} The session was kept in {p.parent} and will be added automatically "
                               "once the database works again.", pending_path=p) from None

    def _add_once(self, rec: SessionRecord) -> int:
        self.import_pending()
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                sid = self._insert(con, rec)
                con.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    con.execute("ROLLBACK")
                raise
            if sid is None:  # already stored (same uid)
                sid = con.execute("SELECT id FROM sessions WHERE uid = ?", (rec.uid,)).fetchone()[0]
            return int(sid)

    def pending(self) -> list[Path]:
        return sorted(self.pending_dir.glob("*.json")) if self.pending_dir.is_dir() else []

    def pending_records(self, exercise: str | None = None) -> list[SessionRecord]:
        """The sessions kept in the spool folder (marked pending), newest first; unreadable files are left out
        (and left for a human)."""
        out = []
        for p in self.pending():
            try:
                rec = SessionRecord.from_json(json.loads(p.read_text()))
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if exercise is None or rec.exercise == exercise:
                out.append(replace(rec, id=None, pending=True))
        return sorted(out, key=lambda r: r.created_at, reverse=True)

    def import_pending(self) -> int:
        """Move spooled sessions into the database; returns how many were newly added."""
        files = self.pending()
        if not files:
            return 0
        added = 0
        with self._connect() as con:
            for p in files:
                try:
                    rec = SessionRecord.from_json(json.loads(p.read_text()))
                except (OSError, ValueError, KeyError, TypeError):
                    continue  # unreadable spool file: leave it for a human
                con.execute("BEGIN IMMEDIATE")
                try:
                    added += self._insert(con, rec) is not None
                    con.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        con.execute("ROLLBACK")
                    raise
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
        return added

    @staticmethod
    def _row_to_record(row: sqlite3.Row, reps: tuple[RepEvent, ...] = ()) -> SessionRecord:
        return SessionRecord(
            id=row["id"], uid=row["uid"], created_at=row["created_at"], source=row["source"],
            exercise=row["exercise"], name=row["name"], reps=reps, rep_count=row["reps"],
            reps_correct=row["reps_correct"], partial_reps=row["partial_reps"], frames=row["frames"],
            frames_correct_pct=row["frames_correct_pct"], duration_s=row["duration_s"],
            avg_extreme=row["avg_extreme"], avg_rep_s=row["avg_rep_s"], primary_angle=row["primary_angle"],
            analysis_dir=row["analysis_dir"], rules_source=row["rules_source"],
            extra=json.loads(row["extra_json"] or "{}"))

    def list_sessions(self, exercise: str | None = None, limit: int | None = None,
                      include_pending: bool = True) -> list[SessionRecord]:
        """Sessions newest first (reps not loaded; counts and averages are). include_pending: with the sessions
        kept in the spool folder, imported first when the database can take them now, else listed marked
        pending (not yet saved). Raises HistoryError when the database cannot be read."""
        waiting: list[SessionRecord] = []
        if include_pending and self.pending():
            with contextlib.suppress(HistoryError):  # (the next chance to import them: now, if it can write)
                self.import_pending()
            waiting = self.pending_records(exercise)
        sql = "SELECT * FROM sessions"
        args: list = []
        if exercise:
            sql += " WHERE exercise = ?"
            args.append(exercise)
        sql += " ORDER BY created_at DESC, id DESC"
        if limit:
            sql += " LIMIT ?"
            args.append(int(limit))
        with self._connect(read=True) as con:
            saved = [self._row_to_record(r) for r in con.execute(sql, args).fetchall()]
            if waiting:  # (a spool file left by a crash between commit and clean-up is stored already)
                stored = {r[0] for r in con.execute("SELECT uid FROM sessions WHERE uid IN (SELECT value FROM "
                                                    "json_each(?))", (json.dumps([r.uid for r in waiting]),))}
                waiting = [r for r in waiting if r.uid not in stored]
        if not waiting:
            return saved
        both = sorted(saved + waiting, key=lambda r: (r.created_at, r.id or math.inf), reverse=True)
        return both[:limit] if limit else both

    def get(self, session_id: int) -> SessionRecord | None:
        with self._connect(read=True) as con:
            row = con.execute("SELECT * FROM sessions WHERE id = ?", (int(session_id),)).fetchone()
            if row is None:
                return None
            reps = tuple(
                RepEvent(index=r["idx"], start_s=r["start_s"], end_s=r["end_s"], peak_s=r["peak_s"],
                         primary_min=r["primary_min"] if r["primary_min"] is not None else math.nan,
                         primary_max=r["primary_max"] if r["primary_max"] is not None else math.nan,
                         verdict=r["verdict"], reasons=tuple(json.loads(r["reasons_json"])),
                         angle_extremes={k: tuple(v) for k, v in json.loads(r["extremes_json"]).items()})
                for r in con.execute("SELECT * FROM reps WHERE session_id = ? ORDER BY idx", (int(session_id),)))
            return self._row_to_record(row, reps)

    def delete(self, session_id: int, files_root: str | Path | None = None) -> bool:
        """Delete a session and its reps. With files_root, its analysis folder is removed too, but only
        when that folder lies inside files_root."""
        with self._connect() as con:
            row = con.execute("SELECT analysis_dir FROM sessions WHERE id = ?", (int(session_id),)).fetchone()
            if row is None:
                return False
            con.execute("BEGIN IMMEDIATE")
            try:
                con.execute("DELETE FROM sessions WHERE id = ?", (int(session_id),))
                con.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    con.execute("ROLLBACK")
                raise
        if files_root is not None and row["analysis_dir"]:
            d = Path(row["analysis_dir"]).resolve()
            if is_within(files_root, d) and d.is_dir():
                shutil.rmtree(d, ignore_errors=True)
        return True

    def exercises(self) -> list[str]:
        with self._connect(read=True) as con:
            return [r[0] for r in con.execute("SELECT DISTINCT exercise FROM sessions ORDER BY exercise")]

    def progress(self, exercise: str) -> list[dict]:
        """One row per session of this exercise, oldest first: time, reps, % correct reps, % correct frames,
        average depth (primary-angle extreme) and rep duration, for progress charts."""
        with self._connect(read=True) as con:
            rows = con.execute(
                "SELECT id, created_at, source, name, reps, reps_correct, frames_correct_pct, avg_extreme, avg_rep_s "
                "FROM sessions WHERE exercise = ? ORDER BY created_at, id", (exercise,)).fetchall()
        return [{"id": r["id"], "created_at": r["created_at"], "source": r["source"], "name": r["name"],
                 "reps": r["reps"], "reps_correct": r["reps_correct"],
                 "reps_correct_pct": round(100.0 * r["reps_correct"] / r["reps"], 1) if r["reps"] else None,
                 "frames_correct_pct": r["frames_correct_pct"], "avg_depth": r["avg_extreme"],
                 "avg_rep_s": r["avg_rep_s"]} for r in rows]

    def count(self) -> int:
        with self._connect(read=True) as con:
            return int(con.execute("SELECT COUNT(*) FROM sessions").fetchone()[0])

    def set_extra(self, analysis_dir: str | Path, key: str, value) -> int:
        """Set (value None: remove) one item of the `extra` of the sessions stored from this analysis folder
        (a person's corrected count, store.corrections); returns how many sessions changed."""
        with self._connect() as con:
            rows = con.execute("SELECT id, extra_json FROM sessions WHERE analysis_dir IN (?, ?)",
                               (str(analysis_dir), str(Path(analysis_dir).resolve()))).fetchall()
            con.execute("BEGIN IMMEDIATE")
            try:
                for r in rows:
                    extra = json.loads(r["extra_json"] or "{}")
                    if value is None:
                        extra.pop(key, None)
                    else:
                        extra[key] = value
                    con.execute("UPDATE sessions SET extra_json = ? WHERE id = ?", (json.dumps(extra), r["id"]))
                con.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    con.execute("ROLLBACK")
                raise
        return len(rows)
