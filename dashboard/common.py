"""What every page needs: settings, the active rules and exercise (chosen in the sidebar), the history
store and the pose model factory. Cached resources live here so no page builds them at import time."""

from __future__ import annotations

import gc
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import keys
from pose_core.core.rules import ExerciseRule, RuleSet, RulesError, load_rules
from pose_core.recognition import LOW_CONFIDENCE  # noqa: F401  (the pages take it from here)
from pose_core.run.job_status import JUDGING, RECOGNISING
from pose_core.run.jobs import JobRunner
from pose_core.run.live import EstimatorFactory
from pose_core.core.confine import shown_path, strip_root
from pose_core.store.history import HistoryStore
from pose_core.store.settings import Settings, SettingsError, analysis_process, load_settings
from pose_core.core.wording import plural  # noqa: F401  (the pages take it from here)
from pose_core.store.report import rep_rows

DEFAULT_EXERCISE = "squat"
# Analyses (their process: decoding, encoding, the pose pool) run at this nice value: a live session on the same
# server gets the CPU first and its overlay stays current (bench/bench_live_browser.py measures it).
BACKGROUND_NICE = 10
AUTO = "auto"  # the sidebar's "Auto (recognise)" choice: Analyze and Live recognise the exercise themselves
AUTO_LABEL = "Auto (recognise)"
# LOW_CONFIDENCE (imported above, defined once in the recogniser): a recognised exercise below it is shown with
# a plain "not sure" warning (the recogniser itself answers "cannot tell" below 50%; live locks only at or above it).


# Characters that mean something to Streamlit's Markdown (CommonMark + GFM + emoji/icon shortcodes, colour
# directives, LaTeX, HTML entities). Backslash-escaping any ASCII punctuation is valid CommonMark and shows it.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#!|~$:&])")
_LINE_START = re.compile(r"^(\s*)([-+=]|\d+(?=[.)]))")  # a list item / heading marker at the very start
# Streamlit's Markdown (remark-gfm) makes links of web and mail addresses found in the text once it is parsed,
# so escaping cannot stop them: an invisible WORD JOINER (U+2060) is put where those patterns need adjacent
# characters: "http" and its ":", "www" and its ".", "@" and the domain.
_AUTOLINKED = re.compile(r"(https?)(?=:)|(www)(?=\.)|(@)", re.IGNORECASE)
WORD_JOINER = "\u2060"


def plain(text: object) -> str:
    """User-controlled text (file names, rule names and messages, history, recognition candidates, error
    messages that quote them) as literal text for st.markdown / st.warning / st.caption / widget labels:
    every Markdown, HTML and shortcode character is escaped, line breaks become spaces and web and mail
    addresses are broken up invisibly, so a name like `**x** [a](http://b) ![i](http://c) www.d.e` shows as
    typed, never as bold text, a link or a fetched image."""
    s = " ".join(str(text).split("\n")).replace("\r", " ")
    s = _AUTOLINKED.sub(lambda m: m.group(0) + WORD_JOINER, s)
    s = _MD_SPECIAL.sub(r"\\\1", s)
    return _LINE_START.sub(lambda m: m.group(1) + (m.group(2) + "\\" if m.group(2)[0].isdigit() else "\\" + m.group(2)), s)


def plain_error(e: object, root: str | Path | None = None) -> str:
    """An error message for the page: the workspace's (or root's) absolute path taken out, then plain()."""
    return plain(strip_root(str(e), root if root is not None else settings().workspace))


# ------------------------------------------------------------------------------------ lasting choices
# A widget's own state is dropped by Streamlit when a run does not draw it (another page), and a reload or a
# new tab starts a fresh session. restore_choice() before the widget and keep_choice() after it make a choice
# outlast both: a plain session-state copy survives switching pages, a query parameter survives a reload and
# makes the choice part of a shareable link. The parameter names are this module's (URL_PARAMS); the analysis
# job's `job` parameter belongs to the Analyze page.
URL_PARAMS = {"exercise", "session", "compare", "angle"}


def _kept(key: str) -> str:
    return f"{key}.kept"


