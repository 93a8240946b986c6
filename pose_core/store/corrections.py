"""A person's corrections to a count, and clips labelled from them.

GymPose marks a rep it is unsure of (one signal saw it, or it touches a camera cut) and lists the cycles it
did not count (possible reps). Whoever watched the set can settle them in one click: keep or remove an
uncertain rep, count a possible one, or add a rep GymPose missed at a time on the video. The corrections are
kept beside the analysis in `corrections.json` (written atomically); the analysis' own files never change,
so what GymPose said stays comparable with what the person said.

A corrected clip is also a labelled clip: `export_labelled_clip` copies the video into a folder of the
user's own test set and writes its row of `videos.csv` there (the format `gympose evaluate` reads), so the
next version of the counter can be checked on the clips that fooled this one.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable

from ..core.confine import sanitize_filename
from ..core.io import atomic_path, atomic_write_json, atomic_write_text
from ..core.session import Summary
from ..core.types import RepEvent

CORRECTIONS_JSON = "corrections.json"
VIDEOS_CSV = "videos.csv"
CORRECTED_COUNT = "corrected_count"  # the key of a history row's extra that holds the person's count
# The columns `gympose evaluate` reads (file, exercise, reps_complete, reps_partial) and what tells a person
# where a row came from.
LABELLED_COLUMNS = ("file", "exercise", "reps_complete", "reps_partial", "view", "duration_s", "width", "height",
                    "rep_times", "notes")
MAX_ADDED = 500  # more added reps than this in one video is not a correction


class CorrectionError(ValueError):
    """A correction that cannot apply (the message is meant for the user)."""


@dataclass(frozen=True)
class Corrections:
    """What the person said about the count. Rep numbers are those of reps.json (1-based)."""

    removed: tuple[int, ...] = ()  # counted reps that were not reps
    confirmed: tuple[int, ...] = ()  # uncertain reps the person confirmed
    added: tuple[float, ...] = ()  # reps GymPose missed (or did not count), by time in the video (s)

    @property
    def empty(self) -> bool:
        return not (self.removed or self.confirmed or self.added)

    def count(self, reps: Iterable[RepEvent]) -> int:
        """The corrected count."""
        indices = {r.index for r in reps}
        return len(indices - set(self.removed)) + len(self.added)

    def status(self, rep: RepEvent) -> str:
        """"removed", "confirmed", or "" (as GymPose said)."""
        if rep.index in self.removed:
            return "removed"
        if rep.index in self.confirmed:
            return "confirmed"
        return ""

    def to_dict(self) -> dict:
        return {"removed": list(self.removed), "confirmed": list(self.confirmed),
                "added": [round(t, 2) for t in self.added]}

    @classmethod
    def from_dict(cls, d: dict) -> "Corrections":
        """Checked: only whole rep numbers and finite, non-negative times (a hand-edited file fails plainly)."""
        if not isinstance(d, dict):
            raise CorrectionError("corrections: expected an object")

        def ints(key):
            v = d.get(key, [])
            if not isinstance(v, list) or not all(isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in v):
                raise CorrectionError(f"corrections: {key} must be a list of rep numbers")
            return tuple(sorted(set(v)))

        added = d.get("added", [])
        if not isinstance(added, list) or len(added) > MAX_ADDED or not all(
                isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t) and t >= 0 for t in added):
            raise CorrectionError("corrections: added must be a list of times in seconds")
        return cls(removed=ints("removed"), confirmed=ints("confirmed"), added=tuple(sorted(float(t) for t in added)))


def load_corrections(folder: str | Path) -> Corrections:
    """The analysis' corrections (none when there is no file; a damaged file is said, not ignored)."""
    path = Path(folder) / CORRECTIONS_JSON
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Corrections()
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CorrectionError(f"{CORRECTIONS_JSON}: cannot read it ({type(e).__name__})") from None
    return Corrections.from_dict(data)


def save_corrections(folder: str | Path, c: Corrections) -> None:
    path = Path(folder) / CORRECTIONS_JSON
    if c.empty:
        path.unlink(missing_ok=True)
    else:
        atomic_write_json(path, c.to_dict())


