"""Labelled frames from your own videos: the seed of a dataset, as the Penn Action export is for Penn's frames.

After an analysis, every `every`-th frame of the video is written as a JPEG into the analysis folder

    frames/<label>/<frame 6 digits>.jpg   label: correct / incorrect / unknown (the frame's verdict)
    frames/manifest.csv                   video, frame, time_s, exercise, view, phase, label, reason,
                                          <primary angle>, image (relative to frames/), one row per image

(the same columns as the Penn export's manifest where they mean the same thing), and `frames_zip` packs that
folder into `frames.zip` once, for one download. The labels come from the analysis's frames.csv (row i is
decoded frame i), so nothing is re-judged and the pose model does not run again. The folder is written
under a temporary name and renamed at the end: a failure leaves the previous export (or none), never half.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import math
import os
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..core.io import atomic_path
from ..core.types import FrameLabelKind
from .outputs import FRAMES_CSV, read_frames_csv, read_summary

FRAMES_DIR = "frames"
FRAMES_ZIP = "frames.zip"
MANIFEST_CSV = "manifest.csv"
DEFAULT_EVERY = 10  # every 10th frame: 3 images a second of a 30 fps video
LABELS = tuple(k.value for k in FrameLabelKind)
MAX_SIDE = 1280  # as the analysis decodes: a phone's 4K frames are not needed to learn a pose


class FrameExportError(ValueError):
    """The frames cannot be exported (no analysis, unreadable video, bad option)."""


@dataclass(frozen=True)
class FrameExport:
    folder: Path  # <analysis>/frames
    manifest: Path
    images: int
    label_counts: dict[str, int] = field(default_factory=dict)


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One export (or zip) of a folder at a time: a second caller waits, then finds the work done."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _jpeg(image_rgb: np.ndarray, quality: int) -> bytes:
    import cv2  # (the media layer's dependency; imported here so reading a manifest does not need it)

    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise FrameExportError("a frame could not be encoded as JPEG")
    return buf.tobytes()


def _text(v) -> str:
    return "" if v is None or (isinstance(v, float) and not math.isfinite(v)) else str(v)


def export_labelled_frames(video: str | Path, analysis_dir: str | Path, every: int = DEFAULT_EVERY,
                           jpeg_quality: int = 90, progress: Callable[[int], None] | None = None) -> FrameExport:
    """Write every `every`-th frame of `video` (the video that was analysed into `analysis_dir`) as a JPEG
    into `<analysis_dir>/frames/<label>/`, with `frames/manifest.csv`. Replaces an earlier export of that
    folder. Raises FrameExportError (bad `every`, no analysis) or VideoError (unreadable video)."""
    from ..media.video import read_frames

    if every < 1:
        raise FrameExportError(f"--every must be 1 or more, got {every}")
    adir = Path(analysis_dir)
    try:
        summary = read_summary(adir)
        df = read_frames_csv(adir / FRAMES_CSV)
    except (OSError, ValueError, TypeError) as e:
        raise FrameExportError(f"{adir.name}: not a finished analysis ({e})") from None
    primary = summary.primary_angle
    labels = df["label"].fillna(FrameLabelKind.UNKNOWN).astype(str).tolist()
    reasons = df["reason"].fillna("").astype(str).tolist() if "reason" in df.columns else [""] * len(df)
    phases = df["phase"].fillna("").astype(str).tolist() if "phase" in df.columns else [""] * len(df)
    values = df[primary].tolist() if primary in df.columns else [math.nan] * len(df)
    times = df["time_s"].tolist()
    final = adir / FRAMES_DIR
    with _locked(adir):
        tmp = adir / f".{FRAMES_DIR}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            for lab in LABELS:
                (tmp / lab).mkdir(parents=True)
            counts = dict.fromkeys(LABELS, 0)
            rows = []
            for i, (_t, img) in enumerate(read_frames(video, max_side=MAX_SIDE)):
                if i >= len(df):
                    break  # (frames.csv has one row per decoded frame; a longer re-encode is cut here)
                if i % every:
                    continue
                label = labels[i] if labels[i] in counts else FrameLabelKind.UNKNOWN.value
                rel = f"{label}/{i:06d}.jpg"
                (tmp / rel).write_bytes(_jpeg(img, jpeg_quality))
                counts[label] += 1
                value = values[i]
                rows.append([summary.video, i, f"{times[i]:.4f}", summary.exercise, summary.view or "", phases[i],
                             label, reasons[i], "" if value != value else f"{value:.2f}", rel])
                if progress is not None:
                    progress(len(rows))
            with open(tmp / MANIFEST_CSV, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["video", "frame", "time_s", "exercise", "view", "phase", "label", "reason", primary or
                            "primary_angle", "image"])
                w.writerows([[_text(v) for v in r] for r in rows])
            old = adir / f".{FRAMES_DIR}.old-{os.getpid()}"
            if final.exists():
                os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                (adir / FRAMES_ZIP).unlink()  # the zip of an earlier export is stale now
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return FrameExport(folder=final, manifest=final / MANIFEST_CSV, images=len(rows),
                       label_counts={k: v for k, v in counts.items() if v})


def has_frames(analysis_dir: str | Path) -> bool:
    """The analysis folder holds an export of labelled frames made from its current frames.csv (an analysis
    re-run into the same folder makes an earlier export stale: its labels may differ)."""
    adir = Path(analysis_dir)
    try:
        return (adir / FRAMES_DIR / MANIFEST_CSV).stat().st_mtime_ns >= (adir / FRAMES_CSV).stat().st_mtime_ns
    except OSError:
        return False


def frames_zip(analysis_dir: str | Path) -> Path:
    """`<analysis_dir>/frames.zip` holding frames/ (manifest.csv and frames/<label>/*.jpg): built once
    (atomically) and reused while the export is unchanged. Raises FrameExportError without an export."""
    adir = Path(analysis_dir)
    if not has_frames(adir):
        raise FrameExportError(f"{adir.name}: no labelled frames were exported")
    out = adir / FRAMES_ZIP
    with _locked(adir):
        if out.is_file() and out.stat().st_mtime >= (adir / FRAMES_DIR / MANIFEST_CSV).stat().st_mtime:
            return out
        with atomic_path(out) as tmp:
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as z:  # JPEGs do not compress
                z.write(adir / FRAMES_DIR / MANIFEST_CSV, f"{FRAMES_DIR}/{MANIFEST_CSV}")
                for p in sorted((adir / FRAMES_DIR).glob("*/*.jpg")):
                    z.write(p, f"{FRAMES_DIR}/{p.parent.name}/{p.name}")
    return out


def labelled_frames_zip(analysis_dir: str | Path, video: str | Path | None, every: int = DEFAULT_EVERY) -> Path:
    """The zip of the labelled frames, exporting them first from `video` when the analysis has none yet
    (the dashboard's download: nothing is read or written until it is asked for)."""
    if not has_frames(analysis_dir):
        if video is None or not Path(video).is_file():
            raise FrameExportError("the analysed video is no longer available to take frames from")
        export_labelled_frames(video, analysis_dir, every=every)
    return frames_zip(analysis_dir)
