"""Upload storage: an uploaded video saved under the uploads folder with a plain, unique name (atomic, size
limited), the earlier uploads listed, and a fresh folder name for each analysis."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import BinaryIO

from ..core.confine import PathError, safe_join, sanitize_filename
from ..core.io import atomic_path
from ..media.video import VIDEO_EXTENSIONS


class UploadTooLargeError(ValueError):
    """An upload is bigger than the configured limit (the message says both sizes)."""


def _copy_limited(src: BinaryIO | bytes, dst: Path, max_bytes: int) -> int:
    if isinstance(src, (bytes, bytearray, memoryview)):
        if len(src) > max_bytes:
            raise UploadTooLargeError(_too_large(len(src), max_bytes))
        dst.write_bytes(bytes(src))
        return len(src)
    n = 0
    with open(dst, "wb") as f:
        while True:
            chunk = src.read(1 << 20)
            if not chunk:
                break
            n += len(chunk)
            if n > max_bytes:
                raise UploadTooLargeError(_too_large(n, max_bytes, at_least=True))
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())
    return n


def _too_large(size: int, limit: int, at_least: bool = False) -> str:
    return (f"The file is {'over ' if at_least else ''}{size / 2**20:.1f} MB; the limit is {limit / 2**20:.0f} MB. "
            "Trim the video or lower its resolution and try again.")


def store_upload(data: BinaryIO | bytes, original_name: str, uploads_dir: str | Path, max_bytes: int,
                 size: int | None = None, allowed_ext: tuple[str, ...] = VIDEO_EXTENSIONS) -> Path:
    """Save an uploaded file under uploads_dir with a sanitized, unique name; atomic (never half-written).

    The size is checked before anything is written (when known) and again while copying."""
    if size is not None and size > max_bytes:
        raise UploadTooLargeError(_too_large(size, max_bytes))
    clean = sanitize_filename(original_name, default="video.mp4")
    ext = clean.rpartition(".")[2].lower() if "." in clean else ""
    if allowed_ext and ext not in allowed_ext:
        raise PathError(f"{original_name!r}: expected a video file ({', '.join(allowed_ext)})")
    uploads = Path(uploads_dir)
    uploads.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = safe_join(uploads, f"{stamp}_{clean}")
    n = 1
    while target.exists():
        n += 1
        target = safe_join(uploads, f"{stamp}-{n}_{clean}")
    if hasattr(data, "seek"):
        data.seek(0)
    with atomic_path(target) as tmp:
        _copy_limited(data, tmp, max_bytes)
    return target


def upload_display_name(stored_name: str) -> str:
    """The user's file name of a stored upload (store_upload prefixes a time stamp)."""
    m = re.match(r"^\d{8}-\d{6}(?:-\d+)?_(.+)$", stored_name)
    return m.group(1) if m else stored_name


def list_files(root: str | Path, extensions: tuple[str, ...] = VIDEO_EXTENSIONS) -> list[Path]:
    """Regular files directly under root with one of the extensions, newest first (symlinks ignored)."""
    root = Path(root)
    if not root.is_dir():
        return []
    files = [p for p in root.iterdir() if p.is_file() and not p.is_symlink() and not p.name.startswith(".")
             and p.suffix.lower().lstrip(".") in extensions]
    return sorted(files, key=lambda p: p.stat().st_mtime, reverse=True)


def new_analysis_dir(analyses_dir: str | Path, video_name: str, exercise: str) -> Path:
    """A fresh, unique folder name for one analysis under analyses_dir (not created)."""
    stem = sanitize_filename(Path(upload_display_name(video_name)).stem, default="video")[:40]
    base = f"{time.strftime('%Y%m%d-%H%M%S')}_{stem}_{sanitize_filename(exercise, default='exercise')}"
    target = safe_join(analyses_dir, base)
    n = 1
    while target.exists():
        n += 1
        target = safe_join(analyses_dir, f"{base}-{n}")
    return target
