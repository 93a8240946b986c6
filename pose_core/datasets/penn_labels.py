"""Penn Action through our rules: per-frame labels from the ground-truth joints, a resumable export
(manifest + labelled images), angle statistics for tuning thresholds, and a detector comparison.

Labels come from exactly the code the app uses on video: each annotated frame becomes a PoseFrame
(`penn.penn_to_pose_frame`) and goes through `analysis.FrameAnalyzer.process` at 30 fps, so angles are
the smoothed values the phase and label were judged on. Joints Penn marks invisible have visibility 0
and give NaN angles.

Frame numbers in tables (`frame`) are 1-based, as in Penn's image names (`frames/0001/000001.jpg`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from ..core.analysis import FrameAnalyzer
from ..core.geometry import measure
from ..core.io import atomic_path, atomic_write_text
from .penn import (GYM_CLASSES, PENN_CONNECTIONS, PENN_FPS, PENN_JOINTS, PENN_SIDES_SWAPPED, PennClip,
                   bbox_size_px, labels_dir, penn_to_pose_frame, pose_frame_to_penn, scan_dataset)
from ..core.rules import RuleSet, load_rules, rule_to_dict

LABEL_VERSION = 1  # bump when the labelling logic changes: invalidates caches and export folders
ID_COLUMNS = ("clip", "frame", "action", "split", "view")
TAIL_COLUMNS = ("counting_value", "phase", "label", "reason")
LABELS = ("correct", "incorrect", "unknown")
PERCENTILES = (5, 25, 50, 75, 95)

ProgressFn = Callable[[int, int, str], None]  # (clips done, clips total, clip id)


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


def _check_rules(rules: RuleSet, actions: Iterable[str]) -> None:
    missing = sorted(set(actions) - set(rules.exercises))
    if missing:
        raise ValueError(f"no rule for Penn action(s) {', '.join(missing)} in {rules.source}")


def _angle_columns(rules: RuleSet, actions: Iterable[str]) -> list[str]:
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
    """`label_clip` plus the reps counted on the way (same single pass through FrameAnalyzer)."""
    rule = rules[clip.action]
    analyzer = FrameAnalyzer(rule, rules.defaults)
    names = list(rule.angles)
    angles = np.full((clip.nframes, len(names)), np.nan)
    counting = np.full(clip.nframes, np.nan)
    phase, label, reason = [], [], []
    for i in range(clip.nframes):
        r = analyzer.process(penn_to_pose_frame(clip, i, fps), i / fps)
        angles[i] = [r.angles[n] for n in names]
        counting[i] = r.counting_value
        phase.append(r.phase)
        label.append(r.label.label)
        reason.append(r.label.reason)
    analyzer.finish()
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
    reps = ClipReps(reps=len(analyzer.reps), reps_correct=sum(r.verdict == "correct" for r in analyzer.reps),
                    partial_reps=int(analyzer.counter.partial_reps))
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
                    cache_dir: str | Path | None = None, progress: ProgressFn | None = None) -> pd.DataFrame:
    """`label_clip` for every clip of `actions`, concatenated (files that fail to load are skipped;
    `scan_dataset` reports them). Cached in the process and, with `cache_dir`, in a parquet file keyed
    on the dataset's files and the rules' fingerprint. Returns a copy the caller may modify."""
    root = Path(root)
    rules = rules or load_rules()
    actions = tuple(actions)
    _check_rules(rules, actions)
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
        columns = list(ID_COLUMNS) + _angle_columns(rules, actions) + list(TAIL_COLUMNS)
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

_LABEL_COLOURS = {"correct": (60, 180, 60), "incorrect": (40, 40, 220), "unknown": (160, 160, 160)}  # BGR


def draw_penn_label(image_bgr: np.ndarray, xy: np.ndarray, visibility: np.ndarray, label: str,
                    primary_name: str = "", primary_value: float = math.nan, reason: str = "",
                    unit: str = "deg") -> np.ndarray:
    """A copy of the image with Penn's 13-joint skeleton (visible joints solid, invisible ones hollow),
    the primary angle and the label drawn on it. Minimal on purpose: the shared drawing module will
    replace it."""
    import cv2

    img = image_bgr.copy()
    h, w = img.shape[:2]
    scale = max(0.4, min(w, h) / 480.0)
    thick = max(1, int(round(2 * scale)))
    colour = _LABEL_COLOURS.get(label, _LABEL_COLOURS["unknown"])
    pts = [(int(round(x)), int(round(y))) for x, y in np.asarray(xy, dtype=float)]
    vis = np.asarray(visibility).astype(bool)
    for a, b in PENN_CONNECTIONS:
        if vis[a] and vis[b]:
            cv2.line(img, pts[a], pts[b], colour, thick, cv2.LINE_AA)
    for j, p in enumerate(pts):
        cv2.circle(img, p, max(2, thick + 1), colour if vis[j] else (200, 200, 200), -1 if vis[j] else 1, cv2.LINE_AA)
    text = label
    if primary_name:
        value = f"{primary_value:.0f}" if math.isfinite(primary_value) else "--"
        text = f"{label}  {primary_name} {value} {unit}"
    lines = [text] + ([reason[:60]] if reason else [])
    y = int(22 * scale)
    for line in lines:
        cv2.putText(img, line, (6, y), cv2.FONT_HERSHEY_SIMPLEX, 0.55 * scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
        cv2.putText(img, line, (6, y), cv2.FONT_HERSHEY_SIMPLEX, 0.55 * scale, colour, thick, cv2.LINE_AA)
        y += int(22 * scale)
    return img


# ------------------------------------------------------------------------------------------- export

@dataclass(frozen=True)
class ExportReport:
    out_dir: Path
    manifest_csv: Path
    manifest_parquet: Path
    clips_total: int
    clips_written: int  # labelled in this run
    clips_skipped: int  # already exported by an earlier run
    frames: int
    images_written: int  # in this run
    label_counts: dict[str, int] = field(default_factory=dict)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (file, message)
    elapsed_s: float = 0.0


@contextlib.contextmanager
def _export_lock(out_dir: Path):
    """One export per folder at a time (advisory lock; no-op where fcntl is unavailable)."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / ".export.lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"another export is already running in {out_dir}") from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _remove_stale_temporaries(out_dir: Path) -> None:
    """Temporary files left by a killed run (atomic_path names them .<name>.<random><suffix>.tmp)."""
    for sub in ("parts", "images", "."):
        d = out_dir / sub
        if d.is_dir():
            for p in d.rglob(".*.tmp") if sub != "." else d.glob(".*.tmp"):
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()


