"""Helpers for the real-browser tests: start the dashboard with `streamlit run`, drive the system Chromium
with Playwright (never `playwright install`), make a fake camera from a clip.

Also a small command line used by the live test, which must run inside a private network namespace
(see ../shared/PLATFORM.md: aiortc skips 127.0.0.1 when gathering ICE candidates):

    unshare -n bash -c 'ip link set lo up; ip addr add 127.0.0.2/8 dev lo; exec "$@"' bash \\
        python tests/browser_utils.py live --y4m cam.y4m --home WORKSPACE --screenshots DIR

It starts the server and the browser there, presses START, waits until the server has processed frames
and counted a rep, saves the session, and prints one JSON line with what it saw.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path(os.environ.get("GYMPOSE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage"]
SCREENSHOTS = REPO / "test-output" / "screenshots"
VIEWPORT = {"width": 1400, "height": 1000}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class StreamlitServer:
    """`streamlit run dashboard/app.py` headless on a free port, with its own workspace."""

    def __init__(self, home: Path, host: str = "127.0.0.1", port: int | None = None, env: dict | None = None):
        self.home = Path(home)
        self.host = host
        self.port = port or free_port(host)
        self.env = env or {}
        self.proc: subprocess.Popen | None = None
        self.log_path = self.home.parent / f"streamlit-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 60.0) -> "StreamlitServer":
        self.home.mkdir(parents=True, exist_ok=True)
        # (the server as users run it: analyses in their own process, whatever a test of this process set)
        env = {k: v for k, v in os.environ.items() if k != "GYMPOSE_ANALYSIS_PROCESS"}
        env = dict(env, GYMPOSE_HOME=str(self.home), PYTHONUNBUFFERED="1", **self.env)
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.port", str(self.port),
             "--server.address", self.host, "--server.headless", "true", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, process_group=0)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {self.proc.returncode}; see {self.log_path}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=1) as r:
                    if r.read().strip() == b"ok":
                        return self
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"streamlit did not become healthy in {timeout_s:.0f}s; log:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self.proc = None

    def __enter__(self) -> "StreamlitServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@contextlib.contextmanager
def browser(extra_args: list[str] = ()) -> Iterator[object]:
    """A headless system Chromium driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS + list(extra_args))
        try:
            yield b
        finally:
            b.close()


def wait_for_app(page, text: str, timeout_s: float = 30.0) -> None:
    """Streamlit renders after the load event: wait for a specific text in the main area (not the
    sidebar's navigation), then for the app to be idle."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.locator('[data-testid="stMain"]').get_by_text(text, exact=False).first.wait_for(timeout=timeout_s * 1000)
    except PlaywrightTimeout:
        # What the page showed instead (in the failure's message, and as a screenshot): a timeout alone says
        # nothing about a page that was blank, stale or showing an error.
        with contextlib.suppress(Exception):
            screenshot(page, "timeout_" + re.sub(r"\W+", "_", text).strip("_").lower())
        shown = ""
        with contextlib.suppress(Exception):
            shown = page.locator('[data-testid="stMain"]').inner_text(timeout=2000)[:600]
        raise PlaywrightTimeout(f"{text!r} not shown in {timeout_s:.0f} s at {page.url}; the main area showed: "
                                f"{shown!r}") from None
    wait_idle(page, timeout_s)


def wait_idle(page, timeout_s: float = 30.0) -> None:
    """Until Streamlit's status widget says the script is no longer running."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if page.locator('[data-testid="stStatusWidget"]').count() == 0:
            return
        time.sleep(0.2)


def screenshot(page, name: str, folder: Path = SCREENSHOTS, max_height: int = 4000) -> Path:
    """The whole page: Streamlit scrolls inside its own container, so the window is made as tall as the
    content for the shot, then restored."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    size = page.viewport_size or VIEWPORT
    h = page.evaluate("() => { const m = document.querySelector('[data-testid=\"stMain\"]');"
                      " return m ? m.scrollHeight : document.body.scrollHeight; }")
    tall = min(max(int(h or 0), size["height"]), max_height)
    if tall > size["height"]:
        page.set_viewport_size({"width": size["width"], "height": tall})
        time.sleep(0.8)  # re-layout (charts resize)
    page.screenshot(path=str(path), full_page=True)
    if tall > size["height"]:
        page.set_viewport_size(size)
    return path


def make_fake_camera(src: Path, out: Path, seconds: float = 12.0, fps: int = 15) -> Path:
    """A .y4m for Chromium's fake camera (640x480, looped by Chromium)."""
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(src), "-vf",
                    "scale=640:480:force_original_aspect_ratio=decrease,pad=640:480:(ow-iw)/2:(oh-ih)/2,format=yuv420p", "-r", str(fps), "-t", str(seconds), str(out)], check=True)
    return out


