"""Penn Action dataset browser: filter the gym clips, scrub a clip's frames with the ground-truth skeleton,
its angles, label and reason (from the active rules), a per-clip angle timeline and a per-class summary."""

from __future__ import annotations

from html import escape
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import charts
from dashboard.common import current, fmt, plain, plain_error, plural
from pose_core.core.confine import shown_path
from pose_core.core.rules import RuleSet
from pose_core.datasets.dataset_view import (ALL, ANY_LABEL, EXPECTED_LAYOUT, DatasetFolderError, class_summary,
                                             clip_label_counts, clip_table, dataset_fingerprint, filter_clips,
                                             frame_view, labelled_by_class, open_clip, resolve_dataset_folder)
from pose_core.datasets.penn import GYM_CLASSES, PennFormatError
from pose_core.datasets.penn_labels import LABELS
from pose_core.store.settings import PENN_DIR_ENV, configured_penn_root

# Widget keys of this page (to move into dashboard/keys.py with the other pages' keys).
K_FOLDER = "dataset.folder"
K_CLASSES = "dataset.classes"
K_SPLIT = "dataset.split"
K_VIEW = "dataset.view"
K_LABEL = "dataset.label"
K_CLIP = "dataset.clip"


def k_frame(clip_id: str) -> str:
    return f"dataset.frame.{clip_id}"


LABEL_COLOURS = {"correct": charts.GREEN, "incorrect": charts.RED, "unknown": charts.GREY}
BADGE = {"correct": "green", "incorrect": "red", "unknown": "gray"}


@st.cache_data(show_spinner="Reading the label files...", max_entries=8)
def _clips(folder: str, fingerprint: str) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    return clip_table(Path(folder))


def _labels(folder: str, action: str, rules: RuleSet, cache_dir: str, bar_slot, done_before: int,
            total: int) -> pd.DataFrame:
    """One class labelled by the active rules: cached by pose_core (in memory and as parquet in the
    workspace, keyed on the dataset's files and the rules), so only the first visit labels. While it
    labels, a progress bar says which class and clip (the page is not left blank for seconds)."""
    def progress(done: int, n: int, clip_id: str) -> None:
        if done == 1 or done == n or done % 5 == 0:
            frac = min(1.0, (done_before + done) / max(total, 1))
            bar_slot.progress(frac, text=f"Labelling the clips with the active rules (first visit only, then "
                                         f"cached): {plain(names.get(action, action))}, clip {done} of {n}")
    return labelled_by_class(Path(folder), rules, action, Path(cache_dir), progress=progress)


def layout_help() -> None:
    st.markdown("**Where the dataset comes from.** Penn Action is a public research dataset from the University "
                "of Pennsylvania: 2,326 video clips of 15 actions with 13 annotated joints per frame (W. Zhang, "
                "M. Zhu, K. Derpanis, \"From Actemes to Action: A Strongly-supervised Representation for Detailed "
                "Action Understanding\", ICCV 2013). Download it from the authors' Penn Action page (search "
                "\"Penn Action dataset\"); it is for research use and is not shipped with GymPose. The annotation "
                "files (`labels/`) are all this page needs; frames are shown when present.")
    st.markdown(f"**Point the app at it:** set the environment variable `{PENN_DIR_ENV}` to the folder that holds "
                "`labels/` and restart the dashboard, for example:")
    st.code(f"{PENN_DIR_ENV}=/path/to/Penn_Action make run", language="bash")
    st.markdown("Expected layout:")
    st.code(EXPECTED_LAYOUT, language=None)
    st.caption("Only the 8 gym classes are shown. Without the dataset, the Thresholds page still shows Penn "
               "Action's angle distributions: GymPose ships them as histogram counts.")


def timeline_figure(frames: pd.DataFrame, rule, current_frame: int) -> go.Figure:
    """The rule's angles over the clip's frames; the primary angle's markers coloured by label."""
    fig = go.Figure()
    palette = iter(charts.SECONDARY_COLOURS * 3)
    primary = rule.primary_angle
    for name, d in rule.angles.items():
        if name == primary or d.unit != "deg":
            continue
        shown = escape(rule.angle_label(name))
        fig.add_trace(go.Scatter(x=frames["frame"], y=frames[name], mode="lines", name=shown,
                                 line=dict(color=next(palette), width=1.5), opacity=0.75,
                                 hovertemplate=f"{shown} %{{y:.0f}}°<extra>frame %{{x}}</extra>"))
    fig.add_trace(go.Scatter(x=frames["frame"], y=frames[primary], mode="lines", name=escape(rule.angle_label(primary)),
                             line=dict(color=charts.BLUE, width=3), hoverinfo="skip"))
    for lab in LABELS:
        sub = frames[frames["label"] == lab]
        if sub.empty:
            continue
        fig.add_trace(go.Scatter(
            x=sub["frame"], y=sub[primary], mode="markers", name=lab, marker=dict(color=LABEL_COLOURS[lab], size=6),
            customdata=sub[["phase", "reason"]].fillna("").to_numpy(),
            hovertemplate=f"{escape(rule.angle_label(primary))} %{{y:.0f}}° · {lab}<br>%{{customdata[0]}} %{{customdata[1]}}"
                          "<extra>frame %{x}</extra>"))
    fig.add_vline(x=current_frame, line_color="#111", line_width=1)
    fig.update_xaxes(title_text="frame")
    fig.update_yaxes(title_text="angle (°)")
    fig.update_layout(height=340, margin=dict(l=10, r=10, t=40, b=10), template="plotly_white", hovermode="closest",
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0))
    return fig