def restore_choice(key: str, options, param: str | None = None, parse=str) -> None:
    """Before drawing the widget `key`: give it back its last value (this session's copy, else the URL's
    `param`) when Streamlit has dropped it; values no longer among `options` are ignored."""
    if param is not None and param not in URL_PARAMS:
        raise ValueError(f"undeclared query parameter {param!r}")
    options = list(options)
    if st.session_state.get(key) in options:
        return
    candidates = [st.session_state.get(_kept(key))]
    if param is not None and param in st.query_params:
        try:
            candidates.append(parse(st.query_params[param]))
        except (TypeError, ValueError):
            pass
    for v in candidates:
        if v is not None and v in options:
            st.session_state[key] = v
            return


def keep_choice(key: str, value, param: str | None = None) -> None:
    """After drawing the widget `key`: remember its value for later pages and put it in the URL."""
    st.session_state[_kept(key)] = value
    if param is None:
        return
    text = "" if value is None else str(value)
    if not text:
        if param in st.query_params:
            del st.query_params[param]
    elif st.query_params.get(param) != text:
        st.query_params[param] = text


@st.cache_resource(show_spinner="Loading the pose model...")
def estimator_factory() -> EstimatorFactory:
    """Makes a fresh tracking PoseEstimator per live stream (tracking state must not leak between them); the
    MediaPipe import happens once per server process, and a warmed spare is always ready, so a live stream
    starts at once. (Analyses have their own, in the analysis process: job_runner.)"""
    factory = EstimatorFactory(warm_up=True, keep_spare=True)
    freeze_heap()  # MediaPipe's objects, just imported
    return factory


def freeze_heap() -> None:
    """Move the objects the server holds so far out of the garbage collector's reach (gc.freeze). A full
    collection walks the whole heap while holding Python's GIL: ~110 ms with Streamlit, pandas and the
    pose library loaded, a stall a live session on this server shows as a late overlay. Called once at
    start-up and once after the model's import (cached resources), never per run: what is frozen is
    never collected."""
    gc.freeze()


# How often a page showing a running analysis job looks at its progress. Each look costs the browser ~0.13
# CPU-s in headless Chromium here (~0.08 for any rerun of the fragment, ~0.05 for the progress bar's slide):
# looking every second took 0.11-0.15 of a two-core machine from the analysis it shows, every 2 s ~0.07 with
# the slide off (JOB_PROGRESS_CSS). Near the job's end the look waits on the server for the result instead
# (job_near_end), so the result still shows as soon as it is published.
JOB_POLL_S = 2.0
# At most this long (under JOB_POLL_S: the next look is not held up). A click during the wait takes effect
# when it ends: only near the end of a job, at most this late.
END_WAIT_S = 1.9
# The progress (in a container keyed JOB_PROGRESS_KEY) neither slides nor fades: the bar steps to its new
# value (a slide is redrawn frame by frame), and while a look waits for the result on the server the browser
# no longer dims the progress as stale (it faded to a third over a second, twice in each wait: the progress
# blinked near the end, and a look cost 0.16 CPU-s instead of 0.13).
JOB_PROGRESS_KEY = "job_progress"
JOB_PROGRESS_CSS = f"""<style>
.st-key-{JOB_PROGRESS_KEY} [data-testid="stProgress"] * {{transition: none !important; animation: none !important;}}
.st-key-{JOB_PROGRESS_KEY} [data-stale="true"] {{opacity: 1 !important; transition: none !important;}}
</style>"""
# A result just finished: its summary and rep table go to the browser this long before the video, the
# timeline's chart and the rest, so it draws them first. Otherwise it took them together and, on a page
# that had not drawn a chart yet, showed the table only once the chart library was loaded (2.0 s after the
# result was published, instead of 0.4-0.6 s).
FRESH_TABLE_LEAD_S = 0.3


def job_near_end(s) -> bool:
    """Whether a running job (s: its JobStatus) is about to publish its result: judging, every frame counted,
    or under two looks' time left by its measured rate."""
    return s.stage == JUDGING or bool(s.total and s.done >= s.total) or \
        (s.eta_s is not None and s.eta_s <= 2 * JOB_POLL_S)


def progress_text(s) -> str:
    """What a running job's progress bar says (s: its JobStatus), in an order that never goes back:
    starting -> (recognising) -> analysing. Each stage counts its own frames from 0; between stages the next
    stage is named, never "starting" again."""
    if not s.stage and not s.done:
        return "Starting the analysis..."
    if s.stage == RECOGNISING:
        what = "Recognising the exercise:"
    else:
        what = "Recognised; analysing" if s.exercise == AUTO else "Analysing"
    return f"{what} frame {s.done} of {s.total or '?'}..." if s.done else f"{what.rstrip(':')}..."


