"""The exercise picker inside a page, for phones: there the sidebar (where every page's picker lives) is folded
behind a button, and a new user never finds it. It mirrors the sidebar's choice (keys.EXERCISE) both ways, and
is shown only while the sidebar is folded (common.RESPONSIVE_CSS): a desktop shows one picker, the sidebar's."""

from __future__ import annotations

import streamlit as st

from dashboard import keys
from dashboard.common import AUTO, AUTO_LABEL, Current, responsive_css


def _picked(key: str) -> None:  # callback: runs before the rerun, so the sidebar already shows the new choice
    choice = st.session_state[key]
    st.session_state[keys.EXERCISE] = choice
    if choice != AUTO:
        st.session_state[keys.EXERCISE_LAST] = choice


def exercise_picker_inline(cur: Current, key: str = keys.ANALYZE_EXERCISE_INLINE) -> str:
    """A compact "Exercise" select box showing the sidebar's choice; changing it changes the sidebar's."""
    rules = cur.rules
    names = [AUTO] + sorted(rules.exercises, key=lambda n: rules[n].display_name)
    chosen = AUTO if cur.auto else cur.exercise
    st.session_state[key] = chosen  # follow the sidebar (set before the widget exists)
    responsive_css()
    with st.container(key="inline_picker"):
        return st.selectbox("Exercise", names, key=key, on_change=_picked, args=(key,), width=260,
                            format_func=lambda n: AUTO_LABEL if n == AUTO else rules[n].display_name,
                            help="The same choice as in the sidebar: which exercise's rules count and judge the "
                                 "reps.")
