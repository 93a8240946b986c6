"""Upload storage: an uploaded video saved under the uploads folder with a plain, unique name (atomic, size
limited), the earlier uploads listed, and a fresh folder name for each analysis.

The file on disk has a sanitised name (`20261205-041900_My_squat.mp4`); the name the user gave it is kept
as typed beside it (`.<stored name>.name.json`), so every page shows one name for one upload: the result's
heading, History and "Use an earlier upload" (plain text, never markup: it may be anything)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..core.confine import PathError, safe_join, sanitize_filename
from ..core.io import atomic_path, atomic_write_json
from ..media.video import VIDEO_EXTENSIONS

MAX_NAME = 255  # characters of the user's file name kept


class EmptyUploadError(ValueError):
    """An upload of 0 bytes."""


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
    if size == 0:
        raise EmptyUploadError(f"{original_name}: the file is empty (0 bytes)")
    if hasattr(data, "seek"):
        data.seek(0)
    with atomic_path(target) as tmp:
        if _copy_limited(data, tmp, max_bytes) == 0:
            raise EmptyUploadError(f"{original_name}: the file is empty (0 bytes)")
    with contextlib.suppress(OSError):  # (without it the sanitised name stands in)
        atomic_write_json(_name_file(target), {"name": " ".join(str(original_name).split())[:MAX_NAME]})
    return target


def _name_file(stored: Path) -> Path:
    return stored.with_name(f".{stored.name}.name.json")


def upload_display_name(stored_name: str) -> str:
    """The sanitised file name of a stored upload without its time stamp (store_upload prefixes one); see
    upload_name for the name as the user gave it."""
    m = re.match(r"^\d{8}-\d{6}(?:-\d+)?_(.+)$", stored_name)
    return m.group(1) if m else stored_name


def upload_name(stored: str | Path) -> str:
    """The file name the user gave a stored upload, as typed (whatever characters it holds); the sanitised
    name for uploads stored without one."""
    stored = Path(stored)
    try:
        name = json.loads(_name_file(stored).read_text(encoding="utf-8")).get("name")
    except (OSError, ValueError, AttributeError):
        name = None
    return name if isinstance(name, str) and name.strip() else upload_display_name(stored.name)


def remove_upload(stored: str | Path) -> None:
    """Delete a stored upload and the name kept beside it (missing files are fine)."""
    stored = Path(stored)
    for p in (stored, _name_file(stored)):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def sweep_orphan_names(root: str | Path) -> None:
    """Remove kept names whose upload is gone (removed by an older GymPose, or by hand)."""
    root = Path(root)
    for p in root.glob(".*.name.json") if root.is_dir() else ():
        if not (root / p.name[1:-len(".name.json")]).exists():
            with contextlib.suppress(OSError):
                p.unlink()


@dataclass(frozen=True)
class Upload:
    path: Path
    name: str  # as the user gave it (plain text)
    size: int
    uploaded: float  # time stamp (seconds since the epoch)


def list_uploads(root: str | Path) -> list[Upload]:
    """The earlier uploads, newest first, one per video: the same file uploaded again (same name and size)
    is listed once, as its newest copy."""
    out, seen = [], set()
    for p in list_files(root):
        try:
            st = p.stat()
        except OSError:
            continue
        u = Upload(p, upload_name(p), st.st_size, st.st_mtime)
        if (u.name, u.size) not in seen:
            seen.add((u.name, u.size))
            out.append(u)
    return out


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
