"""The recogniser: a gradient-boosted tree ensemble stored as plain arrays (`model.npz`, read with
allow_pickle=False, + `model.json`), inference in numpy, and `ExerciseRecognizer`, which turns a pose
sequence into a `Recognition` (the exercise, or "cannot tell" with the reason and the candidates)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..core.types import PoseFrame
from .decision import (CANNOT_TELL, NAMED, NONE_OF_THESE, OTHER, Calibration, Evidence, Typical, evidence,
                       temper)
from .features import (ARM_FEATURES, FEATURE_NAMES, HOP_S, MIN_VISIBILITY, NUM_FEATURES, RESAMPLE_HZ, WINDOW_S,
                       pose_arrays, sequence_windows)

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "model_files"  # package data: model.npz + model.json
MODEL_FORMAT = "gympose-recognizer/1"
MIN_POSE_FRAMES = 15  # fewer frames with a pose than this: cannot tell
MIN_DURATION_S = 0.5  # a shorter span of frames with a pose: cannot tell (Penn clips go down to 0.6 s)
CONFIDENCE_THRESHOLD = 0.5  # below this top probability the answer is "cannot tell"
# At or above this a name is shown as sure (green); below it "not sure". On real clips the model did not
# train on, names at 70% or more were right 163 of 164 times (metrics.json "real_cv"), so the edge stays here.
SURE_CONFIDENCE = 0.7
TOP_K = 3


@dataclass(frozen=True)
class Recognition:
    """The recognised exercise, or None with `reason`: either "cannot tell" (too little to see, or no
    candidate likely enough) or "not one of these" (the movement is none of the exercises: `outcome`).

    confidence: probability of the top candidate (0 when nothing could be computed).
    top: the best candidates as (exercise, probability), most likely first (empty when nothing could be
        computed).
    frames / frames_with_pose: what the decision was made on; windows: how many windows were averaged.
    outcome: "exercise" (named), "cannot_tell" or "none_of_these" ("" in records from before it existed:
        read as named or cannot tell by `exercise`).
    """

    exercise: str | None
    confidence: float
    top: tuple[tuple[str, float], ...] = ()
    reason: str = ""
    frames: int = 0
    frames_with_pose: int = 0
    windows: int = 0
    outcome: str = ""

    @property
    def cannot_tell(self) -> bool:
        """No exercise is named (either "cannot tell" or "not one of these"; see `none_of_these`)."""
        return self.exercise is None

    @property
    def none_of_these(self) -> bool:
        """The movement is none of the exercises (a distinct answer from "cannot tell")."""
        return self.outcome == NONE_OF_THESE

    @property
    def sure(self) -> bool:
        """Named with at least SURE_CONFIDENCE (shown as sure)."""
        return self.exercise is not None and self.confidence >= SURE_CONFIDENCE

    @property
    def candidates(self) -> str:
        """The best candidates for people: "squat 48%, lunge 30%" ("" when none)."""
        return ", ".join(f"{n} {p:.0%}" for n, p in self.top)

    @property
    def why_not(self) -> str:
        """Why it cannot tell, with the candidates: "<reason> (candidates: ...)" ("" when it could)."""
        if self.exercise is not None:
            return ""
        return self.reason + (f" (candidates: {self.candidates})" if self.top else "")

    def describe(self) -> str:
        """One line for people: "squat (93%)", "not one of the exercises: <reason> (candidates: ...)" or
        "cannot tell: <reason> (candidates: ...)"."""
        if self.exercise is not None:
            return f"{self.exercise} ({self.confidence:.0%})"
        return f"{'not one of the exercises' if self.none_of_these else 'cannot tell'}: {self.why_not}"

    def to_dict(self) -> dict:
        outcome = self.outcome or (NAMED if self.exercise is not None else CANNOT_TELL)
        return {"exercise": self.exercise, "confidence": round(self.confidence, 4),
                "top": [[n, round(p, 4)] for n, p in self.top], "reason": self.reason,
                "frames": self.frames, "frames_with_pose": self.frames_with_pose, "windows": self.windows,
                "outcome": outcome}


def _cannot_tell(reason: str, frames: int = 0, with_pose: int = 0, top=(), windows: int = 0,
                 outcome: str = CANNOT_TELL) -> Recognition:
    conf = float(top[0][1]) if top else 0.0
    return Recognition(None, conf, tuple(top), reason, frames, with_pose, windows, outcome)


# ------------------------------------------------------------------------------------------ model

@dataclass(frozen=True, eq=False)
class TreeEnsemble:
    """Gradient-boosted decision trees (multiclass, softmax), as plain arrays; inference in numpy.

    Trees rather than a linear model or an MLP because a detector on real video produces feature values
    outside Penn Action's range (a flickering wrist, a jittering far-side ankle): a tree keeps its last
    split's answer for an out-of-range value, where a weighted sum extrapolates. Missing features (NaN)
    follow the branch learned for missing values.

    Node arrays are concatenated over trees; children are indices local to their tree. Tree k adds its
    leaf value to class tree_class[k]; probabilities are softmax(baseline + sums)."""

    classes: tuple[str, ...]
    baseline: np.ndarray  # (C,)
    tree_start: np.ndarray  # (T,) first node of each tree
    tree_class: np.ndarray  # (T,)
    feature: np.ndarray  # (nodes,) feature index of a split
    threshold: np.ndarray  # (nodes,) go left when x <= threshold
    missing_left: np.ndarray  # (nodes,) bool: NaN goes left
    left: np.ndarray  # (nodes,) local index of the left child
    right: np.ndarray
    is_leaf: np.ndarray  # (nodes,) bool
    value: np.ndarray  # (nodes,) leaf value (learning rate included)
    depth: int  # longest root-to-leaf path

    ARRAYS = ("baseline", "tree_start", "tree_class", "feature", "threshold", "missing_left", "left", "right",
              "is_leaf", "value")

    def __post_init__(self) -> None:
        n = self.feature.shape[0]
        for name in ("threshold", "missing_left", "left", "right", "is_leaf", "value"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"tree array {name!r} has shape {getattr(self, name).shape}, expected ({n},)")
        if self.baseline.shape != (len(self.classes),) or self.tree_class.shape != self.tree_start.shape:
            raise ValueError("tree ensemble: inconsistent class or tree arrays")
        split = ~self.is_leaf
        if split.any() and (self.feature[split].max() >= NUM_FEATURES or self.feature[split].min() < 0):
            raise ValueError(f"the model uses feature indices outside the {NUM_FEATURES} this code computes")
        if np.any(self.tree_class >= len(self.classes)):
            raise ValueError("tree ensemble: a tree's class index is out of range")

    def raw(self, x: np.ndarray) -> np.ndarray:
        """(n, NUM_FEATURES) -> (n, C) summed scores."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        x = np.where(np.isfinite(x), x, np.nan)
        n = x.shape[0]
        node = np.broadcast_to(self.tree_start, (n, self.tree_start.size)).copy()
        rows = np.arange(n)[:, None]
        for _ in range(self.depth):
            leaf = self.is_leaf[node]
            if leaf.all():
                break
            v = x[rows, self.feature[node]]
            go_left = np.where(np.isnan(v), self.missing_left[node], v <= self.threshold[node])
            child = np.where(go_left, self.left[node], self.right[node])
            node = np.where(leaf, node, self.tree_start + child)
        out = np.tile(self.baseline, (n, 1))
        vals = self.value[node]
        for c in range(len(self.classes)):
            out[:, c] += vals[:, self.tree_class == c].sum(axis=1)
        return out

    def proba(self, x: np.ndarray) -> np.ndarray:
        """(n, NUM_FEATURES) -> (n, C) class probabilities."""
        z = self.raw(x)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    STORED_DTYPES = {"baseline": np.float64, "tree_start": np.int32, "tree_class": np.int16, "feature": np.int16,
                     "threshold": np.float32, "missing_left": np.uint8, "left": np.int16, "right": np.int16,
                     "is_leaf": np.uint8, "value": np.float32}

    def rounded(self) -> "TreeEnsemble":
        """The same trees with thresholds and leaf values rounded to float32, i.e. exactly what `save`
        stores (half the size); metrics computed with this model are what the saved file reproduces."""
        f32 = lambda a: a.astype(np.float32).astype(np.float64)  # noqa: E731
        return TreeEnsemble(self.classes, self.baseline, self.tree_start, self.tree_class, self.feature,
                            f32(self.threshold), self.missing_left, self.left, self.right, self.is_leaf,
                            f32(self.value), self.depth)

    def save(self, out_dir: str | Path, extra: dict | None = None, typical: Typical | None = None) -> None:
        """model.npz (numpy arrays only; with `typical`, its arrays as typical_*) + model.json (classes,
        feature names, constants, `extra`)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        arrays = {}
        for k in self.ARRAYS:
            a = np.asarray(getattr(self, k))
            arrays[k] = a.astype(self.STORED_DTYPES[k])
            if not np.array_equal(arrays[k].astype(a.dtype), a):
                raise ValueError(f"tree array {k!r} does not fit its stored type; save model.rounded()")
        if typical is not None:
            arrays.update({f"typical_{k}": np.asarray(getattr(typical, k)).astype(np.int16 if k in ("features", "part")
                                                                               else np.float32)
                           for k in Typical.ARRAYS})
        np.savez_compressed(out / "model.npz", **arrays)
        meta = {"format": MODEL_FORMAT, "kind": "gradient-boosted trees (softmax)", "classes": list(self.classes),
                "trees": int(self.tree_start.size), "nodes": int(self.feature.size), "depth": self.depth,
                "num_features": NUM_FEATURES, "feature_names": list(FEATURE_NAMES),
                "resample_hz": RESAMPLE_HZ, "window_s": WINDOW_S, "hop_s": HOP_S,
                "min_visibility": MIN_VISIBILITY, "confidence_threshold": CONFIDENCE_THRESHOLD}
        meta.update(extra or {})
        (out / "model.json").write_text(json.dumps(meta, indent=1) + "\n")

    @classmethod
    def load(cls, model_dir: str | Path) -> "TreeEnsemble":
        """Read model.json + model.npz (allow_pickle=False: the file can hold nothing but arrays)."""
        d = Path(model_dir)
        meta = json.loads((d / "model.json").read_text())
        if meta.get("format") != MODEL_FORMAT:
            raise ValueError(f"{d / 'model.json'}: unknown model format {meta.get('format')!r}")
        if list(meta.get("feature_names", [])) != list(FEATURE_NAMES):
            raise ValueError(f"{d}: the model was trained on other features than this code computes; retrain it")
        with np.load(d / "model.npz", allow_pickle=False) as z:
            arrays = {k: z[k] for k in cls.ARRAYS}
        return cls(
            classes=tuple(meta["classes"]), baseline=arrays["baseline"].astype(np.float64),
            tree_start=arrays["tree_start"].astype(np.int64), tree_class=arrays["tree_class"].astype(np.int64),
            feature=arrays["feature"].astype(np.int64), threshold=arrays["threshold"].astype(np.float64),
            missing_left=arrays["missing_left"].astype(bool), left=arrays["left"].astype(np.int64),
            right=arrays["right"].astype(np.int64), is_leaf=arrays["is_leaf"].astype(bool),
            value=arrays["value"].astype(np.float64), depth=int(meta["depth"]))


def read_calibration(model_dir: str | Path) -> Calibration:
    """model.json's "calibration" (the identity when the model has none); ValueError when it is invalid."""
    meta = json.loads((Path(model_dir) / "model.json").read_text())
    return Calibration.from_dict(meta.get("calibration") or {})


