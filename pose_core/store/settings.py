"""Where the app keeps its state, how big an upload may be, and which ICE servers the live page uses.

Everything is read from the environment at call time (never cached at import), so tests and deployments
can point the app elsewhere:

    GYMPOSE_HOME            workspace folder (default ./.gympose, see pose_core.store.paths.workspace_dir)
    GYMPOSE_HISTORY_DB      SQLite history database (default <workspace>/history.sqlite3)
    GYMPOSE_RULES           the user's rules file (default <workspace>/rules.toml)
    GYMPOSE_MAX_UPLOAD_MB   upload size limit checked by our own code (default 200, as .streamlit/config.toml)
    GYMPOSE_ICE_SERVERS     JSON list of ICE servers for WebRTC, e.g.
                            '[{"urls": ["stun:stun.example.org:3478"]},
                              {"urls": ["turn:turn.example.org:3478"], "username": "u", "credential": "p"}]'

Only files under the configured folders are ever read or written on behalf of a user: `safe_join`
refuses any name that would leave its root, `sanitize_filename` turns an uploaded name into a plain one.
"""

from __future__ import annotations

import json
import os
import re
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Mapping

from ..core.io import atomic_path
from .paths import workspace_dir

DEFAULT_MAX_UPLOAD_MB = 200
VIDEO_EXTENSIONS = ("mp4", "mov", "m4v", "webm", "mkv", "avi")


class PathError(ValueError):
    """A user-supplied name would leave its folder, or is not allowed there."""


class UploadTooLargeError(ValueError):
    """An upload is bigger than the configured limit (the message says both sizes)."""


class SettingsError(ValueError):
    """A setting (environment variable or secret) has an invalid value; the message names it."""


@dataclass(frozen=True)
class Settings:
    workspace: Path
    uploads_dir: Path
    analyses_dir: Path
    history_db: Path
    user_rules_path: Path
    max_upload_bytes: int

    @property
    def max_upload_mb(self) -> float:
        return self.max_upload_bytes / (1024 * 1024)

    def ensure_dirs(self) -> "Settings":
        for d in (self.workspace, self.uploads_dir, self.analyses_dir, self.history_db.parent,
                  self.user_rules_path.parent):
            d.mkdir(parents=True, exist_ok=True)
        return self


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    home = Path(env["GYMPOSE_HOME"]).resolve() if env.get("GYMPOSE_HOME") else workspace_dir()
    raw_mb = env.get("GYMPOSE_MAX_UPLOAD_MB", "")
    try:
        mb = float(raw_mb) if raw_mb else DEFAULT_MAX_UPLOAD_MB
    except ValueError:
        raise SettingsError(f"GYMPOSE_MAX_UPLOAD_MB: expected a number of megabytes, got {raw_mb!r}") from None
    if not mb > 0:
        raise SettingsError(f"GYMPOSE_MAX_UPLOAD_MB: must be positive, got {raw_mb!r}")
    return Settings(
        workspace=home,
        uploads_dir=home / "uploads",
        analyses_dir=home / "analyses",
        history_db=Path(env["GYMPOSE_HISTORY_DB"]).resolve() if env.get("GYMPOSE_HISTORY_DB") else home / "history.sqlite3",
        user_rules_path=Path(env["GYMPOSE_RULES"]).resolve() if env.get("GYMPOSE_RULES") else home / "rules.toml",
        max_upload_bytes=int(mb * 1024 * 1024),
    )


# ------------------------------------------------------------------------------------------ WebRTC

def _check_ice_servers(servers: Any, source: str) -> list[dict]:
    if not isinstance(servers, list):
        raise SettingsError(f"{source}: expected a list of ICE servers, got {type(servers).__name__}")
    out = []
    for i, s in enumerate(servers):
        if not isinstance(s, Mapping) or "urls" not in s:
            raise SettingsError(f"{source}[{i}]: each ICE server needs 'urls'")
        urls = s["urls"]
        urls = [urls] if isinstance(urls, str) else list(urls)
        if not urls or not all(isinstance(u, str) and re.match(r"^(stun|stuns|turn|turns):", u) for u in urls):
            raise SettingsError(f"{source}[{i}].urls: expected stun:/turn: URLs, got {urls!r}")
        entry = {"urls": urls}
        for k in ("username", "credential"):
            if k in s:
                entry[k] = str(s[k])
        out.append(entry)
    return out


def ice_servers(env: Mapping[str, str] | None = None, secrets: Mapping[str, Any] | None = None) -> list[dict]:
    """ICE servers for WebRTC: $GYMPOSE_ICE_SERVERS (JSON) first, then `ice_servers` from the secrets mapping
    the dashboard passes in (Streamlit's st.secrets), else none (enough on one machine / a LAN)."""
    env = os.environ if env is None else env
    raw = env.get("GYMPOSE_ICE_SERVERS", "").strip()
    if raw:
        try:
            return _check_ice_servers(json.loads(raw), "GYMPOSE_ICE_SERVERS")
        except json.JSONDecodeError as e:
            raise SettingsError(f"GYMPOSE_ICE_SERVERS: not valid JSON ({e})") from None
    if secrets is not None and "ice_servers" in secrets:
        value = secrets["ice_servers"]
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as e:
                raise SettingsError(f"secrets ice_servers: not valid JSON ({e})") from None
        return _check_ice_servers([dict(v) for v in value] if isinstance(value, (list, tuple)) else value,
                                  "secrets ice_servers")
    return []


def rtc_configuration(env: Mapping[str, str] | None = None, secrets: Mapping[str, Any] | None = None) -> dict:
    return {"iceServers": ice_servers(env, secrets)}


# ------------------------------------------------------------------------------------ confinement

def safe_join(root: str | Path, name: str | Path) -> Path:
    """root/name, resolved, refusing anything that ends up outside root (.., absolute paths, symlinks out)."""
    root_r = Path(root).resolve()
    name = str(name)
    if not name or "\x00" in name:
        raise PathError(f"invalid file name {name!r}")
    candidate = (root_r / name).resolve()
    if candidate == root_r or root_r not in candidate.parents:
        raise PathError(f"{name!r} is outside {root_r}")
    return candidate


def is_within(root: str | Path, path: str | Path) -> bool:
    root_r = Path(root).resolve()
    p = Path(path).resolve()
    return p != root_r and root_r in p.parents


def sanitize_filename(name: str, default: str = "upload", max_len: int = 80) -> str:
    """A plain, portable file name: no folders, ASCII letters/digits/._- only, no leading dot."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode()
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._-")
    if not base:
        base = default
    stem, dot, ext = base.rpartition(".")
    stem = stem.strip("._-")
    if dot and stem and ext:
        ext = ext[:10].lower()
        return f"{stem[: max_len - len(ext) - 1]}.{ext}"
    return base[:max_len]


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
