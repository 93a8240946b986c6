"""The learned form check: a per-rep model over the rule's own checks, learned from labelled clips.

Each rep check gives a *margin*: how far its measurement lies past its limit (positive: a fault) or inside
it (negative), in units of that measurement's typical spread on correct reps (`scales`). The model is a
logistic regression on `max(0, margin + delta)` per check, with weights that cannot be negative: a check
only ever pushes a rep toward "faulty", and only once it comes within `delta` units of its limit. Its
starting point (the prior it is trained toward) is the rules themselves: one check at its limit is an even
call. Training (pose_core/run/train_form.py) moves the weights where labelled clips say so, so the model
also flags a rep whose measurements are each just inside their limits but together look like the faulty
reps it learned from. A check's own fault is still judged by the check; the learned check adds what the
limits miss, and its message names the measurements that made the call, with their values and limits.

The model ships as plain arrays (`<name>.npz`, read with allow_pickle=False) + `<name>.json` (the features,
the threshold, how it was trained and cross-validated) in core/form_models/.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .types import CheckResult, CheckStatus
from .wording import check_label, number_text, rule_check_for, view_phrase

MODEL_DIR = Path(__file__).parent / "form_models"
MODEL_FORMAT = "gympose-form-model/1"
LEARNED_ANGLE = "learned"  # CheckResult.angle of the learned check's result (its stat is the model's name)
VIEW_FEATURES = ("oblique", "front", "rear")  # view indicators (side is the baseline)


class FormModelError(ValueError):
    """A form model's files are missing or not a valid model (the message says which and why)."""


@dataclass(frozen=True, eq=False)
class FormModel:
    """A learned form check's parameters (see the module's docstring)."""

    name: str
    exercise: str
    features: tuple[tuple[str, str], ...]  # (angle, stat) of the rep checks it reads, in order
    scales: np.ndarray  # one measurement unit per feature (the spread on correct reps)
    weights: np.ndarray  # per feature (>= 0), then per view indicator
    bias: float
    delta: float  # a check counts once it is within delta scales of its limit
    threshold: float  # probability from which a rep is called faulty
    clear_fault: float  # scales past its limit from which a check's fault stands whatever the model says
    info: dict = field(default_factory=dict)  # the json: training data, cross-validation, typical values

    @property
    def view_weights(self) -> dict[str, float]:
        return dict(zip(VIEW_FEATURES, self.weights[len(self.features):].tolist()))

    def inputs(self, checks: tuple[CheckResult, ...] | list[CheckResult], view: str | None) -> np.ndarray:
        """The model's input vector for a rep's check results seen from `view` (0 for checks not judged)."""
        m = margins(checks, self.features, self.scales)
        x = np.where(np.isfinite(m), np.maximum(m + self.delta, 0.0), 0.0)
        return np.concatenate([x, [float(view == v) for v in VIEW_FEATURES]])

    def probability(self, checks, view: str | None) -> float:
        z = float(self.inputs(checks, view) @ self.weights + self.bias)
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def contributions(self, checks, view: str | None) -> list[tuple[int, float]]:
        """(feature index, its push toward "faulty" in logits), largest first, only features that push."""
        x = self.inputs(checks, view)[:len(self.features)]
        parts = x * self.weights[:len(self.features)]
        return sorted(((i, float(p)) for i, p in enumerate(parts) if p > 1e-9), key=lambda ip: -ip[1])


def margins(checks, features, scales) -> np.ndarray:
    """Per feature (angle, stat): how far the rep's judged measurement lies past its limit (positive) or inside
    it (negative), in `scales` units; NaN when the rule has no such check or it was not judged."""
    by_key = {(c.angle, c.stat): c for c in checks
              if c.status in (CheckStatus.PASS, CheckStatus.FAIL) and math.isfinite(c.value)}
    out = np.full(len(features), np.nan)
    for i, key in enumerate(features):
        c = by_key.get(tuple(key))
        if c is None:
            continue
        past = [c.value - c.max] if math.isfinite(c.max) else []
        past += [c.min - c.value] if math.isfinite(c.min) else []
        if past:
            out[i] = max(past) / scales[i]
    return out


# ------------------------------------------------------------------------------------------ files

def model_paths(name: str, folder: str | Path | None = None) -> tuple[Path, Path]:
    folder = Path(folder) if folder is not None else MODEL_DIR
    return folder / f"{name}.npz", folder / f"{name}.json"


def _finite(a: np.ndarray, what: str, n: int | None = None) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    if n is not None and a.shape != (n,):
        raise FormModelError(f"{what}: expected {n} values, got {a.shape[0]}")
    if not np.all(np.isfinite(a)):
        raise FormModelError(f"{what}: not finite")
    return a


