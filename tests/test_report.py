"""The shareable report (pose_core/store/report.py): one self-contained HTML file per analysis. Opened in the
real Chromium, offline, with every request recorded: nothing is fetched (no request but data: and about:),
the rep table and one labelled frame per incorrect rep are there, and user text stays text. Issue 26."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from browser_utils import CHROMIUM, SCREENSHOTS

from pose_core.core.rules import load_rules
from pose_core.store.outputs import REPS_JSON, load_analysis
from pose_core.store.report import build_report, rep_rows

EVIL_NAME = '[click me](http://example.com) **bold** <b>x</b> <img src="http://evil.example/i.png">.mp4'
EVIL_REASON = "Not deep <b>enough</b>: see http://evil.example/<script>alert(1)</script>"


@pytest.fixture
def analysis(squat_analysis, tmp_path):
    """squat_1 analysed, with rep 2 made incorrect by a reason full of markup (as a rules file could write)."""
    folder = tmp_path / squat_analysis.name
    shutil.copytree(squat_analysis, folder)
    doc = json.loads((folder / REPS_JSON).read_text())
    doc["reps"][1].update(verdict="incorrect", reasons=[EVIL_REASON])
    for r in doc["reps"][:1] + doc["reps"][2:]:
        r.update(verdict="correct", reasons=[])
    (folder / REPS_JSON).write_text(json.dumps(doc))
    return load_analysis(folder)


def test_report_is_self_contained_and_escapes_user_text(analysis):
    html = build_report(analysis, load_rules()["squat"], EVIL_NAME)
    # nothing that a browser would fetch: no src/href to anything but data:, no script, no @import / url()
    # (an attribute needs a real quote: the escaped name's src=&quot;... is text)
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:)""", html), re.findall(r"(?:src|href)=\S{0,40}", html)
    assert "<script" not in html and "url(" not in html and "@import" not in html
    assert "default-src 'none'" in html  # and the browser is told so
    # user text escaped: no tag of it survives, the address is plain text
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert "<b>enough</b>" not in html and "&lt;script&gt;" in html
    assert html.count('data:image/jpeg;base64,') == 1  # one frame: rep 2, the incorrect one


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")
def test_report_opens_offline_in_chromium_without_a_single_request(analysis, chromium):
    rule = load_rules()["squat"]
    html = build_report(analysis, rule, EVIL_NAME)
    ctx = chromium.new_context(viewport={"width": 1000, "height": 900}, offline=True)
    page = ctx.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.route("**/*", lambda route: (requests.append("routed " + route.request.url), route.abort()))
    page.set_content(html, wait_until="load")
    page.wait_for_timeout(500)
    assert [u for u in requests if not u.startswith(("data:", "about:"))] == [], requests
    # the rep table: one row per rep, the same rows as the Analyze page's table
    rows = rep_rows(analysis.reps, rule)
    assert page.locator("#reps tbody tr").count() == len(rows) == 3
    assert page.locator("#reps thead th").all_inner_texts() == list(rows[0])
    # one labelled frame per incorrect rep, decoded, with its reason as text
    frames = page.locator("figure.rep-frame")
    assert frames.count() == 1
    assert frames.first.locator("img").evaluate("i => i.complete && i.naturalWidth > 0")
    caption = frames.first.locator("figcaption").inner_text()
    assert caption.startswith("Rep 2 at ") and EVIL_REASON in caption
    # the name and the reason are shown as typed: no element made of them, no link
    assert page.locator("#video-name").inner_text() == EVIL_NAME
    assert page.locator("#video-name b, #video-name img, a, script").count() == 0
    assert page.locator("#timeline .rep-marker").count() == 3 and page.locator("#figures .fig").count() >= 5
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "report_squat.png"), full_page=True)
    ctx.close()