def summary_figure(summary: pd.DataFrame, names: dict[str, str]) -> go.Figure:
    """Share of frames per label, one stacked bar per class."""
    fig = go.Figure()
    x = [escape(names.get(a, a)) for a in summary["action"]]  # plotly renders some HTML in labels
    for lab in LABELS:
        fig.add_trace(go.Bar(x=x, y=summary[f"pct_{lab}"], name=lab, marker_color=LABEL_COLOURS[lab],
                             hovertemplate=f"%{{x}}: %{{y:.1f}}% {lab}<extra></extra>"))
    fig.update_traces(width=min(0.8, 0.25 * len(x)))  # one class: not one bar across the whole chart
    fig.update_layout(barmode="stack", height=320, margin=dict(l=10, r=10, t=40, b=10), template="plotly_white",
                      yaxis=dict(title="frames (%)", range=[0, 100]),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0, traceorder="normal"))
    return fig


# ------------------------------------------------------------------------------------------- page

cur = current()
rules = cur.rules
names = {a: (rules[a].display_name if a in rules.exercises else a) for a in GYM_CLASSES}

st.title("Penn Action dataset")
st.caption("The annotated gym clips of Penn Action, labelled frame by frame by the active rules "
           f"(**{cur.rules_label}**) from their ground-truth joints: the same angles, phases and checks as on "
           "your videos.")

root = configured_penn_root()
if root is None:
    st.info("No Penn Action folder is configured.", icon=":material/dataset:")
    layout_help()
    st.stop()

typed = st.text_input("Dataset folder", value="", key=K_FOLDER, placeholder="the configured dataset folder",
                      help=f"Empty: the configured folder ({PENN_DIR_ENV}); or a folder inside it (relative to it).")
try:
    folder = resolve_dataset_folder(typed, root)
except DatasetFolderError as e:
    st.error(plain_error(e, root), icon=":material/folder_off:")
    layout_help()
    st.stop()

fingerprint = dataset_fingerprint(folder)
clips, bad_files = _clips(str(folder), fingerprint)
if bad_files:
    with st.expander(f"{plural(len(bad_files), 'label file')} could not be read and {'is' if len(bad_files) == 1 else 'are'} "
                     "left out", icon=":material/warning:"):
        st.dataframe(pd.DataFrame(bad_files, columns=["file", "problem"]), hide_index=True, width="stretch")
if clips.empty:
    st.warning(f"{plain(shown_path(folder, root, 'The dataset folder'))} has no readable clip of the gym classes.", icon=":material/warning:")
    layout_help()
    st.stop()

# ---------------------------------------------------------------------------------------- filters
present = [a for a in GYM_CLASSES if a in set(clips["action"])]
f1, f2, f3, f4 = st.columns([3, 1, 1, 1])
chosen = f1.multiselect("Class", present, default=present, key=K_CLASSES, format_func=names.get,
                        placeholder="Choose one or more classes")
split = f2.selectbox("Split", [ALL, "train", "test"], key=K_SPLIT, help="Penn Action's official split")
views = [ALL] + sorted(set(clips.loc[clips["action"].isin(chosen), "view"]))
if st.session_state.get(K_VIEW) not in views:
    st.session_state[K_VIEW] = ALL
view = f3.selectbox("View", views, key=K_VIEW, help="Penn Action's coarse camera view")
label = f4.selectbox("Label", [ANY_LABEL, *LABELS], key=K_LABEL,
                     help="Only clips with at least one frame with this label")

cache_dir = str(cur.settings.workspace / "cache" / "penn")
bar_slot = st.empty()  # a progress bar while a class is labelled the first time
clip_counts = clips["action"].value_counts().to_dict()
total_clips = sum(int(clip_counts.get(a, 0)) for a in chosen)
parts, done_before = [], 0
for a in chosen:
    parts.append(_labels(str(folder), a, rules, cache_dir, bar_slot, done_before, total_clips))
    done_before += int(clip_counts.get(a, 0))
bar_slot.empty()
frames = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["clip", "label"])
per_clip = clip_label_counts(frames)
shown = filter_clips(clips, per_clip, chosen, split, view, label)
st.caption(f"{len(shown)} of {len(clips)} gym clips match.")