def read_model(name: str, folder: str | Path | None = None) -> FormModel:
    """Load `<name>.npz` (allow_pickle=False) + `<name>.json`; FormModelError when missing or invalid."""
    npz, js = model_paths(name, folder)
    try:
        info = json.loads(js.read_text(encoding="utf-8"))
        with np.load(npz, allow_pickle=False) as z:
            arrays = {k: z[k] for k in ("scales", "weights", "bias", "delta", "threshold", "clear_fault")}
    except FileNotFoundError as e:
        raise FormModelError(f"form model {name!r}: {Path(e.filename).name} not found") from None
    except (OSError, ValueError, KeyError) as e:
        raise FormModelError(f"form model {name!r}: cannot read it: {e}") from None
    if not isinstance(info, dict) or info.get("format") != MODEL_FORMAT:
        raise FormModelError(f"form model {name!r}: not a {MODEL_FORMAT} file")
    feats = info.get("features")
    if not isinstance(feats, list) or not all(isinstance(f, dict) and {"angle", "stat"} <= set(f) for f in feats):
        raise FormModelError(f"form model {name!r}: features must be a list of {{angle, stat}}")
    n = len(feats)
    weights = _finite(arrays["weights"], "weights", n + len(VIEW_FEATURES))
    if np.any(weights[:n] < 0):
        raise FormModelError(f"form model {name!r}: a check's weight is negative")
    scales = _finite(arrays["scales"], "scales", n)
    if np.any(scales <= 0):
        raise FormModelError(f"form model {name!r}: scales must be positive")
    threshold = float(_finite(arrays["threshold"], "threshold", 1)[0])
    if not 0.0 < threshold < 1.0:
        raise FormModelError(f"form model {name!r}: threshold must lie between 0 and 1")
    return FormModel(name=name, exercise=str(info.get("exercise", "")),
                     features=tuple((str(f["angle"]), str(f["stat"])) for f in feats), scales=scales,
                     weights=weights, bias=float(_finite(arrays["bias"], "bias", 1)[0]),
                     delta=float(_finite(arrays["delta"], "delta", 1)[0]), threshold=threshold,
                     clear_fault=float(_finite(arrays["clear_fault"], "clear_fault", 1)[0]), info=info)


@functools.lru_cache(maxsize=16)
def load_model(name: str) -> FormModel:
    """The packaged model `name` (cached; FormModelError when it is missing or invalid)."""
    return read_model(name)


# ------------------------------------------------------------------------------------------ judging

def _not_judged(name: str, why: str) -> CheckResult:
    return CheckResult(angle=LEARNED_ANGLE, stat=name, value=math.nan, min=-math.inf, max=math.inf,
                       status=CheckStatus.NOT_JUDGED, message=why)


def judge_learned(rule, checks: tuple[CheckResult, ...], view: str | None) -> CheckResult:
    """The learned check on one rep, from the rule's check results: its value is the probability (%) that the
    rep is faulty, its max the threshold (%). It fails when that probability reaches the threshold, or when a
    check is clearly past its limit (`clear_fault` scales). Not judged from a view it was not made for, when
    an essential check could not be judged, or when the model cannot be loaded (the message says why).
    Its message explains a fault no check found on its own (several measurements close to their limits), or
    a check past its limit that the model does not call a fault."""
    learned = rule.learned_check
    if view is not None and view not in learned.views:
        return _not_judged(learned.model, "")
    if any(c.essential and c.status == CheckStatus.NOT_JUDGED for c in checks):
        return _not_judged(learned.model, "")
    try:
        model = load_model(learned.model)
    except FormModelError as e:
        return _not_judged(learned.model, str(e))
    m = margins(checks, model.features, model.scales)
    if np.all(np.isnan(m)):
        return _not_judged(learned.model, "")
    p = model.probability(checks, view)
    faulty = p >= model.threshold or bool(np.any(np.nan_to_num(m, nan=-1.0) > model.clear_fault))
    failed = [c for c in checks if c.status == CheckStatus.FAIL]
    if faulty:
        message = "" if failed else explain(rule, model, checks, view, p)
    else:
        message = _overruled(rule, failed, p) if failed else ""
    return CheckResult(angle=LEARNED_ANGLE, stat=learned.model, value=100.0 * p, min=-math.inf,
                       max=100.0 * model.threshold, status=CheckStatus.FAIL if faulty else CheckStatus.PASS,
                       message=message)


def _overruled(rule, failed: list[CheckResult], p: float) -> str:
    labels = []
    for c in failed:
        check = rule_check_for(rule, c)
        labels.append(check_label(check) if check is not None else f"{c.angle} {c.stat}")
    return (f"Judged correct by the learned check ({100 - 100 * p:.0f}% sure): {', '.join(labels)} only just "
            "past the limit")


