"""GymPose dashboard: `streamlit run dashboard/app.py` (from the repository root, with the project installed:
`make run` does both).

The shell: page navigation and the sidebar shared by every page (exercise, active rules file).
Registering a page is one line in PAGES.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard import keys
from dashboard.access import require_access
from dashboard.common import AUTO, AUTO_LABEL, DEFAULT_EXERCISE, current, keep_choice, plain, restore_choice
from pose_core.core.confine import shown_path

# The page scripts live in dashboard/views/, NOT dashboard/pages/: Streamlit treats a `pages/` folder beside
# the entrypoint as a legacy (v1) multipage app, and a first visit to a page URL (e.g. /live after a
# restart) then runs that page alone, without this shell's sidebar (tests/test_browser.py checks this).
VIEWS_DIR = Path(__file__).resolve().parent / "views"
FAVICON = Path(__file__).resolve().parent / "assets" / "favicon.png"

# (file in dashboard/views, title, icon). Material icons only: emoji render as boxes in headless browsers.
PAGES = [
    ("analyze.py", "Analyze a video", ":material/video_library:"),
    ("live.py", "Live coaching", ":material/videocam:"),
    ("thresholds.py", "Thresholds", ":material/tune:"),
    ("history.py", "History", ":material/history:"),
    ("dataset.py", "Penn Action dataset", ":material/dataset:"),
]


def sidebar() -> None:
    cur = current()
    rules = cur.rules
    with st.sidebar:
        st.markdown("### :material/fitness_center: GymPose")
        names = [AUTO] + sorted(rules.exercises, key=lambda n: rules[n].display_name)
        restore_choice(keys.EXERCISE, names, param="exercise")  # a reload / shared link reopens the choice
        if st.session_state.get(keys.EXERCISE) not in names:
            st.session_state[keys.EXERCISE] = DEFAULT_EXERCISE
        choice = st.selectbox("Exercise", names, key=keys.EXERCISE,
                              format_func=lambda n: AUTO_LABEL if n == AUTO else rules[n].display_name,
                              help="Used by every page: which rule counts and judges the reps. "
                                   f"**{AUTO_LABEL}**: Analyze and Live coaching recognise which of the "
                                   f"{len(names) - 1} exercises you do; Thresholds uses the last exercise you picked.")
        keep_choice(keys.EXERCISE, choice, param="exercise")
        if choice != AUTO:
            st.session_state[keys.EXERCISE_LAST] = choice
        user_file = cur.settings.user_rules_path
        if user_file.is_file():
            st.session_state.setdefault(keys.USE_USER_RULES, True)
            st.toggle("Use my tuned rules", key=keys.USE_USER_RULES,
                      help=f"Your rules file: {plain(shown_path(user_file, cur.settings.workspace))} (in your workspace)")
        cur = current()
        if cur.rules_error:
            st.error(f"Your rules file is invalid, the built-in defaults are in use: {plain(cur.rules_error)}",
                     icon=":material/error:")
        st.caption(f"Active rules: **{cur.rules_label}**")
        if not user_file.is_file():
            st.caption("Tune thresholds and save them on the Thresholds page to create your own rules file.")


def run() -> None:
    # The tab icon is a file served by the app: a :material/...: page icon is fetched from fonts.gstatic.com
    # (and an emoji from a CDN), which an offline machine cannot reach (tests/test_browser.py checks this).
    st.set_page_config(page_title="GymPose", page_icon=str(FAVICON), layout="wide")
    require_access()  # before anything else renders (private by default: see dashboard/access.py)
    pages = [st.Page(str(VIEWS_DIR / f), title=t, icon=i, default=(n == 0)) for n, (f, t, i) in enumerate(PAGES)]
    nav = st.navigation(pages)
    sidebar()
    nav.run()


if __name__ == "__main__":
    run()
