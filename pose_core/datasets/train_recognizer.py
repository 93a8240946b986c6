"""Train the exercise recogniser on Penn Action (8 gym classes) and write a small, pickle-free model.

    python -m pose_core.datasets.train_recognizer --penn ../shared/data/penn_action --out pose_core/datasets/recognizer --seed 0

- Training data: the official TRAIN split (train == 1) only. Each clip goes through the same code path as
  a MediaPipe detection (Penn joints -> PoseFrame -> 13 joints -> features), after augmentation that
  imitates what a detector on real video does differently from hand annotations (`train_augment`).
- Model: gradient-boosted trees (sklearn's HistGradientBoostingClassifier), exported to plain arrays
  (`recognition.TreeEnsemble`); the exported model is checked against sklearn's probabilities.
- Model selection: a validation set of whole clips (20 % of each class's TRAIN clips, grouped by clip)
  picks the tree size and boosting length; the chosen setting is then refitted on all TRAIN clips.
- Reporting: the official TEST split (train == -1) is evaluated once with the final model, for
  metrics.json only; nothing is chosen on it.
- Calibration: the selected setting's model, fitted without the validation clips, predicts them (as
  annotated and 4 augmented copies each); the temperature that minimises their negative log-likelihood is
  stored in model.json ("calibration") with the reliability table (metrics.json), and the recogniser
  tempers its probabilities with it.
- Same seed, same data -> the same weights and metrics (numpy Generator + sklearn random_state, and one
  thread in the fit: OpenMP's summation order changes the trees with the number of threads).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from .penn import GYM_CLASSES, clip_pose_frames, scan_dataset
from .recognition.features import ARM_FEATURES, FEATURE_NAMES, WINDOW_S, pose_arrays, resample, window_features
from .recognition.model import ExerciseRecognizer, TreeEnsemble, temper
from .train_augment import LabelledClip, augment, clean_window


def load_sequences(penn_root: str | Path, split: str, limit_per_class: int | None = None) -> list[LabelledClip]:
    """Penn clips of the gym classes as joint arrays, through PoseFrame (the same path as MediaPipe)."""
    scan = scan_dataset(penn_root, GYM_CLASSES, split=split)
    if scan.errors:
        for p, msg in scan.errors:
            print(f"warning: skipped {p}: {msg}", file=sys.stderr)
    out, per = [], {}
    for c in scan.clips:
        if limit_per_class is not None and per.get(c.action, 0) >= limit_per_class:
            continue
        per[c.action] = per.get(c.action, 0) + 1
        t, xy, vis = pose_arrays(clip_pose_frames(c))
        out.append(LabelledClip(c.id, c.action, c.view, t, xy, vis, c.image_size))
    return out


# Features grouped by the per-frame quantity they summarise (e.g. all statistics of the knee angle).
FEATURE_GROUPS = [np.array(ix) for ix in
                  {g: [i for i, n in enumerate(FEATURE_NAMES) if n.split(":")[0] == g]
                   for g in dict.fromkeys(n.split(":")[0] for n in FEATURE_NAMES)}.values()]


def make_windows(rng: np.random.Generator, seqs: list[LabelledClip], classes: tuple[str, ...], per_class: int,
                 p_clean: float = 0.2, p_feature_drop: float = 0.1, p_arms_missing: float = 0.3
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Class-balanced feature windows: per_class windows per exercise, spread over its clips."""
    by = {c: [s for s in seqs if s.action == c] for c in classes}
    xs, ys = [], []
    for ci, c in enumerate(classes):
        clips = by[c]
        if not clips:
            continue
        k = 0
        while k < per_class:
            s = clips[k % len(clips)]
            k += 1
            clean = rng.random() < p_clean
            with warnings.catch_warnings():  # nan-means over joints a window never shows
                warnings.simplefilter("ignore", RuntimeWarning)
                t, xy, vis = clean_window(rng, s) if clean else augment(rng, s)
            _, g = resample(t, xy, vis)
            v = window_features(g) if g.shape[0] >= 2 else None
            if v is None:
                continue
            if not clean:  # feature-group dropout: no single cue may carry the decision alone
                for idx in FEATURE_GROUPS:
                    if rng.random() < p_feature_drop:
                        v[idx] = np.nan
            if rng.random() < p_arms_missing:  # the model must also answer from the body without arms
                v[ARM_FEATURES] = np.nan
            xs.append(v)
            ys.append(ci)
    return np.stack(xs), np.asarray(ys)


