"""Who may open the dashboard. Private by default: `.streamlit/config.toml` binds the server to 127.0.0.1.
Served on a network (another `server.address`), every visitor shares one workspace (history, rules,
uploads), so an access password is then required before any page renders; without one configured the app
refuses to run. A configured password is asked for on localhost too. The password is compared in
constant time (hmac.compare_digest); a browser session that gave it stays open until it is closed."""

from __future__ import annotations

import hashlib
import hmac
import time

import streamlit as st

from dashboard import keys
from pose_core.store.settings import (ACCESS_PASSWORD_ENV, ACCESS_PASSWORD_SECRET, SettingsError, access_password,
                                      is_loopback)

WRONG_PASSWORD_DELAY_S = 1.0  # slows guessing down


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
        if hmac.compare_digest(typed.encode("utf-8"), password.encode("utf-8")):
            st.session_state[keys.ACCESS_GRANTED] = _digest(password)
            st.session_state.pop(keys.ACCESS_PASSWORD, None)
            st.rerun()
        time.sleep(WRONG_PASSWORD_DELAY_S)
        st.error("Wrong password.", icon=":material/lock:")
    st.stop()
