"""Train the learned form check (core/form_model.py) on clip-labelled form, cross-validated by source group.

    python -m pose_core.run.train_form --pushfit ../shared/data/pushfit --form ../shared/data/form \\
        --cache /work/cache/poses --out pose_core/core/form_models

Every clip is analysed with the rules *without* the learned check (its own checks, limits and views); each
counted rep gives the margins of its checks (how far each measurement lies past or inside its limit). Labels
are per clip (PushFit: a clip is incorrect when at least one rep is faulty), the model is per rep: multiple-
instance learning, where a faulty clip contributes its worst rep (the one the current model scores highest,
re-chosen over a few rounds) and a correct clip all its reps (each weighted 1 / reps). Clips of ../form that
are copies of a PushFit clip (same SHA-256) are left out; the others add their labelled reps one by one.

The model starts from the rules (one check at its limit is an even call) and is trained toward the labels
with an L2 pull back to that start, weights kept non-negative. Cross-validation leaves one source group out
at a time (train on the others, judge the left-out clips), twice: with the rules' limits as shipped, and
with every limit measured again on the training groups only (from their correct reps), so that the limits,
which were chosen on these clips, are put to the same test. Writes <exercise>.npz + <exercise>.json.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.form_model import MODEL_FORMAT, VIEW_FEATURES
from ..core.io import atomic_path, atomic_write_json
from ..core.rules import ExerciseRule, load_rules
from .evaluate_form import FormClip, judge_clip

COMMAND = ("python -m pose_core.run.train_form --pushfit ../shared/data/pushfit --form ../shared/data/form "
           "--out pose_core/core/form_models")
DELTA = 1.0  # a check starts to count one scale unit inside its limit
PRIOR_WEIGHT = 3.0  # the start: logit +3 per scale unit past a limit (one check at its limit: an even call)
L2 = 0.001  # pull back to the start (check weights and the bias)
L2_VIEW = 1.0  # ... and for the view indicators: a view moves the verdict only when many clips say so
CLEAR_FAULT = 1.0  # scale units past a limit from which a check's fault stands whatever the model says
MIL_ROUNDS = 5
THRESHOLDS = (0.5, 0.45, 0.55, 0.4, 0.6, 0.35, 0.65, 0.3, 0.7, 0.25, 0.75, 0.2, 0.8)  # nearest 0.5 first
MEASURED_MARGIN = 1.0  # a measured limit lies this many scales past the second most extreme correct clip
MIN_VIEW_CLIPS = 10  # a view's limits are measured on their own from this many correct clips filmed from it


@dataclass
class Rep:
    """One counted rep of a labelled clip, as the learned check sees it."""

    clip: int  # index into the clips
    values: np.ndarray  # the checks' measured values (NaN: not judged)
    limits: np.ndarray  # (n, 2): the min / max that applied from the rep's view
    view: str
    judged: bool  # the essential checks were judged
    label: int | None = None  # a per-rep label (the form clips): 1 faulty, 0 correct


# --------------------------------------------------------------------------------------------- data

def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def read_rows(pushfit: Path, form: Path | None, exercise: str) -> tuple[list[tuple[Path, dict]], list[str]]:
    """(folder, row) of every labelled clip of the exercise; form clips that copy a PushFit clip are left out
    (their names are returned). A form clip's row gets `label` from its rep verdicts."""
    rows = []
    with open(pushfit / "labels.csv", newline="", encoding="utf-8-sig") as f:
        for r in csv.DictReader(f):
            if r["exercise"] == exercise:
                rows.append((pushfit, r))
    seen = {r.get("sha256") or _sha(pushfit / r["file"]): r for _, r in rows}
    dropped = []
    if form is not None and (form / "videos.csv").is_file():
        with open(form / "videos.csv", newline="", encoding="utf-8-sig") as f:
            for r in csv.DictReader(f):
                if r["exercise"] != exercise or not r.get("rep_verdicts"):
                    continue
                if (r.get("sha256") or _sha(form / r["file"])) in seen:
                    dropped.append(r["file"])
                    continue
                label = "incorrect" if "I" in r["rep_verdicts"] else "correct"
                rows.append((form, {**r, "label": label, "source_group": "form clips"}))
    return rows, dropped