# The stages of an analysis, in order, as the page names them (the video is drawn after the result is shown).
STAGE_STEPS = {"recognising": "recognising the exercise", "analysing": "estimating poses and counting",
               "judging": "judging the reps", "drawing": "drawing the video"}
BUSY_NOTE = "Other programs are using the processor: this will take longer."


def progress_detail(s) -> str:
    """The step the job is at (of the steps it has) and the time left, e.g. "Step 2 of 3: estimating poses
    and counting · about 25 s left" ("" before it starts). s: its JobStatus."""
    if s.stage not in STAGE_STEPS:
        return ""
    steps = [k for k in STAGE_STEPS if k != "recognising" or s.exercise == AUTO]
    text = f"Step {steps.index(s.stage) + 1} of {len(steps)}: {STAGE_STEPS[s.stage]}" if s.stage in steps else ""
    if s.eta_s is not None and s.eta_s > 0:
        left = f"about {s.eta_s:.0f} s left" if s.eta_s < 90 else f"about {s.eta_s / 60:.0f} min left"
        text += f" · {left}"
    return text


@st.cache_resource(show_spinner=False)
def _job_runner(jobs_dir: str, analyses_dir: str, uploads_dir: str, isolate: bool, live_gate: str) -> JobRunner:
    return JobRunner(jobs_dir, analyses_dir, uploads_dir, nice=BACKGROUND_NICE, isolate=isolate, live_gate=live_gate)


def job_runner(s: Settings | None = None) -> JobRunner:
    """The server's analysis job runner for this workspace (created once: it sweeps interrupted jobs and
    orphan uploads of an earlier server, then runs submitted analyses one at a time in the background, in
    a process of their own with its warm model and pose pool: GYMPOSE_ANALYSIS_PROCESS)."""
    s = s or settings()
    try:
        isolate = analysis_process()
    except SettingsError as e:
        st.warning(f"{plain(e)} Analyses run in a process of their own.", icon=":material/warning:")
        isolate = True
    return _job_runner(str(s.jobs_dir), str(s.analyses_dir), str(s.uploads_dir), isolate, str(s.live_gate))


@st.cache_resource
def _history_store(path: str) -> HistoryStore:
    return HistoryStore(path)


@st.cache_resource(show_spinner=False)
def _default_rules() -> RuleSet:
    return load_rules()


def builtin_rules() -> RuleSet:
    """The packaged rules (what the shipped reference histograms were labelled with)."""
    return _default_rules()


def settings() -> Settings:
    try:
        return load_settings().ensure_dirs()
    except (SettingsError, OSError) as e:
        st.error(f"GymPose is not configured correctly: {plain(e)}")
        st.stop()


def history_store(s: Settings | None = None) -> HistoryStore:
    return _history_store(str((s or settings()).history_db))


@dataclass(frozen=True)
class Current:
    settings: Settings
    rules: RuleSet
    exercise: str  # always a concrete exercise: with Auto on, the last one picked (pages that need one use it)
    rules_error: str | None  # the user's rules file is invalid (the defaults are in use)
    using_user_rules: bool
    auto: bool = False  # the sidebar is set to Auto (recognise the exercise)

    @property
    def rule(self) -> ExerciseRule:
        return self.rules[self.exercise]

    @property
    def rules_label(self) -> str:  # (escaped: ready for Markdown)
        return plain(Path(self.rules.source).name) if self.using_user_rules else "built-in defaults"


def current() -> Current:
    """Settings + the rules and exercise chosen in the sidebar (valid on every page)."""
    s = settings()
    use_user = bool(st.session_state.get(keys.USE_USER_RULES, True)) and s.user_rules_path.is_file()
    error = None
    rules = _default_rules()
    if use_user:
        try:
            rules = load_rules(user_path=s.user_rules_path, label=shown_path(s.user_rules_path, s.workspace))
        except RulesError as e:
            error = str(e)
            use_user = False
    choice = st.session_state.get(keys.EXERCISE) or DEFAULT_EXERCISE
    auto = choice == AUTO
    exercise = st.session_state.get(keys.EXERCISE_LAST) if auto else choice
    if exercise not in rules.exercises:
        exercise = DEFAULT_EXERCISE
    return Current(settings=s, rules=rules, exercise=exercise, rules_error=error, using_user_rules=use_user,
                   auto=auto)