def _write_image(path: Path, image: np.ndarray, quality: int) -> None:
    import cv2

    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise OSError(f"could not encode {path}")
    with atomic_path(path) as tmp:  # no fsync per image: renaming is enough to never leave half a file
        tmp.write_bytes(buf.tobytes())


def _export_images(clip: PennClip, df: pd.DataFrame, rules: RuleSet, out_dir: Path, quality: int,
                   errors: list[tuple[str, str]]) -> tuple[list[str], int]:
    """Labelled JPEGs for one clip; returns the relative image path per frame ("" when not written)."""
    import cv2

    rule = rules[clip.action]
    primary = rule.primary_angle
    unit = rule.primary.unit
    rel_paths = [""] * clip.nframes
    written = 0
    labels, values, reasons = df["label"].tolist(), df[primary].to_numpy(float), df["reason"].tolist()
    for i in range(clip.nframes):
        src = clip.frame_path(i)
        image = cv2.imread(str(src)) if src is not None and src.exists() else None
        if image is None:
            errors.append((str(src), "frame image missing or unreadable"))
            continue
        rel = Path("images") / clip.action / labels[i] / f"{clip.id}_{i + 1:06d}.jpg"
        drawn = draw_penn_label(image, clip.xy[i], clip.visibility[i], labels[i], primary, values[i], reasons[i], unit)
        _write_image(out_dir / rel, drawn, quality)
        rel_paths[i] = rel.as_posix()
        written += 1
    return rel_paths, written