def analyse(rows, cache: str | None, rules_path: str | None) -> list[FormClip]:
    out = []
    for i, (folder, row) in enumerate(rows, start=1):
        out.append(judge_clip(str(folder), row, rules_path, cache, learned=False))
        print(f"\ranalysed {i}/{len(rows)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return out


def features_of(rule: ExerciseRule) -> list[tuple[str, str]]:
    return [(c.angle, c.stat) for c in rule.rep_checks]


def rep_table(clips: list[FormClip], rows, features) -> list[Rep]:
    reps = []
    for ci, (clip, (_, row)) in enumerate(zip(clips, rows)):
        per_rep = (row.get("rep_verdicts") or "").strip()
        labelled = len(per_rep) == len(clip.rep_events)
        for k, r in enumerate(clip.rep_events):
            by = {(c.angle, c.stat): c for c in r.checks}
            vals = np.array([by[f].value if f in by and by[f].status in ("pass", "fail") else np.nan
                             for f in features])
            lim = np.array([[by[f].min, by[f].max] if f in by else [-np.inf, np.inf] for f in features])
            lab = None if not labelled or per_rep[k] not in "CI" else int(per_rep[k] == "I")
            essential_seen = not any(c.essential and c.status == "not_judged" for c in r.checks)
            reps.append(Rep(ci, vals, lim, r.view, essential_seen, lab))
    return reps


# -------------------------------------------------------------------------------------------- model

@dataclass
class Params:
    scales: np.ndarray
    weights: np.ndarray
    bias: float
    threshold: float = 0.5


class _Checks:
    """Margins of reps against a set of limits: the rules' own (as each rep was judged from its view), or
    limits measured again ({view: (n, 2) array}, "" for every view without limits of its own)."""

    def __init__(self, limits: dict[str, np.ndarray] | None = None):
        self.limits = limits

    def limits_for(self, rep: Rep) -> np.ndarray:
        if self.limits is None:
            return rep.limits
        return self.limits.get(rep.view, self.limits[""])

    def margins(self, rep: Rep, scales: np.ndarray) -> np.ndarray:
        lim = self.limits_for(rep)
        past = np.full(len(scales), np.nan)
        for i, v in enumerate(rep.values):
            lo, hi = lim[i]
            sides = ([v - hi] if math.isfinite(hi) else []) + ([lo - v] if math.isfinite(lo) else [])
            if math.isfinite(v) and sides:
                past[i] = max(sides) / scales[i]
        return past

    def inputs(self, rep: Rep, scales: np.ndarray) -> np.ndarray:
        m = self.margins(rep, scales)
        x = np.where(np.isfinite(m), np.maximum(m + DELTA, 0.0), 0.0)
        return np.concatenate([x, [float(rep.view == v) for v in VIEW_FEATURES]])

    def clear_fault(self, rep: Rep, scales: np.ndarray) -> bool:
        """A measurement more than CLEAR_FAULT scale units past its limit: a fault whatever the model says."""
        return bool(np.any(np.nan_to_num(self.margins(rep, scales), nan=-1.0) > CLEAR_FAULT))

    def rule_fail(self, rep: Rep) -> bool:
        return bool(np.any(np.nan_to_num(self.margins(rep, np.ones(len(rep.values))), nan=-1.0) > 0))


def measure_scales(reps: list[Rep], clips: list[FormClip]) -> np.ndarray:
    """One unit per check: the spread (interquartile range) of its values on the reps of correct clips."""
    correct = np.array([r.values for r in reps if clips[r.clip].label == "correct"])
    out = []
    for col in correct.T:
        col = col[np.isfinite(col)]
        iqr = float(np.subtract(*np.percentile(col, [75, 25]))) if len(col) >= 4 else 1.0
        out.append(max(iqr, 0.5))
    return np.array(out)


def _fit_logistic(X, y, w, prior, n_checks: int) -> np.ndarray:
    """Weighted logistic regression pulled toward `prior` (L2; L2_VIEW for the view indicators), the checks'
    weights kept >= 0 (L-BFGS-B with bounds: the same answer on every run)."""
    from scipy.optimize import minimize

    Xb = np.hstack([X, np.ones((len(X), 1))])
    l2 = np.full(len(prior), L2)
    l2[n_checks:-1] = L2_VIEW
    wn = w / w.sum()

    def loss(theta):
        z = Xb @ theta
        nll = float(np.sum(wn * (np.logaddexp(0.0, z) - y * z)))
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))
        d = theta - prior
        return nll + 0.5 * float(np.sum(l2 * d * d)), Xb.T @ (wn * (p - y)) + l2 * d

    bounds = [(0.0, None)] * n_checks + [(None, None)] * (len(prior) - n_checks)
    res = minimize(loss, prior.copy(), jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"maxiter": 5000, "gtol": 1e-10, "ftol": 1e-14})
    return res.x