def _number(value: float, unit: str) -> str:
    unit = unit.strip()
    return f"{number_text(value)}{unit}" if unit.startswith("%") else f"{number_text(value)} {unit}"


def explain(rule, model: FormModel, checks, view: str | None, p: float) -> str:
    """Why the learned check called a rep faulty, in words: the measurements that pushed most, each with its
    value and its limit ("hips sagged 4% body (limit 5%) and head dropped 131 deg (limit 128 deg)")."""
    by_key = {(c.angle, c.stat): c for c in checks}
    parts = []
    for i, _ in model.contributions(checks, view)[:2]:
        c = by_key[model.features[i]]
        check = rule_check_for(rule, c)
        label = check_label(check) if check is not None else f"{c.angle} {c.stat}".replace("_", " ")
        unit = rule.angles[c.angle].unit if c.angle in rule.angles else ""
        limit = c.max if math.isfinite(c.max) else c.min
        value = _number(c.value, unit)
        if value == _number(limit, unit):  # "129 deg (limit 129 deg)" would not say how close it came
            value = _number(round(c.value, 1), unit) if abs(c.value) < 20 else f"{c.value:.1f} {unit}".strip()
        parts.append(f"{label[:1].lower() + label[1:]} {value} (limit {_number(limit, unit)})")
    what = " and ".join(parts) if parts else "several measurements close to their limits"
    return f"Close to faulty form (learned check, {100 * p:.0f}% sure): {what}"


def describe(rule) -> list[dict]:
    """What a rule's learned check looks at, for people: one row per check it reads (its label, weight, the
    unit one weight step stands for, and the range correct reps stayed in), then the views. [] without one."""
    if rule.learned_check is None:
        return []
    model = load_model(rule.learned_check.model)
    typical = model.info.get("typical", {})
    rows = []
    for i, (angle, stat) in enumerate(model.features):
        check = next((c for c in rule.rep_checks if (c.angle, c.stat) == (angle, stat)), None)
        unit = rule.angles[angle].unit if angle in rule.angles else ""
        rows.append({"check": check_label(check) if check is not None else f"{angle} {stat}".replace("_", " "),
                     "angle": angle, "stat": stat, "in_rules": check is not None,
                     "weight": round(float(model.weights[i]), 2), "per": _number(float(model.scales[i]), unit),
                     "typical": typical.get(f"{angle} {stat}", "")})
    rows += [{"check": f"filmed {v}", "angle": "", "stat": "view", "in_rules": True,
              "weight": round(w, 2), "per": "", "typical": ""} for v, w in model.view_weights.items()]
    return rows


def describe_in_words(rule) -> list[str]:
    """The learned check in a few sentences for the Thresholds page: where it decides, what it looks at most
    (by weight per unit), when it calls a fault, and how it was trained and cross-validated. [] without one;
    FormModelError when its model cannot be loaded."""
    if rule.learned_check is None:
        return []
    model = load_model(rule.learned_check.model)
    rows = [r for r in describe(rule) if r["stat"] != "view"]
    ranked = sorted(rows, key=lambda r: -r["weight"])
    looks = ", ".join(f"{r['check'].lower()} ({r['weight']:.1f} per {r['per']})" for r in ranked if r["weight"] > 0)
    ignored = [r["check"].lower() for r in rows if r["weight"] <= 0]
    views = " or ".join(view_phrase(v) for v in rule.learned_check.views)
    out = [f"The learned check decides on reps filmed {views} (from other views the checks' limits decide). It reads "
           f"each check's measurement against that check's limit: from {model.delta:g} unit inside the limit onward, "
           f"every unit adds the check's weight to the odds of a fault.",
           f"It looks most at: {looks}." + (f" It gives no weight to: {', '.join(ignored)}." if ignored else ""),
           f"A rep is called faulty from {100 * model.threshold:.0f}% likely, or when a measurement is more than "
           f"{model.clear_fault:g} unit past its limit; its message names the measurements that weighed most."]
    cv = model.info.get("cross_validation", {})
    folds = [f"{f['test_group']} {100 * f['learned, measured limits']['balanced_accuracy']:.1f}%"
             for f in cv.get("folds", []) if (f.get("learned, measured limits") or {}).get("balanced_accuracy")]
    trained = model.info.get("trained_on", {})
    if trained:
        out.append(f"Trained on {trained.get('clips', 0)} labelled clips ({trained.get('reps', 0)} reps)"
                   + (f"; balanced accuracy on a source group left out of training: {', '.join(folds)}." if folds
                      else "."))
    return out