def _rep(reps: Iterable[RepEvent], index: int) -> RepEvent:
    rep = next((r for r in reps if r.index == index), None)
    if rep is None:
        raise CorrectionError(f"there is no rep {index} in this analysis")
    return rep


def remove_rep(c: Corrections, reps, index: int) -> Corrections:
    _rep(reps, index)
    return replace(c, removed=tuple(sorted(set(c.removed) | {index})),
                   confirmed=tuple(i for i in c.confirmed if i != index))


def confirm_rep(c: Corrections, reps, index: int) -> Corrections:
    _rep(reps, index)
    return replace(c, confirmed=tuple(sorted(set(c.confirmed) | {index})),
                   removed=tuple(i for i in c.removed if i != index))


def add_rep(c: Corrections, t: float, duration_s: float) -> Corrections:
    if not (math.isfinite(t) and 0 <= t <= max(duration_s, 0.0) + 0.5):
        raise CorrectionError(f"{t:g} s is not a time in this video (0 to {duration_s:.1f} s)")
    if len(c.added) >= MAX_ADDED:
        raise CorrectionError("too many added reps")
    return replace(c, added=tuple(sorted(c.added + (round(float(t), 2),))))


def undo_added(c: Corrections, t: float) -> Corrections:
    return replace(c, added=tuple(x for x in c.added if abs(x - t) > 1e-6))


# -------------------------------------------------------------------------- a labelled clip of your own

def labelled_row(summary: Summary, reps: list[RepEvent], c: Corrections, file_name: str) -> dict:
    """The clip's row of videos.csv: the corrected count (as reps_complete), GymPose's partial reps, and what
    was corrected (notes), so `gympose evaluate FOLDER` checks the counter against the person's count."""
    kept = [r for r in reps if r.index not in c.removed]
    times = sorted([round((r.start_s + r.end_s) / 2, 1) for r in kept] + [round(t, 1) for t in c.added])
    said = [f"GymPose counted {len(reps)}"]
    if c.removed:
        said.append(f"removed rep{'s' if len(c.removed) > 1 else ''} {', '.join(map(str, c.removed))}")
    if c.added:
        said.append(f"added a rep at {', '.join(f'{t:.1f} s' for t in c.added)}")
    if c.confirmed:
        said.append(f"confirmed rep{'s' if len(c.confirmed) > 1 else ''} {', '.join(map(str, c.confirmed))}")
    return {"file": file_name, "exercise": summary.exercise, "reps_complete": c.count(reps),
            "reps_partial": summary.partial_reps, "view": summary.view or "", "duration_s": summary.duration_s,
            "width": summary.width, "height": summary.height, "rep_times": " ".join(f"{t:g}" for t in times),
            "notes": "labelled in GymPose: " + "; ".join(said)}


def _read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            return list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise CorrectionError(f"{VIDEOS_CSV}: cannot read the labelled clips' list ({type(e).__name__}); "
                              "it was left as it is") from None


def export_labelled_clip(video: str | Path, row: dict, dest: str | Path) -> Path:
    """Copy `video` into `dest` (under row["file"], made a safe file name) and put its row into
    dest/videos.csv, replacing an earlier row of the same file; both written atomically, so a failure leaves
    the folder as it was. Returns the clip's path."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    name = sanitize_filename(str(row["file"]))
    if Path(name).suffix.lower() != Path(video).suffix.lower():
        name = Path(name).stem + Path(video).suffix.lower()
    rows = [r for r in _read_rows(dest / VIDEOS_CSV) if r.get("file") != name]
    target = dest / name
    if not target.exists() or target.stat().st_size != Path(video).stat().st_size:
        with atomic_path(target) as tmp:
            try:
                os.link(video, tmp.with_suffix(".lnk"))
                os.replace(tmp.with_suffix(".lnk"), tmp)  # same disk: no second copy of the video
            except OSError:
                shutil.copyfile(video, tmp)
    rows.append({**row, "file": name})
    columns = list(LABELLED_COLUMNS) + sorted({k for r in rows for k in r} - set(LABELLED_COLUMNS))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(dest / VIDEOS_CSV, buf.getvalue())
    return target
