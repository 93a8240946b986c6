"""Live coaching from the webcam (streamlit-webrtc): skeleton, angle, reps, phase and feedback in real time.
With Auto in the sidebar the session recognises the exercise first (pose_core.run.live.LiveSession.set_auto)."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st
from streamlit_webrtc import WebRtcMode, webrtc_streamer

from dashboard import keys
from dashboard.camera_check import camera_state
from dashboard.common import (candidates_text, current, estimator_factory, exercise_label, fmt, history_store, plain,
                              plain_error, plural)
from dashboard.exercise_picker import exercise_picker_inline
from pose_core.store.history import HistoryError
from pose_core.run.live import AutoStatus, FreshFrames, LiveSession, LiveSnapshot
from pose_core.run.live_gate import LiveGate
from pose_core.store.settings import SettingsError, rtc_configuration

REFRESH_S = 0.3

cur = current()
rule = cur.rule

st.title("Live coaching")
# Without a camera the camera component would show the browser's raw error; say it plainly instead.
camera = camera_state(keys.LIVE_CAMERA_CHECK)
if camera in ("none", "insecure"):
    st.info("**No camera found on this device.** Live coaching needs a camera: connect one (or allow this browser "
            "to use it) and reload the page. Without a camera, film your set with any phone and upload it on the "
            "Analyze page." if camera == "none" else
            "**The camera is blocked on this address.** Browsers only let a page use the camera over https:// or "
            "on this machine (localhost). Open GymPose that way, or upload a video on the Analyze page.",
            icon=":material/videocam_off:")
    st.page_link("views/analyze.py", label="Analyze a video", icon=":material/video_library:")
    exercise_picker_inline(cur, keys.LIVE_EXERCISE_INLINE)  # (phones fold the sidebar away)
    st.stop()
if cur.auto:
    st.caption("Press **START** and allow the camera. Stand so your whole body is visible and start your set: "
               "GymPose recognises the exercise within a few seconds (**Auto** in the sidebar) and counts it from "
               "then on, including the reps of the last 3 seconds before it was sure. The overlay shows your reps, "
               "the current phase and what to fix; the rep log below fills in as you go.")
else:
    st.caption(f"Press **START** and allow the camera. Stand so your whole body is visible and start your set "
               f"(counted as **{plain(rule.display_name)}**). The overlay shows your reps, the current phase and "
               "what to fix; the rep log below fills in as you go.")
exercise_picker_inline(cur, keys.LIVE_EXERCISE_INLINE)  # (phones fold the sidebar away)

# One LiveSession per browser session; the frame callback (another thread) only touches this object.
session: LiveSession | None = st.session_state.get(keys.LIVE_SESSION)
if session is None:
    session = LiveSession(rule, cur.rules.defaults, estimator_factory=estimator_factory(),
                          rules_source=cur.rules.source)
    st.session_state[keys.LIVE_SESSION] = session
# Only the newest camera frame is analysed (on its own thread); frames that arrive meanwhile are skipped, never
# queued, so the video and its overlay never drift behind the camera when the machine is busy.
fresh: FreshFrames | None = st.session_state.get(keys.LIVE_FRESH)
if fresh is None or fresh.session is not session:
    if fresh is not None:
        fresh.close()
    # (waits up to 0.1 s for this frame's own analysis: on streamlit-webrtc's worker thread, see below)
    # While a frame is in the model, this server's analyses wait (pose_core.run.live_gate).
    fresh = FreshFrames(session, wait_s=0.1, gate=LiveGate(cur.settings.live_gate))
    st.session_state[keys.LIVE_FRESH] = fresh
# Both restart counting only if the mode, the exercise or the thresholds changed.
if cur.auto:
    session.set_auto(cur.rules.exercises, cur.rules.defaults)
else:
    session.set_rule(rule, cur.rules.defaults)
session.rules_source = cur.rules.source


def _ice() -> dict | None:
    """ICE servers: $GYMPOSE_ICE_SERVERS, else `ice_servers` in .streamlit/secrets.toml, else none."""
    try:
        secrets = {"ice_servers": st.secrets["ice_servers"]} if "ice_servers" in st.secrets else None
    except Exception:  # no secrets.toml at all: Streamlit raises its own error types here
        secrets = None
    try:
        return rtc_configuration(secrets=secrets)
    except SettingsError as e:
        st.error(f"The WebRTC (ICE server) settings are invalid: {plain(e)}")
        return None


rtc = _ice()
if rtc is None:
    st.stop()

ctx = webrtc_streamer(
    key=keys.LIVE_STREAMER,
    mode=WebRtcMode.SENDRECV,
    rtc_configuration=rtc,
    # 15 fps: every frame costs a VP8 decode and encode on the server besides its analysis; at 30 fps a busy
    # 2-core server fell behind (bench/bench_live_browser.py: p95 latency 294 vs 211 ms idle).
    media_stream_constraints={"video": {"width": {"ideal": 640}, "height": {"ideal": 480},
                                        "frameRate": {"ideal": 15}}, "audio": False},
    video_frame_callback=fresh.process_av_frame,
    async_processing=True,  # off the event loop: streamlit-webrtc hands over only the newest frame
)
playing = bool(ctx.state.playing)

def save_session() -> None:  # a callback: the next run already shows the result
    if session.snapshot().saved_id is not None:  # a second click (or a stale button) never saves twice
        return
    try:
        sid = history_store(cur.settings).add(session.to_record())
    except HistoryError as e:
        st.session_state[keys.LIVE_SAVED_MSG] = ("error", plain_error(e))
        return
    session.mark_saved(sid)


def override() -> None:  # a callback: "not right? pick the exercise"
    name = st.session_state.get(keys.LIVE_OVERRIDE)
    if name:
        session.override(name)
    st.session_state[keys.LIVE_OVERRIDE] = None


b1, b2, b3, _ = st.columns([1.2, 2, 1.6, 2.2])
b1.button("Reset count", key=keys.LIVE_RESET, icon=":material/restart_alt:", on_click=session.reset,
          width="stretch")
if cur.auto:
    b3.button("Recognise again", key=keys.LIVE_RECOGNISE_AGAIN, icon=":material/frame_person:",
              on_click=session.reset_recognition, width="stretch",
              help="Forget the exercise and recognise it again (the count starts from zero).")
snap = session.snapshot()
if cur.auto:
    # "Cannot tell" (or a wrong lock) is one tap away: the exercises as buttons, the likeliest first.
    likely = [n for n, _ in (snap.auto.top if snap.auto else ()) if n in session.auto_exercises]
    picks = likely + [n for n in session.auto_exercises if n not in likely]
    st.pills("Not right or not sure? Tap your exercise", picks, key=keys.LIVE_OVERRIDE, on_change=override,
             format_func=lambda n: exercise_label(cur.rules, n), selection_mode="single",
             help="Count this exercise instead of the recognised one (stays until you recognise again).")
# What the save slot shows follows the session itself (not a one-off message): once saved, it says so on
# every later run and the button is gone, whatever reruns the camera component triggers after STOP.
if snap.saved_id is not None:
    b2.success(f"Saved as session #{snap.saved_id}: see the History page.", icon=":material/check_circle:")
elif not playing and snap.frames_processed > 0:
    if snap.counting:
        b2.button("Save session to history", key=keys.LIVE_SAVE, type="primary", icon=":material/save:",
                  on_click=save_session, width="stretch")
    else:
        b2.caption("Nothing to save: the exercise was not recognised.")
msg = st.session_state.pop(keys.LIVE_SAVED_MSG, None)
if msg:
    if msg[0] == "ok":
        st.success(msg[1], icon=":material/check_circle:")
    else:
        st.error(msg[1], icon=":material/error:")

metrics_box = st.empty()
log_box = st.empty()

VERDICT_ICON = {"correct": ":green[:material/check_circle: correct]", "incorrect": ":red[:material/cancel: incorrect]",
                "unknown": ":gray[:material/help: not visible]", "not judged": ":gray[:material/visibility_off: not judged]"}


def session_rule_label(angle: str) -> str:
    """An angle of the exercise being counted, as a person calls it (with Auto: the recognised exercise's)."""
    name = session.rule.name if getattr(session, "rule", None) is not None else rule.name
    r = cur.rules[name] if name in cur.rules.exercises else rule
    return r.angle_label(angle) if angle in r.angles else angle.replace("_", " ").capitalize()


def auto_status(a: AutoStatus, frames: int) -> None:
    if a.locked:
        name = plain(exercise_label(cur.rules, a.exercise))
        since = f" · counting since {a.locked_at_s:.1f} s" if a.locked_at_s else ""
        if a.source == "user":
            st.success(f"Counting **{name}** (your choice){since}.", icon=":material/person_check:")
        else:
            st.success(f"Recognised: **{name}** ({a.confidence:.0%} sure){since}. Not right? Tap your exercise "
                       "above.", icon=":material/auto_awesome:")
        return
    text = "**Recognising the exercise…**"
    if not frames:
        text += " Press START and begin your set, with your whole body in view."
    elif a.candidate and not a.reason:
        text += (f" Best guess so far: {candidates_text(cur.rules, a.top[:1])} "
                 f"({a.streak} of {a.needed} confident checks in a row).")
    elif a.reason:
        text += f" Not sure yet: {plain(a.reason)}. Tap your exercise above to count it now."
    else:
        text += " Keep going: it needs a couple of seconds of movement."
    st.info(text, icon=":material/search:")


def delay_text(live: bool) -> str:
    """How far the overlay is behind the camera: from the capture of the frame it shows (the frame's own
    timestamp) to the moment it is drawn (FreshFrames.stats)."""
    st_ = fresh.stats()
    if not live or st_["latency_median_ms"] is None:
        return ""
    text = f" · overlay {st_['latency_median_ms']:.0f} ms behind the camera (p95 {st_['latency_p95_ms']:.0f} ms)"
    if st_["skipped"]:
        text += f" · {st_['skipped']} late frames skipped"
    return text


def metrics_view(s: LiveSnapshot, live: bool) -> tuple:
    """What the numbers above the rep log show, as plain values: the same tuple twice means nothing to redraw."""
    return (s.auto, s.frames_processed, s.counting, s.rep_count, s.primary_angle, fmt(s.primary_value, "°"),
            s.reps_correct, f"{s.fps:.0f} fps" if live and s.fps else "–", s.phase, s.label, tuple(s.feedback),
            s.frames_with_pose, f"{s.process_ms:.0f}", delay_text(live), s.view,
            f"{s.auto.recognition_ms:.1f}" if s.auto and s.auto.recognition_ms else "", s.errors, s.last_error)


def render_metrics(s: LiveSnapshot, live: bool) -> None:
    with metrics_box.container():
        if s.auto is not None:
            auto_status(s.auto, s.frames_processed)
        c = st.columns(4)
        c[0].metric("Reps", s.rep_count)
        c[1].metric(f"{session_rule_label(s.primary_angle)} angle" if s.counting else "Angle", fmt(s.primary_value, "°"))
        c[2].metric("Correct reps", f"{s.reps_correct} / {s.rep_count}")
        c[3].metric("Processed", f"{s.fps:.0f} fps" if live and s.fps else "–",
                    help="Frames analysed per second on the server (late frames are dropped, not queued).")
        phase = plain(s.phase) if s.frames_processed and s.counting else "–"
        form = VERDICT_ICON.get(s.label, s.label) if s.counting else "–"  # nothing is judged while recognising
        st.markdown(f"**Phase:** {phase} &nbsp;·&nbsp; **Form now:** {form}"
                    + (f" &nbsp;·&nbsp; :red[{plain(' · '.join(s.feedback))}]" if s.feedback else ""))
        st.caption(f"Frames processed: {s.frames_processed} · with a person: {s.frames_with_pose} · "
                   f"{s.process_ms:.0f} ms per frame" + delay_text(live) + (f" · camera view: {s.view}" if s.view else "")
                   + (f" (recognition {s.auto.recognition_ms:.1f} ms)" if s.auto and s.auto.recognition_ms else "")
                   + (f" · frames that failed: {s.errors} ({plain_error(s.last_error)})" if s.errors else ""))


def render_log(s: LiveSnapshot) -> None:
    # One element per slot, replaced whole: the heading carries the count, so it can never stand alone over an
    # empty log while reps were counted.
    with log_box.container():
        n = len(s.reps)
        st.markdown("#### Rep log" + (f" · {plural(n, 'rep')}" if n else ""))
        if s.reps:
            label = session_rule_label(s.primary_angle).lower()
            st.dataframe(pd.DataFrame([{
                "rep": r.index, "verdict": r.verdict, "rep time (s)": round(r.duration_s, 1),
                f"{label} min (°)": round(r.primary_min), f"{label} max (°)": round(r.primary_max),
                "ended at (s)": round(r.end_s, 1), "reasons": "; ".join(r.reasons)} for r in reversed(s.reps)]),
                hide_index=True, width="stretch")
        else:
            st.caption("No complete rep yet." + (" " + plain(" ".join(s.notes)) if s.notes and s.frames_processed > 60 else ""))


def log_view(s: LiveSnapshot) -> tuple:
    return (s.primary_angle, tuple(s.reps), tuple(s.notes) if s.frames_processed > 60 else ())


render_metrics(snap, playing)
render_log(snap)
# While the camera runs, refresh what changed (Streamlit stops this loop on the next interaction). Sending an
# unchanged element again is not free: it is diffed and laid out again in the browser and costs the server's
# GIL, both beside the live video on the same cores.
shown = (metrics_view(snap, playing), log_view(snap))
while playing and ctx.state.playing:
    time.sleep(REFRESH_S)
    snap = session.snapshot()
    view = (metrics_view(snap, True), log_view(snap))
    if view[0] != shown[0]:
        render_metrics(snap, True)
    if view[1] != shown[1]:
        render_log(snap)
    shown = view
