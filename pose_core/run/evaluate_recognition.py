"""Recognition alone on a folder of labelled clips: `python -m pose_core evaluate FOLDER --auto`, where FOLDER
has `labels.csv` (`file, exercise` or `file, exercise, label`) and no `videos.csv` (no counts to check).

Every clip's first RECOGNIZE_SECONDS are recognised as `--exercise auto` does it (the recogniser, then the
cross-check with counting), one process per core, or from a pose cache (`--cache`). `exercise` is the label:
one of the exercises, or `none` for a movement that is none of them (right when it is not named as sure).
The report: per clip, per class (right, named wrong, confident misses: named wrong at SURE_CONFIDENCE or
more), and the reliability table (per confidence band, how often the name was right).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from .evaluate import EvaluateError, csv_columns, read_clip_list
from .workers import map_in_order
from .reliability import format_reliability, reliability_rows

LABELS_CSV = "labels.csv"
NONE_LABEL = "none"  # a clip of a movement that is none of the exercises


@dataclass
class RecognitionResult:
    file: str
    label: str  # an exercise, or NONE_LABEL
    named: str | None = None  # the exercise named (after the cross-check with counting)
    confidence: float = 0.0
    outcome: str = ""  # exercise | cannot_tell | none_of_these ("" when the clip failed)
    top: list = field(default_factory=list)
    note: str = ""  # the reason it named nothing, or what counting said about the name
    error: str = ""
    seconds: float = 0.0

    @property
    def sure(self) -> bool:
        from ..recognition import SURE_CONFIDENCE

        return self.named is not None and self.confidence >= SURE_CONFIDENCE

    @property
    def right(self) -> bool:
        return not self.sure if self.label == NONE_LABEL else self.named == self.label

    @property
    def confident_miss(self) -> bool:
        return self.sure and self.named != self.label


def is_recognition_folder(folder: str | Path) -> bool:
    """A folder of labels without counts: labels.csv and no videos.csv."""
    return (Path(folder) / LABELS_CSV).is_file() and not (Path(folder) / "videos.csv").is_file()


def has_form_labels(folder: str | Path) -> bool:
    """labels.csv has a `label` column (a clip-level form label: a form report's business without --auto)."""
    return "label" in csv_columns(Path(folder) / LABELS_CSV)


def read_labels(folder: str | Path) -> list[dict]:
    """The rows of FOLDER/labels.csv, checked (EvaluateError names the row and the problem)."""
    rows = read_clip_list(Path(folder) / LABELS_CSV, ("file", "exercise"))
    for i, row in enumerate(rows, start=2):
        if not row["file"] or Path(row["file"]).name != row["file"]:
            raise EvaluateError(f"{LABELS_CSV} line {i}: file must be a file name in the folder, got {row['file']!r}")
        if not (row["exercise"] or "").strip():
            raise EvaluateError(f"{LABELS_CSV} line {i}: no exercise given")
    return rows


def recognise_clip(folder: str, row: dict, rules_path: str | None = None, cache: str | None = None,
                   seconds: float | None = None) -> RecognitionResult:
    """Recognise one clip as `--exercise auto` does. Never raises: a failure is the result's `error`."""
    from ..core.rules import load_rules
    from ..recognition import default_recognizer, video_poses
    from ..media.video import VideoError
    from .crosscheck import checked
    from .pipeline import RECOGNIZE_SECONDS

    res = RecognitionResult(file=row["file"], label=row["exercise"].strip())
    start = time.perf_counter()
    seconds = RECOGNIZE_SECONDS if seconds is None else seconds
    try:
        rules = load_rules(rules_path) if rules_path else load_rules()
        video = Path(folder) / row["file"]
        if cache:
            from ..store.pose_cache import PoseCache

            poses = [o.pose for o in PoseCache(cache).observations(video) if o.t <= seconds]
        else:
            poses = video_poses(video, max_seconds=seconds)
        rec = default_recognizer().predict(poses, allowed=list(rules.exercises))
        final, xc = checked(rec, poses, rules)
        res.named, res.confidence, res.outcome = final.exercise, final.confidence, final.outcome or rec.outcome
        res.top = [[n, round(p, 3)] for n, p in rec.top]
        res.note = xc.note if final.exercise is not None else rec.reason
    except (VideoError, OSError, ValueError, KeyError) as e:
        res.error = str(e)
    res.seconds = round(time.perf_counter() - start, 2)
    return res


def evaluate_recognition(folder: str | Path, workers: int = 2, rules_path: str | None = None,
                         progress: Callable[[int, int], None] | None = None,
                         cache: str | Path | None = None) -> list[RecognitionResult]:
    """Every clip of FOLDER/labels.csv, in the list's order."""
    rows = read_labels(folder)
    args = [(str(folder), row, str(rules_path) if rules_path else None, str(cache) if cache else None)
            for row in rows]
    return map_in_order(recognise_clip, args, workers, progress)


def summarize_recognition(results: list[RecognitionResult]) -> dict:
    def block(rs: list[RecognitionResult]) -> dict:
        return {"clips": len(rs), "right": sum(r.right for r in rs), "not_named": sum(r.named is None for r in rs),
                "named_wrong": sum(r.named is not None and not r.right for r in rs),
                "confident_misses": sum(r.confident_miss for r in rs), "errors": sum(bool(r.error) for r in rs)}

    per = {lab: block([r for r in results if r.label == lab]) for lab in sorted({r.label for r in results})}
    return {"overall": block(results), "per_class": per,
            "reliability": reliability_rows([(r.named, r.confidence, r.outcome, r.right) for r in results
                                             if not r.error])}


def format_recognition(results: list[RecognitionResult], summary: dict) -> str:
    lines = [f"{'clip':24s} {'label':14s} {'named':14s} {'conf':>5s} {'ok':3s} note / error"]
    for r in results:
        ok = "=" if r.right else ("X!" if r.confident_miss else "X")
        named = r.named or ("(not one)" if r.outcome == "none_of_these" else "(cannot tell)")
        conf = f"{r.confidence:5.0%}" if r.named else "    -"
        lines.append(f"{r.file:24s} {r.label:14s} {named[:14]:14s} {conf} {ok:3s} {r.error or r.note}")
    lines += ["", f"{'class':14s} {'clips':>5s} {'right':>5s} {'not named':>9s} {'wrong':>5s} {'confident misses':>16s}"]
    for name, b in list(summary["per_class"].items()) + [("overall", summary["overall"])]:
        lines.append(f"{name:14s} {b['clips']:5d} {b['right']:5d} {b['not_named']:9d} {b['named_wrong']:5d} "
                     f"{b['confident_misses']:16d}")
    lines += [""] + format_reliability(summary["reliability"])
    return "\n".join(lines)


def recognition_json(results: list[RecognitionResult], summary: dict) -> dict:
    clips = [dict(asdict(r), right=r.right, confident_miss=r.confident_miss) for r in results]
    return {"clips": clips, **summary}
