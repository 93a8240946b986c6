"""Every widget key and session-state key of the dashboard, in one place. Pages and tests import these;
no key is spelled twice."""

# Sidebar (shared by all pages)
EXERCISE = "sidebar.exercise"  # an exercise name, or common.AUTO
EXERCISE_LAST = "sidebar.last_exercise"  # session state: the last exercise picked (used by pages when Auto is on)
USE_USER_RULES = "sidebar.use_user_rules"

# Analyze
ANALYZE_SOURCE = "analyze.source"  # radio: new upload / earlier upload
ANALYZE_UPLOAD = "analyze.upload"
ANALYZE_EARLIER = "analyze.earlier"
ANALYZE_RUN = "analyze.run"
ANALYZE_RESULT_DIR = "analyze.result_dir"  # session state: folder of the analysis on display
ANALYZE_RESULT_NAME = "analyze.result_name"  # session state: its video's name as the user gave it
ANALYZE_FRESH = "analyze.fresh"  # session state: the job shown just finished (its result is drawn table first)
ANALYZE_EXTRA_ANGLES = "analyze.extra_angles"
ANALYZE_DL_VIDEO = "analyze.download.video"
ANALYZE_DL_FRAMES = "analyze.download.frames"
ANALYZE_DL_REPS = "analyze.download.reps"
ANALYZE_DL_LABELLED_FRAMES = "analyze.download.labelled_frames"
ANALYZE_DL_REPORT = "analyze.download.report"
ANALYZE_REP_TABLE = "analyze.rep_table"  # the rep table's row selection (click a rep: the video plays it)
ANALYZE_TIMELINE = "analyze.timeline"  # the timeline's point selection (click a rep: the video plays it)
ANALYZE_TIMELINE_REP = "analyze.timeline_rep"  # session state: (analysis folder, the rep last clicked on the timeline)
ANALYZE_SEEK = "analyze.seek"  # session state: (analysis folder, second the video starts at)
ANALYZE_EXERCISE_INLINE = "analyze.exercise_inline"  # the exercise picker in the page (phones hide the sidebar)
ANALYZE_AUTOSTART = "analyze.autostart"  # session state: start the analysis on this run (a candidate was picked)
ANALYZE_JOB = "analyze.job"  # session state: id of the job (pose_core.run.jobs) on display
ANALYZE_ADD_REP_AT = "analyze.add_rep_at"  # number input: the time of a rep GymPose missed
ANALYZE_EXPORT_CLIP = "analyze.export_clip"  # button: export the analysis as a labelled clip
ANALYZE_REVIEW_SAID = "analyze.review_said"  # session state: (analysis folder, the last correction's message)
QUERY_JOB = "job"  # URL query parameter: ?job=<id> shows that job's progress, then its result


def analyze_pick(exercise: str) -> str:
    """Button "Analyze as <exercise>" offered when Auto cannot tell."""
    return f"analyze.pick.{exercise}"


def review_rep(action: str, index: int) -> str:
    """The count review's button for one rep ("keep", "remove", "count" a possible one, "undo" an added one)."""
    return f"analyze.review.{action}.{index}"


def analyze_looks_like(exercise: str) -> str:
    """Button "Analyze as <exercise>" offered when no rep was found and the movement looks like that one."""
    return f"analyze.looks_like.{exercise}"


SOURCE_NEW = "Upload a new video"
SOURCE_EARLIER = "Use an earlier upload"

# Live
LIVE_STREAMER = "live.webrtc"
LIVE_SESSION = "live.session"  # session state: pose_core.run.live.LiveSession of this browser session
LIVE_FRESH = "live.fresh"  # session state: its FreshFrames (the newest-frame-only analysis thread)
LIVE_RESET = "live.reset"
LIVE_SAVE = "live.save"
LIVE_SAVED_MSG = "live.saved_msg"
LIVE_RECOGNISE_AGAIN = "live.recognise_again"  # Auto: forget the recognised exercise
LIVE_OVERRIDE = "live.override"  # Auto: "not right? pick the exercise"
LIVE_EXERCISE_INLINE = "live.exercise_inline"  # the exercise picker in the page (phones hide the sidebar)
LIVE_CAMERA_CHECK = "live.camera_check"  # the browser's answer: how many cameras it has

# Thresholds
THR_ANGLE = "thresholds.angle"
THR_VIDEO = "thresholds.video"
THR_SAVE = "thresholds.save"
THR_RESET = "thresholds.reset"
THR_DOWNLOAD = "thresholds.download"
THR_UPLOAD = "thresholds.upload"
THR_APPLY_UPLOAD = "thresholds.apply_upload"
THR_MESSAGE = "thresholds.message"  # session state: (kind, text) shown after a rerun
THR_FULL_RERUN = "thresholds.full_rerun"  # session state: a button in the fragment changed the rules
THR_CHART = "thresholds.chart"
THR_FIGURE = "thresholds.figure"  # session state: (signature, the histogram without its ranges)
THR_DRAFT = "thresholds.draft"  # session state: {exercise: {slider key: value}}, the unsaved slider values
THR_DISCARD = "thresholds.discard"
QUERY_DRAFT = "draft"  # URL query parameter: the unsaved slider values of the exercise on display


def thr_frame_check(exercise: str, index: int) -> str:
    return f"thresholds.{exercise}.frame_check.{index}"


def thr_rep_check(exercise: str, index: int) -> str:
    return f"thresholds.{exercise}.rep_check.{index}"


def thr_prefix(exercise: str) -> str:
    return f"thresholds.{exercise}."


# History
HIST_PROGRESS_EXERCISE = "history.progress_exercise"
HIST_SELECTED = "history.selected"
HIST_COMPARE = "history.compare"  # the session compared with the selected one
HIST_DELETE = "history.delete"
HIST_CONFIRM = "history.confirm_delete"
HIST_CANCEL = "history.cancel_delete"
HIST_DELETE_FILES = "history.delete_files"
HIST_PENDING_DELETE = "history.pending_delete"  # session state: id awaiting confirmation
HIST_MESSAGE = "history.message"
HIST_DL_REPORT = "history.download.report"

# Access (dashboard/access.py)
ACCESS_PASSWORD = "access.password"
ACCESS_OPEN = "access.open"
ACCESS_GRANTED = "access.granted"  # session state: a digest of the password this session was opened with