def read_typical(model_dir: str | Path, n_classes: int) -> Typical | None:
    """The training windows' typical postures stored beside the trees (None in models without them)."""
    with np.load(Path(model_dir) / "model.npz", allow_pickle=False) as z:
        if "typical_centre" not in z.files:
            return None
        t = Typical(z["typical_features"].astype(np.int64), z["typical_part"].astype(np.int64),
                    z["typical_centre"].astype(np.float64), z["typical_scale"].astype(np.float64))
    k = t.features.shape[0]
    if (t.part.shape != (k,) or t.centre.ndim != 3 or t.centre.shape[::2] != (n_classes, k)
            or t.scale.shape != (n_classes, k)
            or (k and (t.features.max() >= NUM_FEATURES or t.features.min() < 0)) or not np.all(t.scale > 0)):
        raise ValueError(f"{model_dir}: inconsistent typical-posture arrays")
    return t


class ExerciseRecognizer:
    """Recognise the exercise in a sequence of pose frames. `ExerciseRecognizer.load()` reads the
    committed model; `predict(frames)` decides from the windows of WINDOW_S (see `decision`)."""

    def __init__(self, model: TreeEnsemble, confidence_threshold: float = CONFIDENCE_THRESHOLD,
                 window_s: float = WINDOW_S, hop_s: float = HOP_S, temperature: float | None = None,
                 calibration: Calibration | None = None, typical: Typical | None = None):
        """calibration: how the windows' evidence becomes an answer (model.json "calibration"); temperature:
        shorthand for a calibration with only a temperature. typical: the classes' typical postures (for
        "not one of these"; None: not measured)."""
        if temperature is not None:
            if calibration is not None:
                raise ValueError("give a temperature or a calibration, not both")
            calibration = Calibration(temperature=float(temperature))
        self.model = model
        self.confidence_threshold = confidence_threshold
        self.window_s = window_s
        self.hop_s = hop_s
        self.calibration = calibration or Calibration()
        self.typical = typical

    @property
    def temperature(self) -> float:
        return self.calibration.temperature

    @property
    def classes(self) -> tuple[str, ...]:
        """The exercises it can name (the model's classes without OTHER)."""
        return tuple(c for c in self.model.classes if c != OTHER)

    @classmethod
    def load(cls, path: str | Path = DEFAULT_MODEL_DIR, **kw) -> "ExerciseRecognizer":
        model = TreeEnsemble.load(path)
        if "temperature" not in kw:
            kw.setdefault("calibration", read_calibration(path))
        kw.setdefault("typical", read_typical(path, len(model.classes)))
        return cls(model, **kw)

    def window_proba(self, x: np.ndarray) -> np.ndarray:
        """(n, NUM_FEATURES) -> (n, C): mean of the whole-body and the arms-ignored probabilities."""
        no_arms = np.array(x, dtype=np.float64, copy=True)
        no_arms[:, ARM_FEATURES] = np.nan
        return (self.model.proba(x) + self.model.proba(no_arms)) / 2

    def evidence(self, x: np.ndarray) -> Evidence:
        """What the windows x (n, NUM_FEATURES) say (n >= 1)."""
        return evidence(self.window_proba(x), self.model.classes, x, self.typical)

    def proba_arrays(self, t: np.ndarray, xy: np.ndarray, vis: np.ndarray) -> tuple[np.ndarray | None, int]:
        """Calibrated probabilities of the exercises (`classes`) over a sequence (None when no window is
        usable), and the number of windows."""
        feats = sequence_windows(t, xy, vis, self.window_s, self.hop_s)
        if not feats:
            return None, 0
        ev = self.evidence(np.stack(feats))
        return temper(ev.probs, self.temperature), len(feats)

    def predict(self, frames: Sequence[PoseFrame | None], allowed: Iterable[str] | None = None) -> Recognition:
        """Recognition over all frames (None entries = frames without a pose).

        allowed: restrict the answer to these exercises (probabilities renormalised over them)."""
        frames = list(frames)
        t, xy, vis = pose_arrays(frames)
        return self._decide(t, xy, vis, len(frames), allowed)

    def _decide(self, t, xy, vis, n_frames: int, allowed=None) -> Recognition:
        n_pose = int(t.size)
        if n_pose == 0:
            return _cannot_tell("no person was found in the frames", n_frames, 0)
        span = float(t.max() - t.min())
        if n_pose < MIN_POSE_FRAMES or span < MIN_DURATION_S:
            return _cannot_tell(f"too little to decide: {n_pose} frame(s) with a pose over {span:.2f} s "
                                f"(need at least {MIN_POSE_FRAMES} frames and {MIN_DURATION_S:g} s)",
                                n_frames, n_pose)
        feats = sequence_windows(t, xy, vis, self.window_s, self.hop_s)
        if not feats:
            return _cannot_tell("the shoulders and hips are not visible long enough to recognise the exercise",
                                n_frames, n_pose)
        return self.decide(self.evidence(np.stack(feats)), n_frames, n_pose, allowed)

    def decide(self, ev: Evidence, n_frames: int = 0, n_pose: int = 0, allowed=None) -> Recognition:
        """The answer from a clip's evidence (see `decision`)."""
        p = temper(ev.probs, self.temperature)
        classes = list(ev.exercises)
        if allowed is not None:
            allowed = set(allowed)
            mask = np.array([c in allowed for c in classes])
            if not mask.any():
                return _cannot_tell("none of the allowed exercises is known to the recogniser", n_frames, n_pose)
            p = np.where(mask, p, 0.0)
            p = p / p.sum()
        order = np.argsort(-p, kind="stable")
        top = tuple((classes[i], float(p[i])) for i in order[:TOP_K] if p[i] > 0)
        best, conf = top[0]
        nw = ev.windows
        if self.calibration.outcome(ev) == NONE_OF_THESE:
            if ev.movement < self.calibration.min_movement:
                why = "nothing moves: the body holds still"
            elif ev.activity < self.calibration.min_activity:
                why = f"only {ev.activity:.0%} of the movement looks like an exercise"
            else:
                why = (f"it looks most like {best.replace('_', ' ')}, but its posture is unlike any "
                       f"{best.replace('_', ' ')} the recogniser knows")
            return _cannot_tell(why, n_frames, n_pose, top, nw, NONE_OF_THESE)
        if conf < self.confidence_threshold:
            return _cannot_tell(f"low confidence: the best candidate {best} has {conf:.0%} "
                                f"(threshold {self.confidence_threshold:.0%})", n_frames, n_pose, top, nw)
        conf = self.calibration.confidence(ev, conf)
        top = ((best, conf),) + top[1:]
        return Recognition(best, conf, top, "", n_frames, n_pose, nw, NAMED)


_DEFAULT: ExerciseRecognizer | None = None


def default_recognizer() -> ExerciseRecognizer:
    """The committed model, loaded once per process."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = ExerciseRecognizer.load()
    return _DEFAULT
