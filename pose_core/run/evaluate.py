"""Accuracy on a folder of hand-counted clips: `python -m pose_core evaluate FOLDER`.

FOLDER/videos.csv has one row per clip (the format of the shared `videos.csv`): at least `file`,
`exercise` and `reps_complete`; `reps_partial` and `rep_verdicts` (one letter per complete rep: C correct,
I incorrect, ? cannot be judged) are used when present. Every clip is analysed (one process per core),
and the result is a per-clip table plus exact / within one / mean absolute error per exercise and overall.
"Within one" allows 5% for sets of more than 20 reps.
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from ..core.types import Verdict
from .reliability import format_reliability, reliability_rows
from .workers import map_in_order

REQUIRED_COLUMNS = ("file", "exercise", "reps_complete")


class EvaluateError(ValueError):
    """The folder or its videos.csv cannot be evaluated (the message says why)."""


@dataclass
class ClipResult:
    file: str
    exercise: str  # the hand label
    expected: int
    expected_partial: int | None
    counted: int | None = None  # None when the analysis failed
    correct: int = 0
    incorrect: int = 0
    partial: int = 0
    analysed_as: str | None = None  # the exercise analysed (recognised in auto mode)
    confidence: float | None = None  # recognition confidence in auto mode
    outcome: str = ""  # auto mode: exercise | cannot_tell | none_of_these
    view: str | None = None
    uncertain: int = 0  # counted reps marked uncertain (one signal only, near a camera cut)
    possible: int = 0  # cycles one signal showed that were not counted
    cuts: list[float] = field(default_factory=list)  # camera cuts found (s)
    verdicts: str = ""  # C / I per counted rep
    expected_verdicts: str = ""
    notes: list[str] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)  # every rep's reasons, in order
    error: str = ""
    seconds: float = 0.0

    @property
    def tolerance(self) -> int:
        return max(1, math.floor(0.05 * self.expected)) if self.expected > 20 else 1

    @property
    def exact(self) -> bool:
        return self.counted == self.expected

    @property
    def within(self) -> bool:
        return self.counted is not None and abs(self.counted - self.expected) <= self.tolerance

    @property
    def recognised(self) -> bool:
        return self.analysed_as == self.exercise

    @property
    def verdict_pairs(self) -> list[tuple[str, str]]:
        """(labelled, given) per rep that the label judges (C or I), when the count matched."""
        if not self.expected_verdicts or self.counted != self.expected:
            return []
        return [(a, b) for a, b in zip(self.expected_verdicts, self.verdicts) if a in "CI"]

    @property
    def verdicts_right(self) -> bool | None:
        """The clip's form verdict agrees with the label (None: no labelled verdicts)."""
        if not self.expected_verdicts:
            return None
        return self.counted == self.expected and all(a == b for a, b in self.verdict_pairs)


def csv_columns(path: str | Path) -> list[str]:
    """The header of a clip list ([] when it cannot be read)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            return next(csv.reader(f), None) or []
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def read_clip_list(path: Path, required: tuple[str, ...]) -> list[dict]:
    """The rows of a clip list (videos.csv, labels.csv) with its `required` columns (EvaluateError says what is
    wrong with the file)."""
    if not path.is_file():
        raise EvaluateError(f"{path.parent}: no {path.name} in this folder")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise EvaluateError(f"{path.name}: cannot read it: {e}") from None
    if not rows:
        raise EvaluateError(f"{path.name}: no clips listed")
    missing = [c for c in required if c not in rows[0]]
    if missing:
        raise EvaluateError(f"{path.name}: missing column(s) {', '.join(missing)}")
    return rows


def read_manifest(folder: str | Path) -> list[dict]:
    """The rows of FOLDER/videos.csv, checked (EvaluateError names the row and the problem)."""
    path = Path(folder) / "videos.csv"
    rows = read_clip_list(path, REQUIRED_COLUMNS)
    for i, row in enumerate(rows, start=2):
        try:
            if int(row["reps_complete"]) < 0:
                raise ValueError
        except (TypeError, ValueError):
            raise EvaluateError(f"{path.name} line {i}: reps_complete must be a whole number, got "
                                f"{row['reps_complete']!r}") from None
        if not row["file"] or Path(row["file"]).name != row["file"]:
            raise EvaluateError(f"{path.name} line {i}: file must be a file name in the folder, got {row['file']!r}")
    return rows


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text not in (None, "") else None
    except ValueError:
        return None


def _write_result(out: Path, result, rules) -> None:
    """A cached clip's reps.json and summary.json (no frames.csv, no video: no frame was decoded)."""
    from ..store.outputs import REPS_JSON, SUMMARY_JSON, write_reps, write_summary

    s = result.summary
    out.mkdir(parents=True, exist_ok=True)
    write_reps(out / REPS_JSON, s.exercise, result.reps, s.partial_reps, s.view,
               rules[s.exercise].counting.concentric)
    write_summary(out / SUMMARY_JSON, s)


