"""Batch planning: which items a batch has (the videos of a folder, or the clips of a Penn Action folder),
each item's unique name and exercise, and the error rows of items that cannot be planned."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from ..media.video import VIDEO_EXTENSIONS

BATCH_COLUMNS = ("item", "exercise", "status", "reps", "reps_correct", "reps_incorrect", "partial_reps", "frames",
                 "seconds", "error", "source")


class BatchInputError(ValueError):
    """Bad input for a whole batch (missing folder, no videos, unreachable scheduler): the message is
    meant for the user; the CLI prints it as one `error:` line and exits 2."""


@dataclass(frozen=True)
class BatchItem:
    """One unit of work. `name` is unique in the batch and names the item's output (subfolder or part)."""

    name: str
    kind: str  # "video" | "penn"
    source: str  # the video file, or the clip's .mat file
    exercise: str | None  # None: to be recognised (video, --exercise auto)
    rel: str = ""  # source relative to INPUT, for the table


def item_row(item: BatchItem, **values) -> dict:
    """A table row (BATCH_COLUMNS) for item, with values filled in."""
    row = {c: None for c in BATCH_COLUMNS}
    row.update(item=item.name, exercise=item.exercise, source=item.rel or item.source)
    row.update(values)
    return row



def _norm(s: str) -> str:
    return re.sub(r"[\s\-]+", "_", s.strip().lower())


def exercise_from_path(rel_path: str | Path, exercises: Iterable[str]) -> str | None:
    """The exercise named by a video's path: the nearest parent folder whose name is an exercise
    (`squat/`, `Bench Press/`), else the file name's prefix (`squat_3.mp4`, `pushups-1.mov`, `situp.mp4`).
    None when nothing matches. The longest exercise name wins (no exercise is a prefix of another today)."""
    rel_path = Path(rel_path)
    names = sorted(exercises, key=len, reverse=True)
    for folder in reversed(rel_path.parent.parts):
        f = _norm(folder)
        for ex in names:
            if f in (ex, ex + "s"):
                return ex
    stem = _norm(rel_path.stem)
    for ex in names:
        if re.match(rf"^{re.escape(ex)}s?(?:$|[_.\d])", stem):
            return ex
    return None


def _safe_name(s: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", s).strip("._-")
    return s or "item"


def find_videos(folder: Path, exclude: Path | None = None) -> list[Path]:
    """Video files under `folder` (recursive; hidden files and folders and anything under `exclude`
    skipped), sorted by relative path."""
    folder = folder.resolve()
    ex = exclude.resolve() if exclude is not None else None
    out = []
    for p in folder.rglob("*"):
        rel = p.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if ex is not None and (p == ex or ex in p.parents):
            continue
        if p.suffix.lower().lstrip(".") in VIDEO_EXTENSIONS and p.is_file():
            out.append(p)
    return sorted(out, key=lambda p: p.relative_to(folder).as_posix())


def plan_videos(folder: Path, exercises: Sequence[str], exercise: str | None,
                exclude: Path | None = None) -> tuple[list[BatchItem], list[dict]]:
    """Items for a folder of videos, and error rows for videos whose exercise cannot be told from their
    names (when `exercise` is None). exercise == "auto": left to recognition (BatchItem.exercise None)."""
    folder = folder.resolve()
    videos = find_videos(folder, exclude)
    stems = [_safe_name(v.stem) for v in videos]
    taken: set[str] = set()
    items, errors = [], []
    for v, stem in zip(videos, stems):
        rel = v.relative_to(folder).as_posix()
        name = stem if stems.count(stem) == 1 else _safe_name(rel.rsplit(".", 1)[0].replace("/", "__"))
        base, n = name, 1
        while name in taken:
            n += 1
            name = f"{base}-{n}"
        taken.add(name)
        if exercise == "auto":
            ex = None
        elif exercise is not None:
            ex = exercise
        else:
            ex = exercise_from_path(rel, exercises)
            if ex is None:
                errors.append(item_row(BatchItem(name, "video", str(v), None, rel), status="error", error=(
                    "cannot tell the exercise from the file or folder name (name it like squat_1.mp4 or put it "
                    "in a folder called squat), or pass --exercise")))
                continue
        items.append(BatchItem(name, "video", str(v), ex, rel))
    return items, errors


def plan_penn(root: Path, actions: Sequence[str], split: str | None, limit: int | None
              ) -> tuple[list[BatchItem], list[dict]]:
    """Items for the Penn Action clips of `actions` (the first `limit` by id), and error rows for label
    files that cannot be read."""
    from ..datasets.penn import scan_dataset

    scan = scan_dataset(root, actions=actions, split=split)
    clips = scan.clips[:limit] if limit is not None else scan.clips
    items = [BatchItem(c.id, "penn", str(c.labels_path), c.action, f"labels/{c.labels_path.name}") for c in clips]
    errors = [item_row(BatchItem(p.stem, "penn", str(p), None, f"labels/{p.name}"), status="error", error=msg)
              for p, msg in scan.errors]
    return items, errors
