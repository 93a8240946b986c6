"""The Thresholds page's view of the form checks, read-only: each check's limit from each camera view, and
what the learned check looks at (its measurements and weights, in words). One function renders it."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.common import plain
from pose_core.core.form_model import FormModelError, describe, describe_in_words
from pose_core.core.judging import limits_by_view
from pose_core.core.rules import VIEWS, ExerciseRule

VIEW_COLUMNS = {"side": "From the side", "oblique": "At an angle", "front": "From the front", "rear": "From behind"}


def limits_table(rule: ExerciseRule) -> pd.DataFrame:
    rows = [{"Check": r["check"], **{VIEW_COLUMNS[v]: r[v] for v in VIEWS},
             "Needed for a verdict": "yes" if r["essential"] else ""} for r in limits_by_view(rule)]
    return pd.DataFrame(rows, columns=["Check", *[VIEW_COLUMNS[v] for v in ("side", "oblique", "front", "rear")],
                                       "Needed for a verdict"])


def learned_table(rule: ExerciseRule) -> pd.DataFrame:
    rows = [{"Measurement": r["check"], "Weight": r["weight"], "Per unit": r["per"],
             "Correct reps stayed in": r["typical"]} for r in describe(rule) if r["stat"] != "view"]
    return pd.DataFrame(rows, columns=["Measurement", "Weight", "Per unit", "Correct reps stayed in"])


def render_form_limits(rule: ExerciseRule) -> None:
    """An expander: the limits per camera view, then the learned check (when the rule has one)."""
    with st.expander("Form limits per camera view and the learned check", icon=":material/visibility:"):
        if not rule.rep_checks:
            st.caption(f"{plain(rule.display_name)} has no form checks.")
            return
        st.dataframe(limits_table(rule), hide_index=True, width="stretch")
        st.caption("Each check's limit as it applies from each camera view (read from the landmarks). \"not judged\": "
                   "the view cannot show it, never a fault. A rep whose checks needed for a verdict could not be "
                   "judged has no verdict on its form.")
        if rule.learned_check is None:
            return
        st.markdown("**The learned check**")
        try:
            words = describe_in_words(rule)
            table = learned_table(rule)
        except FormModelError as e:
            st.warning(f"The learned check cannot be used: {plain(e)}", icon=":material/warning:")
            return
        for sentence in words:
            st.markdown(plain(sentence))
        st.dataframe(table, hide_index=True, width="stretch")