def evaluate_clip(folder: str, row: dict, mode: str = "given", rules_path: str | None = None,
                  out_dir: str | None = None, parallel: bool | None = False, cache: str | None = None) -> ClipResult:
    """Analyse one clip of the manifest. Never raises: a failure is the result's `error`. parallel: as
    analyze_video's (default False: the evaluation runs clips side by side, one per core). cache: a pose
    cache folder (`store.pose_cache`): the clip's poses are taken from it (estimated and kept when missing)
    and only the counting, judging and recognition run again; out_dir then gets reps.json and summary.json."""
    from ..core.rules import load_rules
    from ..media.video import VideoError
    from .pipeline import AnalysisError, CannotTellError, analyze_observations, analyze_video

    res = ClipResult(file=row["file"], exercise=row["exercise"], expected=int(row["reps_complete"]),
                     expected_partial=_int_or_none(row.get("reps_partial")),
                     expected_verdicts=(row.get("rep_verdicts") or "").strip())
    start = time.perf_counter()
    try:
        rules = load_rules(rules_path) if rules_path else load_rules()
        out = Path(out_dir) / Path(row["file"]).stem if out_dir else None
        exercise = "auto" if mode == "auto" else row["exercise"]
        video = Path(folder) / row["file"]
        if cache:
            from ..store.pose_cache import PoseCache

            result = analyze_observations(video, PoseCache(cache).observations(video), exercise, rules=rules)
            if out is not None:
                _write_result(out, result, rules)
        else:
            result = analyze_video(video, exercise, out, rules=rules, write_video=False, parallel=parallel)
        s = result.summary
        res.counted, res.correct, res.incorrect, res.partial = s.reps, s.reps_correct, s.reps_incorrect, s.partial_reps
        res.analysed_as, res.confidence = s.exercise, s.exercise_confidence
        res.outcome = "exercise" if mode == "auto" else ""
        res.view, res.notes = s.view, list(s.notes)
        res.uncertain, res.possible, res.cuts = len(s.uncertain_reps), len(s.possible_reps), list(s.cuts)
        res.verdicts = "".join({Verdict.CORRECT: "C", Verdict.INCORRECT: "I"}.get(r.verdict, "?") for r in result.reps)
        res.faults = [reason for r in result.reps for reason in r.reasons]
    except CannotTellError as e:
        nothing = getattr(e.recognition, "none_of_these", False)
        res.error = "not one of the exercises" if nothing else "cannot tell which exercise"
        res.confidence = e.recognition.confidence
        res.outcome = "none_of_these" if nothing else "cannot_tell"
    except (AnalysisError, VideoError, KeyError, OSError, ValueError) as e:
        res.error = str(e)
    res.seconds = round(time.perf_counter() - start, 2)
    return res


def evaluate_folder(folder: str | Path, mode: str = "given", workers: int = 2, rules_path: str | None = None,
                    out_dir: str | Path | None = None, progress: Callable[[int, int], None] | None = None,
                    cache: str | Path | None = None, chunked: bool = False) -> list[ClipResult]:
    """Every clip of FOLDER/videos.csv, in the manifest's order. mode: "given" (the labelled exercise) or
    "auto" (recognise it first). chunked: each clip as `analyze` and the dashboard run it (a clip long enough
    has its poses estimated on time chunks on every core, run.parallel), one clip at a time (`workers` is not
    used); else each clip in one process, `workers` clips side by side."""
    if mode not in ("given", "auto"):
        raise EvaluateError(f"mode must be 'given' or 'auto', got {mode!r}")
    if chunked and cache:
        raise EvaluateError("the chunked path estimates the poses itself: it cannot take them from a pose cache")
    rows = read_manifest(folder)
    args = [(str(folder), row, mode, str(rules_path) if rules_path else None, str(out_dir) if out_dir else None,
             None if chunked else False, str(cache) if cache else None) for row in rows]
    return map_in_order(evaluate_clip, args, 1 if chunked else workers, progress)


