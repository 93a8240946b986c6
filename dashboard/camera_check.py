"""Does this browser have a camera? Asked in the browser itself (navigator.mediaDevices), before the live
page offers START: without one, streamlit-webrtc would show the browser's raw error ("NotFoundError:
Requested device not found") inside its own frame, which a page cannot reword.

A components-v2 element with a few lines of inline JavaScript (nothing is fetched): it reports
"ok" (at least one camera), "none" (no camera), or "insecure" (the page is not on https or localhost, where
browsers hide cameras from pages)."""

from __future__ import annotations

from streamlit.components.v2 import component
from streamlit.components.v2.get_bidi_component_manager import get_bidi_component_manager

_JS = """
export default function(component) {
  const { setStateValue } = component;
  const md = navigator.mediaDevices;
  if (!window.isSecureContext || !md || !md.enumerateDevices) { setStateValue('cameras', 'insecure'); return; }
  md.enumerateDevices()
    .then((devices) => setStateValue('cameras', devices.some((d) => d.kind === 'videoinput') ? 'ok' : 'none'))
    .catch(() => setStateValue('cameras', 'ok'));  // cannot tell: let the camera component try
}
"""

NAME = "gympose_camera_check"
_mounts: dict = {}


def camera_state(key: str) -> str | None:
    """ "ok", "none", "insecure", or None until the browser has answered (the first run of a page)."""
    # Registered with the running server's component manager (once per manager: a new runtime, as each
    # AppTest has, starts with an empty one).
    mount = _mounts.get(NAME)
    if mount is None or get_bidi_component_manager().get(NAME) is None:
        mount = _mounts[NAME] = component(NAME, js=_JS)
    result = mount(key=key, on_cameras_change=lambda: None, height=0)
    return getattr(result, "cameras", None)