# ------------------------------------------------------------------------------------------ fitting

def export_trees(clf, classes: tuple[str, ...]) -> TreeEnsemble:
    """A fitted sklearn HistGradientBoostingClassifier as plain arrays (numerical splits only)."""
    parts = {k: [] for k in ("feature", "threshold", "missing_left", "left", "right", "is_leaf", "value")}
    starts, tclass, depth, off = [], [], 0, 0
    for iteration in clf._predictors:
        if len(iteration) != len(classes):
            raise RuntimeError("expected one tree per class and iteration")
        for k, pred in enumerate(iteration):
            nd = pred.nodes
            if np.any(nd["is_categorical"]):
                raise RuntimeError("categorical splits are not supported")
            starts.append(off)
            tclass.append(k)
            off += len(nd)
            depth = max(depth, int(pred.get_max_depth()))
            parts["feature"].append(nd["feature_idx"].astype(np.int16))
            parts["threshold"].append(nd["num_threshold"].astype(np.float64))
            parts["missing_left"].append(nd["missing_go_to_left"].astype(np.uint8))
            parts["left"].append(nd["left"].astype(np.int16))
            parts["right"].append(nd["right"].astype(np.int16))
            parts["is_leaf"].append(nd["is_leaf"].astype(np.uint8))
            parts["value"].append(nd["value"].astype(np.float64))
    arr = {k: np.concatenate(v) for k, v in parts.items()}
    return TreeEnsemble(classes=classes, baseline=np.asarray(clf._baseline_prediction, dtype=np.float64).reshape(-1),
                        tree_start=np.asarray(starts, dtype=np.int32), tree_class=np.asarray(tclass, dtype=np.int16),
                        depth=depth, **arr)


def fit(x: np.ndarray, y: np.ndarray, classes: tuple[str, ...], leaves: int, iterations: int, learning_rate: float,
        seed: int) -> TreeEnsemble:
    """Gradient-boosted trees on the raw features (NaN = missing, handled by the trees), exported to arrays
    and checked against sklearn's own probabilities."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    clf = HistGradientBoostingClassifier(max_iter=iterations, max_leaf_nodes=leaves, learning_rate=learning_rate,
                                         min_samples_leaf=20, l2_regularization=1.0, early_stopping=False,
                                         random_state=seed)
    from threadpoolctl import threadpool_limits

    x = np.where(np.isnan(x).all(axis=0), 0.0, x)  # an all-missing column breaks sklearn's binning
    with threadpool_limits(1):  # the same trees on any machine: sums in one order, whatever its cores
        clf.fit(x, y)
    if list(clf.classes_) != list(range(len(classes))):
        raise RuntimeError("every class needs training windows")
    model = export_trees(clf, classes)
    probe = x[:: max(1, len(x) // 500)]
    if not np.allclose(model.proba(probe), clf.predict_proba(probe), atol=1e-9):
        raise RuntimeError("exported trees disagree with the fitted model")
    small = model.rounded()  # what gets saved; everything downstream (metrics) uses exactly this
    if np.mean(small.proba(probe).argmax(1) == clf.predict(probe)) < 0.99:
        raise RuntimeError("float32 rounding changed the model's answers")
    return small


def evaluate(rec: ExerciseRecognizer, seqs: list[LabelledClip], rng: np.random.Generator | None = None) -> dict:
    """Whole-clip accuracy (argmax of the window-averaged probabilities) and the confusion matrix; with rng,
    on an augmented copy of each clip (the prediction window's worth of frames is not imposed)."""
    classes = list(rec.classes)
    cm = np.zeros((len(classes), len(classes)), dtype=int)
    low = 0
    per_clip = []
    for s in seqs:
        if rng is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                t, xy, vis = augment(rng, s, window_s=max(WINDOW_S, float(s.t[-1] - s.t[0]) + 1))
        else:
            t, xy, vis = s.t, s.xy, s.vis
        p, _ = rec.proba_arrays(t, xy, vis)
        if p is None:
            pred, conf = -1, 0.0
        else:
            pred, conf = int(np.argmax(p)), float(np.max(p))
        true = classes.index(s.action)
        if pred >= 0:
            cm[true, pred] += 1
        low += conf < rec.confidence_threshold
        per_clip.append((s.id, s.action, classes[pred] if pred >= 0 else None, round(conf, 4)))
    n = len(seqs)
    acc = float(np.trace(cm)) / n if n else math.nan
    return {"clips": n, "accuracy": acc, "confusion": cm.tolist(), "below_threshold": int(low),
            "per_clip": per_clip}


# ---------------------------------------------------------------------------------------- calibration

CALIBRATION_COPIES = 4  # augmented copies of each validation clip besides the clean one
RELIABILITY_BINS = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0001)


