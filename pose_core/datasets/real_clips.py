"""Real footage for the recogniser: the labelled clips of a shared data folder, the sources they come from
(for splits that never put one source on both sides), and their windows labelled from the counted reps.

A data folder holds sub-folders with a list each: `videos/videos.csv` and `form/videos.csv` (hand-counted
clips) and `recognition/labels.csv` and `pushfit/labels.csv` (`file, exercise`, no counts). `exercise` is one
of the 8 classes, or `none` for a movement that is none of them (dips). Poses come from a caller-given
function (the pose cache when training), so this module never runs the pose model itself.

Which windows show the exercise: the reps counted under the clip's own label (the counter of `core`, as the
analysis runs it) mark the active stretch, from the first rep's start to the last one's end. Windows inside
it (at least half of the window) are the exercise; windows wholly before or after it (walking in, setting up, standing after the set) are
OTHER, i.e. not one of the 8; windows that straddle an edge are left out (neither answer is right for them).
A clip whose label no rep was counted under gives all its windows to its label (short clips of one rep).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..core.rules import RuleSet
from ..core.session import Session
from ..core.types import PoseFrame
from ..recognition.features import pose_arrays, timed_windows

LISTS = (("videos", "videos.csv"), ("form", "videos.csv"), ("recognition", "labels.csv"), ("pushfit", "labels.csv"))
NONE_LABEL = "none"  # a clip of a movement that is none of the 8 exercises
OTHER = "other"  # the recogniser's class for "not one of the 8" (other sports, idle stretches, dips...)
ACTIVE_SHARE = 0.5  # a window shows the exercise when at least this share of it lies in the active stretch
MIN_IDLE_S = 1.5  # a shorter idle stretch at either end teaches nothing
EDGE_S = 1.0  # an idle window ends this long before the first rep starts (or starts after the last ends)
# "owner/name" of a dataset or repository named in a clip's provenance (e.g. a Kaggle set its clips come from)
_NAMED_SOURCE = re.compile(r"\b[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")

Poses = Sequence[tuple[float, PoseFrame | None]]  # (time s, pose or None), one per decoded frame


@dataclass(frozen=True)
class RealClip:
    path: Path
    exercise: str  # one of the 8 classes, or NONE_LABEL
    source: str  # the split group: clips of one group are never on both sides of a split
    folder: str  # videos / form / recognition / pushfit


def read_real_clips(root: str | Path, classes: Sequence[str]) -> list[RealClip]:
    """Every listed clip under root (lists that are absent are skipped); unknown labels are refused."""
    root = Path(root)
    rows = []
    for folder, name in LISTS:
        path = root / folder / name
        if path.is_file():
            with open(path, newline="", encoding="utf-8-sig") as f:
                rows += [(folder, r) for r in csv.DictReader(f)]
    groups = source_groups([r for _, r in rows])
    clips = []
    for (folder, r), group in zip(rows, groups):
        if r["exercise"] not in classes and r["exercise"] != NONE_LABEL:
            raise ValueError(f"{folder}: {r['file']}: unknown exercise {r['exercise']!r}")
        clips.append(RealClip(root / folder / r["file"], r["exercise"], group, folder))
    return clips


def source_groups(rows: list[dict]) -> list[str]:
    """One group name per row: rows whose repositories have the same owner, or whose provenance names the
    same original dataset (two repositories cutting clips from one Kaggle set), are one group (union-find).
    Rows without a source_repo are their own group."""
    parent: dict[str, str] = {}

    def find(k: str) -> str:
        while parent.setdefault(k, k) != k:
            k = parent[k]
        return k

    keys = []
    for i, r in enumerate(rows):
        repo = (r.get("source_repo") or "").strip()
        ks = [f"owner:{repo.split('/')[0].lower()}"] if repo else [f"row:{i}"]
        ks += [f"named:{m.lower()}" for m in _NAMED_SOURCE.findall(r.get("licence_note") or "") if m.lower() != repo.lower()]
        for k in ks[1:]:
            parent[find(k)] = find(ks[0])
        keys.append(ks[0])
    roots = [find(k) for k in keys]
    first_repo = {}
    for r, root in zip(rows, roots):  # a readable group name: its first repository
        first_repo.setdefault(root, (r.get("source_repo") or r.get("file") or root))
    return [first_repo[root] for root in roots]


def active_span(poses: Poses, exercise: str, rules: RuleSet) -> tuple[float, float] | None:
    """(first rep's start, last rep's end) counted under `exercise`'s rule, None when no rep is counted."""
    session = Session(rules[exercise], rules.defaults)
    for t, pose in poses:
        session.step(pose, t)
    session.finish()
    reps = session.reps
    if not reps:
        return None
    return min(r.start_s for r in reps), max(r.end_s for r in reps)


@dataclass(frozen=True)
class ClipWindows:
    """The training windows of one real clip: features (n, F) and their labels (class names)."""

    clip: RealClip
    x: np.ndarray
    labels: tuple[str, ...]
    span: tuple[float, float] | None
    idle: tuple[np.ndarray, ...] = ()  # the windows of each idle stretch (also among x, labelled OTHER)
    idle_spans: tuple[tuple[float, float], ...] = ()  # (start s, end s) of each idle stretch


def label_windows(t: np.ndarray, xy: np.ndarray, vis: np.ndarray, exercise: str, span: tuple[float, float] | None
                  ) -> tuple[list[tuple[np.ndarray, str]], list[tuple[float, float, np.ndarray]]]:
    """(features, label) of the windows a clip teaches (see the module docstring), and each idle stretch
    apart as (start s, end s, its windows). An idle stretch shorter than a window but at least MIN_IDLE_S long
    gives one shorter window (most clips start their set within seconds)."""
    timed = timed_windows(t, xy, vis)
    if exercise == NONE_LABEL:
        return [(v, OTHER) for _, _, v in timed], []
    if span is None:
        return [(v, exercise) for _, _, v in timed], []
    first, last = span
    out = []
    for t0, t1, v in timed:
        overlap = min(t1, last) - max(t0, first)
        if overlap >= min(ACTIVE_SHARE * (t1 - t0), 0.9 * (last - first)):
            out.append((v, exercise))
    idle = []
    if t.size:
        for lo, hi in ((t.min(), first - EDGE_S), (last + EDGE_S, t.max())):
            if hi - lo >= MIN_IDLE_S:
                keep = (t >= lo) & (t <= hi)
                vs = [v for _, _, v in timed_windows(t[keep], xy[keep], vis[keep])]
                if vs:
                    idle.append((float(lo), float(hi), np.stack(vs)))
                    out += [(v, OTHER) for v in vs]
    return out, idle


def clip_windows(clips: list[RealClip], poses_of: Callable[[Path], Poses], rules: RuleSet,
                 log: Callable[[str], None] = lambda _m: None) -> list[ClipWindows]:
    """The labelled windows of every clip (a clip with no usable window is kept with none)."""
    out = []
    for c in clips:
        poses = poses_of(c.path)
        span = active_span(poses, c.exercise, rules) if c.exercise in rules.exercises else None
        pairs, idle = label_windows(*pose_arrays(p for _, p in poses), c.exercise, span)
        x = np.stack([v for v, _ in pairs]) if pairs else np.zeros((0, 0))
        out.append(ClipWindows(c, x, tuple(lab for _, lab in pairs), span, tuple(v for _, _, v in idle),
                               tuple((lo, hi) for lo, hi, _ in idle)))
    log(f"real clips: {len(out)} clips, {sum(len(w.labels) for w in out)} windows "
        f"({sum(lab == OTHER for w in out for lab in w.labels)} of them {OTHER})")
    return out
