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


# ------------------------------------------------------------------------------------------- issue 25

class FakeTime:
    def __init__(self):
        self.now = 1_000_000.0

    def clock(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


def test_wrong_passwords_are_counted_per_client_and_overall_with_growing_waits(tmp_path):
    from dashboard import password_guard as g

    t = FakeTime()
    limiter = g.GuessLimiter(tmp_path / "attempts.json", clock=t.clock)
    waits = []
    while len(waits) < 8:  # one client, trying again as soon as it is allowed
        out = limiter.attempt("10.0.0.1", lambda: False, sleep=t.sleep)
        if out.wait_s:  # refused without an answer: told how long to wait
            t.sleep(out.wait_s)
            continue
        waits.append(round(out.next_wait_s, 3))
    assert waits == [1, 1, 1, 2, 4, 8, 16, 32]  # one a second, then doubling after 3 free ones
    refused = limiter.attempt("10.0.0.1", lambda: True, sleep=t.sleep)  # even the right one: not now
    assert not refused.granted and refused.wait_s == pytest.approx(32, abs=0.5)
    other = limiter.attempt("10.0.0.2", lambda: True, sleep=t.sleep)  # another address is not held up
    assert other.granted
    # A restarted server remembers (the counts are in the workspace); after the wait the right one works.
    again = g.GuessLimiter(tmp_path / "attempts.json", clock=t.clock)
    wait = again.attempt("10.0.0.1", lambda: True, sleep=t.sleep).wait_s
    assert wait == pytest.approx(32, abs=0.5)
    t.sleep(wait)
    assert again.attempt("10.0.0.1", lambda: True, sleep=t.sleep).granted
    # Many addresses (a botnet, or everybody behind one proxy... each new): the overall count slows them all.
    t.sleep(g.FORGET_S + 1)
    answered_at = []
    for i in range(g.FREE_ALL + 6):
        out = limiter.attempt(f"192.0.2.{i}", lambda: False, sleep=t.sleep)
        if not out.wait_s:
            answered_at.append(t.now)
    gaps = [b - a for a, b in zip(answered_at, answered_at[1:])]
    assert max(gaps) >= 4 and len(answered_at) < g.FREE_ALL + 6, gaps


def test_parallel_wrong_attempts_are_not_all_answered_at_once(tmp_path):
    """Issue 25, item 4: ten parallel wrong attempts (ten browser sessions) were all answered in 1.9 s."""
    import threading
    import time

    from dashboard import password_guard as g

    limiter = g.GuessLimiter(tmp_path / "attempts.json")
    start, verdicts, refusals = time.monotonic(), [], []

    def attempt():
        out = limiter.attempt("203.0.113.9", lambda: False)
        (refusals if out.wait_s else verdicts).append(time.monotonic() - start)

    threads = [threading.Thread(target=attempt) for _ in range(10)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len([v for v in verdicts if v < 2.0]) <= 2, verdicts  # one a second, whatever the sessions
    assert len(verdicts) + len(refusals) == 10 and refusals  # the rest are told to wait, unanswered
    assert sorted(verdicts)[-1] > 4.0


def test_the_page_says_how_long_to_wait_and_the_right_password_works_after_it(workspace, address, monkeypatch):
    """A wrong password, then another at once: refused without an answer, saying how long to wait (the
    limits are per server: tests/test_browser_access.py drives ten browser sessions at once)."""
    import time

    import dashboard.access as access
    from dashboard import password_guard

    monkeypatch.setattr(access, "WRONG_PASSWORD_DELAY_S", 0.0)
    monkeypatch.setattr(password_guard, "HOLD_S", 0.0)  # (an attempt never waits for its turn: refused at once)
    monkeypatch.setenv("GYMPOSE_ACCESS_PASSWORD", "right one")
    address("0.0.0.0")
    at = app().run()
    at.text_input(key=keys.ACCESS_PASSWORD).set_value("guess").run()
    at.button(key=keys.ACCESS_OPEN).click().run()
    assert at.error[0].value == "Wrong password."
    at.text_input(key=keys.ACCESS_PASSWORD).set_value("right one").run()
    at.button(key=keys.ACCESS_OPEN).click().run()  # the next turn is a second away: not even the right one
    assert at.error and at.error[0].value == "Too many wrong passwords. Wait 1 second, then try again."
    assert PAGE_TITLE not in titles(at)
    time.sleep(1.1)
    at.button(key=keys.ACCESS_OPEN).click().run()
    assert not at.exception and titles(at) == [PAGE_TITLE], [e.value for e in at.error]