def validation_probabilities(rec: ExerciseRecognizer, seqs: list[LabelledClip], rng: np.random.Generator,
                             copies: int = CALIBRATION_COPIES, clean: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Whole-clip probabilities (rows) and true class indices: each clip as annotated (when clean) and
    `copies` augmented versions of it. Clips without a usable window are left out."""
    classes = list(rec.classes)
    ps, ys = [], []
    for s in seqs:
        versions = [(s.t, s.xy, s.vis)] if clean else []
        for _ in range(copies):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                versions.append(augment(rng, s, window_s=max(WINDOW_S, float(s.t[-1] - s.t[0]) + 1)))
        for t, xy, vis in versions:
            p, _ = rec.proba_arrays(t, xy, vis)
            if p is not None:
                ps.append(p)
                ys.append(classes.index(s.action))
    return np.stack(ps), np.asarray(ys)


def fit_temperature(p: np.ndarray, y: np.ndarray) -> float:
    """The temperature minimising the negative log-likelihood of the tempered probabilities (grid search,
    0.5 .. 10, log-spaced)."""
    grid = np.exp(np.linspace(math.log(0.5), math.log(10.0), 80))
    nll = [-np.mean(np.log(np.clip(temper(p, t)[np.arange(len(y)), y], 1e-12, 1))) for t in grid]
    return float(grid[int(np.argmin(nll))])


def reliability_table(p: np.ndarray, y: np.ndarray, bins=RELIABILITY_BINS) -> list[dict]:
    """Per confidence bin: predictions, mean confidence, and how often the top answer was right."""
    conf, right = p.max(axis=1), p.argmax(axis=1) == y
    rows = []
    for lo, hi in zip(bins[:-1], bins[1:]):
        m = (conf >= lo) & (conf < hi)
        rows.append({"confidence": f"{lo:.2f}-{min(hi, 1.0):.2f}", "predictions": int(m.sum()),
                     "mean_confidence": round(float(conf[m].mean()), 3) if m.any() else None,
                     "accuracy": round(float(right[m].mean()), 3) if m.any() else None})
    return rows


# ------------------------------------------------------------------------------------------- driver

# Candidate settings (leaves per tree, boosting iterations, learning rate), simplest first; the
# validation split picks one (ties go to the earlier, smaller one).
GRID: tuple[tuple[int, int, float], ...] = ((8, 100, 0.15), (15, 100, 0.1), (8, 200, 0.1))


def split_validation(rng: np.random.Generator, seqs: list[LabelledClip], frac: float = 0.2):
    """Whole clips (never windows of one clip on both sides), frac of each class."""
    val_ids = set()
    for c in GYM_CLASSES:
        ids = sorted(s.id for s in seqs if s.action == c)
        k = max(1, int(round(frac * len(ids)))) if len(ids) > 1 else 0
        val_ids.update(rng.permutation(ids)[:k].tolist())
    return [s for s in seqs if s.id not in val_ids], [s for s in seqs if s.id in val_ids]


def train(penn_root: str | Path, seed: int = 0, per_class: int = 2000, grid=GRID, limit_per_class: int | None = None,
          evaluate_test: bool = True, log=print) -> tuple[TreeEnsemble, dict]:
    """Select a setting on the validation split, refit on all TRAIN clips, report on TEST.
    Returns the model and the metrics dict written to metrics.json."""
    t_start = time.perf_counter()
    classes = tuple(GYM_CLASSES)
    seqs = load_sequences(penn_root, "train", limit_per_class)
    log(f"train split: {len(seqs)} clips")
    rng = np.random.default_rng(seed)
    fit_seqs, val_seqs = split_validation(rng, seqs)
    selection = []
    best = None
    xs, ys = make_windows(np.random.default_rng([seed, 1]), fit_seqs, classes, per_class)
    log(f"selection: {len(fit_seqs)} clips -> {len(ys)} windows; validation {len(val_seqs)} clips")
    for setting in grid:
        rec = ExerciseRecognizer(fit(xs, ys, classes, *setting, seed))
        clean = evaluate(rec, val_seqs)["accuracy"]
        aug = evaluate(rec, val_seqs, np.random.default_rng([seed, 2]))["accuracy"]
        score = (clean + aug) / 2
        selection.append({"leaves": setting[0], "iterations": setting[1], "learning_rate": setting[2],
                          "val_accuracy": round(clean, 4), "val_accuracy_augmented": round(aug, 4)})
        log(f"  leaves={setting[0]:<3} iterations={setting[1]:<4} lr={setting[2]:<5} "
            f"val={clean:.3f} val_aug={aug:.3f}")
        if best is None or score > best[0] + 1e-9:
            best = (score, setting, rec)
    setting = best[1]
    # Calibration on the validation clips (never trained on), as they come and as real video shows them.
    probs, labels = validation_probabilities(best[2], val_seqs, np.random.default_rng([seed, 4]))
    temperature = fit_temperature(probs, labels)
    calibration = {"temperature": round(temperature, 4), "fitted_on": f"{len(labels)} whole-clip predictions "
                   f"of {len(val_seqs)} validation clips (clean and {CALIBRATION_COPIES} augmented copies each)",
                   "reliability": reliability_table(temper(probs, temperature), labels),
                   "reliability_before": reliability_table(probs, labels)}
    log(f"calibration: temperature {temperature:.2f}")
    x, y = make_windows(np.random.default_rng([seed, 3]), seqs, classes, per_class)
    model = fit(x, y, classes, *setting, seed)
    train_s = time.perf_counter() - t_start
    log(f"final: leaves={setting[0]} iterations={setting[1]} lr={setting[2]} on {len(seqs)} clips -> "
        f"{len(y)} windows ({train_s:.0f} s)")
    metrics = {
        "classes": list(classes), "seed": seed,
        "setting": {"leaves": setting[0], "iterations": setting[1], "learning_rate": setting[2]},
        "train_clips": len(seqs), "train_windows": int(len(y)), "windows_per_class": per_class,
        "validation_clips": len(val_seqs), "selection": selection, "training_seconds": round(train_s, 1),
        "calibration": calibration,
    }
    if evaluate_test:
        test = load_sequences(penn_root, "test", limit_per_class)
        final = ExerciseRecognizer(model, temperature=temperature)
        r = evaluate(final, test)
        tp, tl = validation_probabilities(final, test, np.random.default_rng([seed, 5]), copies=1, clean=False)
        metrics["test_augmented_reliability"] = {
            "note": "the same test clips, one augmented copy each (real-video perturbations), calibrated model",
            "accuracy": round(float(np.mean(tp.argmax(1) == tl)), 4), "table": reliability_table(tp, tl)}
        metrics["test"] = {
            "note": "official Penn Action test split (train == -1), ground-truth joints, whole clips; "
                    "reported only, never used for any choice",
            "clips": r["clips"], "accuracy": round(r["accuracy"], 4),
            "confusion_rows_true_cols_predicted": r["confusion"],
            "below_confidence_threshold": r["below_threshold"],
            "per_class_accuracy": {c: round(r["confusion"][i][i] / max(1, sum(r["confusion"][i])), 4)
                                   for i, c in enumerate(classes)},
            "errors": [p for p in r["per_clip"] if p[1] != p[2]],
        }
        log(f"test: {r['accuracy']:.4f} on {r['clips']} clips")
    return model, metrics


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--penn", required=True, help="Penn Action root (the folder holding labels/)")
    ap.add_argument("--out", required=True, help="output folder for model.npz, model.json, metrics.json")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--windows-per-class", type=int, default=2000)
    ap.add_argument("--no-test", action="store_true", help="skip the test-split report")
    a = ap.parse_args(argv)
    model, metrics = train(a.penn, seed=a.seed, per_class=a.windows_per_class, evaluate_test=not a.no_test)
    out = Path(a.out)
    model.save(out, extra={"seed": a.seed, "setting": metrics["setting"],
                           "calibration": {"temperature": metrics["calibration"]["temperature"]},
                           "trained_on": "Penn Action train split (train == 1), 8 gym classes"})
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    print(f"wrote {out / 'model.npz'} ({(out / 'model.npz').stat().st_size / 1024:.0f} KB), model.json, metrics.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