def fit(reps: list[Rep], clips: list[FormClip], idx: list[int], checks: _Checks, scales: np.ndarray,
        views: tuple[str, ...]) -> Params:
    """Multiple-instance training on the clips `idx` (see the module's docstring), on the reps the learned
    check judges (seen from `views`, essential checks judged)."""
    n = len(scales)
    chosen = set(idx)
    use = [r for r in reps if r.clip in chosen and r.judged and r.view in views]
    X = np.array([checks.inputs(r, scales) for r in use])
    prior = np.concatenate([np.full(n, PRIOR_WEIGHT), np.zeros(len(VIEW_FEATURES)), [-PRIOR_WEIGHT]])
    theta = prior.copy()
    for _ in range(MIL_ROUNDS):
        score = X @ theta[:-1] + theta[-1]
        y, w = np.zeros(len(use)), np.zeros(len(use))
        for ci in {r.clip for r in use}:
            members = [k for k, r in enumerate(use) if r.clip == ci]
            if all(use[k].label is not None for k in members):  # labelled rep by rep
                for k in members:
                    y[k], w[k] = use[k].label, 1.0 / len(members)
            elif clips[ci].label == "incorrect":
                worst = max(members, key=lambda k: score[k])
                y[worst], w[worst] = 1.0, 1.0
            else:
                w[members] = 1.0 / len(members)
        pos, neg = w[y == 1].sum(), w[y == 0].sum()
        if pos > 0 and neg > 0:
            w[y == 1] *= neg / pos
        theta = _fit_logistic(X, y, w, prior, n)
    return Params(scales, theta[:-1], float(theta[-1]))


def learned_says_faulty(rep: Rep, checks: _Checks, params: Params) -> bool:
    z = float(checks.inputs(rep, params.scales) @ params.weights + params.bias)
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z)))) >= params.threshold


def outcome(reps: list[Rep], checks: _Checks, params: Params | None, views: tuple[str, ...]) -> str:
    """A clip's outcome from its reps, as evaluate_form gives it. A rep is faulty by the learned check where
    it judges (`params`; seen from `views`, essential checks judged), else when a check is past its limit.
    The clip: incorrect when a rep is; else correct when at least half of the reps had their essential
    checks judged; else cannot judge."""
    if not reps:
        return "cannot judge"
    for r in reps:
        if params is not None and r.judged and r.view in views:
            if learned_says_faulty(r, checks, params) or checks.clear_fault(r, params.scales):
                return "incorrect"
        elif checks.rule_fail(r):
            return "incorrect"
    return "correct" if 2 * sum(r.judged for r in reps) >= len(reps) else "cannot judge"


def _tally(pairs: list[tuple[str, str]]) -> dict:
    """(label, outcome) pairs -> passed / caught / balanced accuracy / coverage (as evaluate_form.tally)."""
    jc = [o for lab, o in pairs if lab == "correct" and o != "cannot judge"]
    jf = [o for lab, o in pairs if lab == "incorrect" and o != "cannot judge"]
    passed, caught = jc.count("correct"), jf.count("incorrect")
    return {"clips": len(pairs), "passed": passed, "correct_judged": len(jc), "caught": caught,
            "incorrect_judged": len(jf),
            "balanced_accuracy": round(0.5 * (passed / len(jc) + caught / len(jf)), 4) if jc and jf else None,
            "coverage": round((len(jc) + len(jf)) / len(pairs), 4) if pairs else None}