def export_columns(rules: RuleSet, actions: Iterable[str]) -> list[str]:
    """The manifest's columns for these actions, in order."""
    return list(ID_COLUMNS) + _angle_columns(rules, actions) + list(TAIL_COLUMNS) + ["image"]


def prepare_export_dir(out_dir: str | Path, rules: RuleSet, actions: Iterable[str], root: str | Path) -> str:
    """Make `out_dir` ready for (resumed) exporting: check or write export.json (the rules fingerprint),
    remove temporaries a killed run left, create parts/. Returns the fingerprint. Raises ValueError when
    the folder was made with other rules (its labels and image folders would be mixed).
    Call it while holding `export_lock(out_dir)`."""
    out_dir = Path(out_dir)
    actions = tuple(actions)
    _check_rules(rules, actions)
    fingerprint = rules_fingerprint(rules, actions)
    meta_path = out_dir / "export.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("rules_fingerprint") != fingerprint:
            raise ValueError(f"{out_dir} holds an export made with other rules or another version "
                             f"({meta.get('rules_fingerprint')} != {fingerprint}); use a new folder")
    else:
        atomic_write_text(meta_path, json.dumps({"rules_fingerprint": fingerprint, "label_version": LABEL_VERSION,
                                                 "rules_source": rules.source, "dataset": str(Path(root).resolve())},
                                                indent=2) + "\n")
    _remove_stale_temporaries(out_dir)
    (out_dir / "parts").mkdir(parents=True, exist_ok=True)
    return fingerprint


def part_path(out_dir: str | Path, clip_id: str) -> Path:
    """Where one finished clip's rows live; its existence means "done" for resuming."""
    return Path(out_dir) / "parts" / f"{clip_id}.parquet"


@dataclass(frozen=True)
class ClipExport:
    """What exporting one clip produced."""

    clip: str
    action: str
    frames: int
    images_written: int
    reps: ClipReps
    label_counts: dict[str, int] = field(default_factory=dict)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (file, message), e.g. a missing frame image


def export_clip(clip: PennClip, rules: RuleSet, out_dir: str | Path, jpeg_quality: int = 90,
                images: bool = True) -> ClipExport:
    """Label one clip into `out_dir`: labelled images (when its frames exist and `images`) first, then
    parts/<clip>.parquet, written atomically last, so the part file only exists for a finished clip.
    Safe to run for different clips in parallel processes (every file has its own name)."""
    out_dir = Path(out_dir)
    df, reps = label_clip_with_reps(clip, rules)
    errors: list[tuple[str, str]] = []
    n_images = 0
    if images and clip.frames_dir is not None:
        rel, n_images = _export_images(clip, df, rules, out_dir, jpeg_quality, errors)
        df["image"] = rel
    else:
        df["image"] = ""
    with atomic_path(part_path(out_dir, clip.id)) as tmp:
        df.to_parquet(tmp, index=False)
    counts = {lab: int(n) for lab, n in df["label"].value_counts().items()}
    return ClipExport(clip=clip.id, action=clip.action, frames=len(df), images_written=n_images, reps=reps,
                      label_counts=counts, errors=errors)


def write_manifest(out_dir: str | Path, clip_ids: Iterable[str], columns: list[str]) -> tuple[Path, Path, pd.DataFrame]:
    """Concatenate the part files of `clip_ids` (in that order) into manifest.parquet and manifest.csv,
    each written atomically. Returns (csv path, parquet path, the manifest)."""
    out_dir = Path(out_dir)
    frames = [pd.read_parquet(part_path(out_dir, c)) for c in clip_ids]
    manifest = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    manifest = manifest.reindex(columns=columns)
    manifest["image"] = manifest["image"].fillna("")
    pq, csv = out_dir / "manifest.parquet", out_dir / "manifest.csv"
    with atomic_path(pq) as tmp:
        manifest.to_parquet(tmp, index=False)
    with atomic_path(csv) as tmp:
        manifest.to_csv(tmp, index=False)
    return csv, pq, manifest


