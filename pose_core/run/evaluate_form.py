"""Form verdicts against clip labels: `python -m pose_core evaluate FOLDER` on a folder with labels.csv.

FOLDER/labels.csv has one row per clip: `file`, `exercise`, `label` (correct | incorrect: the whole clip's
form), optionally `source_group` (where the clip comes from). Every clip is analysed and given one outcome:
- "incorrect": a counted rep was judged incorrect (the clip's first fault is shown with its measurement);
- "correct": every counted rep was judged correct, and at least half of them had their essential checks
  judged (a push-up's body line: see `essential` in exercises.toml);
- "cannot judge": no rep was counted (the reason is said), or the checks that matter could not be judged
  from the camera's view (a push-up filmed head-on with the legs hidden). Never counted as "correct".
The report gives, per camera view, per source group (when the column exists) and overall: correct clips
passed, faults caught, balanced accuracy over the clips it could judge, and coverage (the clips it could
judge).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..core.judging import CANNOT_JUDGE, clip_form_verdict
from .evaluate import EvaluateError, csv_columns, read_clip_list
from .workers import map_in_order

LABELS_CSV = "labels.csv"
LABELS = ("correct", "incorrect")
REQUIRED_COLUMNS = ("file", "exercise", "label")


@dataclass
class FormClip:
    """One labelled clip and what GymPose made of it."""

    file: str
    exercise: str
    label: str  # the clip's label: correct | incorrect
    group: str = ""  # source_group, when labels.csv has it
    outcome: str = CANNOT_JUDGE  # correct | incorrect | cannot judge
    reason: str = ""  # the first fault, or why it cannot judge
    view: str = ""
    reps: int = 0
    verdicts: str = ""  # per counted rep: C correct, I incorrect, ? form not judged
    faults: list[str] = field(default_factory=list)  # every rep's reasons, in order
    error: str = ""
    seconds: float = 0.0
    rep_events: list = field(default_factory=list, repr=False)  # the RepEvents (not in the JSON report)

    @property
    def judged(self) -> bool:
        return self.outcome != CANNOT_JUDGE

    @property
    def right(self) -> bool:
        return self.outcome == self.label


def is_form_folder(folder: str | Path) -> bool:
    """A folder of clip-labelled form: labels.csv with a `label` column (a videos.csv takes precedence: it is
    the hand-counted format `evaluate` reads otherwise)."""
    folder = Path(folder)
    if (folder / "videos.csv").is_file() or not (folder / LABELS_CSV).is_file():
        return False
    return "label" in csv_columns(folder / LABELS_CSV)


def read_labels(folder: str | Path) -> list[dict]:
    """The rows of FOLDER/labels.csv, checked (EvaluateError names the line and the problem)."""
    rows = read_clip_list(Path(folder) / LABELS_CSV, REQUIRED_COLUMNS)
    for i, row in enumerate(rows, start=2):
        if (row["label"] or "").strip() not in LABELS:
            raise EvaluateError(f"{LABELS_CSV} line {i}: label must be correct or incorrect, got {row['label']!r:.40}")
        if not row["file"] or Path(row["file"]).name != row["file"]:
            raise EvaluateError(f"{LABELS_CSV} line {i}: file must be a file name in the folder, got {row['file']!r:.80}")
    return rows


def judge_clip(folder: str, row: dict, rules_path: str | None = None, cache: str | None = None,
               learned: bool = True) -> FormClip:
    """Analyse one labelled clip and give its outcome. Never raises: a failure is "cannot judge" with the error.
    learned=False: without the rules' learned checks (what the learned check itself is trained on)."""
    from dataclasses import replace

    from ..core.rules import load_rules
    from ..media.video import VideoError
    from .pipeline import AnalysisError, analyze_observations, analyze_video

    clip = FormClip(file=row["file"], exercise=row["exercise"], label=row["label"].strip(),
                    group=(row.get("source_group") or "").strip())
    start = time.perf_counter()
    try:
        rules = load_rules(rules_path) if rules_path else load_rules()
        if not learned:
            rules = rules.with_rule(replace(rules[clip.exercise], learned_check=None))
        video = Path(folder) / row["file"]
        if cache:
            from ..store.pose_cache import PoseCache

            result = analyze_observations(video, PoseCache(cache).observations(video), clip.exercise, rules=rules)
        else:
            result = analyze_video(video, clip.exercise, None, rules=rules, write_video=False, parallel=False)
        _fill_outcome(clip, result.reps, result.summary.view or "", result.summary.notes, rules[clip.exercise])
    except (AnalysisError, VideoError, KeyError, OSError, ValueError) as e:
        clip.error = clip.reason = str(e).replace(str(Path(folder)) + "/", "")
    clip.seconds = round(time.perf_counter() - start, 2)
    return clip


