"""Which links Streamlit's Markdown would make of a Markdown source (what AppTest sees), without a browser.

Streamlit renders Markdown with remark-gfm, whose autolink-literal step runs over the parsed text: after
backslash escapes are resolved, `http://...`, `https://...`, `www.x.y` and `name@x.y` become links when the
character before them is the start, white space, punctuation or a symbol (micromark's rules, as in
streamlit/static/js/StreamlitMarkdown.*.js). Escaping the source's punctuation therefore does not stop
them. Also reported: explicit links and <autolinks> whose brackets are not escaped."""

from __future__ import annotations

import re
import unicodedata

_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")  # CommonMark: a backslash before ASCII punctuation shows it
_URL = re.compile(r"(https?://|www(?=\.))([-.\w]+)([^ \t\r\n]*)", re.IGNORECASE | re.ASCII)
_EMAIL = re.compile(r"([-.\w+]+)@([-\w]+(?:\.[-\w]+)+)", re.ASCII)
_EXPLICIT = re.compile(r"(?<!\\)\]\(|(?<!\\)<(https?|mailto|www)", re.IGNORECASE)


def _boundary(text: str, i: int, email: bool = False) -> bool:
    if i == 0:
        return True
    c = text[i - 1]
    return (c.isspace() or unicodedata.category(c)[0] in "PS") and not (email and c == "/")


def _domain_ok(domain: str) -> bool:
    parts = domain.split(".")
    if len(parts) < 2:
        return False
    return all(p == "" or ("_" not in p and re.search(r"[a-zA-Z\d]", p)) for p in parts[-2:])


def links(markdown: str) -> list[str]:
    """The link targets the browser would get from this Markdown source (empty: none)."""
    found = [m.group(0) for m in _EXPLICIT.finditer(markdown)]
    text = _ESCAPED.sub(r"\1", markdown)
    for m in _URL.finditer(text):
        if _boundary(text, m.start()) and _domain_ok(m.group(2) if m.group(1).lower() != "www" else "www" + m.group(2)):
            found.append(m.group(0))
    for m in _EMAIL.finditer(text):
        start = m.start()
        # (the regex may start inside a word: the local part is taken from the first boundary)
        if _boundary(text, start, email=True) and not re.search(r"[-\d_]$", m.group(2)):
            found.append("mailto:" + m.group(0))
    return found