export_lock = _export_lock  # public name: one export (or batch) per folder at a time


def export_dataset(root: str | Path, out_dir: str | Path, rules: RuleSet | None = None,
                   progress: ProgressFn | None = None, limit: int | None = None,
                   actions: Iterable[str] = GYM_CLASSES, split: str | None = None,
                   jpeg_quality: int = 90) -> ExportReport:
    """Label every clip of `actions` (the first `limit` clips by id when given) into `out_dir`:

        parts/<clip>.parquet                      one finished clip each (written atomically)
        images/<action>/<label>/<clip>_<frame>.jpg  when the frames exist (frame 1-based, 6 digits)
        manifest.parquet, manifest.csv            all rows: clip, frame, action, split, view, angles...,
                                                  counting_value, phase, label, reason, image
        export.json                               the rules fingerprint the folder was made with

    Resumable: a clip whose part file exists is skipped, so re-running after an interruption (an
    exception, including one raised by `progress(done, total, clip_id)`, or a killed process) finishes
    the job. Every file is written under a temporary name and renamed. Re-using a folder made with
    different rules raises ValueError (its labels and image folders would be mixed).
    `python -m pose_core batch DATASET --penn` does the same in parallel (pose_core.run.batch)."""
    t0 = time.perf_counter()
    root, out_dir = Path(root), Path(out_dir)
    rules = rules or load_rules()
    actions = tuple(actions)
    _check_rules(rules, actions)
    scan = scan_dataset(root, actions=actions, split=split)
    clips = scan.clips[:limit] if limit is not None else scan.clips
    errors: list[tuple[str, str]] = [(str(p), m) for p, m in scan.errors]
    columns = export_columns(rules, actions)

    with _export_lock(out_dir):
        prepare_export_dir(out_dir, rules, actions, root)
        written = skipped = images = 0
        for k, clip in enumerate(clips):
            if part_path(out_dir, clip.id).exists():
                skipped += 1
            else:
                done = export_clip(clip, rules, out_dir, jpeg_quality)
                errors.extend(done.errors)
                images += done.images_written
                written += 1
            if progress is not None:
                progress(k + 1, len(clips), clip.id)
        csv, pq, manifest = write_manifest(out_dir, [c.id for c in clips], columns)

    counts = {lab: int(n) for lab, n in manifest["label"].value_counts().items()} if len(manifest) else {}
    return ExportReport(out_dir=out_dir, manifest_csv=csv, manifest_parquet=pq, clips_total=len(clips),
                        clips_written=written, clips_skipped=skipped, frames=len(manifest), images_written=images,
                        label_counts=counts, errors=errors, elapsed_s=time.perf_counter() - t0)


# -------------------------------------------------------------------------------- detector check

def _default_estimator():
    from ..media.estimator import PoseEstimator

    return PoseEstimator(static_image_mode=False)