def exercise_label(rules: RuleSet, name: str) -> str:
    """Display name of an exercise (the name itself when the rules do not know it), as plain text: a rules
    file may name an exercise anything (escaped with plain() for Markdown elements and widget labels)."""
    return rules[name].display_name if name in rules.exercises else name.replace("_", " ")


def candidates_text(rules: RuleSet, top) -> str:
    """ "Squat 62%, Push-up 20%" from [(name, probability), ...], escaped for Markdown (plain()); candidates
    that would show as 0% are left out."""
    return ", ".join(f"{plain(exercise_label(rules, n))} {p:.0%}" for n, p in top if p >= 0.005)


def fmt(value, unit: str = "", nd: int = 0, none: str = "–") -> str:
    """A number for display (None / NaN -> a dash)."""
    if value is None or value != value:
        return none
    return f"{value:.{nd}f}{unit}"


def rep_table(reps, rule: ExerciseRule) -> pd.DataFrame:
    """One row per rep, as a coach reads it (pose_core.store.report.rep_rows: the shared report has the same
    table): verdict, depth against the target, rep time and its halves, range of motion, reasons with their
    measurements, and the checks the camera's view could not judge (named, with the view; left out when every
    check could be judged, so the columns that matter fit the width)."""
    table = pd.DataFrame(rep_rows(reps, rule))
    empty = [c for c in ("not judged (camera view)",) if c in table.columns and not table[c].astype(bool).any()]
    return table.drop(columns=empty)


CHAR_PX = 7.0  # about one character of the data grid's 14 px font
WIDE_COLUMNS = {"reasons": 520, "not judged (camera view)": 300, "name": 300, "count": 300}


def column_widths(table: pd.DataFrame) -> dict:
    """Pixel widths for st.dataframe's columns from their header and content, so no header ("start (s)") and
    no short value is clipped on a desktop; long text columns (reasons, names) get a wide, capped column."""
    out = {}
    for c in table.columns:
        col = table[c]
        floats = pd.api.types.is_float_dtype(col)
        longest = max([len(str(c))] + [len(f"{v:.2f}" if floats else str(v)) for v in col.head(200)])
        width = min(int(CHAR_PX * longest) + 30, WIDE_COLUMNS.get(c, 260))  # (+ the sort icon and padding)
        # seconds and the like with two decimals each (1.7 and 2 under 1.71 read as different precisions)
        out[c] = (st.column_config.NumberColumn(width=width, format="%.2f") if floats
                  else st.column_config.Column(width=width))
    return out


def show_name(name: str) -> None:
    """A user's file name, as typed, as plain text (st.text: no Markdown, so no link, bold or markup, whatever
    it holds): the same name on the result's heading, in History and in the list of earlier uploads."""
    st.text(str(name).replace("\n", " "))


# The in-page exercise picker is for phones, where the sidebar (and its picker) is folded away: shown only
# while the sidebar is collapsed, so a desktop shows one picker (the sidebar's).
RESPONSIVE_CSS = """<style>
body:has([data-testid="stSidebar"][aria-expanded="true"]) .st-key-inline_picker {display: none;}
</style>"""


def responsive_css() -> None:
    st.html(RESPONSIVE_CSS)


def when_text(ts: float, now: float | None = None) -> str:
    """A moment as a person reads it: "today 04:19", "yesterday 18:02", "5 Dec 04:19", "5 Dec 2025 04:19"."""
    import time
    from datetime import datetime

    t, n = datetime.fromtimestamp(ts), datetime.fromtimestamp(time.time() if now is None else now)
    days = (n.date() - t.date()).days
    if days == 0:
        return f"today {t:%H:%M}"
    if days == 1:
        return f"yesterday {t:%H:%M}"
    return f"{t.day} {t:%b}{'' if t.year == n.year else f' {t.year}'} {t:%H:%M}"


freeze_heap()  # once per server process: this module is imported once (pages are rerun, modules are not)