# ------------------------------------------------------------------------------------------- clip
if shown.empty:
    st.info("No clip matches these filters.", icon=":material/filter_alt_off:")
else:
    pct = per_clip.set_index("clip")["pct_correct"].to_dict()
    info = shown.set_index("clip")
    ids = list(shown["clip"])
    if st.session_state.get(K_CLIP) not in ids:
        st.session_state[K_CLIP] = ids[0]
    clip_id = st.selectbox(
        "Clip", ids, key=K_CLIP,
        format_func=lambda c: (f"{c} · {names[info.at[c, 'action']]} · {info.at[c, 'view']} view · "
                               f"{info.at[c, 'split']} · {info.at[c, 'frames']} frames · "
                               f"{fmt(pct.get(c), '% correct')}"))
    try:
        clip = open_clip(folder, clip_id)
    except (DatasetFolderError, PennFormatError, OSError) as e:
        st.error(f"Clip {plain(clip_id)} cannot be shown: {plain_error(e, folder)}", icon=":material/error:")
        st.stop()
    rule = rules[clip.action]
    clip_frames = frames[frames["clip"] == clip_id].sort_values("frame").reset_index(drop=True)

    left, right = st.columns([3, 2])
    with left:
        n = clip.nframes
        i = st.slider("Frame", 1, n, 1, key=k_frame(clip_id)) if n > 1 else 1
        row = clip_frames.iloc[i - 1] if len(clip_frames) >= i else None
        lab = str(row["label"]) if row is not None else "unknown"
        primary_value = float(row[rule.primary_angle]) if row is not None else float("nan")
        reason = str(row["reason"]) if row is not None and isinstance(row["reason"], str) else ""
        view_img = frame_view(clip, i - 1, folder, lab, rule.primary_angle, primary_value, reason, rule.primary.unit)
        where = "on the frame" if view_img.on_frame else f"on a blank {clip.width}×{clip.height} canvas (no frames)"
        st.image(view_img.image_rgb, caption=f"Clip {clip.id}, frame {i} of {n}: ground-truth skeleton {where}",
                 width="stretch")
        if view_img.note:
            st.caption(view_img.note)
    with right:
        st.markdown(f"#### Frame {i}")
        st.badge(lab, color=BADGE.get(lab, "gray"), icon={"correct": ":material/check:",
                                                          "incorrect": ":material/close:"}.get(lab))
        phase = str(row["phase"]) if row is not None else ""
        st.markdown(f"**Phase:** {plain(rule.counting.display_phase(phase)) if phase else '–'}  \n"
                    f"**Reason:** {plain(reason) if reason else '–'}")
        if row is not None:
            unit = {a: ("°" if d.unit == "deg" else f" {d.unit}") for a, d in rule.angles.items()}
            st.dataframe(pd.DataFrame([{"angle": rule.angle_label(a) + (" (counts reps)" if a == rule.primary_angle else ""),
                                        "value": fmt(row[a], unit[a], 0 if unit[a] == "°" else 1)}
                                       for a in rule.angles]), hide_index=True, width="stretch")
        counts = per_clip.set_index("clip").loc[clip_id] if clip_id in set(per_clip["clip"]) else None
        st.caption(f"{plain(names[clip.action])} · {clip.view} view · {clip.split} split · {clip.width}×{clip.height} · "
                   + (f"{int(counts['correct'])} correct, {int(counts['incorrect'])} incorrect, "
                      f"{int(counts['unknown'])} unknown frames" if counts is not None else ""))
    if not clip_frames.empty:
        st.plotly_chart(timeline_figure(clip_frames, rule, i), width="stretch", config={"displaylogo": False})

# ---------------------------------------------------------------------------------------- summary
st.markdown("#### Class summary")
base = filter_clips(clips, per_clip, chosen, split, view)  # without the label filter: it would bias the shares
summary = class_summary(base, frames)
if summary.empty:
    st.info("Choose at least one class.", icon=":material/info:")
else:
    st.caption("Frames labelled by the active rules, for the chosen classes, split and view. *Correct of judged* "
               "leaves out frames where a needed joint is not annotated as visible (unknown).")
    table = pd.DataFrame({
        "class": [names.get(a, a) for a in summary["action"]], "clips": summary["clips"], "frames": summary["frames"],
        "correct %": summary["pct_correct"], "incorrect %": summary["pct_incorrect"],
        "unknown %": summary["pct_unknown"], "correct of judged %": summary["pct_correct_of_judged"]})
    st.dataframe(table, hide_index=True, width="stretch",
                 column_config={c: st.column_config.NumberColumn(format="%.1f")
                                for c in ("correct %", "incorrect %", "unknown %", "correct of judged %")})
    st.plotly_chart(summary_figure(summary, names), width="stretch", config={"displaylogo": False})