class Trainer:
    """The labelled reps of one exercise and what is learned from them."""

    def __init__(self, clips: list[FormClip], reps: list[Rep], rule: ExerciseRule):
        self.clips, self.reps, self.views = clips, reps, rule.learned_check.views
        self.defaults = np.array([[c.min, c.max] for c in rule.rep_checks])  # the rules' limits (every view)
        self.by_clip = {i: [r for r in reps if r.clip == i] for i in range(len(clips))}
        self.scales = measure_scales(reps, clips)

    def outcomes(self, idx, checks: _Checks, params: Params | None) -> list[tuple[str, str]]:
        return [(self.clips[i].label, outcome(self.by_clip[i], checks, params, self.views)) for i in idx]

    def train(self, idx, checks: _Checks) -> Params:
        params = fit(self.reps, self.clips, idx, checks, self.scales, self.views)
        best = None
        for t in THRESHOLDS:  # the best balanced accuracy on the training clips (ties: the one nearest 0.5)
            params.threshold = float(t)
            bacc = _tally(self.outcomes(idx, checks, params))["balanced_accuracy"] or 0.0
            if best is None or bacc > best[0] + 1e-9:
                best = (bacc, float(t))
        params.threshold = best[1]
        return params

    def measured_limits(self, idx) -> dict[str, np.ndarray]:
        """Every check's limit measured on the correct clips of `idx`: the 98th percentile of the clips' worst
        values (about the second most extreme clip) plus MEASURED_MARGIN of the check's scale; for
        every view together (""), and for each view with at least MIN_VIEW_CLIPS correct clips of its own."""
        shipped = self.defaults
        counts: dict[str, int] = {}
        for i in idx:
            if self.clips[i].label == "correct" and self.clips[i].view:
                counts[self.clips[i].view] = counts.get(self.clips[i].view, 0) + 1
        out = {"": self._limits([i for i in idx], shipped, None)}
        for view, n in counts.items():
            if n >= MIN_VIEW_CLIPS:
                out[view] = self._limits(idx, shipped, view)
        return out

    def _limits(self, idx, shipped: np.ndarray, view: str | None) -> np.ndarray:
        n = len(self.scales)
        out = np.tile([-np.inf, np.inf], (n, 1)).astype(float)
        for f in range(n):
            hi, lo = [], []
            for i in idx:
                vals = [r.values[f] for r in self.by_clip[i]
                        if math.isfinite(r.values[f]) and (view is None or r.view == view)]
                if self.clips[i].label == "correct" and vals:
                    hi.append(max(vals))
                    lo.append(min(vals))
            if not hi:
                out[f] = shipped[f]
                continue
            if math.isfinite(shipped[f][1]):
                out[f][1] = np.percentile(hi, 98) + MEASURED_MARGIN * self.scales[f]
            if math.isfinite(shipped[f][0]):
                out[f][0] = np.percentile(lo, 2) - MEASURED_MARGIN * self.scales[f]
        return out

    def cross_validate(self) -> dict:
        """Leave one source group out: per fold and pooled, the rules alone and the learned check deciding,
        with the rules' limits and with limits measured on the training groups only."""
        groups = sorted({c.group for c in self.clips if c.group and c.group != "form clips"})
        folds, pooled = [], {k: [] for k in VARIANTS}
        for g in groups:
            test = [i for i, c in enumerate(self.clips) if c.group == g]
            train = [i for i, c in enumerate(self.clips) if c.group != g]
            shipped, fresh = _Checks(), _Checks(self.measured_limits(train))
            res = dict(zip(VARIANTS, (self.outcomes(test, shipped, None),
                                      self.outcomes(test, shipped, self.train(train, shipped)),
                                      self.outcomes(test, fresh, None),
                                      self.outcomes(test, fresh, self.train(train, fresh)))))
            for k, v in res.items():
                pooled[k] += v
            folds.append({"test_group": g, "train_groups": sorted({self.clips[i].group for i in train}),
                          **{k: _tally(v) for k, v in res.items()},
                          "measured_limits": _limits_json(fresh.limits)})
        return {"folds": folds, "pooled": {k: _tally(v) for k, v in pooled.items()}}


VARIANTS = ("rules", "learned", "rules, measured limits", "learned, measured limits")


def _limits_json(limits: dict[str, np.ndarray]) -> dict:
    return {view or "all views": [[None if not math.isfinite(v) else round(float(v), 2) for v in row]
                                  for row in arr] for view, arr in limits.items()}


def typical(trainer: Trainer, rule: ExerciseRule, features) -> dict:
    """The range (5th-95th percentile) each check's value stayed in on the reps of correct clips."""
    out = {}
    for f, (angle, stat) in enumerate(features):
        vals = np.array([r.values[f] for r in trainer.reps if trainer.clips[r.clip].label == "correct"])
        vals = vals[np.isfinite(vals)]
        if len(vals) >= 4:
            lo, hi = np.percentile(vals, [5, 95])
            unit = rule.angles[angle].unit
            out[f"{angle} {stat}"] = f"{lo:.0f} to {hi:.0f}{'' if unit.startswith('%') else ' '}{unit}"
    return out


# ------------------------------------------------------------------------------------------- output

def write_model(out: Path, name: str, params: Params, features, info: dict) -> None:
    """<name>.npz (plain arrays) + <name>.json, each written atomically."""
    with atomic_path(out / f"{name}.npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, scales=params.scales, weights=params.weights, bias=np.array([params.bias]),
                     delta=np.array([DELTA]), threshold=np.array([params.threshold]),
                     clear_fault=np.array([CLEAR_FAULT]))
    atomic_write_json(out / f"{name}.json", {"format": MODEL_FORMAT,
                                             "features": [{"angle": a, "stat": s} for a, s in features], **info})


