"""Penn Action through our rules: per-frame labels from the ground-truth joints (cached per dataset and
rules), angle statistics for tuning thresholds, and one labelled frame drawn. The export lives in
`penn_export`, the detector comparison in `penn_detector`.

Labels come from exactly the code the app uses on video: each annotated frame becomes a PoseFrame
(`penn.penn_to_pose_frame`) and goes through the same `session.Session` at 30 fps, so angles are
the smoothed values the phase and label were judged on. Joints Penn marks invisible have visibility 0
and give NaN angles.

Frame numbers in tables (`frame`) are 1-based, as in Penn's image names (`frames/0001/000001.jpg`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from ..core.io import atomic_path
from ..core.rules import RuleSet, load_rules, rule_to_dict
from ..core.session import Session
from ..core.types import FrameLabelKind
from ..media.drawing import draw_keypoint_label
from .penn import (GYM_CLASSES, camera_view, PENN_CONNECTIONS, PENN_FPS, PENN_SIDES_SWAPPED, PennClip, labels_dir,
                   penn_to_pose_frame, scan_dataset)

LABEL_VERSION = 1  # bump when the labelling logic changes: invalidates caches and export folders
ID_COLUMNS = ("clip", "frame", "action", "split", "view")
TAIL_COLUMNS = ("counting_value", "phase", "label", "reason")
LABELS = tuple(k.value for k in FrameLabelKind)  # correct, incorrect, unknown
PERCENTILES = (5, 25, 50, 75, 95)

ClipProgressFn = Callable[[int, int, str], None]  # (clips done, clips total, clip id)


# ------------------------------------------------------------------------------------------ labelling

def rules_fingerprint(rules: RuleSet, actions: Iterable[str] | None = None) -> str:
    """A short hash of everything that changes labels: the rules of `actions` (all when None), the
    defaults, the frame rate, the side mapping and LABEL_VERSION."""
    names = sorted(rules.exercises if actions is None else set(actions) & set(rules.exercises))
    doc = {
        "version": LABEL_VERSION, "fps": PENN_FPS, "sides_swapped": PENN_SIDES_SWAPPED,
        "defaults": vars(rules.defaults),
        "rules": {n: rule_to_dict(rules[n]) for n in names},
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def check_rules(rules: RuleSet, actions: Iterable[str]) -> None:
    missing = sorted(set(actions) - set(rules.exercises))
    if missing:
        raise ValueError(f"no rule for Penn action(s) {', '.join(missing)} in {rules.source}")


def angle_columns(rules: RuleSet, actions: Iterable[str]) -> list[str]:
    cols: list[str] = []
    for a in actions:
        for name in rules[a].angles:
            if name in ID_COLUMNS or name in TAIL_COLUMNS or name == "image":
                raise ValueError(f"angle name {name!r} of rule {a!r} clashes with a table column")
            if name not in cols:
                cols.append(name)
    return cols


def label_clip(clip: PennClip, rules: RuleSet, fps: float = PENN_FPS) -> pd.DataFrame:
    """One row per frame: clip, frame (1-based), action, split, view, each angle of the action's rule,
    counting_value (what the counter saw: the primary angle, detrended for heights), phase, label, reason."""
    return label_clip_with_reps(clip, rules, fps)[0]


@dataclass(frozen=True)
class ClipReps:
    """The reps the counter found on a clip's ground-truth joints."""

    reps: int
    reps_correct: int
    partial_reps: int

    @property
    def reps_incorrect(self) -> int:
        return self.reps - self.reps_correct