def can_unshare() -> bool:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    r = subprocess.run(["unshare", "-n", "bash", "-c", "ip link set lo up && ip addr add 127.0.0.2/8 dev lo"],
                       capture_output=True)
    return r.returncode == 0


NETNS_PREFIX = ["unshare", "-n", "bash", "-c", 'ip link set lo up; ip addr add 127.0.0.2/8 dev lo; exec "$@"', "bash"]


# ---------------------------------------------------------------------------------------- live check

def _caption_numbers(text: str) -> dict:
    out = {}
    m = re.search(r"Frames processed: (\d+) · with a person: (\d+) · (\d+) ms per frame", text)
    if m:
        out.update(frames=int(m.group(1)), with_person=int(m.group(2)), ms_per_frame=int(m.group(3)))
    return out


def _metric(page, label: str) -> str:
    loc = page.locator('[data-testid="stMetric"]').filter(has_text=label).locator('[data-testid="stMetricValue"]')
    return loc.first.inner_text(timeout=2000).strip() if loc.count() else ""


def live_check(y4m: Path, home: Path, shots: Path, wait_reps_s: float = 45.0, min_reps: int = 1) -> dict:
    """Run inside the network namespace. Returns what the page showed."""
    result: dict = {"frames": 0, "reps": 0}
    with StreamlitServer(home) as server, browser([
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={y4m}", "--allow-loopback-in-peer-connection"]) as b:
        page = b.new_page(viewport=VIEWPORT)
        page.goto(f"{server.url}/live")
        wait_for_app(page, "Live coaching", 60)
        start = page.frame_locator("iframe").first.get_by_role("button", name="START")
        start.wait_for(timeout=30000)
        t0 = time.monotonic()
        start.click()
        deadline = t0 + wait_reps_s
        first_frame_s = None
        while time.monotonic() < deadline:
            caption = page.locator('[data-testid="stCaptionContainer"]').filter(has_text="Frames processed").first
            try:
                nums = _caption_numbers(caption.inner_text(timeout=2000))
            except Exception:
                nums = {}
            if nums.get("frames", 0) > 0 and first_frame_s is None:
                first_frame_s = round(time.monotonic() - t0, 1)
            result.update(nums)
            reps = _metric(page, "Reps")
            result["reps"] = int(reps) if reps.isdigit() else 0
            result["fps_shown"] = _metric(page, "Processed")
            if result["reps"] >= min_reps and result.get("frames", 0) > 60:
                break
            time.sleep(0.5)
        result["first_frame_after_s"] = first_frame_s
        result["elapsed_s"] = round(time.monotonic() - t0, 1)
        # The rep log (redrawn only when a rep is added) follows the count while the camera runs.
        end = time.monotonic() + 5
        while time.monotonic() < end:
            with contextlib.suppress(Exception):
                heading = page.get_by_text(re.compile(r"^Rep log")).first.inner_text(timeout=2000)
                m = re.search(r"(\d+) reps?", heading)
                result["log_reps"], result["reps_then"] = (int(m.group(1)) if m else 0), int(_metric(page, "Reps"))
                if result["log_reps"] == result["reps_then"]:
                    break
            time.sleep(0.3)
        # The processed video (with the overlay) is drawn in the component's <video>: grab a frame of it.
        video = page.frame_locator("iframe").first.locator("video").first
        with contextlib.suppress(Exception):
            state = video.evaluate("v => [v.readyState, v.videoWidth, v.videoHeight, v.currentTime]")
            result["video_state"] = state
        screenshot(page, "live_running", shots)
        with contextlib.suppress(Exception):
            video.screenshot(path=str(shots / "live_overlay_frame.png"))
        # Stop and save the session to the history.
        page.frame_locator("iframe").first.get_by_role("button", name="STOP").click()
        save = page.get_by_role("button", name="Save session to history")
        with contextlib.suppress(Exception):
            save.wait_for(timeout=20000)
            save.click()
            page.get_by_text("Saved as session").first.wait_for(timeout=20000)
            result["saved"] = True
        screenshot(page, "live_stopped_saved", shots)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    live = sub.add_parser("live", help="live page end to end with a fake camera (run inside unshare -n)")
    live.add_argument("--y4m", type=Path, required=True)
    live.add_argument("--home", type=Path, required=True)
    live.add_argument("--screenshots", type=Path, default=SCREENSHOTS)
    live.add_argument("--wait", type=float, default=45.0)
    live.add_argument("--min-reps", type=int, default=1, help="keep streaming until this many reps are shown")
    args = ap.parse_args(argv)
    try:
        res = live_check(args.y4m, args.home, args.screenshots, args.wait, args.min_reps)
    except Exception as e:  # reported to the test as data, not as a traceback in the middle of the output
        res = {"error": f"{type(e).__name__}: {e}"}
    print("RESULT " + json.dumps(res), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
