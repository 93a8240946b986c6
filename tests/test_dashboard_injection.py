"""Issue 12, item 1: user-controlled text (upload names, a rules file's display names, messages and phase
names, anything read back from history) reaches every page as literal text, never as Markdown: no bold, no
live link, no image the browser would fetch. Driven with AppTest; the rendered element values are the
Markdown sources Streamlit renders, so they must hold the escaped text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import wait_for_job
from penn_fixture import make_penn_dataset

from dashboard import keys
from dashboard.common import plain
from pose_core.store.history import HistoryStore, SessionRecord
from pose_core.store.settings import PENN_DIR_ENV

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")
EVIL_UPLOAD = "**BOLD** [link](https://example.com) ![i](http://127.0.0.1:9/x.png).mp4"
EVIL_NAME = "![x](http://127.0.0.1:9/track.png) [click](javascript:alert(1))"
EVIL_PHASE = "**deep** [p](https://e.co)"
EVIL_MESSAGE = "Go lower ![m](http://127.0.0.1:9/m.png) <img src=x> :red[red]"
RULES = f'''
[exercises.squat]
display_name = "{EVIL_NAME}"
[exercises.squat.counting.phase_names]
peak = "{EVIL_PHASE}"
[[exercises.squat.frame_checks]]
angle = "knee"
phase = "peak"
max = 100
message = "{EVIL_MESSAGE}"
'''
# Live Markdown: a link or image whose "](" is not escaped, bold markers, raw HTML, a colour directive.
LIVE = [re.compile(r"(?<!\\)\]\((https?|javascript)"), re.compile(r"(?<!\\)\*\*(BOLD|deep)"),
        re.compile(r"(?<!\\)<img"), re.compile(r"(?<!\\):red\[red")]
TEXT_KINDS = ("title", "header", "subheader", "markdown", "caption", "warning", "info", "success", "error", "toast")
WIDGET_KINDS = ("button", "selectbox", "multiselect", "slider", "toggle", "checkbox", "radio", "text_input",
                "metric", "expander")


@pytest.fixture(autouse=True)
def _webrtc_without_runtime(monkeypatch):
    import streamlit_webrtc.component as component

    monkeypatch.setattr(component, "get_this_session_info", lambda: None)


@pytest.fixture
def evil_workspace(workspace, tmp_path, monkeypatch) -> Path:
    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / "rules.toml").write_text(RULES, encoding="utf-8")
    HistoryStore(workspace / "history.sqlite3").add(SessionRecord(
        exercise="squat", name=EVIL_UPLOAD, frames=10, duration_s=3.0, primary_angle="knee",
        created_at="2026-01-01T09:00:00+00:00"))
    monkeypatch.setenv(PENN_DIR_ENV, str(make_penn_dataset(tmp_path / "penn", with_frames=False, n_frames=8)))
    return workspace


def rendered(at) -> list[str]:
    """Every Markdown source on the page: text elements, widget labels and help texts, radio options."""
    out = []
    for kind in TEXT_KINDS:
        out += [str(e.value) for e in at.get(kind)]
    for kind in WIDGET_KINDS:
        for w in at.get(kind):
            out += [str(getattr(w.proto, f, "") or "") for f in ("label", "help")]
            if kind == "radio":  # radio options are Markdown; selectbox / multiselect options are plain text
                out += [str(o) for o in w.options]
    return out


def assert_plain(at, page: str) -> str:
    assert not at.exception, (page, [e.message for e in at.exception])
    texts = rendered(at)
    for t in texts:
        for pattern in LIVE:
            assert not pattern.search(t), (page, pattern.pattern, t)
    return "\n".join(texts)


def app(page: str):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=180)
    at.switch_page(f"views/{page}")
    return at


def test_plain_escapes_markdown_html_and_shortcodes():
    j = "\u2060"  # (WORD JOINER: invisible; breaks up web and mail addresses, see LINKY_NAME below)
    assert plain(EVIL_UPLOAD) == (r"\*\*BOLD\*\* \[link\](https" + j + r"\://example.com) \!\[i\](http" + j +
                                  r"\://127.0.0.1\:9/x.png).mp4")
    assert plain("a\nb\r# c <b>&amp; www.x.org :red[y] $x$ - ok Push-up a@b.c") == \
        r"a b \# c \<b\>\&amp; www" + j + r".x.org \:red\[y\] \$x\$ - ok Push-up a@" + j + "b.c"
    assert plain("- item") == r"\- item" and plain("1. x") == r"1\. x"


@pytest.mark.parametrize("page", ["analyze.py", "live.py", "thresholds.py", "dataset.py"])
def test_a_rules_files_names_and_messages_are_plain_text_on_every_page(evil_workspace, page):
    at = app(page).run()
    text = assert_plain(at, page)
    assert plain(EVIL_NAME.lower()) in text or plain(EVIL_NAME) in text, page
    if page == "thresholds.py":
        assert plain(EVIL_MESSAGE) in text and plain(EVIL_PHASE) in text  # slider help and label
    if page == "dataset.py":
        assert "/" + evil_workspace.parent.name not in text  # no server path (item 3)


def test_sidebar_shows_the_rules_file_as_plain_text(evil_workspace):
    at = app("analyze.py").run()
    assert_plain(at, "sidebar")
    assert any("Active rules" in c.value for c in at.sidebar.caption)
    toggle_help = at.toggle(key=keys.USE_USER_RULES).proto.help
    assert "rules.toml" in toggle_help and str(evil_workspace) not in toggle_help  # item 3: no server path


def test_history_names_are_plain_text_up_to_the_delete_confirmation(evil_workspace):
    at = app("history.py").run()
    assert_plain(at, "history")
    at.button(key=keys.HIST_DELETE).click().run()
    text = assert_plain(at, "history: delete")
    warning = at.warning[0].value
    assert "for good" in warning and plain(EVIL_UPLOAD) in warning
    assert plain(EVIL_NAME) in text or "Squat" not in text


def test_an_uploaded_rules_files_name_is_plain_text(evil_workspace):
    at = app("thresholds.py").run()
    body = (evil_workspace / "rules.toml").read_bytes()
    at.file_uploader(key=keys.THR_UPLOAD).set_value(("**r** [l](https://example.com).toml", body, "application/toml"))
    at.run()
    at.button(key=keys.THR_APPLY_UPLOAD).click().run()
    assert_plain(at, "thresholds: upload")
    assert at.success and plain("**r** [l](https://example.com).toml") in at.success[0].value


def test_recognition_candidates_are_plain_text(evil_workspace, monkeypatch):
    import pose_core.run.pipeline as pipeline
    from pose_core.recognition import Recognition

    def fake_analyze(video, exercise, **kw):
        rec = Recognition(None, 0.45, (("squat", 0.45), ("pushup", 0.4)), "low confidence", 90, 90, 5)
        raise pipeline.CannotTellError("cannot tell", rec)

    monkeypatch.setattr(pipeline, "analyze_video", fake_analyze)
    at = app("analyze.py")
    at.session_state[keys.EXERCISE] = "auto"
    at.run()
    at.file_uploader(key=keys.ANALYZE_UPLOAD).set_value((EVIL_UPLOAD, b"\x00" * 100, "video/mp4"))
    at.run()
    at.button(key=keys.ANALYZE_RUN).click().run()
    wait_for_job(at)  # (the analysis runs as a job in the background)
    assert_plain(at, "analyze: cannot tell")
    assert plain(EVIL_NAME) + " 45%" in at.warning[0].value
    assert any(plain(EVIL_NAME.lower()) in b.label for b in at.button)


# ------------------------------------------------------------------------------- issue 25, item 2
# Streamlit's Markdown makes links of web addresses in the text itself (GFM autolink literals), whatever
# escaping the source has: `http://...`, `www.x.y` and `name@x.y` must reach the page broken up so that
# nothing is clickable (tests/markdown_links.py mirrors the renderer's rules; test_browser_links.py checks
# the real page).
LINKY_NAME = "Sq http://example.com www.example.org me@example.net [x](http://e.com)"
LINKY_PHASE = "at www.example.org"
LINKY_MESSAGE = "Lower, see https://example.com/help or mail coach@example.net"
LINKY_UPLOAD = "squats http://example.com www.example.org me@example.net [x](http://e.com).mp4"
LINKY_RULES = f'''
[exercises.squat]
display_name = "{LINKY_NAME}"
[exercises.squat.counting.phase_names]
peak = "{LINKY_PHASE}"
[[exercises.squat.frame_checks]]
angle = "knee"
phase = "peak"
max = 100
message = "{LINKY_MESSAGE}"
'''


@pytest.fixture
def linky_workspace(workspace, tmp_path, monkeypatch) -> Path:
    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / "rules.toml").write_text(LINKY_RULES, encoding="utf-8")
    HistoryStore(workspace / "history.sqlite3").add(SessionRecord(
        exercise="squat", name=LINKY_UPLOAD, frames=10, duration_s=3.0, primary_angle="knee",
        created_at="2026-01-01T09:00:00+00:00"))
    monkeypatch.setenv(PENN_DIR_ENV, str(make_penn_dataset(tmp_path / "penn", with_frames=False, n_frames=8)))
    return workspace


def assert_no_links(at, page: str) -> str:
    from markdown_links import links

    assert not at.exception, (page, [e.message for e in at.exception])
    texts = rendered(at) + [e.proto.text for e in at.get("progress")]
    made = [(t, links(t)) for t in texts if links(t)]
    assert not made, (page, made)
    return "\n".join(texts)


def test_the_link_check_finds_what_the_renderer_would_link():
    from markdown_links import links

    assert links("see http://example.com") == ["http://example.com"]
    assert links(r"http\://example.com \[x\](http\://e.com)") == ["http://example.com", "http://e.com)"]
    assert links("www.example.org.mp4") and links("me@example.net") and links("[x](http://e.com)")
    assert links("squat_1.mp4 Push-up v1.2.3 12:30 a.b") == []


@pytest.mark.parametrize("page", ["analyze.py", "live.py", "thresholds.py", "dataset.py", "history.py"])
def test_web_addresses_in_rule_and_file_names_are_never_links(linky_workspace, page):
    at = app(page).run()
    text = assert_no_links(at, page)
    assert "example" in text, page  # the names are there (as text)
    if page == "history.py":
        at.button(key=keys.HIST_DELETE).click().run()
        assert "example" in assert_no_links(at, "history: delete")


def test_web_addresses_in_an_uploads_name_are_never_links_in_the_progress_or_the_result(linky_workspace,
                                                                                      monkeypatch, tmp_path):
    import threading

    from helpers import FakeEstimator
    from media import write_video

    import pose_core.run.pipeline as pipeline

    real, gate = pipeline.analyze_video, threading.Event()

    def analyze(video, exercise, progress=None, estimator=None, **kw):
        def held(done, total):
            progress(done, total)
            if done == 20:
                gate.wait(60)

        kw.pop("pool", None)
        return real(video, exercise, progress=held, estimator=FakeEstimator(reps=2, rep_s=1.5, lead_s=0.3),
                    parallel=False, **kw)

    monkeypatch.setattr(pipeline, "analyze_video", analyze)
    clip = write_video(tmp_path / "clip.mp4", frames=150, fps=30).read_bytes()
    at = app("analyze.py").run()
    at.file_uploader(key=keys.ANALYZE_UPLOAD).set_value((LINKY_UPLOAD, clip, "video/mp4")).run()
    at.button(key=keys.ANALYZE_RUN).click().run()
    try:
        import time

        end = time.monotonic() + 60
        while not [c for c in at.caption if "goes on if you reload" in c.value] and time.monotonic() < end:
            time.sleep(0.3)
            at.run()
        progress = assert_no_links(at, "analyze: progress")
        assert "goes on if you reload" in progress and "example" in progress
    finally:
        gate.set()
    wait_for_job(at)
    result = assert_no_links(at, "analyze: result")
    assert [s.value for s in at.subheader if "example" in s.value], result  # the result's heading names the file
