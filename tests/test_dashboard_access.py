"""Issue 12, item 2: private by default. The server binds to localhost (.streamlit/config.toml); served on
a network it needs an access password (env or secrets) before any page renders. Driven with AppTest."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from dashboard import keys
from pose_core.store.settings import access_password, is_loopback

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "dashboard" / "app.py")
PAGE_TITLE = "Analyze a workout video"


@pytest.fixture(autouse=True)
def _webrtc_without_runtime(monkeypatch):
    import streamlit_webrtc.component as component

    monkeypatch.setattr(component, "get_this_session_info", lambda: None)


@pytest.fixture
def address():
    """Set the server address the app believes it listens on (restored afterwards)."""
    from streamlit import config

    before = config.get_option("server.address")
    yield lambda a: config.set_option("server.address", a)
    config.set_option("server.address", before)


def app():
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(APP, default_timeout=120)


def titles(at) -> list[str]:
    return [t.value for t in at.title]


def test_the_server_binds_to_localhost_by_default():
    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert cfg["server"]["address"] == "127.0.0.1"
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1") and is_loopback("127.0.0.2")
    assert not is_loopback("0.0.0.0") and not is_loopback("") and not is_loopback(None)
    assert not is_loopback("192.168.1.5")


def test_password_comes_from_env_first_then_secrets():
    assert access_password({}, env={}) == ""
    assert access_password({"access_password": "s"}, env={}) == "s"
    assert access_password({"access_password": "s"}, env={"GYMPOSE_ACCESS_PASSWORD": "e"}) == "e"


def test_localhost_without_password_opens_the_pages(workspace, address):
    address("127.0.0.1")
    at = app().run()
    assert not at.exception and titles(at) == [PAGE_TITLE]


def test_network_without_password_refuses_to_render(workspace, address):
    address("0.0.0.0")
    at = app().run()
    assert not at.exception
    assert PAGE_TITLE not in titles(at) and not at.sidebar.selectbox
    assert "no access password is set" in at.error[0].value


@pytest.mark.parametrize("where", ["env", "secrets"])
def test_a_configured_password_is_asked_wrong_refused_right_opens(workspace, address, monkeypatch, where):
    import dashboard.access as access

    monkeypatch.setattr(access, "WRONG_PASSWORD_DELAY_S", 0.0)
    address("0.0.0.0")
    at = app()
    if where == "env":
        monkeypatch.setenv("GYMPOSE_ACCESS_PASSWORD", "s3cret pass")
    else:
        at.secrets["access_password"] = "s3cret pass"
    at.run()
    assert not at.exception and PAGE_TITLE not in titles(at) and not at.sidebar.selectbox
    box = at.text_input(key=keys.ACCESS_PASSWORD)
    assert box.label == "Access password"
    box.set_value("wrong").run()
    at.button(key=keys.ACCESS_OPEN).click().run()
    assert at.error and at.error[0].value == "Wrong password." and PAGE_TITLE not in titles(at)
    at.text_input(key=keys.ACCESS_PASSWORD).set_value("s3cret pass").run()
    at.button(key=keys.ACCESS_OPEN).click().run()
    assert not at.exception and titles(at) == [PAGE_TITLE]
    at.run()  # stays open for this browser session
    assert titles(at) == [PAGE_TITLE]


def test_a_configured_password_is_asked_on_localhost_too(workspace, address, monkeypatch):
    address("127.0.0.1")
    monkeypatch.setenv("GYMPOSE_ACCESS_PASSWORD", "pw")
    at = app().run()
    assert PAGE_TITLE not in titles(at) and at.text_input(key=keys.ACCESS_PASSWORD)