def _fill_outcome(clip: FormClip, reps: list, view: str, notes: list[str], rule) -> None:
    clip.view, clip.reps, clip.rep_events = view, len(reps), list(reps)
    clip.verdicts = "".join("I" if r.verdict == "incorrect" else "C" if r.form_judged else "?" for r in reps)
    clip.faults = [reason for r in reps for reason in r.reasons]
    clip.outcome, clip.reason = clip_form_verdict(rule, reps)
    if not reps and notes:
        clip.reason += ": " + " ".join(notes)


def evaluate_form(folder: str | Path, workers: int = 2, rules_path: str | Path | None = None,
                  cache: str | Path | None = None, progress: Callable[[int, int], None] | None = None,
                  learned: bool = True) -> list[FormClip]:
    """Every clip of FOLDER/labels.csv, in its order (one process per worker; in this process with a pose
    cache, where a clip takes a fraction of a second)."""
    rows = read_labels(folder)
    args = [(str(folder), row, str(rules_path) if rules_path else None, str(cache) if cache else None, learned)
            for row in rows]
    return map_in_order(judge_clip, args, 1 if cache else workers, progress)


# -------------------------------------------------------------------------------------------- tables

def tally(clips: list[FormClip]) -> dict:
    """passed / caught / balanced accuracy / coverage for a set of clips (balanced accuracy over the clips it
    could judge; None when a class has no judged clip)."""
    correct = [c for c in clips if c.label == "correct"]
    faulty = [c for c in clips if c.label == "incorrect"]
    jc = [c for c in correct if c.judged]
    jf = [c for c in faulty if c.judged]
    passed = sum(c.outcome == "correct" for c in jc)
    caught = sum(c.outcome == "incorrect" for c in jf)
    bacc = round(0.5 * (passed / len(jc) + caught / len(jf)), 4) if jc and jf else None
    return {"clips": len(clips), "correct": len(correct), "incorrect": len(faulty),
            "passed": passed, "correct_judged": len(jc), "caught": caught, "incorrect_judged": len(jf),
            "cannot_judge": len(clips) - len(jc) - len(jf), "balanced_accuracy": bacc,
            "coverage": round((len(jc) + len(jf)) / len(clips), 4) if clips else None}


def summarize_form(clips: list[FormClip]) -> dict:
    """Per view, per source group (when given) and overall."""
    out = {"overall": tally(clips),
           "per_view": {v: tally([c for c in clips if (c.view or "unknown") == v])
                        for v in sorted({c.view or "unknown" for c in clips})}}
    if any(c.group for c in clips):
        out["per_group"] = {g: tally([c for c in clips if c.group == g]) for g in sorted({c.group for c in clips})}
    return out


def _row(name: str, t: dict) -> str:
    bacc = "-" if t["balanced_accuracy"] is None else f"{100 * t['balanced_accuracy']:.1f}%"
    cov = "-" if t["coverage"] is None else f"{100 * t['coverage']:.0f}%"
    return (f"{name[:22]:22s} {t['clips']:5d} {t['passed']:3d}/{t['correct_judged']:<3d}    "
            f"{t['caught']:3d}/{t['incorrect_judged']:<3d}   {t['cannot_judge']:5d}  {bacc:>8s} {cov:>8s}")


def format_form_report(clips: list[FormClip], summary: dict) -> str:
    lines = [f"{'clip':22s} {'label':9s} {'outcome':12s} {'view':8s} {'reps':>4s} verdicts  reason"]
    for c in clips:
        lines.append(f"{c.file[:22]:22s} {c.label:9s} {c.outcome:12s} {(c.view or '-'):8s} {c.reps:4d} "
                     f"{(c.verdicts or '-')[:8]:8s}  {c.reason[:110]}")
    head = (f"{'':22s} {'clips':>5s} {'passed':>9s} {'caught':>9s} {'cannot':>6s} {'bal.acc':>8s} {'coverage':>8s}")
    lines += ["", "passed = correct clips judged correct / correct clips judged; caught = faulty clips judged "
              "incorrect / faulty clips judged;", "cannot = clips it could not judge (no rep counted, or the "
              "checks that matter not judged from the view); balanced accuracy over the judged clips.", ""]
    lines += ["per view", head] + [_row(v, t) for v, t in summary["per_view"].items()]
    if "per_group" in summary:
        lines += ["", "per source group", head] + [_row(g, t) for g, t in summary["per_group"].items()]
    lines += ["", head, _row("overall", summary["overall"])]
    return "\n".join(lines)


def form_to_json(clips: list[FormClip], summary: dict) -> dict:
    keys = ("file", "exercise", "label", "group", "outcome", "reason", "view", "reps", "verdicts", "faults",
            "error", "seconds")
    return {"clips": [{k: getattr(c, k) for k in keys} for c in clips], **summary}