def summarize(results: list[ClipResult]) -> dict:
    """Exact / within one / MAE per exercise and overall (failed clips count as wrong, not in the MAE)."""
    def block(rs: list[ClipResult]) -> dict:
        counted = [r for r in rs if r.counted is not None]
        judged = [pair for r in rs for pair in r.verdict_pairs]
        labelled = [r for r in rs if r.verdicts_right is not None]
        return {"clips": len(rs), "exact": sum(r.exact for r in rs), "within_one": sum(r.within for r in rs),
                "mae": round(sum(abs(r.counted - r.expected) for r in counted) / len(counted), 3) if counted else None,
                "errors": sum(r.counted is None for r in rs),
                "recognised": sum(r.recognised for r in rs),
                "reps_judged": len(judged), "reps_agreeing": sum(a == b for a, b in judged),
                # rows: the label, columns: GymPose's verdict
                "verdict_confusion": {f"{a}->{b}": sum(p == (a, b) for p in judged) for a in "CI" for b in "CI"},
                "clips_with_verdicts": len(labelled), "clip_verdicts_right": sum(bool(r.verdicts_right) for r in labelled)}

    per = {ex: block([r for r in results if r.exercise == ex]) for ex in sorted({r.exercise for r in results})}
    out = {"overall": block(results), "per_exercise": per}
    if any(r.confidence is not None for r in results):
        out["reliability"] = reliability(results)
    return out


def reliability(results: list[ClipResult]) -> list[dict]:
    """Recognition by confidence band (`reliability.reliability_rows`): how many clips fell in each
    band and how many of them were named right ("cannot tell" is never right). A user can trust "sure" when
    it is right nearly always."""
    return reliability_rows([(r.analysed_as, r.confidence or 0.0, r.outcome, r.recognised) for r in results
                             if r.confidence is not None])


def format_table(results: list[ClipResult], summary: dict, mode: str = "given") -> str:
    lines = [f"{'clip':24s} {'exercise':14s} {'expected':>8s} {'counted':>7s} {'ok':3s} {'correct/incorrect':>17s} "
             f"{'partial':>7s} {'unsure':>6s} {'view':8s} " + ("recognised  " if mode == "auto" else "") +
             "error / notes"]
    for r in results:
        ok = "=" if r.exact else ("~" if r.within else "X")
        exp = f"{r.expected}" + (f"+{r.expected_partial}p" if r.expected_partial else "")
        rec = (f"{(r.analysed_as or '-')[:8]:8s}{(r.confidence or 0):4.0%} " if mode == "auto" else "")
        cnt = "-" if r.counted is None else str(r.counted)
        tail = r.error or "; ".join(r.notes)
        if r.expected_verdicts:
            tail = f"verdicts {r.verdicts or '-'} (labelled {r.expected_verdicts}) " + tail
        unsure = f"{r.uncertain}" + (f"+{r.possible}?" if r.possible else "")
        lines.append(f"{r.file:24s} {r.exercise:14s} {exp:>8s} {cnt:>7s} {ok:3s} {f'{r.correct}/{r.incorrect}':>17s} "
                     f"{r.partial:>7d} {unsure:>6s} {(r.view or '-'):8s} {rec}{tail}")
    lines.append("")
    lines.append(f"{'exercise':14s} {'clips':>5s} {'exact':>5s} {'within1':>7s} {'MAE':>6s}" +
                 (" recognised" if mode == "auto" else ""))
    rows = list(summary["per_exercise"].items()) + [("overall", summary["overall"])]
    for name, b in rows:
        mae = "-" if b["mae"] is None else f"{b['mae']:.2f}"
        lines.append(f"{name:14s} {b['clips']:5d} {b['exact']:5d} {b['within_one']:7d} {mae:>6s}" +
                     (f" {b['recognised']:10d}" if mode == "auto" else ""))
    if summary.get("reliability"):
        lines += format_reliability(summary["reliability"])
    o = summary["overall"]
    if o["clips_with_verdicts"]:
        m = o["verdict_confusion"]
        lines.append(f"form verdicts: clips right {o['clip_verdicts_right']}/{o['clips_with_verdicts']}, reps agreeing "
                     f"{o['reps_agreeing']}/{o['reps_judged']}")
        lines.append(f"  labelled C: GymPose C {m['C->C']}, I {m['C->I']}   labelled I: GymPose C {m['I->C']}, I {m['I->I']}")
    return "\n".join(lines)


def to_json(results: list[ClipResult], summary: dict) -> dict:
    clips = []
    for r in results:
        d = asdict(r)
        d.update(exact=r.exact, within_one=r.within, recognised=r.recognised, verdicts_right=r.verdicts_right)
        clips.append(d)
    return {"clips": clips, **summary}
