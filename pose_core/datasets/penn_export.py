"""Penn Action export: every clip of the gym classes labelled into a folder (parts/<clip>.parquet, labelled
images, manifest.parquet + .csv, export.json with the rules fingerprint), resumable and atomic, with one
export (or batch) per folder at a time. `pose_core.run.batch` runs the same per-clip export in parallel."""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from ..core.io import atomic_path, atomic_write_text
from ..core.rules import RuleSet, load_rules
from .penn import GYM_CLASSES, PennClip, read_frame_image, scan_dataset
from .penn_labels import (ID_COLUMNS, LABEL_VERSION, TAIL_COLUMNS, ClipProgressFn, ClipReps, angle_columns,
                          check_rules, draw_penn_label, label_clip_with_reps, rules_fingerprint)


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
def export_lock(out_dir: Path):
    """One export (or batch) per folder at a time (advisory lock; no-op where fcntl is unavailable)."""
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
    """An RGB image as a JPEG file (OpenCV encodes BGR: converted here, at the edge)."""
    import cv2

    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise OSError(f"could not encode {path}")
    with atomic_path(path) as tmp:  # no fsync per image: renaming is enough to never leave half a file
        tmp.write_bytes(buf.tobytes())


def _export_images(clip: PennClip, df: pd.DataFrame, rules: RuleSet, out_dir: Path, quality: int,
                   errors: list[tuple[str, str]]) -> tuple[list[str], int]:
    """Labelled JPEGs for one clip; returns the relative image path per frame ("" when not written)."""
    rule = rules[clip.action]
    primary = rule.primary_angle
    unit = rule.primary.unit
    rel_paths = [""] * clip.nframes
    written = 0
    labels, values, reasons = df["label"].tolist(), df[primary].to_numpy(float), df["reason"].tolist()
    for i in range(clip.nframes):
        src = clip.frame_path(i)
        image = read_frame_image(src)
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
    return list(ID_COLUMNS) + angle_columns(rules, actions) + list(TAIL_COLUMNS) + ["image"]


def prepare_export_dir(out_dir: str | Path, rules: RuleSet, actions: Iterable[str], root: str | Path) -> str:
    """Make `out_dir` ready for (resumed) exporting: check or write export.json (the rules fingerprint),
    remove temporaries a killed run left, create parts/. Returns the fingerprint. Raises ValueError when
    the folder was made with other rules (its labels and image folders would be mixed).
    Call it while holding `export_lock(out_dir)`."""
    out_dir = Path(out_dir)
    actions = tuple(actions)
    check_rules(rules, actions)
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



def export_dataset(root: str | Path, out_dir: str | Path, rules: RuleSet | None = None,
                   progress: ClipProgressFn | None = None, limit: int | None = None,
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
    check_rules(rules, actions)
    scan = scan_dataset(root, actions=actions, split=split)
    clips = scan.clips[:limit] if limit is not None else scan.clips
    errors: list[tuple[str, str]] = [(str(p), m) for p, m in scan.errors]
    columns = export_columns(rules, actions)

    with export_lock(out_dir):
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


__all__ = [
    "ClipExport", "ExportReport", "export_clip", "export_columns", "export_dataset", "export_lock", "part_path",
    "prepare_export_dir", "write_manifest",
]
