"""The recogniser: a gradient-boosted tree ensemble stored as plain arrays (`model.npz`, read with
allow_pickle=False, + `model.json`), inference in numpy, and `ExerciseRecognizer`, which turns a pose
sequence into a `Recognition` (the exercise, or "cannot tell" with the reason and the candidates)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ...core.types import PoseFrame
from .features import (ARM_FEATURES, FEATURE_NAMES, HOP_S, MIN_VISIBILITY, NUM_FEATURES, RESAMPLE_HZ, WINDOW_S,
                       pose_arrays, sequence_windows)

DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[1] / "recognizer"  # package data: model.npz + model.json
MODEL_FORMAT = "gympose-recognizer/1"
MIN_POSE_FRAMES = 15  # fewer frames with a pose than this: cannot tell
MIN_DURATION_S = 0.5  # a shorter span of frames with a pose: cannot tell (Penn clips go down to 0.6 s)
CONFIDENCE_THRESHOLD = 0.5  # below this top probability the answer is "cannot tell"
TOP_K = 3


@dataclass(frozen=True)
class Recognition:
    """The recognised exercise, or None ("cannot tell") with `reason`.

    confidence: probability of the top candidate (0 when nothing could be computed).
    top: the best candidates as (exercise, probability), most likely first (empty when nothing could be
        computed).
    frames / frames_with_pose: what the decision was made on; windows: how many windows were averaged.
    """

    exercise: str | None
    confidence: float
    top: tuple[tuple[str, float], ...] = ()
    reason: str = ""
    frames: int = 0
    frames_with_pose: int = 0
    windows: int = 0

    @property
    def cannot_tell(self) -> bool:
        return self.exercise is None

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
        """One line for people: "squat (93%)" or "cannot tell: <reason> (candidates: ...)"."""
        if self.exercise is not None:
            return f"{self.exercise} ({self.confidence:.0%})"
        return f"cannot tell: {self.why_not}"

    def to_dict(self) -> dict:
        return {"exercise": self.exercise, "confidence": round(self.confidence, 4),
                "top": [[n, round(p, 4)] for n, p in self.top], "reason": self.reason,
                "frames": self.frames, "frames_with_pose": self.frames_with_pose, "windows": self.windows}


def _cannot_tell(reason: str, frames: int = 0, with_pose: int = 0, top=(), windows: int = 0) -> Recognition:
    conf = float(top[0][1]) if top else 0.0
    return Recognition(None, conf, tuple(top), reason, frames, with_pose, windows)


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

    def save(self, out_dir: str | Path, extra: dict | None = None) -> None:
        """model.npz (numpy arrays only) + model.json (classes, feature names, constants)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        arrays = {}
        for k in self.ARRAYS:
            a = np.asarray(getattr(self, k))
            arrays[k] = a.astype(self.STORED_DTYPES[k])
            if not np.array_equal(arrays[k].astype(a.dtype), a):
                raise ValueError(f"tree array {k!r} does not fit its stored type; save model.rounded()")
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


def temper(p: np.ndarray, temperature: float) -> np.ndarray:
    """p ** (1 / temperature), renormalised (softmax of log p / temperature)."""
    if temperature == 1.0:
        return p
    z = np.log(np.clip(p, 1e-12, 1.0)) / temperature
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def read_calibration(model_dir: str | Path) -> dict:
    """model.json's "calibration" entry ({} when the model has none)."""
    meta = json.loads((Path(model_dir) / "model.json").read_text())
    cal = meta.get("calibration") or {}
    t = cal.get("temperature", 1.0)
    if not isinstance(t, (int, float)) or not t > 0:
        raise ValueError(f"{model_dir}: invalid calibration temperature {t!r}")
    return cal


class ExerciseRecognizer:
    """Recognise the exercise in a sequence of pose frames. `ExerciseRecognizer.load()` reads the
    committed model; `predict(frames)` averages the class probabilities over windows of WINDOW_S."""

    def __init__(self, model: TreeEnsemble, confidence_threshold: float = CONFIDENCE_THRESHOLD,
                 window_s: float = WINDOW_S, hop_s: float = HOP_S, temperature: float = 1.0):
        """temperature: the calibration (model.json "calibration"): a sequence's window-averaged probabilities
        p become p ** (1 / temperature), renormalised; > 1 softens an over-confident model."""
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, not {temperature!r}")
        self.model = model
        self.confidence_threshold = confidence_threshold
        self.window_s = window_s
        self.hop_s = hop_s
        self.temperature = float(temperature)

    @property
    def classes(self) -> tuple[str, ...]:
        return self.model.classes

    @classmethod
    def load(cls, path: str | Path = DEFAULT_MODEL_DIR, **kw) -> "ExerciseRecognizer":
        kw.setdefault("temperature", read_calibration(path).get("temperature", 1.0))
        return cls(TreeEnsemble.load(path), **kw)

    def proba_arrays(self, t: np.ndarray, xy: np.ndarray, vis: np.ndarray) -> tuple[np.ndarray | None, int]:
        """Calibrated class probabilities of a sequence: the mean over its windows, tempered (None when no
        window is usable), and the number of windows."""
        feats = sequence_windows(t, xy, vis, self.window_s, self.hop_s)
        if not feats:
            return None, 0
        return temper(self.window_proba(np.stack(feats)).mean(axis=0), self.temperature), len(feats)

    def window_proba(self, x: np.ndarray) -> np.ndarray:
        """(n, NUM_FEATURES) -> (n, C): mean of the whole-body and the arms-ignored probabilities."""
        no_arms = np.array(x, dtype=np.float64, copy=True)
        no_arms[:, ARM_FEATURES] = np.nan
        return (self.model.proba(x) + self.model.proba(no_arms)) / 2

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
        p, nw = self.proba_arrays(t, xy, vis)
        if p is None:
            return _cannot_tell("the shoulders and hips are not visible long enough to recognise the exercise",
                                n_frames, n_pose)
        classes = list(self.classes)
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
        if conf < self.confidence_threshold:
            return _cannot_tell(f"low confidence: the best candidate {best} has {conf:.0%} "
                                f"(threshold {self.confidence_threshold:.0%})", n_frames, n_pose, top, nw)
        return Recognition(best, conf, top, "", n_frames, n_pose, nw)


_DEFAULT: ExerciseRecognizer | None = None


def default_recognizer() -> ExerciseRecognizer:
    """The committed model, loaded once per process."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = ExerciseRecognizer.load()
    return _DEFAULT