def label_clip_with_reps(clip: PennClip, rules: RuleSet, fps: float = PENN_FPS) -> tuple[pd.DataFrame, ClipReps]:
    """`label_clip` plus the reps counted on the way (same single pass through one Session)."""
    rule = rules[clip.action]
    session = Session(rule, rules.defaults, view=camera_view(clip))
    names = list(rule.angles)
    angles = np.full((clip.nframes, len(names)), np.nan)
    counting = np.full(clip.nframes, np.nan)
    phase, label, reason = [], [], []
    for i in range(clip.nframes):
        r = session.step(penn_to_pose_frame(clip, i, fps), i / fps)
        angles[i] = [r.angles[n] for n in names]
        counting[i] = r.counting_value
        phase.append(str(r.phase))
        label.append(str(r.label.label))
        reason.append(r.label.reason)
    session.finish()
    df = pd.DataFrame({
        "clip": clip.id, "frame": np.arange(1, clip.nframes + 1, dtype=np.int64), "action": clip.action,
        "split": clip.split, "view": clip.view,
    })
    for k, n in enumerate(names):
        df[n] = angles[:, k]
    df["counting_value"] = counting
    df["phase"] = phase
    df["label"] = label
    df["reason"] = reason
    reps = ClipReps(reps=len(session.reps), reps_correct=session.reps_correct, partial_reps=int(session.partial_reps))
    return df, reps


def label_summary(frames: pd.DataFrame) -> pd.DataFrame:
    """Per action: number of frames and the share (%) labelled correct / incorrect / unknown, and the
    share correct among judged (not unknown) frames."""
    counts = frames.groupby(["action", "label"]).size().unstack("label", fill_value=0)
    counts = counts.reindex(columns=list(LABELS), fill_value=0)
    total = counts.sum(axis=1)
    judged = counts["correct"] + counts["incorrect"]
    out = pd.DataFrame({"frames": total})
    for lab in LABELS:
        out[f"pct_{lab}"] = 100.0 * counts[lab] / total
    out["pct_correct_of_judged"] = 100.0 * counts["correct"] / judged.where(judged > 0)
    return out.reset_index()


# ---------------------------------------------------------------------- cached labelled frames

_MEMORY_CACHE: dict[str, pd.DataFrame] = {}
_MEMORY_CACHE_MAX = 4


def dataset_fingerprint(root: str | Path) -> str:
    """Changes when any label file is added, removed or modified (name, size, mtime): a cache key."""
    root = Path(root)
    h = hashlib.sha256(str(root.resolve()).encode())
    for p in sorted(labels_dir(root).glob("*.mat")):
        st = p.stat()
        h.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()[:16]


def labelled_frames(root: str | Path, rules: RuleSet | None = None, actions: Iterable[str] = GYM_CLASSES,
                    cache_dir: str | Path | None = None, progress: ClipProgressFn | None = None) -> pd.DataFrame:
    """`label_clip` for every clip of `actions`, concatenated (files that fail to load are skipped;
    `scan_dataset` reports them). Cached in the process and, with `cache_dir`, in a parquet file keyed
    on the dataset's files and the rules' fingerprint. Returns a copy the caller may modify."""
    root = Path(root)
    rules = rules or load_rules()
    actions = tuple(actions)
    check_rules(rules, actions)
    key = hashlib.sha256(json.dumps([dataset_fingerprint(root), rules_fingerprint(rules, actions),
                                     sorted(actions)]).encode()).hexdigest()[:20]
    cache_file = Path(cache_dir) / f"penn_labels_{key}.parquet" if cache_dir is not None else None
    if key in _MEMORY_CACHE:
        df = _MEMORY_CACHE[key]
        if cache_file is not None and not cache_file.exists():  # labelled earlier for another cache folder
            with atomic_path(cache_file) as tmp:
                df.to_parquet(tmp, index=False)
        return df.copy()
    df = None
    if cache_file is not None and cache_file.exists():
        with contextlib.suppress(Exception):  # an unreadable cache file is simply rebuilt
            df = pd.read_parquet(cache_file)
    if df is None:
        clips = scan_dataset(root, actions=actions).clips
        parts = []
        for k, clip in enumerate(clips):
            parts.append(label_clip(clip, rules))
            if progress is not None:
                progress(k + 1, len(clips), clip.id)
        columns = list(ID_COLUMNS) + angle_columns(rules, actions) + list(TAIL_COLUMNS)
        df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        df = df.reindex(columns=columns)
        if cache_file is not None:
            with atomic_path(cache_file) as tmp:
                df.to_parquet(tmp, index=False)
    while len(_MEMORY_CACHE) >= _MEMORY_CACHE_MAX:
        _MEMORY_CACHE.pop(next(iter(_MEMORY_CACHE)))
    _MEMORY_CACHE[key] = df
    return df.copy()