def _line(name: str, t: dict) -> str:
    bacc = "-" if t["balanced_accuracy"] is None else f"{100 * t['balanced_accuracy']:.1f}%"
    return (f"  {name:20s} passed {t['passed']:3d}/{t['correct_judged']:<3d} caught {t['caught']:3d}/"
            f"{t['incorrect_judged']:<3d} balanced accuracy {bacc:>6s} coverage {100 * (t['coverage'] or 0):.0f}%")


def report(cv: dict, params: Params, features, all_data: dict) -> str:
    lines = ["cross-validation, leaving one source group out:"]
    for f in cv["folds"]:
        lines.append(f"test {f['test_group']} (trained on {', '.join(f['train_groups'])}):")
        lines += [_line(k, f[k]) for k in VARIANTS]
    lines.append("pooled over the folds:")
    lines += [_line(k, v) for k, v in cv["pooled"].items()]
    lines.append("trained on everything (what ships):")
    lines += [_line(k, v) for k, v in all_data.items()]
    lines.append(f"weights (logit per scale unit past 'limit - 1 unit'), threshold {params.threshold:.2f}:")
    for (a, s), w, sc in zip(features, params.weights, params.scales):
        lines.append(f"  {a} {s}: weight {w:.2f}, unit {sc:.2f}")
    lines += [f"  filmed {v}: {w:+.2f}" for v, w in zip(VIEW_FEATURES, params.weights[len(features):])]
    lines.append(f"  bias {params.bias:.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pose_core.run.train_form", description=__doc__.split("\n")[0])
    ap.add_argument("--pushfit", required=True, help="a folder with labels.csv (file, exercise, label, source_group)")
    ap.add_argument("--form", help="a folder of per-rep labelled clips (videos.csv with rep_verdicts)")
    ap.add_argument("--exercise", default="pushup")
    ap.add_argument("--cache", help="a pose cache folder (store.pose_cache): poses estimated once and kept")
    ap.add_argument("--rules", help="a rules file (default: the packaged rules)")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "core" / "form_models"))
    args = ap.parse_args(argv)
    rule = (load_rules(args.rules) if args.rules else load_rules())[args.exercise]
    if rule.learned_check is None:
        print(f"error: the {args.exercise} rule has no learned_check", file=sys.stderr)
        return 2
    rows, dropped = read_rows(Path(args.pushfit), Path(args.form) if args.form else None, args.exercise)
    clips = analyse(rows, args.cache, args.rules)
    features = features_of(rule)
    trainer = Trainer(clips, rep_table(clips, rows, features), rule)
    cv = trainer.cross_validate()
    everything = list(range(len(clips)))
    params = trainer.train(everything, _Checks())
    all_data = {"rules": _tally(trainer.outcomes(everything, _Checks(), None)),
                "learned": _tally(trainer.outcomes(everything, _Checks(), params))}
    measured = _limits_json(trainer.measured_limits(everything))
    no_reps = [f"{c.file}: {c.reason}" for c in clips if not c.rep_events]
    info = {"exercise": args.exercise, "views": list(rule.learned_check.views), "threshold": params.threshold,
            "delta": DELTA, "prior_weight": PRIOR_WEIGHT, "l2": L2,
            "trained_on": {"clips": len(clips), "reps": len(trainer.reps),
                           "groups": {g: sum(c.group == g for c in clips) for g in sorted({c.group for c in clips})},
                           "left_out_copies": dropped, "clips_without_reps": no_reps},
            "typical": typical(trainer, rule, features), "cross_validation": cv, "all_data": all_data,
            "measured_limits": measured,
            "command": COMMAND, "data": {"pushfit": Path(args.pushfit).name, "form": Path(args.form).name if args.form else None}}
    write_model(Path(args.out), rule.learned_check.model, params, features, info)
    print(report(cv, params, features, all_data))
    print("limits measured on every clip (min, max per check):")
    for view, rows_ in measured.items():
        print(f"  {view}: " + "; ".join(f"{a} {s_} {lo}..{hi}" for (a, s_), (lo, hi) in zip(features, rows_)))
    if no_reps:
        print("clips without a counted rep:\n  " + "\n  ".join(no_reps))
    print(f"written: {Path(args.out) / rule.learned_check.model}.npz / .json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
