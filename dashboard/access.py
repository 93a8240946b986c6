"""Who may open the dashboard. Private by default: `.streamlit/config.toml` binds the server to 127.0.0.1.
Served on a network (another `server.address`), every visitor shares one workspace (history, rules,
uploads), so an access password is then required before any page renders; without one configured the app
refuses to run. A configured password is asked for on localhost too. The password is compared in
constant time (hmac.compare_digest); a browser session that gave it stays open until it is closed. Guessing
is slowed down per server, not per browser session (dashboard.password_guard)."""

from __future__ import annotations

import hashlib
import hmac
import math
import time

import streamlit as st

from dashboard import keys
from dashboard.password_guard import GuessLimiter
from pose_core.store.settings import (ACCESS_PASSWORD_ENV, ACCESS_PASSWORD_SECRET, SettingsError, access_password,
                                      is_loopback, load_settings)

WRONG_PASSWORD_DELAY_S = 1.0  # a wrong password is answered this late (on top of the server's limits)
ATTEMPTS_FILE = "access_attempts.json"  # the wrong-password counts, in the workspace


@st.cache_resource(show_spinner=False)
def _limiter(path: str) -> GuessLimiter:
    """One per server process and workspace: shared by every browser session."""
    return GuessLimiter(path or None)


def _guard() -> GuessLimiter:
    try:
        path = str(load_settings().workspace / ATTEMPTS_FILE)
    except (SettingsError, OSError):
        path = ""  # (the counts are then kept in memory only)
    return _limiter(path)


def _seconds(s: float) -> str:
    n = max(1, math.ceil(s))
    return f"{n} second{'s' if n != 1 else ''}" if n < 120 else f"{math.ceil(n / 60)} minutes"


def _secrets() -> dict:
    try:
        return {ACCESS_PASSWORD_SECRET: st.secrets[ACCESS_PASSWORD_SECRET]} if ACCESS_PASSWORD_SECRET in st.secrets else {}
    except Exception:  # no secrets.toml at all: Streamlit raises its own error types here
        return {}


def _digest(password: str) -> str:
    return hashlib.sha256(password.encode("utf-8")).hexdigest()


def require_access() -> None:
    """Returns when this visitor may see the pages; otherwise renders the password box (or the reason the
    app is closed) and stops the script run."""
    try:
        password = access_password(_secrets())
    except SettingsError as e:
        st.error(f"GymPose is not configured correctly: {e}")
        st.stop()
    if not password:
        if is_loopback(st.get_option("server.address")):
            return
        st.error(f"GymPose is served on a network but no access password is set: set {ACCESS_PASSWORD_ENV} or "
                 f"`{ACCESS_PASSWORD_SECRET}` in .streamlit/secrets.toml and restart (see the README, *Serving "
                 "on a network*).", icon=":material/lock:")
        st.stop()
    granted = st.session_state.get(keys.ACCESS_GRANTED)
    if isinstance(granted, str) and hmac.compare_digest(granted, _digest(password)):
        return
    st.title("GymPose")
    typed = st.text_input("Access password", type="password", key=keys.ACCESS_PASSWORD)
    if st.button("Open", key=keys.ACCESS_OPEN, type="primary", icon=":material/lock_open:"):
        ip = st.context.ip_address  # (None on localhost; the socket's peer address otherwise)
        outcome = _guard().attempt(ip if isinstance(ip, str) and ip else "local",
                                   lambda: hmac.compare_digest(typed.encode("utf-8"), password.encode("utf-8")))
        if outcome.granted:
            st.session_state[keys.ACCESS_GRANTED] = _digest(password)
            st.session_state.pop(keys.ACCESS_PASSWORD, None)
            st.rerun()
        if outcome.wait_s:
            st.error(f"Too many wrong passwords. Wait {_seconds(outcome.wait_s)}, then try again.",
                     icon=":material/timer:")
        else:
            time.sleep(WRONG_PASSWORD_DELAY_S)
            later = outcome.next_wait_s - WRONG_PASSWORD_DELAY_S
            st.error("Wrong password." + (f" Wait {_seconds(later)} before the next try." if later >= 1.5 else ""),
                     icon=":material/lock:")
    st.stop()