def angle_values(root: str | Path, rules: RuleSet | None, action: str, split: str | None = None,
                 cache_dir: str | Path | None = None) -> pd.DataFrame:
    """Every measured (non-NaN) angle value of one action, long format for histograms:
    clip, frame, split, view, phase, label, angle, value. `split` = "train" to tune without the test set."""
    rules = rules or load_rules()
    df = labelled_frames(root, rules, (action,), cache_dir)
    if split is not None:
        df = df[df["split"] == split]
    names = list(rules[action].angles)
    long = df.melt(id_vars=["clip", "frame", "split", "view", "phase", "label"], value_vars=names,
                   var_name="angle", value_name="value")
    return long.dropna(subset=["value"]).reset_index(drop=True)


def angle_stats(root: str | Path, rules: RuleSet | None = None, actions: Iterable[str] = GYM_CLASSES,
                split: str | None = None, cache_dir: str | Path | None = None) -> pd.DataFrame:
    """Per action, angle and phase (plus phase "all"): count of measured frames, mean, std and the
    5/25/50/75/95th percentiles (columns p5 ... p95)."""
    rules = rules or load_rules()
    actions = tuple(actions)
    df = labelled_frames(root, rules, actions, cache_dir)
    if split is not None:
        df = df[df["split"] == split]
    rows = []
    for action in actions:
        sub = df[df["action"] == action]
        for angle in rules[action].angles:
            groups = [("all", sub[angle])] + [(p, g[angle]) for p, g in sub.groupby("phase", sort=True)]
            for phase, series in groups:
                v = series.dropna().to_numpy(dtype=float)
                row = {"action": action, "angle": angle, "phase": phase, "count": int(v.size),
                       "mean": float(v.mean()) if v.size else math.nan,
                       "std": float(v.std(ddof=1)) if v.size > 1 else math.nan}
                pct = np.percentile(v, PERCENTILES) if v.size else [math.nan] * len(PERCENTILES)
                row.update({f"p{q}": float(x) for q, x in zip(PERCENTILES, pct)})
                rows.append(row)
    cols = ["action", "angle", "phase", "count", "mean", "std"] + [f"p{q}" for q in PERCENTILES]
    return pd.DataFrame(rows, columns=cols)


# ------------------------------------------------------------------------------------------ drawing

def draw_penn_label(image: np.ndarray, xy: np.ndarray, visibility: np.ndarray, label: str,
                    primary_name: str = "", primary_value: float = math.nan, reason: str = "",
                    unit: str = "deg") -> np.ndarray:
    """A copy of the (RGB) image with Penn's 13-joint skeleton (visible joints solid, invisible ones hollow),
    the primary angle and the label drawn on it, in the overlay's colours (`drawing.draw_keypoint_label`)."""
    return draw_keypoint_label(image, xy, visibility, PENN_CONNECTIONS, label, primary_name, primary_value, reason,
                               unit)


__all__ = [
    "ClipProgressFn", "ClipReps", "ID_COLUMNS", "LABELS", "LABEL_VERSION", "TAIL_COLUMNS", "angle_columns",
    "angle_stats", "angle_values", "check_rules", "dataset_fingerprint", "draw_penn_label", "label_clip",
    "label_clip_with_reps", "label_summary", "labelled_frames", "rules_fingerprint",
]
