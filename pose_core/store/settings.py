"""The one place environment variables are read: where the app keeps its state, how big an upload may be,
where the development data and Penn Action are, and which ICE servers the live page uses.

Everything is read at call time (never cached at import), so tests and deployments can point the app
elsewhere:

    GYMPOSE_HOME            workspace folder (default ./.gympose beside the checkout)
    GYMPOSE_HISTORY_DB      SQLite history database (default <workspace>/history.sqlite3)
    GYMPOSE_RULES           the user's rules file (default <workspace>/rules.toml)
    GYMPOSE_MAX_UPLOAD_MB   upload size limit checked by our own code (default 200, as .streamlit/config.toml)
    GYMPOSE_PENN_DIR        the Penn Action folder (default <shared data>/penn_action when present)
    GYMPOSE_SHARED_DATA     development data: real clips and Penn Action (default ../shared/data)
    GYMPOSE_NATIVE_LOGS     set to keep MediaPipe's native log lines on stderr (the CLI hides them)
    GYMPOSE_PARALLEL        auto (default): a video long enough to pay off is estimated on every core (time
                            chunks in worker processes); on: always; off: always in one process
    GYMPOSE_PARALLEL_MIN_S  "long enough" for auto, in seconds of video (default 8)
    GYMPOSE_WORKERS         pose worker processes for one video (default: the number of cores)
    GYMPOSE_DASK_SCHEDULER  a Dask scheduler address (tcp://host:8786): the dashboard's analyses run there
    GYMPOSE_ICE_SERVERS     JSON list of ICE servers for WebRTC, e.g.
                            '[{"urls": ["stun:stun.example.org:3478"]},
                              {"urls": ["turn:turn.example.org:3478"], "username": "u", "credential": "p"}]'
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

REPO_ROOT = Path(__file__).resolve().parents[2]
PENN_DIR_ENV = "GYMPOSE_PENN_DIR"
DEFAULT_MAX_UPLOAD_MB = 200


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
    penn_dir: Path | None = None  # None: no Penn Action folder configured or found

    @property
    def jobs_dir(self) -> Path:
        """Where analyses run as jobs keep their status (pose_core.run.jobs): <workspace>/jobs."""
        return self.workspace / "jobs"

    @property
    def labelled_dir(self) -> Path:
        """Clips the user labelled from corrected counts, with their videos.csv (`gympose evaluate` reads it):
        <workspace>/labelled_clips (store.corrections)."""
        return self.workspace / "labelled_clips"

    @property
    def live_gate(self) -> Path:
        """Through which the live page's frames go before this workspace's analyses (pose_core.run.live_gate)."""
        return self.workspace / "live.gate"

    @property
    def max_upload_mb(self) -> float:
        return self.max_upload_bytes / (1024 * 1024)

    def ensure_dirs(self) -> "Settings":
        for d in (self.workspace, self.uploads_dir, self.analyses_dir, self.jobs_dir, self.history_db.parent,
                  self.user_rules_path.parent):
            d.mkdir(parents=True, exist_ok=True)
        return self


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def shared_data_dir(env: Mapping[str, str] | None = None) -> Path:
    """The development data folder (`../shared/data` beside the checkout), or $GYMPOSE_SHARED_DATA."""
    return Path(_env(env).get("GYMPOSE_SHARED_DATA", REPO_ROOT.parent / "shared" / "data")).resolve()


def workspace_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where the app keeps its state (uploads, analyses, history DB, user rules): $GYMPOSE_HOME or ./.gympose."""
    home = _env(env).get("GYMPOSE_HOME")
    return Path(home).resolve() if home else (REPO_ROOT / ".gympose").resolve()


def configured_penn_root(env: Mapping[str, str] | None = None) -> Path | None:
    """$GYMPOSE_PENN_DIR when set (even if it does not exist: the page says so), else the development copy
    `<shared data>/penn_action` when present, else None."""
    env = _env(env)
    if env.get(PENN_DIR_ENV):
        return Path(env[PENN_DIR_ENV]).expanduser().resolve()
    dev = shared_data_dir(env) / "penn_action"
    return dev.resolve() if dev.is_dir() else None


def native_logs_wanted(env: Mapping[str, str] | None = None) -> bool:
    """$GYMPOSE_NATIVE_LOGS set: keep MediaPipe's native log lines on stderr."""
    return bool(_env(env).get("GYMPOSE_NATIVE_LOGS"))


