"""The analysis folder: its format, written and read in this one place.

An analysis folder holds `annotated.mp4` (the overlay video, optional), `frames.csv` (one row per frame:
phase, label, smoothed and raw angles, the 33 landmarks), `reps.json` (the judged reps) and `summary.json`
(`Summary.to_dict()`). The runner writes it staged: every file under a temporary name, renamed over the
real names only when the whole analysis succeeded, so a failure never leaves half-written files or clobbers
an earlier result. Re-judging (`tuning`) and the pages read it back through here.

It lives in `store/` (what is kept between runs): `run/` writes it and `store/tuning` reads it, and imports
only point down.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import json
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import pandas as pd

from ..core.analysis import FrameResult
from ..core.landmarks import PoseLandmark
from ..core.session import Summary
from ..core.tempo import concentric_s
from ..core.types import RepEvent
from ..core.wording import plural

ANNOTATED_VIDEO = "annotated.mp4"
FRAMES_CSV = "frames.csv"
REPS_JSON = "reps.json"
SUMMARY_JSON = "summary.json"
OUTPUT_FILES = (ANNOTATED_VIDEO, FRAMES_CSV, REPS_JSON, SUMMARY_JSON)
# The video drawn after the result (run.render_video): what the overlay shows on each frame, kept until the
# video is drawn; and, should drawing fail, why (the result itself is complete either way).
OVERLAY_DATA = "overlay.jsonl"
VIDEO_NOTE = "video_error.txt"
# frames.csv's columns before the angles; then <angle>..., raw_<angle>..., <landmark>_x/_y/_z/_v
FRAME_COLUMNS = ("frame", "time_s", "has_pose", "phase", "label", "reason", "rep_count", "counting_value")


# ------------------------------------------------------------------------------------------ writing

def frames_csv_header(angle_names) -> list[str]:
    cols = list(FRAME_COLUMNS)
    cols += [f"{n}" for n in angle_names] + [f"raw_{n}" for n in angle_names]
    for lm in PoseLandmark:
        n = lm.name.lower()
        cols += [f"{n}_x", f"{n}_y", f"{n}_z", f"{n}_v"]
    return cols


def _fmt(v: float, nd: int = 2) -> str:
    return "" if v is None or not math.isfinite(v) else f"{v:.{nd}f}"


def frames_csv_row(i: int, r: FrameResult, angle_names) -> list:
    row = [i, f"{r.timestamp_s:.4f}", int(r.has_pose), r.phase, r.label.label, r.label.reason, r.rep_count,
           _fmt(r.counting_value)]
    row += [_fmt(r.angles[n]) for n in angle_names] + [_fmt(r.raw_angles[n]) for n in angle_names]
    if r.pose is None:
        row += [""] * (4 * len(PoseLandmark))
    else:
        for (x, y, z), v in zip(r.pose.landmarks, r.pose.visibility):
            row += [f"{x:.5f}", f"{y:.5f}", f"{z:.5f}", f"{v:.3f}"]
    return row


class FramesCsvWriter:
    """frames.csv written row by row (a context manager; memory does not grow with the video)."""

    def __init__(self, path: str | Path, angle_names: Iterable[str]):
        self.names = list(angle_names)
        self._file = open(path, "w", newline="")
        self._csv = csv.writer(self._file)
        self._csv.writerow(frames_csv_header(self.names))
        self.rows = 0

    def write(self, r: FrameResult) -> None:
        self._csv.writerow(frames_csv_row(self.rows, r, self.names))
        self.rows += 1

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "FramesCsvWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_reps(path: str | Path, exercise: str, reps: Iterable[RepEvent], partial_reps: int,
               view: str | None, concentric: str = "") -> None:
    """reps.json; `concentric` (the rule's counting.concentric) adds each rep's lifting time, `concentric_s`."""
    def rep_dict(r: RepEvent) -> dict:
        d = r.to_dict()
        t = concentric_s(r, concentric)
        d["concentric_s"] = None if t is None else round(t, 3)
        return d

    with open(path, "w") as f:
        json.dump({"exercise": exercise, "partial_reps": partial_reps, "view": view,
                   "reps": [rep_dict(r) for r in reps]}, f, indent=2)


def write_summary(path: str | Path, summary: Summary) -> None:
    with open(path, "w") as f:
        json.dump(summary.to_dict(), f, indent=2)


class OutputFolderBusy(RuntimeError):
    """Another analysis is writing into the same output folder right now."""


_TMP = re.compile(r"^\..+\.tmp-(\d+)-\d+$")


def pid_alive(pid: int) -> bool:
    """Is process `pid` running on this machine (another user's counts too)?"""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_temp_files(out_dir: Path) -> list[Path]:
    """Remove the temporary outputs that a killed run (kill -9, power cut) left behind: those whose
    writing process no longer exists. Returns what was removed."""
    removed = []
    for p in out_dir.iterdir() if out_dir.is_dir() else ():
        m = _TMP.match(p.name)
        if m and int(m.group(1)) != os.getpid() and not pid_alive(int(m.group(1))):
            with contextlib.suppress(OSError):
                p.unlink()
                removed.append(p)
    return removed


@contextlib.contextmanager
def _folder_lock(out_dir: Path) -> Iterator[None]:
    """An exclusive lock on the folder itself (no lock file left beside the results)."""
    fd = os.open(out_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputFolderBusy(f"{out_dir.name}: another analysis is writing into this folder right now; "
                                   "wait for it or choose another --out") from None
        yield
    finally:
        os.close(fd)  # (releases the lock)


@contextlib.contextmanager
def staged_outputs(out_dir: Path, names: tuple[str, ...] = OUTPUT_FILES) -> Iterator[dict[str, Path]]:
    """Temporary paths for each output; renamed over the real names only if the block succeeds, and then
    an output of an earlier run that this run did not write (an old annotated.mp4 after --no-video) is
    removed, so the folder always holds one consistent run. The folder is locked meanwhile (a second
    analysis into it is refused: OutputFolderBusy); temporary files of killed runs are swept first.
    A folder this call created is removed again on failure."""
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    ok = False
    with _folder_lock(out_dir):
        sweep_stale_temp_files(out_dir)
        stamp = f".tmp-{os.getpid()}-{time.monotonic_ns()}"
        tmp = {n: out_dir / f".{n}{stamp}" for n in names}
        try:
            yield tmp
            for n, p in tmp.items():
                if p.exists():
                    os.replace(p, out_dir / n)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        (out_dir / n).unlink()
            ok = True
        finally:
            for p in tmp.values():
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
            if created and not ok:
                with contextlib.suppress(OSError):
                    out_dir.rmdir()


# ------------------------------------------------------------------------------------------ reading

def read_frames_csv(path: str | Path, angle_names: Iterable[str] | None = None) -> pd.DataFrame:
    """The per-frame table without the (many) landmark columns."""
    path = Path(path)
    header = pd.read_csv(path, nrows=0).columns
    keep = set(FRAME_COLUMNS)
    names = set(angle_names) if angle_names is not None else None
    cols = [c for c in header if c in keep or (
        (names is None and not c.endswith(("_x", "_y", "_z", "_v")))
        or (names is not None and (c in names or (c.startswith("raw_") and c[4:] in names))))]
    df = pd.read_csv(path, usecols=cols, keep_default_na=True)
    if "time_s" not in df.columns:
        raise ValueError(f"{path}: not a frames.csv (no time_s column)")
    return df


def read_summary(folder: str | Path) -> Summary:
    """summary.json of an analysis folder. Raises OSError / ValueError."""
    doc = json.loads((Path(folder) / SUMMARY_JSON).read_text())
    if not isinstance(doc, dict):
        raise ValueError(f"{folder}: summary.json is not an object")
    return Summary.from_dict(doc)


def stored_view(frames_csv: str | Path) -> str | None:
    """The camera view the analysis saw (from the summary.json beside frames.csv), if recorded."""
    try:
        view = read_summary(Path(frames_csv).parent).view
    except (OSError, ValueError, TypeError):
        return None
    return view if isinstance(view, str) else None


@dataclass(frozen=True)
class AnalysisInfo:
    """One finished analysis folder (as written by pose_core.run.pipeline.analyze_video)."""

    path: Path
    summary: Summary

    @property
    def exercise(self) -> str:
        return self.summary.exercise

    @property
    def frames_csv(self) -> Path:
        return self.path / FRAMES_CSV

    @property
    def label(self) -> str:
        from .uploads import upload_display_name

        s = self.summary
        return f"{upload_display_name(s.video or self.path.name)}: {plural(s.reps, 'rep')} ({self.path.name[:15]})"


def list_analyses(analyses_dir: str | Path, exercise: str | None = None) -> list[AnalysisInfo]:
    """Finished analyses (folders with summary.json and frames.csv) under analyses_dir, newest first."""
    root = Path(analyses_dir)
    if not root.is_dir():
        return []
    out = []
    for d in root.iterdir():
        if not d.is_dir() or d.is_symlink() or not (d / SUMMARY_JSON).is_file() or not (d / FRAMES_CSV).is_file():
            continue
        try:
            summary = read_summary(d)
        except (OSError, ValueError, TypeError):
            continue
        if exercise is None or summary.exercise == exercise:
            out.append(AnalysisInfo(d, summary))
    return sorted(out, key=lambda a: (a.path / SUMMARY_JSON).stat().st_mtime, reverse=True)


def distinct_analyses(analyses: Iterable[AnalysisInfo]) -> list[AnalysisInfo]:
    """One analysis per video (the first of each, i.e. the newest from list_analyses): the same video analysed
    again has the same frames and angles, and counting it twice would double its weight in a histogram.
    The same video = the same file name as uploaded, frame count and length."""
    from .uploads import upload_display_name

    seen, out = set(), []
    for a in analyses:
        s = a.summary
        key = (s.exercise, upload_display_name(s.video or a.path.name), s.frames, round(float(s.duration_s or 0), 2))
        if key not in seen:
            seen.add(key)
            out.append(a)
    return out


@dataclass(frozen=True)
class LoadedAnalysis:
    """A finished analysis read back for display."""

    path: Path
    summary: Summary
    reps: tuple[RepEvent, ...]
    partial_reps: int
    frames: pd.DataFrame  # per-frame table without landmark columns

    @property
    def video(self) -> Path | None:
        return self.file(ANNOTATED_VIDEO)

    def file(self, name: str) -> Path | None:
        p = self.path / name
        return p if p.is_file() else None


def load_analysis(path: str | Path) -> LoadedAnalysis:
    """Read an analysis folder written by analyze_video. Raises ValueError if it is incomplete."""
    from .history_record import rep_from_dict

    path = Path(path)
    try:
        summary = read_summary(path)
        reps_doc = json.loads((path / REPS_JSON).read_text())
        frames = read_frames_csv(path / FRAMES_CSV)
    except (OSError, ValueError, KeyError, TypeError, pd.errors.ParserError) as e:
        raise ValueError(f"{path.name}: the analysis cannot be read ({e})") from None
    reps = tuple(rep_from_dict(r) for r in reps_doc.get("reps", []))
    return LoadedAnalysis(path, summary, reps, int(reps_doc.get("partial_reps", 0)), frames)