def compare_detector(clip: PennClip, estimator_factory: Callable[[], object] | None = None,
                     rules: RuleSet | None = None, max_frames: int | None = None, alpha: float = 0.2,
                     fps: float = PENN_FPS) -> dict:
    """Run a pose estimator on a clip's frames and compare it with the ground truth.

    PCK@alpha: a GT-visible joint is correct when the detected joint is within alpha x max(bbox width,
    bbox height) pixels of it (the frame's Penn bounding box; for the padded last row of the two short
    sequences, the box around the annotated joints). A frame without a detection counts all its visible
    joints as misses (`pck`); `pck_detected` uses only frames with a detection.
    Angle error: mean absolute difference, in degrees, between each joint/segment angle of the action's
    rule measured (unsmoothed, as `geometry.measure`) on the GT pose and on the detected pose, over
    frames where both are defined. Height-type values (not degrees) are left out.

    `estimator_factory()` must return a context manager with `process(image_bgr, timestamp_s) ->
    PoseFrame | None` (default: PoseEstimator(static_image_mode=False)). Raises FileNotFoundError when
    the clip has no frames folder.
    """
    import cv2

    if clip.frames_dir is None:
        raise FileNotFoundError(f"clip {clip.id} ({clip.labels_path}) has no frames folder")
    rules = rules or load_rules()
    rule = rules[clip.action] if clip.action in rules.exercises else None
    deg_angles = {n: d for n, d in (rule.angles.items() if rule else ()) if d.kind in ("joint", "segment")}
    min_vis = rules.defaults.min_visibility
    n = clip.nframes if max_frames is None else min(clip.nframes, max_frames)

    visible = np.zeros(len(PENN_JOINTS), dtype=np.int64)  # GT-visible joints over all read frames
    hits = np.zeros(len(PENN_JOINTS), dtype=np.int64)
    visible_det = np.zeros(len(PENN_JOINTS), dtype=np.int64)  # ... over frames with a detection
    dists: list[list[float]] = [[] for _ in PENN_JOINTS]  # normalised distance per joint (detected frames)
    angle_err: dict[str, list[float]] = {a: [] for a in deg_angles}
    frames_read = detections = 0
    factory = estimator_factory or _default_estimator
    with factory() as est:
        for i in range(n):
            path = clip.frame_path(i)
            image = cv2.imread(str(path)) if path is not None and path.exists() else None
            if image is None:
                continue
            frames_read += 1
            gt_vis = clip.visibility[i]
            visible += gt_vis
            det = est.process(image, i / fps)
            if det is None:
                continue
            detections += 1
            visible_det += gt_vis
            # The detector sees the real image; scale to the annotation's size if the two differ.
            xy, _ = pose_frame_to_penn(det)
            xy = xy * np.array([clip.width / det.image_size[0], clip.height / det.image_size[1]])
            norm = alpha * bbox_size_px(clip, i)
            d = np.hypot(*(xy - clip.xy[i]).T)
            ok = gt_vis & (d <= norm)
            hits += ok
            for j in np.flatnonzero(gt_vis):
                dists[j].append(float(d[j] / max(norm / alpha, 1e-9)))
            gt = penn_to_pose_frame(clip, i, fps)
            for name, ad in deg_angles.items():
                a, b = measure(gt, ad, min_vis), measure(det, ad, min_vis)
                if math.isfinite(a) and math.isfinite(b):
                    angle_err[name].append(abs(a - b))

    def ratio(a: float, b: float) -> float:
        return float(a) / float(b) if b else math.nan

    per_joint = {name: {"visible": int(visible[j]), "correct": int(hits[j]), "pck": ratio(hits[j], visible[j]),
                        "pck_detected": ratio(hits[j], visible_det[j]),
                        "median_dist_bbox": float(np.median(dists[j])) if dists[j] else math.nan}
                 for j, name in enumerate(PENN_JOINTS)}
    angle_mae = {a: (float(np.mean(v)) if v else math.nan) for a, v in angle_err.items()}
    finite = [v for v in angle_mae.values() if math.isfinite(v)]
    return {
        "clip": clip.id, "action": clip.action, "frames": n, "frames_read": frames_read,
        "detections": detections, "detection_rate": ratio(detections, frames_read),
        "alpha": alpha, "normaliser": f"{alpha} x max(bbox width, bbox height) per frame",
        "pck": ratio(hits.sum(), visible.sum()), "pck_detected": ratio(hits.sum(), visible_det.sum()),
        "per_joint": per_joint,
        "angle_mae_deg": angle_mae, "angle_pairs": {a: len(v) for a, v in angle_err.items()},
        "mean_angle_mae_deg": float(np.mean(finite)) if finite else math.nan,
    }


__all__ = [
    "ClipExport", "ClipReps", "ExportReport", "ID_COLUMNS", "LABEL_VERSION", "TAIL_COLUMNS", "angle_stats",
    "angle_values", "compare_detector", "draw_penn_label", "export_clip", "export_columns", "export_dataset",
    "export_lock", "label_clip", "label_clip_with_reps", "label_summary", "labelled_frames", "part_path",
    "prepare_export_dir", "rules_fingerprint", "write_manifest",
]