def quiet_native_libraries() -> None:
    """Ask MediaPipe/TFLite (C++) to log only errors; must run before MediaPipe is first imported."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


PARALLEL_MODES = ("auto", "on", "off")
DEFAULT_PARALLEL_MIN_S = 8.0  # measured: bench/bench_pipeline.py (chunked vs single on short and long clips)


def parallel_mode(env: Mapping[str, str] | None = None) -> str:
    """$GYMPOSE_PARALLEL: auto | on | off (see the module docstring)."""
    raw = _env(env).get("GYMPOSE_PARALLEL", "").strip().lower() or "auto"
    aliases = {"1": "on", "true": "on", "yes": "on", "0": "off", "false": "off", "no": "off"}
    raw = aliases.get(raw, raw)
    if raw not in PARALLEL_MODES:
        raise SettingsError(f"GYMPOSE_PARALLEL: expected one of {', '.join(PARALLEL_MODES)}, got {raw!r}")
    return raw


def parallel_min_seconds(env: Mapping[str, str] | None = None) -> float:
    raw = _env(env).get("GYMPOSE_PARALLEL_MIN_S", "").strip()
    try:
        value = float(raw) if raw else DEFAULT_PARALLEL_MIN_S
    except ValueError:
        raise SettingsError(f"GYMPOSE_PARALLEL_MIN_S: expected seconds, got {raw!r}") from None
    if not value >= 0:
        raise SettingsError(f"GYMPOSE_PARALLEL_MIN_S: must be 0 or more, got {raw!r}")
    return value


def parallel_workers(env: Mapping[str, str] | None = None) -> int:
    """$GYMPOSE_WORKERS, else the cores this process may use."""
    raw = _env(env).get("GYMPOSE_WORKERS", "").strip()
    if raw:
        try:
            n = int(raw)
        except ValueError:
            raise SettingsError(f"GYMPOSE_WORKERS: expected a whole number, got {raw!r}") from None
        if n < 1:
            raise SettingsError(f"GYMPOSE_WORKERS: must be at least 1, got {raw!r}")
        return n
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def analysis_process(env: Mapping[str, str] | None = None) -> bool:
    """$GYMPOSE_ANALYSIS_PROCESS (on | off, default on): the dashboard runs its analyses in a process of their
    own at a lower priority (off: on a thread of the web server, as scripts and tests that patch the pipeline
    need)."""
    raw = _env(env).get("GYMPOSE_ANALYSIS_PROCESS", "").strip().lower() or "on"
    value = {"1": "on", "true": "on", "yes": "on", "0": "off", "false": "off", "no": "off"}.get(raw, raw)
    if value not in ("on", "off"):
        raise SettingsError(f"GYMPOSE_ANALYSIS_PROCESS: expected on or off, got {raw!r}")
    return value == "on"


def dask_scheduler(env: Mapping[str, str] | None = None) -> str | None:
    """$GYMPOSE_DASK_SCHEDULER: the Dask scheduler the dashboard's analyses run on (None: run here)."""
    return _env(env).get("GYMPOSE_DASK_SCHEDULER", "").strip() or None


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = _env(env)
    home = workspace_dir(env)
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
        penn_dir=configured_penn_root(env),
    )


# ------------------------------------------------------------------------------------------ access

ACCESS_PASSWORD_ENV = "GYMPOSE_ACCESS_PASSWORD"
ACCESS_PASSWORD_SECRET = "access_password"


def access_password(secrets: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> str:
    """The dashboard's access password: $GYMPOSE_ACCESS_PASSWORD, else `access_password` in
    .streamlit/secrets.toml, else "" (none configured)."""
    value = _env(env).get(ACCESS_PASSWORD_ENV) or (secrets or {}).get(ACCESS_PASSWORD_SECRET) or ""
    if not isinstance(value, str):
        raise SettingsError(f"{ACCESS_PASSWORD_SECRET}: expected a string")
    return value


def is_loopback(address: str | None) -> bool:
    """True when the server listens only on this machine (127.x, ::1, localhost). An empty address means
    Streamlit listens on every interface."""
    a = (address or "").strip().strip("[]").lower()
    return a in ("localhost", "::1") or a.startswith("127.")


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
    env = _env(env)
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
